"""Content fingerprints: the sha256 of what files hold, cached on disk by (path, size, times, inode), so that data
and model fingerprints follow content (an image replaced by another of the same size, a tensor changed in the
middle of a shard) and a rerun reads only the files that changed.

A leaf module: it imports nothing of expclip.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import stat
import time
from pathlib import Path

log = logging.getLogger(__name__)

# A file changed this recently may change again within the same tick of the file system's clock without its times
# moving, so its hash is not cached (git's "racily clean" rule).
RECENT_NS = 2_000_000_000


def cache_dir() -> Path:
    """Where expclip caches what it can recompute: $EXPCLIP_CACHE_DIR, else $XDG_CACHE_HOME/expclip or
    ~/.cache/expclip."""
    env = os.environ.get("EXPCLIP_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "expclip"


def file_sha256(path: str | Path) -> str:
    """The sha256 (hex) of a file's bytes, read in blocks (not cached: :class:`ContentHashes` caches)."""
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):
            return hashlib.file_digest(f, "sha256").hexdigest()
        h = hashlib.sha256()
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
        return h.hexdigest()


class ContentHashes:
    """sha256 of file contents, cached on disk (``cache_dir()/content-hashes.sqlite``) by absolute path, size,
    modification and change times (ns) and inode, so that a rerun reads no file that did not change.

    Use as a context manager (one cache connection for many files). A cache that cannot be opened or written
    (read-only home, a locked database) only costs time: every file is then read.
    """

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._new: list[tuple] = []
        self._known: dict[str, tuple] = {}

    def __enter__(self) -> "ContentHashes":
        try:
            cache_dir().mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(cache_dir() / "content-hashes.sqlite", timeout=10)
            self._db.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER, "
                             "ctime INTEGER, inode INTEGER, sha256 TEXT)")
        except (sqlite3.Error, OSError) as e:
            log.debug("content hash cache unavailable (%s): hashing every file", e)
            self._db = None
        return self

    def __exit__(self, *exc) -> None:
        if self._db is None:
            return
        try:
            if self._new:
                with self._db:
                    self._db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)", self._new)
        except sqlite3.Error as e:
            log.debug("content hash cache not written (%s)", e)
        finally:
            self._db.close()
            self._db, self._new = None, []

    def preload(self, folder: str | Path) -> "ContentHashes":
        """Read the cache entries of every file under ``folder`` in one query (many small files: one lookup)."""
        if self._db is not None:
            prefix = os.path.join(os.path.abspath(folder), "")
            try:
                rows = self._db.execute("SELECT path, size, mtime, ctime, inode, sha256 FROM hashes WHERE path >= ? "
                                        "AND path < ?", (prefix, prefix[:-1] + chr(ord(os.sep) + 1))).fetchall()
            except sqlite3.Error:
                rows = []
            self._known.update((r[0], tuple(r[1:])) for r in rows)
        return self

    def file(self, path: str | Path, st: os.stat_result | None = None) -> str:
        """The sha256 of a regular file's bytes (read only when the cache has no entry for its current state).

        Entries are keyed by the absolute path and checked against the state of what it names (links followed:
        a link pointed elsewhere has another inode)."""
        key = os.path.abspath(path)
        st = st or os.stat(key)
        state = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        row = self._known.get(key)
        if row is None and self._db is not None:
            try:
                found = self._db.execute("SELECT size, mtime, ctime, inode, sha256 FROM hashes WHERE path = ?",
                                         (key,)).fetchone()
            except sqlite3.Error:
                found = None
            row = tuple(found) if found else None
        if row is not None and row[:4] == state:
            return row[4]
        digest = file_sha256(key)
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > RECENT_NS:
            self._new.append((key, *state, digest))
        return digest

    def content(self, path: str | Path) -> str:
        """What ``path`` holds, for fingerprints: a file's sha256; a folder's names with their contents (one level:
        a frame folder); or "missing", or the kind of a special file (a FIFO is never opened)."""
        try:
            st = os.stat(path)
        except OSError:
            return "missing"
        if stat.S_ISREG(st.st_mode):
            return self.file(path, st)
        if not stat.S_ISDIR(st.st_mode):
            return f"special:{stat.S_IFMT(st.st_mode):o}"
        h = hashlib.sha256()
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            return f"unreadable:{e.errno}"
        for name in names:
            sub = os.path.join(path, name)
            kind = "dir" if os.path.isdir(sub) else self.content(sub)
            h.update(f"{name}\0{kind}\0".encode("utf-8", "surrogateescape"))
        return h.hexdigest()
