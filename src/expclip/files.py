"""Files: atomic writes (a full disk named), one writer at a time (locks), writable-output checks, folder-safe
names, and the package and library versions.

A leaf module: it imports nothing of expclip (and numpy, torch, transformers only inside the functions that need
them), so that every layer — the store, checkpoints, runs, reports — writes files the same way.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import platform
import re
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .errors import InputError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (see FileLock)
    fcntl = None  # type: ignore[assignment]

__version__ = "0.1.0"
log = logging.getLogger(__name__)


def slug(text: str, n: int | None = None) -> str:
    """A folder-safe name: runs of other characters become "-"; ``n``: keep at most the last ``n`` characters."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")
    return (s[-n:] if n else s) or "x"


# ------------------------------------------------------------------------------------------------ full disks
DISK_FULL_ADVICE = ("nothing half-written is kept and finished work (store chunks, trained seeds) is: free space and "
                    "rerun the same command")
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # full disk, quota, file-size limit


class DiskFull(OSError):
    """No room to finish writing ``filename`` (a full disk, a quota, a file-size limit, or a short write);
    ``advice`` says what was kept and how to go on. The CLI prints both in one line."""

    def __init__(self, code: int, path: str | Path, advice: str = DISK_FULL_ADVICE):
        super().__init__(code, os.strerror(code), str(path))
        self.advice = advice

    def __reduce__(self):  # OSError pickles its (errno, strerror, filename) args, not ours
        return type(self), (self.errno, self.filename, self.advice)


def no_space(e: OSError, path: str | Path, advice: str = DISK_FULL_ADVICE) -> DiskFull | None:
    """``e`` as a :class:`DiskFull` naming ``path`` when it means there was no room, else None.

    numpy reports a short ``fwrite`` as ``OSError("32768 requested and 3040 written")`` with no errno and no file
    name: a short write is a full disk too (the kernel writes what fits, then fails).
    """
    if isinstance(e, DiskFull):
        return e
    short = e.errno is None and re.search(r"\d+ requested and \d+ written", str(e)) is not None
    if short or e.errno in NO_SPACE_ERRNOS:
        return DiskFull(errno.ENOSPC if short else e.errno, path, advice)
    return None


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through ``write(file)`` to a temporary file, fsync, then rename onto ``path`` (all or nothing); no room
    for it is a :class:`DiskFull` naming ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        full = no_space(e, path)
        if full is None:
            raise
        raise full from e
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


def writable_dir(path: str | Path, option: str = "--out", shown: str | Path | None = None) -> Path:
    """Check, before hours of work that would end in writing there, that ``path`` is (or can be created as) a
    writable folder: a folder is made and removed in its nearest existing parent (permissions alone do not tell:
    root may write anywhere but in /proc). Nothing is left behind. Raises InputError naming ``option`` (and
    ``shown``, the path the user gave, when it is not ``path``)."""
    import tempfile

    path = Path(path)
    if not str(path).strip():
        raise InputError(f"{option}: an empty path")
    shown = path if shown is None else shown
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{option} {shown}: cannot write there ({probe} is a file, not a folder)")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".expclip-probe-", dir=probe))
    except OSError as e:
        raise InputError(f"{option} {shown}: cannot write there ({probe}: {e.strerror or e})") from None
    return path


def writable_file(path: str | Path, option: str = "--out") -> Path:
    """:func:`writable_dir` for the folder of a file to write, and ``path`` itself not a folder."""
    path = Path(path)
    if not str(path).strip():
        raise InputError(f"{option}: an empty path")
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder; give a file name")
    writable_dir(path.parent, option, path)
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


# ------------------------------------------------------------------------------------------------ one writer
class FileLock:
    """An advisory lock on ``path`` (a lock file, created on demand and removed by its last holder) that another
    process asking for it is refused, not made to wait: ``acquire()`` returns False then.

    ``shared``: several holders at once (the ranks of one distributed run), none beside an exclusive one. Uses
    ``flock`` (Linux, macOS; on NFS Linux maps it to byte-range locks). Where there is none (Windows) or the file
    system refuses it, nothing is locked and a warning says so.
    """

    def __init__(self, path: str | Path, shared: bool = False):
        self.path, self.shared, self._fd = Path(path), shared, None

    def acquire(self) -> bool:
        if fcntl is None:
            log.warning("no file locks on this platform: nothing stops another process writing %s", self.path.parent)
            return True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except OSError as e:  # ENOLCK, EOPNOTSUPP: a file system without locks
                os.close(fd)
                log.warning("cannot lock %s (%s): nothing stops another process writing there", self.path, e.strerror)
                return True
            try:  # the last holder may have removed the file after we opened it: then lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self.shared:  # only a holder left alone may remove the file
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(self.path)  # while holding it exclusively: whoever opens the name next makes a new file
        except OSError:
            pass
        finally:
            os.close(fd)

    def __enter__(self) -> "FileLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def versions() -> dict[str, str]:
    import numpy
    import torch
    import transformers

    return {"expclip": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}
