"""The student: a CLIP-family dual encoder loaded with transformers ``from_pretrained``.

``encode_image`` / ``encode_text`` return the model's projected, UN-normalized features (the head is applied
before normalization, as in the reference).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.images import Preprocess, preprocess_for_model
from ..devices import resolve_device
from .hub import ModelNotAvailableError, ResolvedModel, resolve_model, weight_files

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "openai/clip-vit-large-patch14"
PAPER_BACKBONES = {
    "B32": "openai/clip-vit-base-patch32",
    "B16": "openai/clip-vit-base-patch16",
    "L14": "openai/clip-vit-large-patch14",
}
PAPER_FEATURE_DIMS = {PAPER_BACKBONES["B32"]: 512, PAPER_BACKBONES["B16"]: 512, PAPER_BACKBONES["L14"]: 768}


def backbone_short_name(model_id: str | Path) -> str:
    """The paper's name of its backbones ("openai/clip-vit-large-patch14" -> "L/14"); other hub ids and local
    folders by their last part."""
    for short, hub in PAPER_BACKBONES.items():
        if str(model_id) == hub:
            return f"{short[0]}/{short[1:]}"
    return Path(str(model_id)).name or str(model_id)


def feature_dim(config: object) -> int:
    """Width of a dual encoder's projected features, from its transformers config."""
    return int(getattr(config, "projection_dim", None) or config.text_config.hidden_size)  # type: ignore[attr-defined]


def known_feature_dim(name: str | Path, revision: str | None = None) -> int | None:
    """The feature width of ``name`` from its config alone (no weights, no download), or None when unknown.

    Lets a head's input size be checked against its backbone before anything heavy runs.
    """
    from transformers import AutoConfig

    try:
        resolved = resolve_model(name, revision, local_files_only=True)
        return feature_dim(AutoConfig.from_pretrained(resolved.path, trust_remote_code=False))
    except (ModelNotAvailableError, OSError, ValueError, AttributeError):
        return PAPER_FEATURE_DIMS.get(str(name))


def _output_tensor(out: object) -> torch.Tensor:
    """transformers 5 ``get_*_features`` return a model output; older versions a tensor."""
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if pooled is None:
        raise TypeError(f"unexpected feature output type {type(out).__name__}")
    return pooled


def _refuse_teacher(name: str | Path, path: Path) -> None:
    """A BLIP-2 model has get_image_features/get_text_features too, but it is a teacher, not a dual encoder: its
    "features" do not live in one space and their width is not the config's. Refused from config.json alone, before
    (possibly many GB of) weights are read."""
    import json

    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError, AttributeError):
        return  # transformers will say what is wrong with the file
    if model_type in ("blip-2", "instructblip"):
        raise ModelNotAvailableError(f"{str(name)!r} is a {model_type} model (a teacher), not a CLIP-family dual "
                                     "encoder: give it as the teacher (--teacher) and a CLIP model as the backbone")


@dataclass
class Backbone:
    """A loaded CLIP-family model with its identity (name + revision) and preprocessing."""

    model: nn.Module
    tokenizer: object
    resolved: ResolvedModel
    device: torch.device
    image_size: int
    embed_dim: int
    max_text_length: int
    amp_dtype: torch.dtype | None = None  # autocast dtype on GPU (bfloat16); None = full float32
    _logit_scale: float = field(default=100.0, repr=False)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_BACKBONE,
        revision: str | None = None,
        device: str | torch.device | None = "cpu",
        amp: bool = True,
        local_files_only: bool | None = None,
    ) -> "Backbone":
        """Load a CLIP-family model (hub id or local directory) for inference.

        On CUDA, forward passes run under bfloat16 autocast when ``amp`` (features are returned in float32).
        """
        from transformers import AutoModel, AutoTokenizer

        resolved = resolve_model(name_or_path, revision, local_files_only)
        weight_files(resolved.path)  # refuse pickled-only repos before transformers would unpickle them
        _refuse_teacher(name_or_path, resolved.path)
        dev = resolve_device(device)
        try:
            model = AutoModel.from_pretrained(
                resolved.path, dtype=torch.float32, attn_implementation="sdpa", use_safetensors=True,
                trust_remote_code=False,
            )
            tokenizer = AutoTokenizer.from_pretrained(resolved.path, trust_remote_code=False)
        except (OSError, ValueError) as e:
            raise ModelNotAvailableError(f"could not load a CLIP-family model from {resolved.path}: {e}") from e
        if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
            raise ModelNotAvailableError(
                f"{name_or_path!r} ({type(model).__name__}) is not a dual image/text encoder "
                "(it lacks get_image_features/get_text_features)"
            )
        model.eval().requires_grad_(False).to(dev)
        cfg = model.config
        vcfg, tcfg = cfg.vision_config, cfg.text_config
        embed_dim = feature_dim(cfg)
        scale = getattr(model, "logit_scale", None)
        logit_scale = float(scale.exp().item()) if scale is not None else 100.0
        amp_dtype = torch.bfloat16 if (amp and dev.type == "cuda") else None
        return cls(
            model=model,
            tokenizer=tokenizer,
            resolved=resolved,
            device=dev,
            image_size=int(vcfg.image_size),
            embed_dim=embed_dim,
            max_text_length=int(getattr(tcfg, "max_position_embeddings", 77)),
            amp_dtype=amp_dtype,
            _logit_scale=logit_scale,
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
        """The image transform of preprocessing ``mode`` ("reference" or "clip") for this model."""
        return preprocess_for_model(self.resolved.path, mode, self.image_size)

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
        with self._autocast():
            out = _output_tensor(self.model.get_image_features(pixel_values=x))
        return out.float()

    @torch.inference_mode()
    def encode_text(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """N strings -> (N,D) float32 projected text features (not normalized)."""
        outs = []
        for i in range(0, len(texts), batch_size):
            tok = self.tokenizer(
                texts[i : i + batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_text_length,
                return_tensors="pt",
            )
            tok = {k: v.to(self.device) for k, v in tok.items() if k in ("input_ids", "attention_mask")}
            with self._autocast():
                outs.append(_output_tensor(self.model.get_text_features(**tok)).float())
        return torch.cat(outs).cpu() if outs else torch.zeros(0, self.embed_dim)
