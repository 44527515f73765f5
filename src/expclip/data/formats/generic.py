"""Generic formats: a CSV of ``path,label``, and the reference's list files ``<path> <num_frames> <label>``.

The list files shipped with the package (``resources/annotations``, the Exp-CLIP authors' video test lists, MIT)
hold the authors' absolute paths; :func:`read_list_file` re-bases them onto a local root by stripping their
common prefix, so ``/data/.../DFEW/DFEW_Frame_Face/00001`` becomes ``<root>/00001``.
"""

from __future__ import annotations

import csv
import logging
from importlib import resources
from pathlib import Path, PurePosixPath

from ...labels import CLASS_ORDER, canonical_label, order_classes
from ..datasets import DatasetError, ItemList
from ..video import is_video_file
from .common import build, line_error, parse_int, read_lines

log = logging.getLogger(__name__)

REFERENCE_LISTS = ("AFEW_validation.txt", *(f"DFEW_set_{k}_test.txt" for k in range(1, 6)), "FERV39k_test.txt",
                   *(f"MAFW_set_{k}_test.txt" for k in range(1, 6)))


def reference_list_path(name: str) -> Path:
    """The shipped copy of one of the reference's video test lists (see NOTICE)."""
    if name not in REFERENCE_LISTS:
        raise DatasetError(f"no shipped reference list {name!r}; there are {list(REFERENCE_LISTS)}")
    return Path(str(resources.files("expclip").joinpath(f"resources/annotations/{name}")))


def parse_list_file(path: str | Path) -> list[tuple[str, int, int, int]]:
    """Entries (path, num_frames, label, line number) of a ``<path> <num_frames> <label>`` file.

    Paths must not contain spaces (the format's rule). Raises DatasetError naming the file and line.
    """
    out = []
    for lineno, line in read_lines(path):
        parts = line.split()
        if len(parts) != 3:
            raise line_error(path, lineno, f"expected '<path> <num_frames> <label>', got {line!r}")
        n = parse_int(parts[1], path, lineno, "frame count")
        label = parse_int(parts[2], path, lineno, "label")
        if n < 1:
            raise line_error(path, lineno, f"frame count must be >= 1, got {n}")
        out.append((parts[0], n, label, lineno))
    if not out:
        raise DatasetError(f"{path}: no entries")
    return out


def common_prefix(paths: list[str]) -> str:
    """The common parent folder of absolute POSIX paths ('' for relative ones): what re-basing strips."""
    if not paths or not all(p.startswith("/") for p in paths):
        return ""
    parents = [PurePosixPath(p).parent.parts for p in paths]
    common = []
    for level in zip(*parents):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return str(PurePosixPath(*common)) if common else "/"


def rebase(path: str, prefix: str) -> str:
    """``path`` relative to ``prefix`` (a leading folder); unchanged when it does not start with it."""
    if prefix and PurePosixPath(path).is_relative_to(prefix):
        return PurePosixPath(path).relative_to(prefix).as_posix()
    return path.lstrip("/") if prefix else path


def read_list_file(root: str | Path, list_path: str | Path, num_classes: int | None = None, prefix: str = "auto",
                   name: str | None = None) -> ItemList:
    """Clips of a list file as a video ItemList rooted at ``root``; labels are indices in the canonical order.

    ``list_path``: a file (relative paths are tried from the working directory, then from ``root``), or
    ``reference:<name>`` for one of the shipped reference lists (:data:`REFERENCE_LISTS`).
    ``prefix``: the leading folder to strip from the list's paths ("auto": their common parent folder; "": none).
    ``num_classes``: the dataset's class count (default: the largest label + 1); a larger label is an error.
    The list's frame count is kept as item "num_frames" (trusted by the sampler, as in the reference).
    """
    root = Path(root)
    if str(list_path).startswith("reference:"):
        list_path = reference_list_path(str(list_path).split(":", 1)[1])
    list_path = Path(list_path)
    if not list_path.is_file() and (root / list_path).is_file():
        list_path = root / list_path
    entries = parse_list_file(list_path)
    limit = num_classes or max(e[2] for e in entries) + 1
    if not 1 <= limit <= len(CLASS_ORDER):
        raise DatasetError(f"{list_path}: {limit} classes is outside 1..{len(CLASS_ORDER)}")
    prefix = common_prefix([e[0] for e in entries]) if prefix == "auto" else prefix
    rows = []
    for path, n, label, lineno in entries:
        if not 0 <= label < limit:
            raise line_error(list_path, lineno, f"label {label} is outside 0..{limit - 1} ({limit} classes)")
        rows.append(({"path": rebase(path, prefix), "num_frames": n}, CLASS_ORDER[label]))
    return build(name or list_path.stem, root, rows, limit, kind="video",
                 info={"list": list_path.name, "stripped_prefix": prefix})


def read_csv_labels(root: str | Path, file: str = "labels.csv", num_classes: int | None = None,
                    name: str | None = None) -> ItemList:
    """A CSV of ``path,label`` rows (header optional) under ``root``; labels are class words or canonical indices.

    Paths to video files or frame folders make a video ItemList. With word labels the classes are those named
    (canonical order) unless ``num_classes`` fixes the first N.
    """
    root = Path(root)
    path = Path(file) if Path(file).is_absolute() else root / file
    if not path.is_file():
        raise DatasetError(f"label CSV {path} not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        records = [(i, r) for i, r in enumerate(csv.reader(f), 1) if r and "".join(r).strip()]
    if records and records[0][1][0].strip().lower() in ("path", "file", "filename", "image", "video"):
        records = records[1:]
    rows = []
    for lineno, rec in records:
        if len(rec) < 2:
            raise line_error(path, lineno, f"expected 'path,label', got {rec}")
        p, label = rec[0].strip(), rec[1].strip()
        if label.lstrip("-").isdigit():
            idx = int(label)
            if not 0 <= idx < (num_classes or len(CLASS_ORDER)):
                raise line_error(path, lineno, f"label {idx} is outside 0..{(num_classes or len(CLASS_ORDER)) - 1}")
            cls = CLASS_ORDER[idx]
        else:
            cls = canonical_label(label)
            if cls is None:
                raise line_error(path, lineno, f"label {label!r} is not an expression name or class index")
            if num_classes and CLASS_ORDER.index(cls) >= num_classes:
                raise line_error(path, lineno, f"label {label!r} is outside the first {num_classes} classes")
        rows.append(({"path": p}, cls))
    if not rows:
        raise DatasetError(f"{path}: no rows")
    used = order_classes([c for _, c in rows])
    n = num_classes or (CLASS_ORDER.index(used[-1]) + 1)  # a dataset with N classes uses the first N
    kind = "video" if any(is_video_file(r["path"]) or (root / r["path"]).is_dir() for r, _ in rows) else "image"
    return build(name or path.stem, root, rows, n, kind=kind, info={"csv": path.name})
