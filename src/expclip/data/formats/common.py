"""What the format readers share beyond :mod:`expclip.data.safe`: finding the files of a download, and turning
parsed rows into a checked :class:`ItemList`.

Parsing (line numbers, fields, label tables) and path safety are :mod:`expclip.data.safe`'s; this module only
knows about the shape of the benchmarks' folders.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Iterable, NamedTuple

from ...labels import classes_for
from ..datasets import DatasetError, ItemList
from ..safe import AnnotationError, safe_join

log = logging.getLogger(__name__)


class Row(NamedTuple):
    """One parsed item: its fields ("path" relative to the dataset root, "box", "num_frames"...), its canonical
    class name, and the annotation line it came from (None for items found by listing folders)."""

    fields: dict
    cls: str
    line: int | None = None


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


def build(name: str, root: Path, rows: Iterable[Row], num_classes: int, kind: str = "image",
          info: dict | None = None, source: str | Path | None = None, allow_outside: bool = False,
          decoder: object | None = None) -> ItemList:
    """A validated ItemList of ``num_classes`` canonical classes from parsed rows.

    ``source``: the annotation file the rows come from (named, with the line, in every error). Each path must stay
    under ``root`` unless ``allow_outside``, and be listed once. The list ends with :meth:`ItemList.validate`
    (links out of the root, a root where none of the files exist).

    Raises:
        AnnotationError: a path that leaves the root, a duplicate, a class outside the first ``num_classes``;
        DatasetError: no rows.
    """
    classes = classes_for(num_classes)
    index = {c: i for i, c in enumerate(classes)}
    where = source if source is not None else root
    items: list[dict] = []
    first_line: dict[str, int | None] = {}
    for fields, cls, line in rows:
        path = fields["path"]
        safe_join(root, path, allow_outside, source=f"{where}, line {line}" if line is not None else str(where),
                  resolve=False)
        if path in first_line:
            earlier = f" (first on line {first_line[path]})" if first_line[path] is not None else ""
            raise AnnotationError(where, line, f"{path!r} is listed twice{earlier}; remove one")
        first_line[path] = line
        if cls not in index:
            raise AnnotationError(where, line, f"class {cls!r} of {path!r} is outside the {num_classes} classes "
                                  f"{classes}")
        items.append({**fields, "label": index[cls]})
    if not items:
        raise DatasetError(f"{where}: no items of {name} found (under {root})")
    counts = Counter(it["label"] for it in items)
    info = {**(info or {}), "per_class": {c: counts.get(i, 0) for i, c in enumerate(classes)},
            "allow_outside": allow_outside, **({"annotations": str(source)} if source is not None else {})}
    log.info("%s%s: %d %s from %s", name, f" fold {info['fold']}" if info.get("fold") else "", len(items),
             "clips" if kind == "video" else "images", root)
    return ItemList(name, root, items, classes, kind, info, decoder).validate()
