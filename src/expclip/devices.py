"""Devices: which device a name means, whether that GPU is there, CPU workers, and the ``torchrun`` context.

A leaf module (torch only, nothing of expclip): models, extraction and the CLI all resolve devices here.

Multi-process extraction under ``torchrun``: which process does what, and the barrier around finalizing.

``torchrun --nproc-per-node N -m expclip extract ...`` starts N processes with RANK / WORLD_SIZE / LOCAL_RANK set.
Each process takes the chunks ``c % WORLD_SIZE == RANK`` of every store (the ``shard`` of
:func:`expclip.features.extraction.run_extraction`) and writes them itself; after a barrier rank 0 assembles the
store, and after a second barrier every process opens the finished store. The result is the store a single process writes:
the chunks are the same batches of the same items (byte-identical given the same kernels and thread count).

Backend: gloo on CPU, NCCL on GPU (``EXPCLIP_DIST_BACKEND`` overrides). Each process uses ``cuda:LOCAL_RANK``; a
teacher split over several GPUs (``device_map``) gets its process's share of the visible GPUs instead.
Without torchrun (WORLD_SIZE unset or 1) everything here is a no-op.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

import torch
import torch.distributed as dist

from .errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """"auto"/None -> cuda when available else cpu; anything else as given."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


COMPUTE_DEVICES = ("cpu", "cuda", "mps", "xpu")


def check_visible(dev: torch.device, name: str = "device", fix: str = "device='cpu'") -> torch.device:
    """``dev`` itself, or a ValueError naming it when it is a CUDA GPU that is not there, a device type this torch
    build or machine does not have (mps, xpu), or no device to compute on (meta) — before any model moves."""
    if dev.type not in COMPUTE_DEVICES:
        raise InputError(f"{name} {dev}: not a device expclip computes on; use cpu, cuda or cuda:N")
    if dev.type in ("mps", "xpu"):
        backend = getattr(torch.backends, "mps", None) if dev.type == "mps" else getattr(torch, "xpu", None)
        if backend is None or not backend.is_available():
            raise InputError(f"{name} {dev}: not available in this torch build or on this machine; use {fix}")
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise InputError(f"{name} {dev}: no such CUDA GPU is visible ({torch.cuda.device_count()} found); "
                         f"use {fix}")
    return dev


def default_num_workers() -> int:
    """DataLoader workers by default: one per core but the main process's, at most 8."""
    return min(8, max(0, (os.cpu_count() or 1) - 1))


# Ranks wait at the barrier for the slowest one (a resumed run may leave one rank most of the work): be patient.
DEFAULT_TIMEOUT_S = 24 * 3600


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        """(rank, world): the chunks this process computes (see ``run_extraction``)."""
        return self.rank, self.world_size

    def barrier(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.barrier()

    def run(self, extract: Callable[[tuple[int, int]], T]) -> T:
        """``extract(shard)`` on every process, then rank 0 finalizes; every process returns the finished store.

        ``extract`` must be an extraction that resumes (e.g. ``lambda shard: extract_images(..., shard=shard)``):
        called again once all chunks are on disk it only assembles (rank 0) or opens (the others) the store.
        """
        if not self.enabled:
            return extract(self.shard)
        out = extract(self.shard)
        self.barrier()  # every chunk is on disk
        if self.is_main:
            out = extract(self.shard)  # all chunks done: assembles the store
        self.barrier()  # the store is complete
        if not self.is_main:
            out = extract(self.shard)  # finds the complete store
        return out

    def num_workers(self, requested: int | None) -> int:
        """DataLoader workers per process: as asked, else the machine's default shared among local processes."""
        from .devices import default_num_workers

        if requested is not None:
            return requested
        return default_num_workers() // self.local_world_size


def env_context(device: str | torch.device | None = "auto") -> DistContext:
    """Read RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE (as torchrun sets them) and pick this rank's device."""
    from .devices import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if not 0 <= rank < world:
        raise InputError(f"RANK={rank} is outside WORLD_SIZE={world}")
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and world > 1:
        dev = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    return DistContext(rank, world, local_rank, local_world, dev)


@contextlib.contextmanager
def distributed_session(device: str | torch.device | None = "auto") -> Iterator[DistContext]:
    """Join the torchrun job (if any) for the duration of the block; yields this process's :class:`DistContext`."""
    ctx = env_context(device)
    started = False
    if ctx.enabled and not dist.is_initialized():
        backend = os.environ.get("EXPCLIP_DIST_BACKEND") or ("nccl" if ctx.device.type == "cuda" else "gloo")
        timeout = datetime.timedelta(seconds=int(os.environ.get("EXPCLIP_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S)))
        if ctx.device.type == "cuda":
            torch.cuda.set_device(ctx.device)
        kwargs = {"device_id": ctx.device} if backend == "nccl" else {}
        dist.init_process_group(backend, timeout=timeout, **kwargs)
        started = True
        log.info("rank %d/%d (local %d) on %s, backend %s", ctx.rank, ctx.world_size, ctx.local_rank, ctx.device,
                 backend)
    try:
        yield ctx
    finally:
        if started:
            dist.destroy_process_group()


def local_devices(ctx: DistContext | None = None) -> list[torch.device]:
    """The GPUs this process may use: all visible ones, or its contiguous share when several local processes run.

    With 8 GPUs and ``torchrun --nproc-per-node 2``, local rank 0 gets cuda:0-3 and local rank 1 cuda:4-7.
    Without GPUs: [cpu].
    """
    ctx = ctx or env_context("cpu")
    n = torch.cuda.device_count()
    if n == 0:
        return [torch.device("cpu")]
    per = max(1, n // ctx.local_world_size)
    first = (ctx.local_rank * per) % n
    return [torch.device("cuda", i) for i in range(first, min(n, first + per))]
