"""Helpers shared by the format readers: line-numbered text files, file discovery, label lookup, item lists."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping

from ...labels import classes_for
from ..datasets import DatasetError, ItemList

log = logging.getLogger(__name__)


def line_error(path: str | Path, lineno: int | None, msg: str) -> DatasetError:
    """A DatasetError that names the file and the 1-based line (``None``: a file or folder as a whole)."""
    return DatasetError(f"{path}, line {lineno}: {msg}" if lineno is not None else f"{path}: {msg}")


def read_lines(path: str | Path, encodings: tuple[str, ...] = ("utf-8-sig", "gbk")) -> list[tuple[int, str]]:
    """Non-empty lines of a text file as (1-based line number, stripped text).

    Tries ``encodings`` in turn (MAFW's caption splits are GBK). A last line without a newline is read like any
    other (several reference lists lack it).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from e
    for enc in encodings:
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise DatasetError(f"{path}: not text in any of the encodings {list(encodings)}")
    return [(i, s.strip()) for i, s in enumerate(text.splitlines(), 1) if s.strip()]


def existing(root: Path, candidates: Iterable[str], what: str) -> Path:
    """The first of ``root/candidate`` that exists; else a DatasetError listing what was looked for."""
    tried = []
    for c in candidates:
        p = root / c
        if p.exists():
            return p
        tried.append(str(p))
    raise DatasetError(f"{what} not found; looked for: " + ", ".join(tried))


def glob_one(root: Path, patterns: Iterable[str], what: str) -> Path:
    """The single file matching the first pattern that matches anything (patterns are tried in order)."""
    patterns = list(patterns)
    for pat in patterns:
        hits = sorted(p for p in root.glob(pat) if p.is_file())
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise DatasetError(f"{what}: several files match {root}/{pat}: {[str(h) for h in hits]}; "
                               "pass the one to use with the reader's options")
    raise DatasetError(f"{what} not found under {root} (looked for {', '.join(patterns)})")


def lookup(table: Mapping, native, path: str | Path, lineno: int | None, what: str = "label"):
    """``table[native]`` (None = dropped) or a DatasetError naming file, line and the accepted values."""
    if native in table:
        return table[native]
    accepted = ", ".join(str(k) for k in table)
    raise line_error(path, lineno, f"{what} {native!r} is not one of {accepted}")


def lookup_name(table: Mapping[str, str | None], name: str, path: str | Path, lineno: int | None, what: str = "label"):
    """Case-insensitive :func:`lookup` for class names."""
    folded = {k.lower(): v for k, v in table.items()}
    return lookup(folded, name.strip().lower(), path, lineno, what)


def parse_int(text: str, path: str | Path, lineno: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise line_error(path, lineno, f"{what} {text!r} is not an integer") from None


def build(name: str, root: Path, rows: list[tuple[dict, str]], num_classes: int, kind: str = "image",
          info: dict | None = None) -> ItemList:
    """An ItemList of ``num_classes`` canonical classes from (item fields, canonical class name) rows.

    Raises DatasetError when ``rows`` is empty or names a class outside the first ``num_classes``.
    """
    classes = classes_for(num_classes)
    index = {c: i for i, c in enumerate(classes)}
    items = []
    for fields, cls in rows:
        if cls not in index:
            raise DatasetError(f"{name}: class {cls!r} of {fields.get('path')} is outside {classes}")
        items.append({**fields, "label": index[cls]})
    if not items:
        raise DatasetError(f"{name}: no items found under {root}")
    counts = Counter(it["label"] for it in items)
    info = {**(info or {}), "per_class": {c: counts.get(i, 0) for i, c in enumerate(classes)}}
    log.info("%s%s: %d %s from %s", name, f" fold {info['fold']}" if info.get("fold") else "", len(items),
             "clips" if kind == "video" else "images", root)
    return ItemList(name, root, items, classes, kind, info)
