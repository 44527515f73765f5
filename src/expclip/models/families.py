"""The dual-encoder families transformers ships, and each one's own conventions, in one table.

A family is a transformers ``model_type``. What differs between families, and is decided here only:

- text: padding (SigLIP was trained on text padded to its 64 positions, and its text features change with shorter
  padding; the others mask padding away), the maximum length, and lower-casing done by us where the tokenizer does
  not do it itself (SigLIP 2 was trained on lower-cased text, and its Gemma tokenizer keeps case);
- images: ``--preprocessing clip`` means *the model's own processor* (``preprocessor_config.json``), whatever the
  family — see :func:`expclip.data.images.preprocess_for_model`; SigLIP 2's NaFlex patches are made here;
- κ (the logit scale of Exp-CLIP's loss and of zero-shot scoring): ``logit_scale.exp()``, or ``1 / temperature``
  for ALIGN. SigLIP's logit bias is not used: see ``docs/backbones.md`` for why.

>>> get_family("siglip").padding, get_family("siglip").lowercase
('max_length', True)
>>> get_family("clip").reference_native
True
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.images import Preprocess, preprocess_for_model
from .checks import check_config

if TYPE_CHECKING:  # torch is imported where it is used: the family names (expclip list) cost no torch import
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    """The conventions of one dual-encoder family (a transformers ``model_type``).

    Args:
        model_type: transformers' name of the family (``config.json``'s ``model_type``).
        display: how people name it.
        padding: "longest" (padding is masked away) or "max_length" (the model was trained on padded text).
        max_length: a fixed text length of the family's own processor, or None: the text tower's positions.
        position_offset: positions the text tower reserves (RoBERTa-style towers start at pad id + 1 = 2).
        lowercase: lower-case prompts before tokenizing (the model was trained so; idempotent where the tokenizer
            lower-cases too).
        kappa: "logit_scale" (κ = exp of the learned scale) or "temperature" (κ = 1 / the learned temperature).
        sigmoid: trained with a sigmoid loss and a learned logit bias (SigLIP); the bias is left out of scoring.
        naflex: images enter as patch sequences with a patch budget (SigLIP 2 NaFlex), made from (B,3,H,W) here.
        reference_native: the paper's "reference" preprocessing (squash, [0,1], no normalization) was written for
            this family; for the others it is merely reproducible, and using it is warned about.
        verified: covered by tests against transformers' own pipeline and processors.
    """

    model_type: str
    display: str
    padding: str = "longest"
    max_length: int | None = None
    position_offset: int = 0
    lowercase: bool = False
    kappa: str = "logit_scale"
    sigmoid: bool = False
    naflex: bool = False
    reference_native: bool = False
    verified: bool = True


FAMILIES: dict[str, Family] = {f.model_type: f for f in [
    # CLIP-format checkpoints (OpenAI, LAION/OpenCLIP ViT-H/bigG, MetaCLIP 1, EVA-style exports) load as "clip".
    Family("clip", "CLIP", reference_native=True),
    # MetaCLIP 2 (worldwide): CLIP's towers with an XLM-V tokenizer (case-sensitive, multilingual), 77 positions.
    Family("metaclip_2", "MetaCLIP 2"),
    # SigLIP (and SigLIP 2's fixed-resolution checkpoints, which are "siglip" models with a Gemma tokenizer): text
    # padded to max_length 64 as trained (transformers' pipeline and processors do the same), lower-cased.
    Family("siglip", "SigLIP", padding="max_length", lowercase=True, sigmoid=True),
    Family("siglip2", "SigLIP 2 (NaFlex)", padding="max_length", lowercase=True, sigmoid=True, naflex=True),
    # ALIGN: BERT text (lower-casing wordpiece), EfficientNet images; its processor pads to max_length 64 (the
    # padding is masked, so it changes nothing but cost). κ = 1 / temperature.
    Family("align", "ALIGN", padding="max_length", max_length=64, kappa="temperature"),
    # AltCLIP: XLM-R text tower (514 positions, 2 reserved), CLIP's image processor.
    Family("altclip", "AltCLIP", position_offset=2),
    # Chinese-CLIP: BERT (Chinese wordpiece, lower-casing); the authors' context length is 52 (cn_clip's tokenize
    # default; not verified offline against the hub tokenizer, whose own model_max_length also caps it).
    Family("chinese_clip", "Chinese-CLIP", max_length=52),
]}


def get_family(model_type: str | None) -> Family:
    """The family of ``model_type``; an unknown one gets CLIP's conventions, marked unverified."""
    fam = FAMILIES.get(str(model_type))
    return fam if fam is not None else Family(str(model_type), str(model_type), verified=False)


def family_of(config: object) -> Family:
    """The family of a transformers config (or its ``to_dict()``)."""
    model_type = config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)
    return get_family(model_type)


def _sub(config: object, name: str) -> dict:
    cfg = config if isinstance(config, dict) else config.to_dict()  # type: ignore[attr-defined]
    return cfg.get(name) or {}


def feature_dim(config: object) -> int:
    """Width of the projected (image and text) features, from a transformers config or its dict."""
    cfg = config if isinstance(config, dict) else config.to_dict()  # type: ignore[attr-defined]
    if family_of(cfg).sigmoid:  # SigLIP: no projection_dim; the text head maps to projection_size (= hidden)
        text = _sub(cfg, "text_config")
        return int(text.get("projection_size") or text["hidden_size"])
    return int(cfg.get("projection_dim") or _sub(cfg, "text_config")["hidden_size"])


def vision_image_size(config: object, default: int = 224) -> int:
    """The square side the image tower is built for: ``vision_config.image_size``, or for NaFlex the side of its
    position grid (``sqrt(num_patches) · patch_size``, 16 · 16 = 256 for the released checkpoints)."""
    vision = _sub(config, "vision_config")
    if family_of(config).naflex:
        return math.isqrt(int(vision.get("num_patches", 256))) * int(vision.get("patch_size", 16))
    size = vision.get("image_size", default)
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def text_max_length(config: object, tokenizer: object | None = None) -> int:
    """The longest token sequence the text side takes: the family's fixed length, else its positions; capped by
    the tokenizer's own ``model_max_length`` when that is a real limit."""
    fam = family_of(config)
    text = _sub(config, "text_config")
    positions = int(text.get("max_position_embeddings", 77)) - fam.position_offset
    n = min(fam.max_length, positions) if fam.max_length else positions
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 100_000 and fam.padding != "max_length":
        n = min(n, tok_max)
    return n


def text_rule(config: object) -> dict | None:
    """How the family reads text, for the key of stored prompt features: None for CLIP's rule (padding to the
    longest prompt, the text tower's positions, case left to the tokenizer: the keys of stores made before families
    stay valid), else the family's padding, fixed length, reserved positions and lower-casing."""
    fam = family_of(config)
    rule = {"padding": fam.padding, "max_length": fam.max_length, "position_offset": fam.position_offset,
            "lowercase": fam.lowercase}
    clip = get_family("clip")
    same = {"padding": clip.padding, "max_length": clip.max_length, "position_offset": clip.position_offset,
            "lowercase": clip.lowercase}
    return None if rule == same else rule


def tokenize(family: Family, tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """``texts`` as the family's model was trained to read them: input_ids (+ attention_mask when the tokenizer
    gives one, as transformers' pipeline passes it)."""
    if family.lowercase:
        texts = [t.lower() for t in texts]
    padding = "max_length" if family.padding == "max_length" else True
    tok = tokenizer(texts, padding=padding, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: v for k, v in tok.items() if k in ("input_ids", "attention_mask")}


def logit_scale(family: Family, model: torch.nn.Module) -> float:
    """κ of ``model``: exp(logit_scale), or 1 / temperature (ALIGN); 100 when the model has neither."""
    if family.kappa == "temperature" and getattr(model, "temperature", None) is not None:
        return float(1.0 / model.temperature.detach().float().item())  # type: ignore[union-attr]
    scale = getattr(model, "logit_scale", None)
    return float(scale.detach().float().exp().item()) if scale is not None else 100.0


def logit_bias(model: torch.nn.Module) -> float | None:
    """SigLIP's learned logit bias (None for other families): recorded, never added to scores."""
    bias = getattr(model, "logit_bias", None)
    return float(bias.detach().float().item()) if bias is not None else None


def image_inputs(family: Family, config: object, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
    """The keyword arguments of ``get_image_features`` for (B,3,H,W) preprocessed images.

    NaFlex (SigLIP 2): the image is cut into its (H/p)·(W/p) patches of p·p·3 values in the processor's order
    (rows of patches, each patch row-major with channels last), all valid, with their grid shape.
    """
    import torch

    if not family.naflex:
        return {"pixel_values": pixel_values}
    p = int(_sub(config, "vision_config").get("patch_size", 16))
    b, c, h, w = pixel_values.shape
    if h % p or w % p:
        raise ValueError(f"NaFlex images must be multiples of the patch size {p}, got {h}x{w}")
    patches = pixel_values.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, p * p * c)
    mask = torch.ones(b, patches.shape[1], dtype=torch.long, device=pixel_values.device)
    shapes = torch.tensor([[h // p, w // p]] * b, dtype=torch.long, device=pixel_values.device)
    return {"pixel_values": patches, "pixel_attention_mask": mask, "spatial_shapes": shapes}


_WARNED: set[str] = set()


def model_preprocess(model_dir: str | Path, mode: str, config: dict | None = None, name: str | None = None
                     ) -> Preprocess:
    """The :class:`~expclip.data.images.Preprocess` of ``mode`` for a model directory, from its config files.

    "reference" on a family other than CLIP is the paper's CLIP-specific squash without normalization, not what
    the model was trained with: it is allowed (heads trained so must be evaluated so) and warned about once.
    """
    model_dir = Path(model_dir)
    cfg = config if config is not None else check_config(model_dir / "config.json")
    fam = family_of(cfg)
    size = vision_image_size(cfg)
    if mode == "reference" and str(cfg.get("model_type")) in FAMILIES and not fam.reference_native:
        who = name or str(model_dir)
        if who not in _WARNED:
            _WARNED.add(who)
            log.warning("%s is a %s model: --preprocessing reference is the paper's CLIP-specific rule (squash to "
                        "%dx%d, scale to [0,1], no mean/std normalization), not what %s was trained with; "
                        "--preprocessing clip uses the model's own image processor", who, fam.display, size, size,
                        fam.display)
    return preprocess_for_model(model_dir, mode, size)
