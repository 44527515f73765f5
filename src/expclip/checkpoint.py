"""Head checkpoints: ``head.safetensors`` + ``config.json`` (nothing pickled), and import of the reference's heads.

config.json holds everything needed to use the head: its type and dims, the backbone (id + revision), the
preprocessing, the teacher and instruction, the training config and seed, a summary of the training data, the
stores it was trained from, and the package and library versions.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError
from .files import atomic_write_bytes, atomic_write_json, sweep_stale_tmp, versions
from .models.backbone import PAPER_BACKBONES, known_feature_dim
from .models.heads import build_head
from .models.hub import model_name

log = logging.getLogger(__name__)

HEAD_FORMAT = "expclip-head"
HEAD_FORMAT_VERSION = 1


def save_head(out_dir: str | Path, head: nn.Module, config: dict[str, Any]) -> Path:
    """Write ``head.safetensors`` and ``config.json`` into ``out_dir`` (atomically each)."""
    from safetensors.torch import save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    # Serialized in memory, written by our own atomic writer: a full disk is an OSError, never a torn file.
    atomic_write_bytes(out / "head.safetensors", save(state, metadata={"format": HEAD_FORMAT}))
    cfg = {"format": HEAD_FORMAT, "format_version": HEAD_FORMAT_VERSION, "versions": versions(), **config}
    atomic_write_json(out / "config.json", cfg)
    sweep_stale_tmp(out)
    return out


def read_head_config(head_dir: str | Path) -> dict:
    path = Path(head_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{head_dir}: not a head directory (no config.json)")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON ({e})") from e
    if cfg.get("format") != HEAD_FORMAT:
        raise CheckpointError(f"{path}: not an expclip head config (format={cfg.get('format')!r})")
    return cfg


def load_head(head_dir: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Load a saved head: returns (module in eval mode, its config dict)."""
    from safetensors.torch import load_file

    cfg = read_head_config(head_dir)
    weights = Path(head_dir) / "head.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{head_dir}: head.safetensors is missing")
    h = cfg["head"]
    head = build_head(h["type"], int(h["in_dim"]), int(h["out_dim"]), **h.get("kwargs", {}))
    try:
        state = load_file(str(weights))
    except Exception as e:  # SafetensorError, OSError: a damaged or foreign file
        raise CheckpointError(f"{weights}: not a readable safetensors file ({type(e).__name__}: {e})") from e
    try:
        head.load_state_dict(state)
    except (RuntimeError, OSError) as e:
        raise CheckpointError(f"{weights}: weights do not fit a {h['type']} head {h['in_dim']}->{h['out_dim']}: {e}") from e
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{weights}: non-finite (NaN/Inf) values in {bad}; the head is unusable, retrain it")
    return head.to(device).eval().requires_grad_(False), cfg


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
        source = (read_head_config(out).get("source") or {}).get("imported_from")
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
    out_dim, in_dim = weight.shape
    backbone = model_name(backbone) if backbone else guess_official_backbone(pth, in_dim)
    want = known_feature_dim(backbone, backbone_revision)
    if want is not None and want != in_dim:
        raise CheckpointError(f"{pth}: a {in_dim}-d head cannot sit on {backbone}, whose features are {want}-d; "
                              "pass the --backbone the head was trained on")
    if not torch.isfinite(weight).all():
        raise CheckpointError(f"{pth}: non-finite (NaN/Inf) values in the head weights")
    head = build_head("linear", in_dim, out_dim)
    head.load_state_dict({"mlp.weight": weight.float()})
    config = {
        "head": {"type": "linear", "in_dim": in_dim, "out_dim": out_dim},
        "backbone": {"id": backbone, "revision": backbone_revision},
        "preprocessing": {"mode": "reference"},
        "teacher": {"id": "Salesforce/blip2-flan-t5-xxl (LAVIS blip2_t5 pretrain_flant5xxl)",
                    "instruction": "task"},
        "train": None,
        "seed": None,
        "source": {"imported_from": pth.name, "note": "released head of the Exp-CLIP reference implementation"},
    }
    return save_head(out_dir, head, config)
