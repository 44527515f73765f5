r"""Prediction rows streamed to a CSV or JSON-lines file that survives being killed, and resumes.

One row is one line (in CSV a backslash, CR and LF in a value are written ``\\``, ``\r``, ``\n``, and the bytes
of a file name that are not UTF-8 ``\xNN``: :func:`csv_unescape` gives the value back). The rows of an input are
written in one write, so a killed run keeps every finished row; an fsync every ``fsync_every`` rows bounds what a
power cut can lose. A write that does not fit (disk full) is cut back to the last whole row before the error is
raised, so no partial row stays in front of later ones. One process writes a file at a time (a lock next to it).

Resuming reads what a previous run left: a torn last line is dropped, and so are the rows of an input that was not
finished (a video without its clip row, an image with fewer face rows than its ``num_faces``), so that continuing
never duplicates a row; the inputs already complete are in :attr:`RowWriter.done` for the caller to skip. Rows
before the first dropped one are never rewritten. A file written with other columns (other labels), or by another
run (its run record ``<file>.run.json``: model, labels, prompts, preprocessing, faces, sampling), is refused, and
an existing file is never replaced without ``overwrite``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Sequence

from ..errors import RowFileError
from ..files import FileLock, no_space
from .record import check_record, write_record

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def row_format(path: str | Path) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise RowFileError(f"{path}: the results file must end in .csv or .jsonl")
    return fmt


def check_out(path: str | Path, resume: bool | None = False, overwrite: bool = False, option: str = "--out") -> Path:
    """What :class:`RowWriter` would refuse, checked before any model is loaded: the suffix, an existing file
    without ``resume``/``overwrite``, a folder that cannot be written. Errors name ``option``; ``resume=None``: the
    run cannot be resumed (a live stream), so the error offers only ``--overwrite``."""
    from ..files import writable_file

    path = Path(path)
    if FORMATS.get(path.suffix.lower()) is None:
        raise RowFileError(f"{option} {path}: the results file must end in .csv or .jsonl")
    writable_file(path, option)
    if path.is_file() and path.stat().st_size > 0 and not (resume or overwrite):
        if resume is None:
            raise RowFileError(f"{option} {path} exists: add --overwrite to start it again, or use another {option}")
        raise RowFileError(f"{option} {path} exists: add --resume to continue it (inputs already written are "
                           "skipped) or --overwrite to start again")
    return path


def _plain(v):
    """JSON-safe scalar: non-finite floats become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


_ESCAPE = re.compile("[\\\\\r\n\ud800-\udfff]")
_UNESCAPE = re.compile(r"\\(\\|n|r|x[0-9a-f]{2}|u[0-9a-f]{4})")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_char(m: re.Match) -> str:
    c = m.group()
    if c in "\\\r\n":
        return {"\\": "\\\\", "\r": "\\r", "\n": "\\n"}[c]
    o = ord(c)  # a lone surrogate: a byte of a file name that is not UTF-8 (os.fsdecode), or one from Python
    return f"\\x{o - 0xDC00:02x}" if 0xDC80 <= o <= 0xDCFF else f"\\u{o:04x}"


def csv_escape(text: str) -> str:
    r"""A CSV value on one line, losslessly: ``\\`` for a backslash, ``\n`` and ``\r`` for LF and CR, ``\xNN`` for a
    byte of a file name that is not UTF-8 (so names that differ stay different)."""
    return _ESCAPE.sub(_escape_char, text)


def csv_unescape(text: str) -> str:
    """The value :func:`csv_escape` wrote (``os.fsencode`` of it gives back a file name's bytes)."""
    def back(m: re.Match) -> str:
        e = m.group(1)
        if e[0] in "xu":
            return chr(int(e[1:], 16) + (0xDC00 if e[0] == "x" else 0))
        return {"\\": "\\", "n": "\n", "r": "\r"}[e]

    return _UNESCAPE.sub(back, text)


def _csv_cell(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return csv_escape(str(v))  # one physical line per row: a cut falls between rows


def _json_line(values: dict) -> str:
    line = json.dumps(values, ensure_ascii=False)
    if _SURROGATE.search(line):  # a name that is not UTF-8: \udcXX escapes, which json.loads reads back exactly
        return json.dumps(values)
    return line


def input_complete(rows: Sequence[dict]) -> bool:
    """Whether the rows of one input are all there: its error row, its clip row without a track (videos: written
    last, after the clip row of each face track), or as many face rows as its ``num_faces`` (images; a fallback
    row when no face was found)."""
    kinds = {r.get("kind") for r in rows}
    if any(r.get("kind") == "clip" and r.get("track") in (None, "") for r in rows):
        return True
    if "clip" in kinds:
        return False
    if kinds != {"image"}:
        return False
    if any(r.get("error") not in (None, "") for r in rows):
        return True
    try:
        expected = max(1, int(rows[0].get("num_faces") or 0))
    except (TypeError, ValueError):
        return False
    return len(rows) == expected and len({str(r.get("face")) for r in rows}) == expected


class RowWriter:
    """Append-only writer of prediction rows.

    Args:
        path: ``.csv`` or ``.jsonl``.
        columns: the column order (``expclip.predict.table.result_columns``); a resumed file must have the same.
        resume: continue an existing file (``done`` lists its complete inputs, ``kept_rows`` counts their rows);
            without it an existing file is refused unless ``overwrite``.
        fsync_every: force rows to disk every this many rows (0: only on close).
        identity: what makes this run's rows comparable (:func:`expclip.predict.record.run_identity`); kept in the
            run record ``<path>.run.json``, and a resumed file whose record differs (or that has none) is refused.

    Raises:
        RowFileError: the file exists (without ``resume``/``overwrite``), has other columns or another run's
            record, or another process is writing it.
    """

    def __init__(self, path: str | Path, columns: Sequence[str], resume: bool = False, overwrite: bool = False,
                 fsync_every: int = 256, identity: dict | None = None):
        self.path, self.columns, self.fsync_every = Path(path), list(columns), fsync_every
        self.format = row_format(self.path)
        self.done: set[str] = set()
        self.kept_rows = 0
        self._fd: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(self.path.with_name(f".{self.path.name}.lock"))
        if not self._lock.acquire():  # before anything is read: the other writer may be mid-row
            raise RowFileError(f"another process is writing {self.path} (it holds {self._lock.path}): wait for it "
                               "to finish, or use another --out")
        try:
            self._open(resume, overwrite, identity)
        except BaseException:
            self.close()
            raise

    def _open(self, resume: bool, overwrite: bool, identity: dict | None) -> None:
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise RowFileError(f"{self.path} exists: pass --resume to continue it (inputs already written are "
                               "skipped) or --overwrite to start again")
        if identity is not None:
            if exists and resume:
                check_record(self.path, identity)
            else:
                write_record(self.path, identity)  # before the first row: a file never has rows without it
        good = self._recover() if exists and resume else 0
        # Unbuffered: every write goes straight to the file, so a failed one can be cut back without a buffer
        # that would try to write it again.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        os.ftruncate(self._fd, good)
        os.lseek(self._fd, good, os.SEEK_SET)
        self._good, self._since_sync = good, 0
        if good == 0 and self.format == "csv":
            self._append(self._csv_line(self.columns), 0)

    # -------------------------------------------------------------------------------------------- writing
    def _csv_line(self, values: Sequence) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([_csv_cell(v) for v in values])
        return buf.getvalue()

    def _line(self, row: dict) -> str:
        if self.format == "csv":
            return self._csv_line([row.get(c) for c in self.columns])
        return _json_line({c: _plain(row.get(c)) for c in self.columns}) + "\n"

    def _append(self, text: str, rows: int) -> None:
        data = memoryview(text.encode("utf-8"))
        try:
            while data:  # the kernel may write part (a disk filling up), then fail on the rest
                data = data[os.write(self._fd, data):]
            self._since_sync += rows
            if self.fsync_every and self._since_sync >= self.fsync_every:
                os.fsync(self._fd)
                self._since_sync = 0
        except OSError as e:
            try:  # a partial row must not stay in front of later ones: cut back to the last whole row
                os.ftruncate(self._fd, self._good)
                os.lseek(self._fd, self._good, os.SEEK_SET)
                advice = ("the rows before it are kept and the cut row was removed: free space and rerun the same "
                          "command with --resume")
            except OSError:
                advice = "its last row may be cut (--resume drops it): free space and rerun with --resume"
            full = no_space(e, self.path, advice)
            if full is None:
                raise
            raise full from e
        self._good = os.lseek(self._fd, 0, os.SEEK_CUR)

    def write(self, rows: Sequence[dict]) -> None:
        """Append rows in one write (rows of one input land together)."""
        if rows:
            self._append("".join(self._line(r) for r in rows), len(rows))

    def is_done(self, name: str) -> bool:
        """Whether input ``name`` is complete in the resumed file."""
        return name in self.done

    def close(self) -> None:
        """Force the rows to disk, close the file and let other processes write it."""
        try:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        finally:
            self._lock.release()

    def __del__(self) -> None:  # a writer dropped without close() still lets others write the file
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------------------------------------- resuming
    def _parse(self, lines: list[str]) -> list[dict]:
        """The rows of the complete ``lines`` (CSV: after the header), refused when their columns are not ours."""
        other = "other columns than this run (different labels?); use another --out or --overwrite"
        if self.format == "csv":
            try:
                records = [next(csv.reader([line], strict=True)) for line in lines]
            except csv.Error as e:
                raise RowFileError(f"{self.path}: not a CSV results file ({e}); use another --out or --overwrite") \
                    from e
            if records[0] != [csv_escape(c) for c in self.columns]:
                raise RowFileError(f"{self.path}: written with {other}")
            if any(len(r) != len(self.columns) for r in records[1:]):
                raise RowFileError(f"{self.path}: a row has {other}")
            rows = [dict(zip(self.columns, r)) for r in records[1:]]
            for r in rows:  # inputs by their real names (a name with a line break, not UTF-8...)
                if "input" in r:
                    r["input"] = csv_unescape(r["input"])
            return rows
        out = []
        for i, line in enumerate(lines):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise RowFileError(f"{self.path}: line {i + 1} is not JSON ({e.msg}); cannot resume") from e
            if not isinstance(row, dict) or list(row) != self.columns:
                raise RowFileError(f"{self.path}: line {i + 1} has {other}")
            out.append(row)
        return out

    def _recover(self) -> int:
        """Keep the complete inputs of the existing file; returns its length in bytes once cut back to them."""
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1  # only "\n" ends a row (str.splitlines would also split on U+2028...)
        if end < len(data):
            log.warning("%s: dropping a torn last line of %d bytes (the previous run was cut off)", self.path,
                        len(data) - end)
        try:
            lines = data[:end].decode("utf-8").split("\n")[:-1]
        except UnicodeDecodeError as e:
            raise RowFileError(f"{self.path} is not UTF-8 text ({e.reason}); use another --out or --overwrite") from e
        if not lines:  # not even a complete CSV header or JSON row
            return 0
        head = 1 if self.format == "csv" else 0
        rows = self._parse(lines)
        groups: dict[str, list[dict]] = {}
        for r in rows:
            groups.setdefault(str(r.get("input")), []).append(r)
        self.done = {name for name, group in groups.items() if input_complete(group)}
        keep = [str(r.get("input")) in self.done for r in rows]
        self.kept_rows = sum(keep)
        if self.kept_rows < len(rows):
            log.warning("%s: dropping %d row(s) of %d unfinished input(s); they will be redone", self.path,
                        len(rows) - self.kept_rows, len(groups) - len(self.done))
        if all(keep[: self.kept_rows]):  # the rows to drop are the last ones: cut the file there
            return sum(len(line.encode("utf-8")) + 1 for line in lines[: head + self.kept_rows])
        kept = lines[:head] + [line for line, k in zip(lines[head:], keep) if k]
        return self._rewrite("".join(line + "\n" for line in kept).encode("utf-8"))

    def _rewrite(self, data: bytes) -> int:
        """Replace the file by ``data`` atomically (a kill leaves the old file or the new one)."""
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        return len(data)
