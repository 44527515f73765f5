"""Batched, chunked, resumable extraction into the feature store (see :mod:`expclip.features.store`).

One generic runner (:func:`run_extraction`) serves image features, teacher targets, video frame features and
prompt features: it takes a picklable ``load(i)`` (runs in DataLoader workers) and an ``encode(batch)`` (runs in
the main process on the device). Items that fail to load, or encode to non-finite values, are recorded and
skipped. Batches never straddle chunks, and a resumed run recomputes exactly the batches an uninterrupted one
would, so the finished store is byte-identical.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.images import ImageDecodeError
from ..errors import ExtractionFailure, InputError
from ..files import FileLock, __version__, atomic_save_npy, atomic_write_json, no_space, sweep_stale_tmp
from ..schema import read_json
from .store import (
    STALE_HOW, STORE_FORMAT, FeatureStore, StaleStoreError, StoreError, canonical, describe_key_difference, key_digest,
    remove_chunks,
)
from .meta import read_meta

log = logging.getLogger(__name__)

# Errors that mean "this item is bad", recorded as a failure; anything else is a bug and propagates.
ITEM_ERRORS: tuple[type[BaseException], ...] = (ImageDecodeError, OSError, ValueError, RuntimeError)


def check_strict(store: FeatureStore) -> FeatureStore:
    """Strict mode's rule for a finished store: refuse it if any item failed (naming the first), else return it."""
    if store.failures:
        f = store.failures[0]
        raise ExtractionFailure(f"{f['path']}: {f['reason']} ({len(store.failures)} of {len(store)} items failed; "
                                f"see {store.path / 'meta.json'}; drop --strict to skip them)")
    return store


class _SafeDataset(Dataset):
    def __init__(self, load: Callable[[int], Any], n: int):
        self.load, self.n = load, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        try:
            return i, self.load(i), None
        except ITEM_ERRORS as e:
            return i, None, str(e) or type(e).__name__


def _collate(batch):
    idx = [b[0] for b in batch]
    ok = [b[1] is not None for b in batch]
    values = [b[1] for b in batch if b[1] is not None]
    errors = [b[2] for b in batch]
    if values and isinstance(values[0], torch.Tensor):
        values = torch.stack(values)
    return idx, ok, values, errors


class _ChunkBatches:
    """Batch sampler: the items of each pending chunk, in order, cut into batches that stay inside the chunk."""

    def __init__(self, chunks: list[range], batch_size: int):
        self.batches = [list(r[i : i + batch_size]) for r in chunks for i in range(0, len(r), batch_size)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def run_extraction(
    store_dir: str | Path,
    key: dict,
    items: Sequence[dict],
    load: Callable[[int], Any],
    encode: Callable[[Any], torch.Tensor],
    feature_shape: tuple[int, ...],
    batch_size: int = 64,
    chunk_size: int | None = None,
    num_workers: int = 0,
    progress: bool = True,
    strict: bool = False,
    desc: str = "extract",
    shard: tuple[int, int] = (0, 1),
    pin_memory: bool = False,
    extra_meta: dict | None = None,
) -> FeatureStore | None:
    """Compute ``encode(load(i))`` for every item into the store at ``store_dir``; resume what is there.

    Args:
        key: identity of the features; a store with another key at ``store_dir`` raises StaleStoreError.
        items: JSON-able dicts (at least "path"), saved in items.json in this order.
        load: picklable; ``load(i)`` returns a tensor (or any object for a custom ``encode``); raising one of
            ITEM_ERRORS marks item i failed.
        encode: batch (stacked tensors, or a list) -> (B, *feature_shape) tensor.
        shard: (rank, world) — this process computes chunks rank, rank+world, ...; rank 0 finalizes when it sees
            all chunks done, the others return None (so that two shards finishing together never both assemble the
            store; :class:`expclip.devices.DistContext` adds the barrier that makes rank 0 wait for the rest).
        extra_meta: informative fields for meta.json that are not part of the key (e.g. the model's κ).

    Returns the completed store (or None for a shard that did not finalize).
    """
    store_dir = Path(store_dir)
    key, items = canonical(key), canonical(list(items))
    n = len(items)
    if n == 0:
        raise InputError(f"nothing to extract for {store_dir.name}: the item list is empty")
    store_dir.mkdir(parents=True, exist_ok=True)
    with _sole_writer(store_dir, shard):
        return _run_locked(store_dir, key, items, load, encode, feature_shape, batch_size, chunk_size, num_workers,
                           progress, strict, desc, shard, pin_memory, extra_meta)


@contextlib.contextmanager
def _sole_writer(store_dir: Path, shard: tuple[int, int]) -> Iterator[None]:
    """Hold the lock that makes this process the only writer of ``store_dir`` (the ranks of one distributed run
    share it, each rank alone); another process asking for it is refused with a one-line StoreError."""
    rank, world = shard
    locks = [FileLock(store_dir / ".lock", shared=world > 1)] + ([FileLock(store_dir / f".lock-rank{rank}")]
                                                                 if world > 1 else [])
    with contextlib.ExitStack() as held:
        for lock in locks:
            if not lock.acquire():
                raise StoreError(f"another process is writing the feature store {store_dir} (it holds {lock.path}): "
                                 "wait for it to finish (rerun then to use its result), or give another --store")
            held.callback(lock.release)
        yield


def _run_locked(store_dir, key, items, load, encode, feature_shape, batch_size, chunk_size, num_workers, progress,
                strict, desc, shard, pin_memory, extra_meta) -> FeatureStore | None:
    n = len(items)
    meta_file = store_dir / "meta.json"
    items_sha = key_digest({"items": list(items)})
    if meta_file.is_file():
        try:
            meta = read_meta(meta_file)
        except StoreError as e:
            raise StoreError(f"{e}; delete {store_dir} and rerun") from None
        if meta.get("key") != key or meta.get("items_sha256") != items_sha:
            diffs = describe_key_difference(key, meta.get("key", {})) or ["the item list differs"]
            raise StaleStoreError(f"{store_dir} holds features under another key: " + "; ".join(diffs[:6])
                                  + f". {STALE_HOW}")
        if meta.get("complete"):
            try:
                store = FeatureStore.open(store_dir, key).check()
            except StoreError as e:  # a damaged features.npy: this run recomputes it instead of trusting it
                log.warning("%s: %s", desc, str(e).split("; delete")[0] + "; recomputing it")
                meta = {k: v for k, v in meta.items() if k not in ("failures", "n_valid")} | {"complete": False}
                atomic_write_json(meta_file, meta)
            else:
                log.info("%s: complete store found at %s, nothing to do", desc, store_dir)
                remove_chunks(store_dir)  # left behind when a run was killed right after completing the store
                sweep_stale_tmp(store_dir)
                return check_strict(store) if strict else store
        if meta.get("batch_size") is None or meta.get("chunk_size") is None:
            raise StoreError(f"{meta_file}: batch_size or chunk_size is missing; delete {store_dir} and rerun")
        if meta.get("batch_size") != batch_size:
            log.info("%s: resuming with the store's batch size %s (asked %s)", desc, meta["batch_size"], batch_size)
        batch_size, chunk_size = int(meta["batch_size"]), int(meta["chunk_size"])
    else:
        chunk_size = chunk_size or batch_size * max(1, 2048 // batch_size)
        if chunk_size % batch_size:
            raise InputError(f"chunk_size {chunk_size} must be a multiple of batch_size {batch_size}")
        atomic_write_json(store_dir / "items.json", list(items))
        meta = {
            "format": STORE_FORMAT, "key": key, "items_sha256": items_sha, "n": n,
            "feature_shape": list(feature_shape), "dtype": "float32", "batch_size": batch_size,
            "chunk_size": chunk_size, "complete": False, "expclip_version": __version__, **(extra_meta or {}),
        }
        atomic_write_json(meta_file, meta)
    chunk_dir = store_dir / "chunks"
    chunk_dir.mkdir(exist_ok=True)
    n_chunks = (n + chunk_size - 1) // chunk_size

    def done(c: int) -> bool:
        return (chunk_dir / f"{c:05d}.npy").is_file() and (chunk_dir / f"{c:05d}.json").is_file()

    rank, world = shard
    pending = [c for c in range(n_chunks) if c % world == rank and not done(c)]
    finished = sum(min(n, (c + 1) * chunk_size) - c * chunk_size for c in range(n_chunks) if done(c))
    if finished and pending:
        log.info("%s: resuming; %d of %d items were done by an earlier run", desc, finished, n)
    if pending:
        try:
            _compute_chunks(
                pending, n, chunk_size, batch_size, chunk_dir, load, encode, feature_shape, num_workers, progress,
                strict, desc, pin_memory,
            )
        except ExtractionFailure as e:  # name the file, not just the index
            i, reason = e.args
            name = items[i].get("path") or f"item {i}"
            raise ExtractionFailure(f"{reason if name in reason else f'{name}: {reason}'} (--strict stops at the "
                                    "first failure; without it the item is skipped and listed)") from None
    if rank != 0 or not all(done(c) for c in range(n_chunks)):
        return None
    return _finalize(store_dir, meta, items, n_chunks, feature_shape, desc)


def _compute_chunks(pending, n, chunk_size, batch_size, chunk_dir, load, encode, feature_shape, num_workers,
                    progress, strict, desc, pin_memory) -> None:
    ranges = [range(c * chunk_size, min(n, (c + 1) * chunk_size)) for c in pending]
    sampler = _ChunkBatches(ranges, batch_size)
    loader = DataLoader(
        _SafeDataset(load, n), batch_sampler=sampler, num_workers=num_workers, collate_fn=_collate,
        pin_memory=pin_memory, persistent_workers=False, prefetch_factor=4 if num_workers else None,
    )
    total = sum(len(r) for r in ranges)
    batches = _start_workers(loader)
    bar = tqdm(total=total, desc=desc, unit="item", disable=not progress, dynamic_ncols=True)
    current: int | None = None
    buf: np.ndarray | None = None
    fails: dict[int, str] = {}
    filled = 0
    try:
        for idx, ok, values, errors in batches:
            c = idx[0] // chunk_size
            if c != current:
                start = c * chunk_size
                current, filled, fails = c, 0, {}
                buf = np.zeros((min(n, start + chunk_size) - start, *feature_shape), dtype=np.float32)
            start = c * chunk_size
            for i, good, err in zip(idx, ok, errors):
                if not good:
                    fails[i] = err
                    if strict:
                        raise ExtractionFailure(i, err)
            if isinstance(values, torch.Tensor) or values:
                out = encode(values).detach().float().cpu()
                good_idx = [i for i, g in zip(idx, ok) if g]
                if out.shape[1:] != tuple(feature_shape):
                    raise RuntimeError(f"encoder returned shape {tuple(out.shape[1:])}, expected {tuple(feature_shape)}")
                finite = torch.isfinite(out.reshape(len(out), -1)).all(dim=1).numpy()
                rows = np.asarray(good_idx, dtype=np.int64) - start
                buf[rows[finite]] = out.numpy()[finite]  # one copy per batch, no per-item Python
                for i in rows[~finite] + start:
                    fails[int(i)] = "non-finite (NaN/Inf) feature from the encoder"
                    if strict:
                        raise ExtractionFailure(int(i), fails[int(i)])
            filled += len(idx)
            bar.update(len(idx))
            if filled == len(buf):
                # The .json goes first: a chunk counts as done only when its .npy exists too.
                atomic_write_json(chunk_dir / f"{c:05d}.json", {str(k): v for k, v in sorted(fails.items())})
                atomic_save_npy(chunk_dir / f"{c:05d}.npy", buf)
    finally:
        bar.close()


def _start_workers(loader: DataLoader):
    """``iter(loader)`` with Ctrl-C (SIGINT) and SIGTERM held until its worker processes are all started, then
    delivered: an interrupt that lands while the workers are being forked would otherwise hit the half-built
    iterator (an ``AttributeError`` traceback from its cleanup, or an interrupt lost in it) instead of stopping the
    command cleanly. In the main thread only (signals are delivered there)."""
    import signal
    import threading

    if not loader.num_workers or threading.current_thread() is not threading.main_thread():
        return iter(loader)
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT,
                                                                                        signal.SIGTERM)}
    try:
        batches = iter(loader)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if held:
        del batches  # its workers are shut down before the interrupt goes on
        handler = previous[held[0]]
        if callable(handler):
            handler(held[0], None)  # the CLI's: KeyboardInterrupt (Ctrl-C) or its SIGTERM flavour
        raise KeyboardInterrupt
    return batches


def _finalize(store_dir: Path, meta: dict, items: Sequence[dict], n_chunks: int, feature_shape, desc: str) -> FeatureStore:
    chunk_dir = store_dir / "chunks"
    n = len(items)
    valid = np.ones(n, dtype=bool)
    failures = []
    chunk_size = meta["chunk_size"]
    # Plain writes, not a memmap: a full disk then raises ENOSPC instead of killing the process with SIGBUS. The
    # temporary file lives in chunks/, so one left by a killed run goes when the store completes.
    tmp = chunk_dir / f".features.npy.tmp-{os.getpid()}"
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (n, *feature_shape)}
    try:
        with open(tmp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            for c in range(n_chunks):
                arr = np.load(chunk_dir / f"{c:05d}.npy", allow_pickle=False)
                rows = min(n, (c + 1) * chunk_size) - c * chunk_size
                if arr.dtype != np.float32 or arr.shape != (rows, *feature_shape):
                    raise StoreError(f"{chunk_dir / f'{c:05d}.npy'}: unexpected {arr.dtype} {arr.shape}; delete it to "
                                     "recompute that chunk")
                f.write(np.ascontiguousarray(arr).tobytes())
                for k, v in _chunk_failures(chunk_dir / f"{c:05d}.json", range(c * chunk_size, c * chunk_size + rows)):
                    valid[k] = False
                    failures.append({"index": k, "path": items[k].get("path"), "reason": v})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, store_dir / "features.npy")
    except OSError as e:
        full = no_space(e, store_dir / "features.npy")
        if full is None:
            raise
        raise full from e
    finally:
        tmp.unlink(missing_ok=True)
    atomic_save_npy(store_dir / "valid.npy", valid)
    meta = dict(meta, complete=True, failures=failures, n_valid=int(valid.sum()))
    atomic_write_json(store_dir / "meta.json", meta)
    remove_chunks(store_dir)
    sweep_stale_tmp(store_dir)
    log.info("%s: %d items, %d failed -> %s", desc, n, len(failures), store_dir)
    for f in failures[:10]:
        log.warning("  skipped %s: %s", f["path"], f["reason"])
    if len(failures) > 10:
        log.warning("  ... and %d more (see %s/meta.json)", len(failures) - 10, store_dir)
    return FeatureStore.open(store_dir, meta["key"])


def _chunk_failures(path: Path, rows: range) -> list[tuple[int, str]]:
    """The failed items a chunk's .json lists: {item index: reason} for indices of its ``rows``."""
    obj = read_json(path, StoreError, "chunk failure list")
    bad = StoreError(f"{path}: expected {{item index: reason}} for items {rows.start}..{rows.stop - 1}; delete it "
                     "and its .npy to recompute that chunk")
    if not isinstance(obj, dict):
        raise bad
    out = []
    for k, v in obj.items():
        if not (k.isascii() and k.isdigit() and int(k) in rows and isinstance(v, str)):
            raise bad
        out.append((int(k), v))
    return out


def require_store(store: FeatureStore | None, what: str) -> FeatureStore:
    if store is None:
        raise StoreError(f"{what}: this process's shard finished but other shards are still running")
    return store
