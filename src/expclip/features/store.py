"""The on-disk feature store: one directory per key, chunked while written, one memory-mappable array when done.

Layout of a store directory::

    meta.json          key (model+revision, preprocessing, data, instruction, dtype, code version), state, failures
    items.json         the items in store order (relative paths, labels)
    chunks/NNNNN.npy   features of items [N*chunk_size, (N+1)*chunk_size) — present only while incomplete
    chunks/NNNNN.json  which of those items failed, and why
    features.npy       (N, *shape) float32, written when every chunk is done; rows of failed items are zero
    valid.npy          (N,) bool
    .lock              held (flock) by the one process writing the store, removed when it is done

Every file is written under a temporary name and renamed into place, so a crash never leaves a file that a later
run would trust. Readers check the key and refuse a store computed under another one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import StaleStoreError, StoreError
from ..files import slug
from ..schema import read_json
from .meta import check_items, read_meta

log = logging.getLogger(__name__)

STORE_FORMAT = 1
# Bump when a change of extraction code changes what is computed: old stores then stop matching.
FEATURE_CODE_VERSION = 1


STALE_HOW = "Use another --store directory, or delete that store directory to recompute it"


def canonical(obj: Any) -> Any:
    """The JSON form of a key (tuples become lists), so that keys compare equal to what was read back."""
    return json.loads(json.dumps(obj, sort_keys=True))


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def store_path(root: str | Path, key: dict) -> Path:
    """The directory of the store for ``key`` under ``root``: readable prefix + key digest."""
    model = key.get("model", {}).get("id", "model")
    data = key.get("data", {}).get("name", "data")
    return Path(root) / f"{key['kind']}-{slug(Path(str(model)).name, 30)}-{slug(str(data), 30)}-{key_digest(key)[:12]}"


def describe_key_difference(want: dict, have: dict, prefix: str = "") -> list[str]:
    """Human-readable list of the fields in which two keys differ."""
    diffs = []
    for k in sorted(set(want) | set(have)):
        a, b = want.get(k), have.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += describe_key_difference(a, b, f"{prefix}{k}.")
        elif a != b:
            diffs.append(f"{prefix}{k}: wanted {a!r}, store has {b!r}")
    return diffs


@dataclass
class FeatureStore:
    """A completed store, opened read-only; features are memory-mapped."""

    path: Path
    meta: dict
    _items: list[dict] | None = None

    @classmethod
    def open(cls, path: str | Path, expect_key: dict | None = None) -> "FeatureStore":
        """Open a complete store; ``expect_key`` (if given) must equal the stored key exactly.

        Raises:
            StoreError: no store there, or it is incomplete (rerun the extraction to finish it).
            StaleStoreError: it was computed under another key; the message lists the differences.
        """
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.is_file():
            raise StoreError(f"no feature store at {path} (missing meta.json)")
        meta = read_meta(meta_file)
        if expect_key is not None and meta.get("key") != canonical(expect_key):
            diffs = describe_key_difference(expect_key, meta.get("key", {}))
            raise StaleStoreError(
                f"feature store {path} was computed under another key and cannot be reused: " + "; ".join(diffs[:6])
                + f". {STALE_HOW}"
            )
        if not meta.get("complete") or not (path / "features.npy").is_file():
            raise StoreError(f"feature store {path} is incomplete: rerun the same extraction to resume it")
        return cls(path, meta)

    @property
    def key(self) -> dict:
        return self.meta["key"]

    @property
    def items(self) -> list[dict]:
        if self._items is None:
            f = self.path / "items.json"
            self._items = check_items(read_json(f, StoreError, "store items.json"), len(self), f)
        return self._items

    def __len__(self) -> int:
        return int(self.meta["n"])

    @property
    def failures(self) -> list[dict]:
        return self.meta.get("failures", [])

    def features(self) -> np.ndarray:
        """(N, *shape) float32, memory-mapped; rows of failed items are zero."""
        shape = (len(self), *self.meta["feature_shape"]) if "feature_shape" in self.meta else None
        return self._array("features.npy", np.float32, shape, "r")

    def valid(self) -> np.ndarray:
        """(N,) bool: False for items that failed."""
        return self._array("valid.npy", np.bool_, (len(self),))

    def check(self) -> "FeatureStore":
        """Raise StoreError when features.npy or valid.npy is damaged (cut short, another shape); only headers are
        read."""
        self.features()
        self._array("valid.npy", np.bool_, (len(self),), "r")
        return self

    def _array(self, name: str, dtype: type, shape: tuple | None, mmap_mode: str | None = None) -> np.ndarray:
        # A file cut short by a full disk or a bad copy, or replaced by hand, must not end in a numpy traceback
        # deep inside scoring: the message names the file and the way out.
        f = self.path / name
        how = f"delete {self.path} and rerun: the features are then recomputed"
        try:
            arr = np.load(f, mmap_mode=mmap_mode, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise StoreError(f"{f} is damaged or unreadable ({e}); {how}") from None
        want = tuple(shape) if shape is not None else (len(self), *arr.shape[1:])
        if arr.dtype != dtype or arr.shape != want:
            raise StoreError(f"{f} is damaged: it holds {arr.dtype} {arr.shape}, meta.json says "
                             f"{np.dtype(dtype)} {want}; {how}")
        return arr

    def labels(self) -> np.ndarray:
        """(N,) int64 labels; -1 where an item has none."""
        return np.array([-1 if it.get("label") is None else int(it["label"]) for it in self.items], dtype=np.int64)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
        """(valid features (M,*shape), their labels (M,), their items)."""
        valid = self.valid()
        idx = np.flatnonzero(valid)
        feats = torch.from_numpy(np.asarray(self.features()[idx], dtype=np.float32))
        return feats, torch.from_numpy(self.labels()[idx]), [self.items[i] for i in idx]


def _without(key: dict, free: tuple[str, ...]) -> dict:
    out = canonical(key)
    for dotted in free:
        d = out
        *parents, last = dotted.split(".")
        for p in parents:
            d = d.get(p, {}) if isinstance(d, dict) else {}
        if isinstance(d, dict):
            d.pop(last, None)
    return out


def find_store(root: str | Path, key: dict, free: tuple[str, ...] = ()) -> FeatureStore:
    """Find the complete store for ``key`` under ``root``; fields named in ``free`` (dotted) may differ.

    The exact key's directory is tried first. ``free`` lets readers that run no encoder (train, eval) accept the
    one store that matches on everything else (e.g. a GPU's bfloat16 extraction when asking from a CPU), and
    refuse with a list of candidates when several match.

    Raises:
        StoreError: none matches, or several do.
    """
    exact = store_path(root, key)
    if (exact / "meta.json").is_file():
        return FeatureStore.open(exact, key)
    if not free:
        raise StoreError(f"no complete {key['kind']} store for this key under {root}")
    want = _without(canonical(key), free)
    found = []
    for meta_file in sorted(Path(root).glob(f"{key['kind']}-*/meta.json")):
        try:
            meta = read_meta(meta_file)
        except StoreError as e:  # one damaged store must not hide the others
            log.warning("skipping a damaged store: %s", e)
            continue
        if meta.get("complete") and _without(meta.get("key", {}), free) == want:
            found.append(FeatureStore(meta_file.parent, meta))
    if len({json.dumps(_without(f.key, ("model.id",)), sort_keys=True) for f in found}) == 1:
        found = found[:1]  # one local model's features under two spellings of its path: the same features
    if len(found) == 1:
        log.info("using the stored features in %s: %s", found[0].path, _why_it_matches(canonical(key), found[0].key))
        return found[0]
    if not found:
        raise StoreError(f"no complete {key['kind']} store for this model/data/preprocessing under {root}")
    opts = "; ".join(f"{f.path.name}: " + ", ".join(describe_key_difference(key, f.key)) for f in found)
    raise StoreError(f"several {key['kind']} stores match under {root}, differing in {free}: {opts}")


def _field(key: dict, dotted: str):
    for part in dotted.split("."):
        key = key.get(part) if isinstance(key, dict) else None
    return key


def _why_it_matches(want: dict, have: dict) -> str:
    """In words, why a store under a slightly different key holds the features asked for."""
    notes = []
    if _field(want, "model.id") != _field(have, "model.id"):
        notes.append(f"the same model, named {_field(have, 'model.id')} there")
    if _field(want, "model.revision") != _field(have, "model.revision"):
        notes.append(f"revision {_field(have, 'model.revision')} (this run could not check the model's)")
    if _field(want, "dtype") != _field(have, "dtype"):
        notes.append(f"computed in {_field(have, 'dtype')} (this machine would compute {_field(want, 'dtype')})")
    if _field(want, "preprocessing") != _field(have, "preprocessing"):
        notes.append(f"preprocessing {(_field(have, 'preprocessing') or {}).get('mode')} with the model's own "
                     "settings (its config files are not here to compare)")
    return "; ".join(notes) or "the same key"


def remove_chunks(path: Path) -> None:
    shutil.rmtree(path / "chunks", ignore_errors=True)
