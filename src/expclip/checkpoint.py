"""Head checkpoints: ``head.safetensors`` + ``config.json`` (nothing pickled), the typed :class:`HeadConfig`, run
folders of ``seed*/`` heads, and import of the reference's heads.

config.json holds everything needed to use the head: its type and dims, the backbone (id + revision), the
preprocessing, the teacher and instruction, the training config and seed, a summary of the training data, the
stores it was trained from, and the package and library versions. It is written and read only here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError, MissingError
from .files import atomic_write_bytes, atomic_write_json, sweep_stale_tmp, versions
from .models.heads import HEADS, build_head

log = logging.getLogger(__name__)

HEAD_FORMAT = "expclip-head"
HEAD_FORMAT_VERSION = 1
MAX_DIM = 1 << 20  # no CLIP-family feature or LLM width comes near it; a larger one is a damaged file


@dataclass(frozen=True)
class HeadSpec:
    """The head's architecture: a :data:`~expclip.models.heads.HEADS` type mapping ``in_dim`` -> ``out_dim``."""

    type: str
    in_dim: int
    out_dim: int
    kwargs: dict | None = None  # the type's extra arguments; None: not recorded (imported heads)

    def __post_init__(self) -> None:
        for k in ("in_dim", "out_dim"):  # a zero-width head would "work" and score every face alike
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= MAX_DIM:
                raise CheckpointError(f"a {self.type} head with {k} {v!r}: each dimension must be in 1..{MAX_DIM}")

    def build(self) -> nn.Module:
        return build_head(self.type, self.in_dim, self.out_dim, **(self.kwargs or {}))

    def to_dict(self) -> dict:
        d = {"type": self.type, "in_dim": self.in_dim, "out_dim": self.out_dim}
        return d if self.kwargs is None else {**d, "kwargs": self.kwargs}


@dataclass(frozen=True)
class ModelRecord:
    """A model as a head records it: hub id or absolute local path, and revision (a commit, or
    ``local-<content fingerprint>`` for a local folder)."""

    id: str
    revision: str | None = None

    @property
    def hub_revision(self) -> str | None:
        """The revision to ask the hub for: a local folder's fingerprint is not one."""
        return None if self.revision is None or self.revision.startswith("local-") else self.revision

    def to_dict(self) -> dict:
        return {"id": self.id, "revision": self.revision}


@dataclass
class HeadConfig:
    """Everything a saved head records (``config.json``), read and written only here.

    ``backbone``/``preprocessing`` say how its input features are made; ``teacher`` (id, revision, instruction,
    preprocessing) and ``train`` (:meth:`expclip.train.TrainConfig.to_dict`) how it was trained, ``seed`` which
    run; ``name`` is the model's name in tables, ``run_name`` the training run whose seeds a table row averages;
    ``data``, ``stores`` and ``final`` summarize the training; ``source`` says where an imported head came from.
    """

    head: HeadSpec
    backbone: ModelRecord | None = None
    preprocessing: dict | None = None
    teacher: dict | None = None
    train: dict | None = None
    seed: int | None = None
    name: str | None = None
    run_name: str | None = None
    data: dict | None = None
    stores: dict | None = None
    final: dict | None = None
    source: dict | None = None
    versions: dict | None = None  # filled by save_head

    @property
    def preprocessing_mode(self) -> str:
        return (self.preprocessing or {}).get("mode", "reference")

    @property
    def instruction(self) -> str | None:
        """The teacher instruction the head was trained with (a preset name or the sentence)."""
        return (self.teacher or {}).get("instruction")

    def to_dict(self) -> dict:
        """The JSON form; ``train`` and ``seed`` are always written (an imported head has neither), the other
        optional fields only when set."""
        d: dict[str, Any] = {"head": self.head.to_dict(), "train": self.train, "seed": self.seed}
        if self.backbone is not None:
            d["backbone"] = self.backbone.to_dict()
        for k in ("preprocessing", "teacher", "name", "run_name", "data", "stores", "final", "source", "versions"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "head config") -> "HeadConfig":
        """Validate and read a config (``source`` names it in errors): the one check of what a head records."""
        def bad(field: str, want: str, got: Any) -> CheckpointError:
            return CheckpointError(f"{source}: {field} must be {want}, got {got!r}"[:300])

        if not isinstance(d, dict):
            raise bad("the config", "a JSON object", type(d).__name__)
        h = d.get("head")
        if not isinstance(h, dict):
            raise bad("'head'", "an object {type, in_dim, out_dim}", h)
        if h.get("type") not in HEADS:
            raise bad("head.type", f"one of {list(HEADS)}", h.get("type"))
        for k in ("in_dim", "out_dim"):
            v = h.get(k)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= MAX_DIM:
                raise bad(f"head.{k}", f"an integer in 1..{MAX_DIM}", v)
        if h.get("kwargs") is not None and not isinstance(h["kwargs"], dict):
            raise bad("head.kwargs", "an object", h["kwargs"])
        bb = d.get("backbone")
        if bb is not None and not (isinstance(bb, dict) and isinstance(bb.get("id"), str)
                                   and isinstance(bb.get("revision"), (str, type(None)))):
            raise bad("'backbone'", "an object {id, revision}", bb)
        for k in ("preprocessing", "teacher", "train", "data", "stores", "final", "source", "versions"):
            if d.get(k) is not None and not isinstance(d[k], dict):
                raise bad(f"'{k}'", "an object", d[k])
        for k in ("name", "run_name"):
            if d.get(k) is not None and not isinstance(d[k], str):
                raise bad(f"'{k}'", "a string", d[k])
        if d.get("seed") is not None and (not isinstance(d["seed"], int) or isinstance(d["seed"], bool)):
            raise bad("'seed'", "an integer", d["seed"])
        return cls(
            head=HeadSpec(h["type"], h["in_dim"], h["out_dim"], h.get("kwargs")),
            backbone=ModelRecord(bb["id"], bb.get("revision")) if bb else None,
            **{k: d.get(k) for k in ("preprocessing", "teacher", "train", "seed", "name", "run_name", "data", "stores",
                                     "final", "source", "versions")},
        )

    def check_features(self, dim: int, what: str, where: str | Path) -> None:
        """The one check that features of width ``dim`` (from ``what``, e.g. a backbone) fit this head."""
        if dim != self.head.in_dim:
            raise CheckpointError(f"head {where} expects {self.head.in_dim}-d features but {what} gives {dim}-d: its "
                                  "config.json names the wrong backbone, or the model changed")


def save_head(out_dir: str | Path, head: nn.Module, config: HeadConfig | dict) -> Path:
    """Write ``head.safetensors`` and ``config.json`` into ``out_dir`` (atomically each); a dict ``config`` is read
    through :meth:`HeadConfig.from_dict` first."""
    from safetensors.torch import save

    cfg = config if isinstance(config, HeadConfig) else HeadConfig.from_dict(config, f"config of {out_dir}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    # Serialized in memory, written by our own atomic writer: a full disk is an OSError, never a torn file.
    atomic_write_bytes(out / "head.safetensors", save(state, metadata={"format": HEAD_FORMAT}))
    cfg.versions = versions()
    atomic_write_json(out / "config.json", {"format": HEAD_FORMAT, "format_version": HEAD_FORMAT_VERSION,
                                            **cfg.to_dict()})
    sweep_stale_tmp(out)
    return out


def is_head_dir(path: str | Path) -> bool:
    """True for a directory holding an expclip head (config.json of format "expclip-head")."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text()).get("format") == HEAD_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_head_config(head_dir: str | Path) -> HeadConfig:
    path = Path(head_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{head_dir}: not a head directory (no config.json)")
    try:
        cfg = json.loads(path.read_text())
    except ValueError as e:
        raise CheckpointError(f"{path}: invalid JSON ({e})") from e
    if not isinstance(cfg, dict) or cfg.get("format") != HEAD_FORMAT:
        got = cfg.get("format") if isinstance(cfg, dict) else type(cfg).__name__
        raise CheckpointError(f"{path}: not an expclip head config (format={got!r})")
    return HeadConfig.from_dict(cfg, str(path))


def load_head(head_dir: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, HeadConfig]:
    """Load a saved head: returns (module in eval mode, its config)."""
    from safetensors.torch import load_file

    cfg = read_head_config(head_dir)
    weights = Path(head_dir) / "head.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{head_dir}: head.safetensors is missing")
    h = cfg.head
    head = h.build()
    try:
        state = load_file(str(weights))
    except Exception as e:  # SafetensorError, OSError: a damaged or foreign file
        raise CheckpointError(f"{weights}: not a readable safetensors file ({type(e).__name__}: {e})") from e
    try:
        head.load_state_dict(state)
    except (RuntimeError, OSError) as e:
        raise CheckpointError(f"{weights}: weights do not fit a {h.type} head {h.in_dim}->{h.out_dim}: {e}") from e
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{weights}: non-finite (NaN/Inf) values in {bad}; the head is unusable, retrain it")
    return head.to(device).eval().requires_grad_(False), cfg


def seed_dirs(run_dir: str | Path) -> list[Path]:
    """The heads of a training run directory (``seed*/`` or any subfolder holding a head), in name order."""
    return sorted((d for d in Path(run_dir).glob("*/") if (d / "config.json").is_file()), key=lambda d: d.name)


def expand_head_dirs(paths: list[str | Path]) -> list[Path]:
    """Head directories, or run directories holding ``seed*/`` heads (expanded in seed order)."""
    out = []
    for p in map(Path, paths):
        if (p / "config.json").is_file():
            out.append(p)
        else:
            seeds = seed_dirs(p)
            if not seeds:
                raise MissingError(f"{p}: neither a head directory (config.json) nor a run directory of heads")
            out.extend(seeds)
    # A head named twice (a run directory and one of its seeds, or a shell glob) is scored once: twice would count
    # its cells twice in the mean over seeds (and as a second "fold").
    seen: set[Path] = set()
    unique = [d for d in out if not (d.resolve() in seen or seen.add(d.resolve()))]
    if len(unique) < len(out):
        log.info("%d head(s) given more than once are used once", len(out) - len(unique))
    return unique
