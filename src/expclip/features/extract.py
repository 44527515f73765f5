"""What is extracted, under which key: CLIP image features, teacher targets, prompt features.

The expensive encoders run here and only here; train and eval find the finished stores by key
(:func:`find_image_store`, :func:`find_teacher_store`) without loading any model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.datasets import ItemList
from ..data.images import Preprocess, preprocess_for_model
from ..data.loaders import ClipLoader, image_loader, plan_clips
from ..data.video import SAMPLING_RULES
from ..devices import default_num_workers
from ..errors import InputError
from ..models.hub import ModelNotAvailableError, ResolvedModel, resolve_model
from ..models.teacher import resolve_instruction
from .extraction import base_key, run_extraction
from .store import FeatureStore, StaleStoreError, StoreError, find_store, key_digest, store_path

log = logging.getLogger(__name__)


def model_preprocess(resolved: ResolvedModel, mode: str) -> Preprocess:
    """The preprocessing of ``mode`` for a model directory, from its config files alone (no weights loaded)."""
    cfg = json.loads((resolved.path / "config.json").read_text())
    size = int(cfg.get("vision_config", {}).get("image_size", 224))
    return preprocess_for_model(resolved.path, mode, size)


def compute_dtype_name(amp_dtype: torch.dtype | None) -> str:
    return "float32" if amp_dtype is None else f"{str(amp_dtype).split('.')[-1]}-autocast"


def image_key(model: dict, preprocess: Preprocess, data: ItemList, dtype: str, sampling: str = "reference",
              num_segments: int = 16) -> dict:
    """Key of image features, or of video frame features: those also record the frame sampling."""
    extra = {}
    if data.kind == "video":
        if sampling not in SAMPLING_RULES:
            raise InputError(f"unknown sampling rule {sampling!r}; choose one of {SAMPLING_RULES}")
        extra["sampling"] = {"rule": sampling, "num_segments": int(num_segments)}
    return base_key(data.kind, model, preprocess, data, dtype=dtype, **extra)


def teacher_key(model: dict, preprocess: Preprocess, data: ItemList, instruction: str, dtype: str) -> dict:
    name, text = resolve_instruction(instruction)
    return base_key("teacher", model, preprocess, data, instruction=text, dtype=dtype)


@dataclass(frozen=True)
class _Lookup:
    """A model's identity for finding stores without loading it."""

    identity: dict
    resolved: ResolvedModel | None
    free: tuple[str, ...]


def _lookup(name: str, revision: str | None) -> _Lookup:
    """Resolve ``name`` from local files only; when that fails, any revision of the stores may match."""
    try:
        r = resolve_model(name, revision, local_files_only=True)
        # A local directory is identified by its content fingerprint (the revision): a store keyed by another
        # spelling of its path (relative, as stores before absolute names were) holds the same features.
        free = ("dtype", "model.id") if r.revision.startswith("local-") else ("dtype",)
        return _Lookup({"id": r.name, "revision": r.revision}, r, free)
    except ModelNotAvailableError:
        log.info("%s is not available locally; matching stores by its name and any revision", name)
        free = ("dtype",) if revision else ("dtype", "model.revision")
        return _Lookup({"id": str(name), "revision": revision}, None, free)


def _find(store_root: Path, key: dict, free: tuple[str, ...], resolved: ResolvedModel | None, mode: str,
          how: str) -> FeatureStore:
    if resolved is None:
        free = free + ("preprocessing",)  # without the model's config files only the mode can be checked
    try:
        store = find_store(store_root, key, free)
    except StoreError as e:
        raise StoreError(f"{e}. {how}") from e
    if store.key.get("preprocessing", {}).get("mode") != mode:
        raise StoreError(f"store {store.path} has preprocessing {store.key['preprocessing']['mode']!r}, not {mode!r}")
    return store


def _where(store_root: str | Path, key: dict) -> tuple[Path, dict]:
    """(directory, key) of the store to fill for ``key``: its own directory, or, for a local model directory
    (revision ``local-<content fingerprint>``), a complete store of the same features keyed by another spelling of
    its path (``./clip``, ``clip/``, ``/abs/clip``), so that such a rerun finds the work done instead of redoing it."""
    path = store_path(store_root, key)
    local = str(key["model"].get("revision") or "").startswith("local-")
    if path.exists() or not local or not Path(store_root).is_dir():
        return path, key
    try:
        found = find_store(store_root, key, ("model.id",))
    except StoreError:
        return path, key
    log.info("using %s: the same model directory, named %s there", found.path, found.key["model"]["id"])
    return found.path, found.key


def _data_args(data: ItemList) -> str:
    """The CLI arguments that name ``data`` (for "extract it first" messages)."""
    name = data.info.get("dataset")
    if name:
        fold = f" --fold {data.info['fold']}" if data.info.get("fold") else ""
        return f"--dataset {name} --root {data.root}{fold}"
    return f"--data {data.root}"


def find_image_store(store_root: str | Path, backbone: str, data: ItemList, preprocessing: str = "reference",
                     revision: str | None = None, sampling: str = "reference", num_segments: int = 16) -> FeatureStore:
    """The finished image (or video) feature store of ``backbone`` on ``data``, found by key; no model is loaded.

    For video data the key includes the frame sampling (``sampling`` rule, ``num_segments`` frames per clip).
    """
    lk = _lookup(backbone, revision)
    pre = model_preprocess(lk.resolved, preprocessing) if lk.resolved else Preprocess(preprocessing)
    key = image_key(lk.identity, pre, data, "float32", sampling, num_segments)
    how = (f"Extract it first: expclip extract {_data_args(data)} --backbone {backbone} "
           f"--preprocessing {preprocessing} --store {store_root}")
    return _find(Path(store_root), key, lk.free, lk.resolved, preprocessing, how)


def find_teacher_store(store_root: str | Path, teacher: str, data: ItemList, instruction: str = "task",
                       preprocessing: str = "reference", revision: str | None = None) -> FeatureStore:
    """The finished teacher-target store of ``teacher`` on ``data`` for ``instruction``; no model is loaded."""
    lk = _lookup(teacher, revision)
    pre = model_preprocess(lk.resolved, preprocessing) if lk.resolved else Preprocess(preprocessing)
    key = teacher_key(lk.identity, pre, data, instruction, "float32")
    how = (f"Extract it first: expclip extract --data {data.root} --teacher {teacher} --instruction "
           f"{json.dumps(instruction) if ' ' in instruction else instruction} --store {store_root}")
    return _find(Path(store_root), key, lk.free, lk.resolved, preprocessing, how)


def extract_images(
    backbone: Any,
    data: ItemList,
    store_root: str | Path,
    preprocessing: str = "reference",
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: bool = True,
    strict: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> FeatureStore | None:
    """CLIP image features (N, D) of ``data`` into the store (resumes a partial one)."""
    if data.kind != "image":
        raise InputError(f"{data.name} is a {data.kind} dataset; use extract_videos for it")
    data.validate(check_files=False)
    pre = backbone.preprocess(preprocessing)
    key = image_key(backbone.identity(), pre, data, compute_dtype_name(backbone.amp_dtype))
    path, key = _where(store_root, key)
    load = image_loader(data, pre)
    return run_extraction(
        path, key, data.items, load, backbone.encode_image, (backbone.embed_dim,),
        batch_size=batch_size, num_workers=default_num_workers() if num_workers is None else num_workers,
        progress=progress, strict=strict, desc=f"CLIP {data.name}", shard=shard,
        pin_memory=backbone.device.type == "cuda", extra_meta={"logit_scale": backbone.logit_scale},
    )


def extract_teacher(
    teacher: Any,
    data: ItemList,
    store_root: str | Path,
    instruction: str = "task",
    preprocessing: str = "reference",
    batch_size: int = 32,
    num_workers: int | None = None,
    progress: bool = True,
    strict: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> FeatureStore | None:
    """Teacher targets e_G (N, E) of ``data`` for ``instruction`` into the store (resumes a partial one)."""
    if data.kind != "image":
        raise InputError(f"{data.name} is a {data.kind} dataset; teacher targets are computed for training images")
    name, text = resolve_instruction(instruction)
    data.validate(check_files=False)
    pre = teacher.preprocess(preprocessing)
    key = teacher_key(teacher.identity(), pre, data, text, str(teacher.dtype).split(".")[-1])
    path, key = _where(store_root, key)
    load = image_loader(data, pre)
    return run_extraction(
        path, key, data.items, load, lambda x: teacher.encode(x, text), (teacher.embed_dim,),
        batch_size=batch_size, num_workers=default_num_workers() if num_workers is None else num_workers,
        progress=progress, strict=strict, desc=f"teacher {data.name} [{name}]", shard=shard,
        pin_memory=teacher.device.type == "cuda",
    )


@dataclass(frozen=True)
class _ClipEncoder:
    """(B,T,3,H,W) clips -> (B,T,D) per-frame features, the frames of a batch in one forward pass."""

    backbone: Any

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        b, t = clips.shape[:2]
        return self.backbone.encode_image(clips.flatten(0, 1)).view(b, t, -1)


def extract_videos(
    backbone: Any,
    data: ItemList,
    store_root: str | Path,
    preprocessing: str = "reference",
    sampling: str = "reference",
    num_segments: int = 16,
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: bool = True,
    strict: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> FeatureStore | None:
    """Per-frame CLIP features (N, T, D) of the clips of ``data`` into the store (resumes a partial one).

    T = ``num_segments`` frames per clip chosen by the ``sampling`` rule ("reference" or "edge", part of the key);
    ``batch_size`` counts frames per forward pass (clips per batch = batch_size // T, at least 1). Unreadable clips
    are recorded as failures; short clips and list counts above the real frame count are reported in meta.json.
    """
    if data.kind != "video":
        raise InputError(f"{data.name} is a {data.kind} dataset; use extract_images for it")
    data.validate(check_files=False)
    pre = backbone.preprocess(preprocessing)
    key = image_key(backbone.identity(), pre, data, compute_dtype_name(backbone.amp_dtype), sampling, num_segments)
    path, key = _where(store_root, key)
    try:  # planning lists every clip: skip it when the store is already complete
        return FeatureStore.open(path, key)
    except StaleStoreError:
        raise
    except StoreError:
        pass
    items, report = plan_clips(data, num_segments, sampling)
    workers = default_num_workers() if num_workers is None else num_workers
    return run_extraction(
        path, key, items, ClipLoader.from_plan(data.root, items, pre), _ClipEncoder(backbone),
        (num_segments, backbone.embed_dim), batch_size=max(1, batch_size // num_segments), num_workers=workers,
        progress=progress, strict=strict, desc=f"CLIP {data.name} clips", shard=shard,
        pin_memory=backbone.device.type == "cuda", extra_meta={"logit_scale": backbone.logit_scale, "clips": report},
    )


def extract_features(backbone: Any, data: ItemList, store_root: str | Path, preprocessing: str = "reference",
                     sampling: str = "reference", num_segments: int = 16, **kw: Any) -> FeatureStore | None:
    """:func:`extract_images` or :func:`extract_videos`, by the kind of ``data``."""
    if data.kind == "video":
        return extract_videos(backbone, data, store_root, preprocessing, sampling, num_segments, **kw)
    return extract_images(backbone, data, store_root, preprocessing, **kw)


@dataclass(frozen=True)
class _TextLoader:
    texts: tuple[str, ...]

    def __call__(self, i: int) -> str:
        return self.texts[i]


def _prompt_data(unique: list[str]) -> dict:
    return {"name": "prompts", "n": len(unique), "sha256": key_digest({"prompts": unique})[:20]}


def _per_class(feats: torch.Tensor, unique: list[str], prompts: list[list[str]]) -> torch.Tensor | list[torch.Tensor]:
    row = {t: i for i, t in enumerate(unique)}
    per_class = [feats[[row[p] for p in cls]] for cls in prompts]
    return torch.stack(per_class) if len({len(c) for c in prompts}) == 1 else per_class


def prompt_features(backbone: Any, prompts: list[list[str]], store_root: str | Path | None = None,
                    progress: bool = False) -> torch.Tensor | list[torch.Tensor]:
    """Text features of a prompt set: (C,P,D) when every class has P prompts, else a list of (P_c,D).

    Cached in the store (kind "text") when ``store_root`` is given; unique strings are encoded once.
    """
    unique = sorted({p for cls in prompts for p in cls})
    if store_root is None:
        return _per_class(backbone.encode_text(unique), unique, prompts)
    path, key = _where(store_root, base_key("text", backbone.identity(), None, _prompt_data(unique),
                                            dtype=compute_dtype_name(backbone.amp_dtype)))
    store = require_store(run_extraction(
        path, key, [{"path": None, "text": t} for t in unique], _TextLoader(tuple(unique)),
        backbone.encode_text, (backbone.embed_dim,), batch_size=256, progress=progress, desc="prompts",
    ), "prompts")
    if store.failures:  # a prompt's row would be zeros and silently skew its class
        bad = [store.items[f["index"]].get("text") for f in store.failures]
        raise StoreError(f"prompt features failed for {bad[:3]}: {store.failures[0]['reason']} (store {store.path})")
    return _per_class(torch.from_numpy(store.features()[:].copy()), unique, prompts)


def find_prompt_features(store_root: str | Path, backbone: str, prompts: list[list[str]],
                         revision: str | None = None) -> torch.Tensor | list[torch.Tensor] | None:
    """Cached prompt features of ``backbone`` (no model loaded), or None when they were never computed."""
    unique = sorted({p for cls in prompts for p in cls})
    lk = _lookup(backbone, revision)
    key = base_key("text", lk.identity, None, _prompt_data(unique), dtype="float32")
    try:
        store = find_store(store_root, key, lk.free)
    except StoreError:
        return None
    return _per_class(torch.from_numpy(store.features()[:].copy()), unique, prompts)


def require_store(store: FeatureStore | None, what: str) -> FeatureStore:
    if store is None:
        raise StoreError(f"{what}: this process's shard finished but other shards are still running")
    return store
