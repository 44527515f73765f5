"""Prediction rows streamed to a CSV or JSON-lines file that survives being killed, and resumes.

One row is one line. The rows of an input are written in one write and flushed, so a killed run keeps every
finished row; an fsync every ``fsync_every`` rows bounds what a power cut can lose. A failed write (disk full) is
cut back, so no partial row stays in front of later ones.

Resuming reads what a previous run left: a torn last line is dropped, and so are the rows of an input that was not
finished (a video without its clip row, an image with fewer face rows than its ``num_faces``), so that continuing
never duplicates a row; the inputs already complete are in :attr:`RowWriter.done` for the caller to skip. Rows
before the first dropped one are never rewritten. A file written with other columns (other labels) is refused,
and an existing file is never replaced without ``overwrite``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from pathlib import Path
from typing import IO, Sequence

from ..errors import RowFileError

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def row_format(path: str | Path) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise RowFileError(f"{path}: the results file must end in .csv or .jsonl")
    return fmt


def _plain(v):
    """JSON-safe scalar: non-finite floats become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _csv_cell(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return str(v).replace("\r", " ").replace("\n", " ")  # one physical line per row: a cut falls between rows


def input_complete(rows: Sequence[dict]) -> bool:
    """Whether the rows of one input are all there: its error row, its clip row (videos, written last), or as many
    face rows as its ``num_faces`` (images; a fallback row when no face was found)."""
    kinds = {r.get("kind") for r in rows}
    if "clip" in kinds:
        return True
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
    """

    def __init__(self, path: str | Path, columns: Sequence[str], resume: bool = False, overwrite: bool = False,
                 fsync_every: int = 256):
        self.path, self.columns, self.fsync_every = Path(path), list(columns), fsync_every
        self.format = row_format(self.path)
        self.done: set[str] = set()
        self.kept_rows = 0
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise RowFileError(f"{self.path} exists: pass --resume to continue it (inputs already written are "
                               "skipped) or --overwrite to start again")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        good = self._recover() if exists and resume else 0
        self._fh: IO[bytes] = open(self.path, "r+b" if good else "wb")
        self._fh.truncate(good)
        self._fh.seek(good)
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
        return json.dumps({c: _plain(row.get(c)) for c in self.columns}, ensure_ascii=False) + "\n"

    def _append(self, text: str, rows: int) -> None:
        data = text.encode("utf-8")
        try:
            self._fh.write(data)
            self._fh.flush()
        except OSError:
            try:  # a partial write (ENOSPC...) must not stay in front of later rows: cut back to the last full row
                self._fh.truncate(self._good)
                self._fh.seek(self._good)
            except OSError:
                pass  # the next resume drops the torn line anyway
            raise
        self._good += len(data)
        self._since_sync += rows
        if self.fsync_every and self._since_sync >= self.fsync_every:
            os.fsync(self._fh.fileno())
            self._since_sync = 0

    def write(self, rows: Sequence[dict]) -> None:
        """Append rows in one write and flush (rows of one input land together)."""
        if rows:
            self._append("".join(self._line(r) for r in rows), len(rows))

    def is_done(self, name: str) -> bool:
        """Whether input ``name`` is complete in the resumed file (compared as it was written)."""
        return (_csv_cell(name) if self.format == "csv" else name) in self.done

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

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
            if records[0] != self.columns:
                raise RowFileError(f"{self.path}: written with {other}")
            if any(len(r) != len(self.columns) for r in records[1:]):
                raise RowFileError(f"{self.path}: a row has {other}")
            return [dict(zip(self.columns, r)) for r in records[1:]]
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
