"""Reading dataset files written by strangers: paths that stay under the dataset root, annotation lines that fail
with the file and line number.

Every reader of a list file, CSV or folder goes through these helpers, so that a bad line is reported before any
model is loaded, and a line such as ``../../home/me/.ssh/id_rsa 16 0`` cannot make the package read outside the
dataset.
"""

from __future__ import annotations

import codecs
import csv
import os
from pathlib import Path, PurePosixPath
from typing import Any, Hashable, Iterator, Mapping, Sequence

from ..errors import DatasetError


class PathEscapeError(DatasetError):
    """A path from a dataset file points outside the dataset root."""


class AnnotationError(DatasetError):
    """A line of an annotation file cannot be used; ``str()`` is ``"<file>, line <n>: <reason>"``."""

    def __init__(self, path: str | Path, line: int | None, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


def safe_join(root: str | Path, rel: str | os.PathLike, allow_outside: bool = False, source: str | None = None,
              resolve: bool = True) -> Path:
    """``root / rel``, refusing a ``rel`` that leaves ``root``.

    Refused unless ``allow_outside``: absolute paths, ``..`` that climb above the root and, with ``resolve``, paths
    whose target (symbolic links followed) lies outside the root's own target. Returns the joined path, links
    not resolved.

    Raises:
        PathEscapeError: naming ``source`` (e.g. "list.txt, line 3"), the path and how to allow it.
    """
    root, text = Path(root), os.fspath(rel)
    where = f"{source}: " if source else ""
    how = "; pass allow_outside=True (CLI: --allow-outside-root) if the dataset is meant to reach there"
    if "\x00" in text or not text.strip():
        raise PathEscapeError(f"{where}invalid path {text!r}")
    if allow_outside:
        return root / text
    pure = PurePosixPath(text)
    if pure.is_absolute() or Path(text).is_absolute():
        raise PathEscapeError(f"{where}absolute path {text!r} is outside the dataset root {root}{how}")
    depth = 0
    for part in pure.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise PathEscapeError(f"{where}path {text!r} climbs out of the dataset root {root} with '..'{how}")
    target = root / text
    if not resolve:
        return target
    real_root, real = os.path.realpath(root), os.path.realpath(target)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise PathEscapeError(f"{where}{text!r} is a link to {real}, outside the dataset root {root}{how}")
    return target


def walk_files(root: str | Path, suffixes: Sequence[str]) -> list[Path]:
    """Every file under ``root`` (recursively, links to folders followed once) whose suffix is one of ``suffixes``
    (lower case), sorted; hidden files and folders are skipped. A folder that cannot be read is an error naming it,
    never silently left out (the dataset would be smaller than it looks)."""
    root = Path(root)

    def fail(e: OSError) -> None:
        raise DatasetError(f"{e.filename}: cannot read this folder ({e.strerror or e}); fix its permissions, or move "
                           f"it out of {root}")

    out, seen = [], set()
    for folder, dirs, files in os.walk(root, onerror=fail, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree: each folder is read once
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [Path(folder) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in suffixes
                and os.path.isfile(os.path.join(folder, f))]
    return sorted(out)


def read_lines(path: str | Path, encodings: Sequence[str] = ("utf-8",)) -> list[tuple[int, str]]:
    """The non-blank lines of a text annotation file as (1-based line number, stripped text).

    Accepts a UTF-8 byte-order mark at the start of the file or of any line (lists joined with ``cat``), CRLF or
    CR line ends and a missing final newline (the reference's lists lack one). The file is decoded with the first
    of ``encodings`` that reads all of it (MAFW's caption splits are GBK: ``("utf-8", "gbk")``). Refuses
    undecodable bytes and NUL bytes with the line number.

    Raises:
        DatasetError: the file is missing; AnnotationError: a line is not text.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"annotation file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from e
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    encoding = next((enc for enc in encodings if _decodes(data, enc)), encodings[0])  # else: name the bad line
    out = []
    # Only b"\n", b"\r" and b"\r\n" end a line of bytes; GBK's second bytes are never one of them.
    for n, raw in enumerate(data.splitlines(), 1):
        try:
            text = raw.decode(encoding).lstrip("\ufeff").strip()
        except UnicodeDecodeError as e:
            names = " or ".join(enc.upper() for enc in encodings)
            reason = f"not {names} text (byte {raw[e.start]:#04x} at column {e.start + 1})"
            raise AnnotationError(path, n, reason) from None
        if "\x00" in text:
            raise AnnotationError(path, n, "holds a NUL byte: is this a binary file?")
        if text:
            out.append((n, text))
    return out


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def split_fields(path: str | Path, line: int, text: str, count: int, layout: str, sep: str | None = None) -> list[str]:
    """``text`` split on ``sep`` (None: any whitespace) into exactly ``count`` fields described by ``layout``."""
    fields = [f.strip() for f in text.split(sep)] if sep else text.split()
    if len(fields) != count:
        raise AnnotationError(path, line, f"expected {count} fields ({layout}), found {len(fields)}: {text[:80]!r}")
    return fields


def int_field(path: str | Path, line: int, token: str, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer field within [lo, hi] (inclusive), or an AnnotationError naming the field."""
    try:
        value = int(token)
    except ValueError:
        raise AnnotationError(path, line, f"{name} {token[:40]!r} is not an integer") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"{'' if lo is None else lo}..{'' if hi is None else hi}"
        shown = token.strip() if len(token.strip()) <= 40 else f"{token.strip()[:20]}... ({len(token.strip())} digits)"
        raise AnnotationError(path, line, f"{name} {shown} is out of range {rng}")
    return value


def mapped_field(path: str | Path, line: int | None, token: Hashable, name: str, mapping: Mapping[Any, Any],
                 ignore_case: bool = False) -> Any:
    """``mapping[token]`` (e.g. a native label id -> class name; None = dropped), or an AnnotationError listing what
    is known. ``ignore_case``: string keys match whatever their case ("Happy", "happy")."""
    table = {k.lower() if ignore_case and isinstance(k, str) else k: v for k, v in mapping.items()}
    key = token.lower() if ignore_case and isinstance(token, str) else token
    if key not in table:
        try:
            keys = sorted(mapping)
        except TypeError:
            keys = list(mapping)
        shown = repr(token[:40]) if isinstance(token, str) else token
        raise AnnotationError(path, line, f"unknown {name} {shown}; expected one of: {', '.join(map(str, keys))}")
    return table[key]


def iter_csv_records(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Records of a CSV file (no header handling) as (line number, stripped fields), blank records skipped.

    Streams the file (FER2013's 290 MB of pixels are never held as text). Line numbers are physical lines, as in
    :func:`read_lines` (a record spanning lines gets its last one). A byte-order mark starting the file or a line
    is dropped.

    Raises:
        DatasetError: the file is missing; AnnotationError: not UTF-8 text, a NUL byte, or not CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"annotation file not found: {path}")
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(line.lstrip("\ufeff") for line in f)
            for record in reader:
                fields = [c.strip() for c in record]
                if not any(fields):
                    continue
                if any("\x00" in c for c in fields):
                    raise AnnotationError(path, reader.line_num, "holds a NUL byte: is this a binary file?")
                yield reader.line_num, fields
    except UnicodeDecodeError:
        read_lines(path)  # finds the line and column of the bad byte
        raise AnnotationError(path, None, "not UTF-8 text") from None
    except csv.Error as e:
        raise AnnotationError(path, reader.line_num if reader else None, f"not valid CSV ({e})") from None
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from e


def read_csv_rows(path: str | Path, required: Sequence[str] = ()) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV file with a header, as (line number, {column: value}); blank rows skipped.

    Raises:
        DatasetError: the file is missing; AnnotationError: the header lacks a ``required`` column, a row has
        more or fewer fields than the header, or the text is not CSV.
    """
    path = Path(path)
    records = iter_csv_records(path)
    first = next(records, None)
    if first is None:
        raise AnnotationError(path, None, "empty file (no header)")
    n, header = first
    missing = [c for c in required if c not in header]
    if missing:
        raise AnnotationError(path, n, f"missing column(s) {missing}; the header has {header[:20]}")
    if len(set(header)) != len(header):
        raise AnnotationError(path, n, f"duplicate column names in the header {header[:20]}")
    rows: list[tuple[int, dict[str, str]]] = []
    for n, record in records:
        if len(record) != len(header):
            raise AnnotationError(path, n, f"{len(record)} fields but the header has {len(header)}")
        rows.append((n, dict(zip(header, record))))
    return rows
