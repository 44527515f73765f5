"""Another system's per-sample answers, as ``expclip score`` reads them: a CSV or JSON-lines file of rows with a
sample id and a label, and the label rule that turns an answer into a class of the dataset (or "outside").

A label is a class name or any synonym of :mod:`expclip.labels` ("Happy", "joy", "Angry."), an index in the
package's class order (0 happiness, 1 sadness, 2 neutral, ...), or a ranked list of labels (a JSON list, or
names joined by ``,`` ``;`` or ``|``) of which the first counts. Anything else (free text, an empty answer, a
class the dataset does not have) is "outside the label set"; the scorer's rules decide what that counts as.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, MissingError
from ..hashes import file_sha256
from ..labels import canonical_label

# What is done with an answer outside the label set, and with a test sample that has no answer (names only here:
# ``expclip score --help`` shows them without importing numpy).
OUTSIDE_RULES = ("wrong", "drop")
MISSING_RULES = ("drop", "wrong")

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
RANK_SEPARATORS = re.compile(r"[,;|]")
_PUNCT = " \t\"'`.!?:;,()[]{}<>*"  # around an answer: LLMs write "Happy." or "**happiness**"

# The outcome of one answer: a class index of the dataset, or OUTSIDE.
OUTSIDE = -1


@dataclass
class Answer:
    """One row of a prediction file: its line (or record) number, the id as written, and the raw label."""

    line: int
    id: str
    label: Any


@dataclass
class PredictionFile:
    """The rows of a prediction file and what identifies it (sha256 of its bytes)."""

    path: Path
    format: str
    rows: list[Answer]
    id_column: str
    label_column: str
    sha256: str
    columns: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        """The ``source`` of a result cell."""
        return {"path": str(self.path.resolve()), "name": self.path.name, "sha256": self.sha256,
                "format": self.format, "rows": len(self.rows), "id_column": self.id_column,
                "label_column": self.label_column}


def read_predictions(path: str | Path, id_column: str = "id", label_column: str = "label") -> PredictionFile:
    """Read a prediction file: CSV (header row, comma; ``.tsv`` tab-separated) or JSON lines (one object per line;
    a ``.json`` file may also hold one array of objects).

    Raises:
        MissingError: no such file. InputError: an unknown extension, a column that is not there (the message lists
        the columns found and names ``--id-column``/``--label-column``), a malformed line, a row without an id.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingError(f"prediction file not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: a prediction file must be .csv, .tsv, .jsonl, .ndjson or .json (JSON lines)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    records, columns = (_csv_records(path, text, "\t" if fmt == "tsv" else ",") if fmt in ("csv", "tsv")
                        else _json_records(path, text))
    if not records:
        raise InputError(f"{path}: no prediction rows")
    for col, option in ((id_column, "--id-column"), (label_column, "--label-column")):
        if col not in columns:
            raise InputError(f"{path}: no column {col!r} (the file has {sorted(columns)[:12]}); name the column "
                             f"that holds the {'sample ids' if option == '--id-column' else 'labels'} with {option}")
    rows = []
    for line, rec in records:
        sample = rec.get(id_column)
        if sample is None or isinstance(sample, (dict, list, bool)) or not str(sample).strip():
            raise InputError(f"{path}, line {line}: no sample id in column {id_column!r}")
        rows.append(Answer(line, str(sample).strip(), rec.get(label_column)))
    return PredictionFile(path, "csv" if fmt == "tsv" else fmt, rows, id_column, label_column, file_sha256(path),
                          sorted(columns))


def _csv_records(path: Path, text: str, delimiter: str) -> tuple[list[tuple[int, dict]], set[str]]:
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return [], set()
    except csv.Error as e:
        raise InputError(f"{path}, line 1: not CSV ({e})") from None
    out = []
    try:
        for rec in reader:
            if not any(c.strip() for c in rec):
                continue
            out.append((reader.line_num, dict(zip(header, (c.strip() for c in rec)))))
    except csv.Error as e:
        raise InputError(f"{path}, line {reader.line_num}: not CSV ({e})") from None
    return out, set(header)


def _json_records(path: Path, text: str) -> tuple[list[tuple[int, dict]], set[str]]:
    if text.lstrip().startswith("["):  # a .json file holding one array of objects
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise InputError(f"{path}: not valid JSON ({getattr(e, 'msg', 'nested too deeply')})") from None
        pairs = list(enumerate(data, 1))
        where = "record"
    else:
        pairs = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    pairs.append((n, json.loads(line)))
                except (json.JSONDecodeError, RecursionError) as e:
                    raise InputError(f"{path}, line {n}: not a JSON object ({getattr(e, 'msg', 'too deep')}); "
                                     "a JSON-lines file holds one object per line") from None
        where = "line"
    columns: set[str] = set()
    for n, obj in pairs:
        if not isinstance(obj, dict):
            raise InputError(f"{path}, {where} {n}: expected a JSON object like {{\"id\": ..., \"label\": ...}}, got "
                             f"{type(obj).__name__}")
        columns.update(obj)
    return pairs, columns


# ------------------------------------------------------------------------------------------------ labels
def answer_class(label: Any, classes: list[str]) -> tuple[int, str]:
    """(class index in ``classes`` or OUTSIDE, form) of one answer; form is one of "name", "synonym", "index",
    "empty", "unknown" (not a label word), "not in set" (a label the dataset does not have), prefixed "ranked "
    when the answer was a ranked list (whose first element is what counts)."""
    ranked = False
    if isinstance(label, str) and label.strip().startswith("["):
        try:
            parsed = json.loads(label)
        except (json.JSONDecodeError, RecursionError):
            parsed = None
        if isinstance(parsed, list):
            label = parsed
    if isinstance(label, str) and RANK_SEPARATORS.search(label.strip(_PUNCT)):
        label = [p for p in RANK_SEPARATORS.split(label)]
    if isinstance(label, list):
        ranked = True
        label = label[0] if label else None
    index, form = _single(label, classes)
    return index, (f"ranked {form}" if ranked else form)


def _single(label: Any, classes: list[str]) -> tuple[int, str]:
    if label is None or (isinstance(label, str) and not label.strip(_PUNCT)):
        return OUTSIDE, "empty"
    if isinstance(label, (bool, dict, list)):
        return OUTSIDE, "unknown"
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    if isinstance(label, str) and re.fullmatch(r"[+-]?\d+", label.strip()):
        label = int(label.strip())
    if isinstance(label, int):
        return (label, "index") if 0 <= label < len(classes) else (OUTSIDE, "not in set")
    if not isinstance(label, str):
        return OUTSIDE, "unknown"
    word = label.strip(_PUNCT)
    cls = canonical_label(word)
    if cls is None:
        return OUTSIDE, "unknown"
    if cls not in classes:
        return OUTSIDE, "not in set"
    return classes.index(cls), ("name" if word.lower() == cls else "synonym")


def index_rule(classes: list[str]) -> str:
    """How an index answer is read, for the cell's rules ("0 happiness, 1 sadness, ...")."""
    return ", ".join(f"{i} {c}" for i, c in enumerate(classes))
