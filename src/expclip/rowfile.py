"""Prediction rows streamed to a CSV or JSON-lines file, flushed input by input, and resumed after a crash.

Resuming reads what a previous run left: a last line cut by a kill is dropped, and so are the rows of an input
that was not finished (a video without its clip row, an image with fewer face rows than its ``num_faces``), so that
continuing never duplicates a row. Inputs already complete are reported so the caller can skip them.
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

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class RowFileError(ValueError):
    """A results file cannot be written or resumed; the message names it and says what to do."""


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
        columns: the column order (``expclip.predict.result_columns``); a resumed file must have the same.
        resume: continue an existing file (``done`` lists its complete inputs); without it an existing file is
            refused unless ``overwrite``.
    """

    def __init__(self, path: str | Path, columns: Sequence[str], resume: bool = False, overwrite: bool = False):
        self.path, self.columns = Path(path), list(columns)
        self.format = row_format(self.path)
        self.done: set[str] = set()
        self.kept_rows = 0
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise RowFileError(f"{self.path} exists: pass --resume to continue it (inputs already written are "
                               "skipped) or --overwrite to start again")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if exists and resume:
            self._recover()
            self._fh: IO[str] = open(self.path, "a", encoding="utf-8", newline="")
        else:
            self._fh = open(self.path, "w", encoding="utf-8", newline="")
            if self.format == "csv":
                self._write_text(self._csv_line(self.columns))

    # -------------------------------------------------------------------------------------------- writing
    def _csv_line(self, values: Sequence) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([_csv_cell(v) for v in values])
        return buf.getvalue()

    def _line(self, row: dict) -> str:
        if self.format == "csv":
            return self._csv_line([row.get(c) for c in self.columns])
        return json.dumps({c: _plain(row.get(c)) for c in self.columns}, ensure_ascii=False) + "\n"

    def _write_text(self, text: str) -> None:
        self._fh.write(text)
        self._fh.flush()

    def write(self, rows: Sequence[dict]) -> None:
        """Append rows in one write and flush (rows of one input land together)."""
        if rows:
            self._write_text("".join(self._line(r) for r in rows))

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
        if self.format == "jsonl":
            out = []
            for i, line in enumerate(lines):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise RowFileError(f"{self.path}: line {i + 1} is not JSON ({e.msg}); cannot resume") from e
                if not isinstance(row, dict) or list(row) != self.columns:
                    raise RowFileError(f"{self.path}: line {i + 1} has other columns than this run "
                                       f"(different labels?); use another --out or --overwrite")
                out.append(row)
            return out
        header, *body = list(csv.reader(lines))
        if header != self.columns:
            raise RowFileError(f"{self.path}: written with columns {header[len(header) - 3:]}... which differ from "
                               f"this run's (different labels?); use another --out or --overwrite")
        return [dict(zip(self.columns, r)) for r in body]

    def _recover(self) -> None:
        """Keep the complete inputs of an existing file (rewritten atomically if anything had to go)."""
        text = self.path.read_text(encoding="utf-8", errors="replace")
        *complete_lines, tail = text.split("\n")  # only "\n" ends a row (str.splitlines also splits on U+2028...)
        lines = [line + "\n" for line in complete_lines]
        cut = tail != ""
        if cut:
            log.warning("%s: dropping a cut last line (the previous run was interrupted mid-write)", self.path)
        if self.format == "csv" and not lines:  # not even a complete header
            self._rewrite([self._csv_line(self.columns)])
            return
        body = lines[1:] if self.format == "csv" else lines
        rows = self._parse(lines)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            groups.setdefault(str(r.get("input")), []).append(i)
        complete = {name for name, idx in groups.items() if input_complete([rows[i] for i in idx])}
        keep = [body[i] for i, r in enumerate(rows) if str(r.get("input")) in complete]
        dropped = len(body) - len(keep)
        if dropped or cut:
            if dropped:
                log.warning("%s: dropping %d row(s) of %d unfinished input(s); they will be redone", self.path,
                            dropped, len(groups) - len(complete))
            self._rewrite(([lines[0]] if self.format == "csv" else []) + keep)
        self.done, self.kept_rows = complete, len(keep)

    def _rewrite(self, lines: list[str]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
