"""Generic formats: a CSV of ``path,label``, and the reference's list files ``<path> <num_frames> <label>``.

The list files shipped with the package (``resources/annotations``, the Exp-CLIP authors' video test lists, MIT)
hold the authors' absolute paths; :func:`read_list_file` re-bases them onto a local root by stripping their
common prefix, so ``/data/.../DFEW/DFEW_Frame_Face/00001`` becomes ``<root>/00001``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from ...labels import CLASS_ORDER, canonical_label, order_classes
from ..datasets import DatasetError, ItemList
from ..safe import AnnotationError, int_field, iter_csv_records, read_lines, split_fields
from ..video import is_video_file
from .common import Row, build

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
    for n, line in read_lines(path):
        clip, frames, label = split_fields(path, n, line, 3, "<path> <num_frames> <label>")
        out.append((clip, int_field(path, n, frames, "frame count", 1), int_field(path, n, label, "label", 0), n))
    if not out:
        raise AnnotationError(path, None, "no entries")
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


def rebase(path: str, prefix: str, keep_absolute: bool = False) -> str:
    """``path`` relative to ``prefix`` (a leading folder); unchanged when it does not start with it.

    An absolute path outside ``prefix`` loses its leading "/" (so that it stays under the root) unless
    ``keep_absolute`` (paths allowed outside the root).
    """
    if prefix and PurePosixPath(path).is_relative_to(prefix):
        return PurePosixPath(path).relative_to(prefix).as_posix()
    return path.lstrip("/") if prefix and not keep_absolute else path


@dataclass
class ListFile:
    """A parsed list file: its rows (paths re-based, "num_frames" kept), class count and stripped prefix."""

    path: Path
    rows: list[Row]
    num_classes: int
    prefix: str

    def info(self, **extra) -> dict:
        return {"list": self.path.name, "stripped_prefix": self.prefix, **extra}


def parse_list(root: str | Path, list_path: str | Path, num_classes: int | None = None, prefix: str = "auto",
               allow_outside: bool = False) -> ListFile:
    """The rows of a list file for a dataset rooted at ``root`` (see :func:`read_list_file`), not yet checked
    against the files on disk, so that a reader can point them at its local copy first."""
    root = Path(root)
    if str(list_path).startswith("reference:"):
        list_path = reference_list_path(str(list_path).split(":", 1)[1])
    list_path = Path(list_path)
    if not list_path.is_file() and (root / list_path).is_file():
        list_path = root / list_path
    entries = parse_list_file(list_path)
    limit = num_classes or max(e[2] for e in entries) + 1
    if not 1 <= limit <= len(CLASS_ORDER):
        raise AnnotationError(list_path, None, f"{limit} classes is outside 1..{len(CLASS_ORDER)}")
    prefix = common_prefix([e[0] for e in entries]) if prefix == "auto" else prefix
    rows = []
    for path, frames, label, n in entries:
        if label >= limit:
            raise AnnotationError(list_path, n, f"label {label} is outside 0..{limit - 1} ({limit} classes)")
        rows.append(Row({"path": rebase(path, prefix, keep_absolute=allow_outside), "num_frames": frames},
                        CLASS_ORDER[label], n))
    return ListFile(list_path, rows, limit, prefix)


def read_list_file(root: str | Path, list_path: str | Path, num_classes: int | None = None, prefix: str = "auto",
                   name: str | None = None, allow_outside: bool = False) -> ItemList:
    """Clips of a list file as a video ItemList rooted at ``root``; labels are indices in the canonical order.

    ``list_path``: a file (relative paths are tried from the working directory, then from ``root``), or
    ``reference:<name>`` for one of the shipped reference lists (:data:`REFERENCE_LISTS`).
    ``prefix``: the leading folder to strip from the list's paths ("auto": their common parent folder; "": none).
    ``num_classes``: the dataset's class count (default: the largest label + 1); a larger label is an error.
    ``allow_outside``: keep paths that leave ``root`` (``..``, absolute paths not under ``prefix``); refused by
    default, naming the line.
    The list's frame count is kept as item "num_frames" (trusted by the sampler, as in the reference).
    """
    lf = parse_list(root, list_path, num_classes, prefix, allow_outside)
    return build(name or lf.path.stem, Path(root), lf.rows, lf.num_classes, kind="video", source=lf.path,
                 info=lf.info(), allow_outside=allow_outside)


def read_csv_labels(root: str | Path, file: str = "labels.csv", num_classes: int | None = None,
                    name: str | None = None, allow_outside: bool = False) -> ItemList:
    """A CSV of ``path,label`` rows (header optional) under ``root``; labels are class words or canonical indices.

    Paths to video files or frame folders make a video ItemList. With word labels the classes are those named
    (canonical order) unless ``num_classes`` fixes the first N. ``allow_outside``: accept paths that leave ``root``.
    """
    root = Path(root)
    path = Path(file) if Path(file).is_absolute() else root / file
    if not path.is_file():
        raise DatasetError(f"label CSV {path} not found")
    limit = num_classes or len(CLASS_ORDER)
    if not 1 <= limit <= len(CLASS_ORDER):
        raise DatasetError(f"num_classes {num_classes} is outside 1..{len(CLASS_ORDER)}")
    rows = []
    for k, (n, rec) in enumerate(iter_csv_records(path)):
        if k == 0 and rec[0].lower() in ("path", "file", "filename", "image", "video"):
            continue  # the header
        if len(rec) < 2:
            raise AnnotationError(path, n, f"expected 'path,label', got {rec[:4]}")
        rows.append(Row({"path": rec[0]}, _csv_label(path, n, rec[1], limit), n))
    if not rows:
        raise AnnotationError(path, None, "no rows")
    used = order_classes([r.cls for r in rows])
    count = num_classes or (CLASS_ORDER.index(used[-1]) + 1)  # a dataset with N classes uses the first N
    kind = "video" if any(_is_clip(root, r.fields["path"]) for r in rows) else "image"
    return build(name or path.stem, root, rows, count, kind=kind, info={"csv": path.name}, source=path,
                 allow_outside=allow_outside)


def _is_clip(root: Path, rel: str) -> bool:
    """A video file or a frame folder (False for a name the OS refuses: the item then fails when read)."""
    try:
        return is_video_file(rel) or (root / rel).is_dir()
    except OSError:
        return False


def _csv_label(path: Path, line: int, label: str, limit: int) -> str:
    """A class word (any synonym) or a canonical class index, as the canonical class name."""
    if label.lstrip("-").isdigit():
        return CLASS_ORDER[int_field(path, line, label, "label", 0, limit - 1)]
    cls = canonical_label(label)
    if cls is None:
        raise AnnotationError(path, line, f"label {label!r} is not an expression name or class index")
    if CLASS_ORDER.index(cls) >= limit:
        raise AnnotationError(path, line, f"label {label!r} is outside the first {limit} classes")
    return cls
