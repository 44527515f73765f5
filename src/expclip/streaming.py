"""Output files written row by row (``predict --out results.jsonl``) that survive being killed and resume.

A row is one line. Each is handed to the OS as soon as it is written, so a killed run keeps every finished row;
the only damage a kill (or a full disk) can do is a torn last line, which is cut off when the file is opened
again with ``resume=True``. Nothing before it is rewritten.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class ResumableLines:
    """An append-only file of one record per line, with an optional header line (CSV) checked on resume.

    Args:
        path: the output file.
        header: first line of a new file; an existing file must start with it.
        resume: continue an existing file (its complete lines are in :attr:`done`); without it an existing file
            is an error, never overwritten.
        fsync_every: force rows to disk every this many rows (0: only on close); a kill loses nothing either
            way, this bounds what a power cut can lose.
    """

    def __init__(self, path: str | Path, header: str | None = None, resume: bool = False, fsync_every: int = 256):
        self.path, self.header, self.fsync_every = Path(path), header, fsync_every
        self.done: list[str] = []
        if header is not None:
            _check_line(header)
        if self.path.exists() and not resume:
            raise FileExistsError(f"{self.path} exists; resume it (--resume) or choose another output file")
        good = self._recover() if self.path.exists() else 0
        self._file = open(self.path, "r+b" if self.path.exists() else "wb")
        self._file.truncate(good)
        self._file.seek(good)
        self._good, self._since_sync = good, 0
        if good == 0 and header is not None:
            self._append(header)

    def _recover(self) -> int:
        """Read the complete lines of the existing file; returns the byte length they span."""
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            log.warning("%s: dropping a torn last line of %d bytes (the previous run was cut off)", self.path,
                        len(data) - end)
        try:
            lines = data[:end].decode("utf-8").split("\n")[:-1]
        except UnicodeDecodeError as e:
            raise ValueError(f"{self.path} is not a UTF-8 text file ({e.reason}); choose another output file") from None
        if self.header is not None and lines:
            if lines[0] != self.header:
                raise ValueError(f"{self.path} starts with {lines[0][:80]!r}, not the header {self.header[:80]!r}: "
                                 "it was written by another command; choose another output file")
            lines = lines[1:]
        self.done = lines
        return end

    def _append(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        try:
            self._file.write(data)
            self._file.flush()
        except OSError:
            # A partial write (ENOSPC...) must not stay in front of later rows: cut back to the last full row.
            try:
                self._file.truncate(self._good)
                self._file.seek(self._good)
            except OSError:
                pass  # the next resume drops the torn line anyway
            raise
        self._good += len(data)
        self._since_sync += 1
        if self.fsync_every and self._since_sync >= self.fsync_every:
            os.fsync(self._file.fileno())
            self._since_sync = 0

    def write(self, line: str) -> None:
        """Append one record (a line without line breaks, e.g. ``json.dumps(row)``)."""
        _check_line(line)
        self._append(line)

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self) -> "ResumableLines":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_line(line: str) -> None:
    if "\n" in line or "\r" in line:
        raise ValueError(f"a record must be one line; escape line breaks first: {line[:80]!r}")
