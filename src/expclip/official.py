"""Import of the reference implementation's released heads (``ExpCLIP_{B32,B16,L14}_model.pth``) into expclip's
format, without unpickling code."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from .checkpoint import MAX_DIM, HeadConfig, HeadSpec, ModelRecord, read_head_config, save_head
from .errors import CheckpointError
from .models.backbone import PAPER_BACKBONES, known_feature_dim
from .models.heads import build_head
from .models.hub import model_name

log = logging.getLogger(__name__)


def guess_official_backbone(path: Path, in_dim: int) -> str:
    """Backbone of a reference head from its file name (ExpCLIP_B32_model.pth ...) or, failing that, its width."""
    m = re.search(r"(B32|B16|L14)", path.name, re.IGNORECASE)
    if m:
        return PAPER_BACKBONES[m.group(1).upper()]
    if in_dim == 768:
        return PAPER_BACKBONES["L14"]
    raise CheckpointError(
        f"{path}: cannot tell B/32 from B/16 for a {in_dim}-d head by its name; pass --backbone explicitly"
    )


def _refuse_to_overwrite(out: Path, pth: Path) -> None:
    """An import writes into an empty (or new) folder, or redoes the import of the same file; it never replaces a
    trained head nor writes into a run directory of seed*/ heads."""
    if not out.exists():
        return
    if not out.is_dir():
        raise CheckpointError(f"--out {out} is a file, not a directory")
    if not any(out.iterdir()):
        return
    try:
        source = (read_head_config(out).source or {}).get("imported_from")
    except CheckpointError:
        source = None
    if source != pth.name:
        held = f"a head imported from {source}" if source else \
            "it holds " + ", ".join(sorted(p.name for p in out.iterdir())[:4])
        raise CheckpointError(f"--out {out} is not empty ({held}); choose a new folder")


def import_official(pth: str | Path, out_dir: str | Path, backbone: str | None = None,
                    backbone_revision: str | None = None) -> Path:
    """Convert a reference head (``ExpCLIP_{B32,B16,L14}_model.pth``: ``mlp.weight`` (4096, D)) to our format.

    Loaded with ``torch.load(weights_only=True)``: a pickle that tries to run code is refused, not executed.
    """
    pth = Path(pth)
    if not pth.is_file():
        raise CheckpointError(f"file not found: {pth}")
    _refuse_to_overwrite(Path(out_dir), pth)
    try:
        obj = torch.load(pth, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError and friends: a file that is not plain tensors
        raise CheckpointError(
            f"{pth}: refused to load — not a plain tensor state dict ({type(e).__name__}: {str(e)[:200]}). "
            "expclip never unpickles code."
        ) from e
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{pth}: expected a state dict, got {type(obj).__name__}")
    weight = next((v for k, v in obj.items() if k.split("module.")[-1] in ("mlp.weight", "projection.weight")), None)
    if weight is None or not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise CheckpointError(f"{pth}: no 'mlp.weight' matrix (keys: {list(obj)[:5]})")
    if weight.layout != torch.strided or weight.is_quantized or not weight.dtype.is_floating_point:
        raise CheckpointError(f"{pth}: 'mlp.weight' is a {weight.layout} {weight.dtype} tensor; a released head holds "
                              "a dense floating-point matrix")
    out_dim, in_dim = weight.shape
    if not (0 < in_dim <= MAX_DIM and 0 < out_dim <= MAX_DIM):  # a 16->0 head would score every face alike
        raise CheckpointError(f"{pth}: mlp.weight is {out_dim}x{in_dim}, not a usable head: each dimension must be "
                              f"in 1..{MAX_DIM} (the reference's heads are 4096 x 512 or 4096 x 768)")
    backbone = model_name(backbone) if backbone else guess_official_backbone(pth, in_dim)
    want = known_feature_dim(backbone, backbone_revision)
    if want is not None and want != in_dim:
        raise CheckpointError(f"{pth}: a {in_dim}-d head cannot sit on {backbone}, whose features are {want}-d; "
                              "pass the --backbone the head was trained on")
    if not torch.isfinite(weight).all():
        raise CheckpointError(f"{pth}: non-finite (NaN/Inf) values in the head weights")
    head = build_head("linear", in_dim, out_dim)
    head.load_state_dict({"mlp.weight": weight.float()})
    config = HeadConfig(
        head=HeadSpec("linear", in_dim, out_dim), backbone=ModelRecord(backbone, backbone_revision),
        preprocessing={"mode": "reference"},
        teacher={"id": "Salesforce/blip2-flan-t5-xxl (LAVIS blip2_t5 pretrain_flant5xxl)", "instruction": "task"},
        source={"imported_from": pth.name, "note": "released head of the Exp-CLIP reference implementation"},
    )
    return save_head(out_dir, head, config)
