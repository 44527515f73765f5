"""Files: atomic writes, writable-output checks, folder-safe names, and the package and library versions.

A leaf module: it imports nothing of expclip (and numpy, torch, transformers only inside the functions that need
them), so that every layer — the store, checkpoints, runs, reports — writes files the same way.
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .errors import InputError

__version__ = "0.1.0"


def slug(text: str, n: int | None = None) -> str:
    """A folder-safe name: runs of other characters become "-"; ``n``: keep at most the last ``n`` characters."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")
    return (s[-n:] if n else s) or "x"


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through ``write(file)`` to a temporary file, fsync, then rename onto ``path`` (all or nothing)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file + fsync + rename (all or nothing)."""
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def atomic_save_npy(path: Path, array: Any) -> None:
    import numpy as np

    _atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


def writable_dir(path: str | Path, option: str = "--out") -> Path:
    """Check, before hours of work that would end in writing there, that ``path`` is (or can be created as) a
    writable folder; nothing is created. Raises ValueError naming ``option``."""
    path = Path(path)
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{option} {path}: cannot write there ({probe} is a file, not a folder)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: cannot write there ({probe} is not writable)")
    return path


_TMP_NAME = re.compile(r"^\..+\.tmp-(\d+)$")


def sweep_stale_tmp(folder: Path) -> list[Path]:
    """Delete the temporary files (``.<name>.tmp-<pid>``) that killed processes left in ``folder``.

    Only files of processes that no longer exist on this machine are removed (a live writer keeps its file).
    Such files are never read: this only gives their disk space back. Returns what was removed.
    """
    removed = []
    for p in folder.glob(".*.tmp-*"):
        m = _TMP_NAME.match(p.name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # that process is alive
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def versions() -> dict[str, str]:
    import numpy
    import torch
    import transformers

    return {"expclip": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}
