"""Head checkpoints: ``head.safetensors`` + ``config.json`` (nothing pickled), the typed :class:`HeadConfig`, run
folders of ``seed*/`` heads, and import of the reference's heads.

config.json holds everything needed to use the head: its type and dims, the backbone (id + revision), the
preprocessing, the teacher and instruction, the training config and seed, a summary of the training data, the
stores it was trained from, and the package and library versions. It is written and read only here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data.images import PREPROCESSING_MODES
from .errors import CheckpointError, InputError, MissingError
from .files import atomic_write_bytes, atomic_write_json, sweep_stale_tmp, versions
from .models.heads import HEADS, MAX_DIM, build_head, check_head
from .models.hub import ModelNotAvailableError, model_name, resolve_model
from .schema import Fields, read_json

log = logging.getLogger(__name__)

HEAD_FORMAT = "expclip-head"
HEAD_FORMAT_VERSION = 1


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

    def matches(self, name: str | Path) -> bool:
        """Whether the model ``name`` is this one: the same hub id or local folder (however spelled), or a local
        folder with the same content fingerprint (a copy, or the recorded folder moved elsewhere)."""
        if model_name(name) == model_name(self.id):
            return True
        if not (self.revision or "").startswith("local-") or not Path(name).is_dir():
            return False
        try:
            return resolve_model(name, local_files_only=True).revision == self.revision
        except ModelNotAvailableError:
            return False


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
        """Validate and read a config (``source`` names it in errors): the one check of what a head records,
        including the head's dims and arguments (:func:`~expclip.models.heads.check_head`: nothing absurd is
        ever allocated)."""
        f = Fields(d, source, CheckpointError)
        h = f.obj("head")
        kind = h.str("type", choices=list(HEADS))
        in_dim, out_dim = h.int("in_dim", lo=1, hi=MAX_DIM), h.int("out_dim", lo=1, hi=MAX_DIM)
        kwargs = h.dict("kwargs", None)
        try:
            check_head(kind, in_dim, out_dim, kwargs)
        except InputError as e:
            raise CheckpointError(f"{source}: {e}") from None
        bb = f.obj("backbone", None)
        backbone = ModelRecord(bb.str("id", empty=False), bb.str("revision", None)) if bb else None
        opt = {k: f.dict(k, None) for k in ("preprocessing", "teacher", "train", "data", "stores", "final", "source",
                                            "versions")}
        if opt["preprocessing"] is not None:
            f.obj("preprocessing").str("mode", "reference", choices=PREPROCESSING_MODES)
        if opt["teacher"] is not None:
            t = f.obj("teacher")
            t.str("id", None)
            t.str("revision", None)
            t.str("instruction", None)
        if opt["final"] is not None:
            fin = f.obj("final")
            fin.number("loss", None)
            fin.number("acc", None)
        if opt["data"] is not None:
            dat = f.obj("data")
            dat.str("name", None)
            dat.int("n_used", None, lo=0)
        if opt["train"] is not None:
            tr = f.obj("train")
            for k in ("lr", "momentum", "weight_decay", "logit_scale"):
                tr.number(k, None)
            for k in ("batch_size", "epochs"):
                tr.int(k, None, lo=1)
            train_kwargs = tr.dict("head_kwargs", None)
            if train_kwargs is not None and train_kwargs != (kwargs or {}):
                raise CheckpointError(f"{source}: train.head_kwargs {train_kwargs} differ from head.kwargs {kwargs}")
        return cls(head=HeadSpec(kind, in_dim, out_dim, kwargs), backbone=backbone,
                   seed=f.int("seed", None), name=f.str("name", None), run_name=f.str("run_name", None), **opt)

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
        data = read_json(cfg, CheckpointError)
    except CheckpointError:
        return False
    return isinstance(data, dict) and data.get("format") == HEAD_FORMAT


def read_head_config(head_dir: str | Path) -> HeadConfig:
    """The :class:`HeadConfig` of a head directory, read through its one schema (errors name the file and field)."""
    path = Path(head_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{head_dir}: not a head directory (no config.json)")
    cfg = read_json(path, CheckpointError, "head config")
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
