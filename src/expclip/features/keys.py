"""What is extracted under which key: the identity of every store (model + revision, preprocessing, data
fingerprint, instruction, dtype, frame sampling, code version), and how a model named on the command line is
matched to stores without loading it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.datasets import ItemList
from ..data.images import Preprocess
from ..data.video import SAMPLING_RULES
from ..errors import InputError, ModelNotAvailableError, StoreError
from ..models import families
from ..models.hub import ResolvedModel, resolve_model
from ..models.names import resolve_instruction
from ..models.presets import resolve_preset
from .store import FEATURE_CODE_VERSION, FeatureStore, find_store, key_digest, store_path

log = logging.getLogger(__name__)


def base_key(kind: str, model: dict, preprocess: Preprocess | None, data: ItemList | dict, **extra: Any) -> dict:
    """The identity of a store: kind, model id+revision, preprocessing, data fingerprint, code version, extras."""
    return {
        "kind": kind,
        "model": model,
        "preprocessing": preprocess.describe() if preprocess is not None else None,
        "data": data.fingerprint() if isinstance(data, ItemList) else data,
        "code_version": FEATURE_CODE_VERSION,
        **extra,
    }


def model_preprocess(resolved: ResolvedModel, mode: str) -> Preprocess:
    """The preprocessing of ``mode`` for a model directory, from its config files alone (no weights loaded)."""
    return families.model_preprocess(resolved.path, mode, name=resolved.name)


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


def lookup_model(name: str, revision: str | None) -> _Lookup:
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
        return _Lookup({"id": resolve_preset(name), "revision": revision}, None, free)


def find_keyed(store_root: Path, key: dict, free: tuple[str, ...], resolved: ResolvedModel | None, mode: str,
          how: str) -> FeatureStore:
    if resolved is None:
        free = free + ("preprocessing",)  # without the model's config files only the mode can be checked
    try:
        store = find_store(store_root, key, free)
    except StoreError as e:
        raise StoreError(f"{e}. {how}") from e
    have = (store.key.get("preprocessing") or {}).get("mode")
    if have != mode:
        raise StoreError(f"store {store.path} has preprocessing {have!r}, not {mode!r}")
    return store


def store_location(store_root: str | Path, key: dict) -> tuple[Path, dict]:
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


def data_args(data: ItemList) -> str:
    """The CLI arguments that name ``data`` (for "extract it first" messages: they must run as printed)."""
    import shlex

    outside = " --allow-outside-root" if data.info.get("allow_outside") else ""
    name = data.info.get("dataset")
    if name:
        fold = f" --fold {data.info['fold']}" if data.info.get("fold") else ""
        return f"--dataset {name} --root {shlex.quote(str(data.info.get('root', data.root)))}{fold}{outside}"
    labelled = " --labelled" if any(it.get("label") is not None for it in data.items) else ""
    return f"--data {shlex.quote(str(data.root))}{labelled}{outside}"


def _prompt_data(unique: list[str]) -> dict:
    return {"name": "prompts", "n": len(unique), "sha256": key_digest({"prompts": unique})[:20]}


def prompt_key(model: dict, unique: list[str], dtype: str, text: dict | None = None) -> dict:
    """Key of the text features of a set of unique prompt strings; ``text``: how the model's family reads text
    (padding, length, case) where it is not CLIP's rule (:func:`expclip.models.families.text_rule`)."""
    return base_key("text", model, None, _prompt_data(unique), dtype=dtype, **({"text": text} if text else {}))
