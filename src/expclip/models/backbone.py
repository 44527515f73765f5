"""The student: a CLIP-family dual encoder loaded with transformers ``from_pretrained``.

Any family :mod:`expclip.models.families` knows (CLIP and CLIP-format checkpoints, SigLIP, SigLIP 2, MetaCLIP 2,
ALIGN, AltCLIP, Chinese-CLIP), each read and scored with its own conventions; a preset name
(:mod:`expclip.models.presets`) or a hub id or a local folder. ``encode_image`` / ``encode_text`` return the model's
projected, UN-normalized features (the head is applied before normalization, as in the reference).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.images import Preprocess
from ..devices import resolve_device
from . import families
from .checks import check_config, check_shapes, meta_shapes, weight_headers
from .families import Family, feature_dim
from .hub import ModelNotAvailableError, ResolvedModel, resolve_model, weight_files
from .names import DEFAULT_BACKBONE, PAPER_BACKBONES, backbone_short_name  # noqa: F401
from .presets import preset_for_hub_id, resolve_preset

log = logging.getLogger(__name__)



def known_feature_dim(name: str | Path, revision: str | None = None) -> int | None:
    """The feature width of ``name`` from its config alone (no weights, no download), or None when unknown.

    Lets a head's input size be checked against its backbone before anything heavy runs.
    """
    from transformers import AutoConfig

    try:
        resolved = resolve_model(name, revision, local_files_only=True)
        return feature_dim(AutoConfig.from_pretrained(resolved.path, trust_remote_code=False))
    except (ModelNotAvailableError, OSError, ValueError, AttributeError, TypeError, KeyError):
        preset = preset_for_hub_id(resolve_preset(name))  # the paper's three backbones are presets too
        return preset.feature_dim if preset else None


def _output_tensor(out: object) -> torch.Tensor:
    """transformers 5 ``get_*_features`` return a model output; older versions a tensor."""
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if pooled is None:
        raise TypeError(f"unexpected feature output type {type(out).__name__}")
    return pooled


def check_backbone(name: str | Path, revision: str | None = None,
                   local_files_only: bool | None = None) -> ResolvedModel:
    """Resolve ``name`` and check, from its config files and the weights' headers alone (nothing allocated, no
    weights read), that it is a dual encoder transformers can load with those weights: config.json within bounds
    (:func:`~expclip.models.checks.check_config`), not a BLIP-2 teacher, .safetensors weights whose headers are sound
    and whose shapes are the config's. Returns the resolved model; raises ModelNotAvailableError naming the file."""
    from transformers import AutoConfig, AutoModel

    resolved = resolve_model(name, revision, local_files_only)
    files = weight_files(resolved.path)  # refuse pickled-only repos before transformers would unpickle them
    raw = check_config(resolved.path / "config.json")
    model_type = raw.get("model_type", "")
    # A BLIP-2 model has get_image_features/get_text_features too, but it is a teacher, not a dual encoder: its
    # "features" do not live in one space and their width is not the config's.
    if model_type in ("blip-2", "instructblip"):
        raise ModelNotAvailableError(f"{str(name)!r} is a {model_type} model (a teacher), not a CLIP-family dual "
                                     "encoder: give it as the teacher (--teacher) and a CLIP model as the backbone")
    weights = weight_headers(files)
    try:
        config = AutoConfig.from_pretrained(resolved.path, trust_remote_code=False)
    except Exception as e:  # transformers' own validation raises many kinds: all mean a config it cannot use
        raise ModelNotAvailableError(f"{resolved.path / 'config.json'}: not a config transformers can read "
                                     f"({type(e).__name__}: {e})") from None
    shapes = meta_shapes(lambda: AutoModel.from_config(config, trust_remote_code=False))
    if shapes is not None:
        check_shapes(shapes, weights, resolved.path / "config.json")
    return resolved


@dataclass
class Backbone:
    """A loaded CLIP-family model with its identity (name + revision), family conventions and preprocessing."""

    model: nn.Module
    tokenizer: object
    resolved: ResolvedModel
    device: torch.device
    image_size: int
    embed_dim: int
    max_text_length: int
    amp_dtype: torch.dtype | None = None  # autocast dtype on GPU (bfloat16); None = full float32
    _logit_scale: float = field(default=100.0, repr=False)
    family: Family = field(default_factory=lambda: families.get_family("clip"))
    logit_bias: float | None = None  # SigLIP's learned bias: recorded, never added to scores (argmax-invariant)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_BACKBONE,
        revision: str | None = None,
        device: str | torch.device | None = "cpu",
        amp: bool = True,
        local_files_only: bool | None = None,
    ) -> "Backbone":
        """Load a dual image/text encoder (preset name, hub id or local directory) for inference.

        On CUDA, forward passes run under bfloat16 autocast when ``amp`` (features are returned in float32).
        """
        resolved = check_backbone(name_or_path, revision, local_files_only)
        dev = resolve_device(device)
        model, tokenizer = _load(resolved.path)
        if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
            raise ModelNotAvailableError(
                f"{name_or_path!r} ({type(model).__name__}) is not a dual image/text encoder "
                "(it lacks get_image_features/get_text_features)"
            )
        model.eval().requires_grad_(False).to(dev)
        cfg = model.config
        fam = families.family_of(cfg)
        if not fam.verified:
            log.warning("%s is a %r model, not one of the families expclip verifies (%s): loaded with CLIP's "
                        "conventions (text padded to the longest prompt, κ = exp(logit_scale)); check its scores",
                        name_or_path, fam.model_type, ", ".join(families.FAMILIES))
        amp_dtype = torch.bfloat16 if (amp and dev.type == "cuda") else None
        return cls(
            model=model,
            tokenizer=tokenizer,
            resolved=resolved,
            device=dev,
            image_size=families.vision_image_size(cfg),
            embed_dim=feature_dim(cfg),
            max_text_length=families.text_max_length(cfg, tokenizer),
            amp_dtype=amp_dtype,
            _logit_scale=families.logit_scale(fam, model),
            family=fam,
            logit_bias=families.logit_bias(model),
        )

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def revision(self) -> str:
        return self.resolved.revision

    @property
    def logit_scale(self) -> float:
        """exp of the pretrained temperature (100 for OpenAI CLIP): κ of the loss and of zero-shot scoring."""
        return self._logit_scale

    def preprocess(self, mode: str = "reference") -> Preprocess:
        """The image transform of preprocessing ``mode`` ("reference" or "clip": the model's own processor)."""
        return families.model_preprocess(self.resolved.path, mode, self.model.config.to_dict(), self.resolved.name)

    def text_rule(self) -> dict | None:
        """How this family reads text (None: CLIP's rule), part of the key of its stored prompt features."""
        return families.text_rule(self.model.config)

    def identity(self) -> dict:
        """What identifies this model's features in store keys and head configs."""
        return {"id": self.resolved.name, "revision": self.resolved.revision}

    def _autocast(self):
        if self.amp_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @torch.inference_mode()
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) preprocessed images -> (B,D) float32 projected image features (not normalized)."""
        x = pixel_values.to(self.device, non_blocking=True)
        inputs = families.image_inputs(self.family, self.model.config.to_dict() if self.family.naflex else {}, x)
        with self._autocast():
            out = _output_tensor(self.model.get_image_features(**inputs))
        return out.float()

    @torch.inference_mode()
    def encode_text(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """N strings -> (N,D) float32 projected text features (not normalized), tokenized by the family's rule
        (SigLIP: lower-cased, padded to its 64 positions; others: padded to the longest prompt)."""
        outs = []
        for i in range(0, len(texts), batch_size):
            tok = families.tokenize(self.family, self.tokenizer, texts[i : i + batch_size], self.max_text_length)
            tok = {k: v.to(self.device) for k, v in tok.items()}
            with self._autocast():
                outs.append(_output_tensor(self.model.get_text_features(**tok)).float())
        return torch.cat(outs).cpu() if outs else torch.zeros(0, self.embed_dim)


def _load(path: Path) -> tuple[nn.Module, object]:
    """(model, tokenizer) of a model directory, SDPA attention where the model has it."""
    from transformers import AutoModel, AutoTokenizer

    try:
        try:
            model = AutoModel.from_pretrained(path, attn_implementation="sdpa", dtype=torch.float32,
                                              use_safetensors=True, trust_remote_code=False)
        except ValueError as e:  # a family without an SDPA path (e.g. ALIGN's EfficientNet): transformers' default
            if "sdpa" not in str(e).lower() and "attention" not in str(e).lower():
                raise
            model = AutoModel.from_pretrained(path, dtype=torch.float32, use_safetensors=True,
                                              trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except ImportError as e:  # e.g. SigLIP's SiglipTokenizer reads spiece.model through the sentencepiece package
        raise ModelNotAvailableError(f"loading {path} needs a package that is not installed: {' '.join(str(e).split())}"
                                     " (SigLIP's SiglipTokenizer: pip install sentencepiece)") from e
    except (OSError, ValueError, RuntimeError) as e:  # RuntimeError: sizes that do not fit (checked before, too)
        raise ModelNotAvailableError(f"could not load a CLIP-family model from {path}: "
                                     f"{str(e).splitlines()[0][:300]}") from e
    return model, tokenizer
