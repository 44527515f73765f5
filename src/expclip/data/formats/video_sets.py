"""Video benchmarks: DFEW (5 folds), FERV39k, MAFW (5 folds, 11 classes) and AFEW (validation).

Each reads the official split files of the download, or (``lists="reference"``) the reference's own test lists
shipped with the package, re-based onto the local frame folders. Clips are frame folders (sorted file names) or
video files; frame counts come from the folder/file when the clip is read, or from the list file when it has one.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath

from ...labels import classes_for
from ..datasets import DatasetError, ItemList
from ..safe import AnnotationError, int_field, iter_csv_records, mapped_field, read_lines
from ..video import is_video_file
from . import labelmaps
from .common import Row, build, existing, glob_one
from .generic import parse_list, reference_list_path

log = logging.getLogger(__name__)

LIST_SOURCES = ("official", "reference")


def _check(lists: str, fold: int | None, folds: bool) -> None:
    if lists not in LIST_SOURCES:
        raise DatasetError(f"lists must be one of {LIST_SOURCES}, got {lists!r}")
    if folds and fold not in range(1, 6):
        raise DatasetError(f"fold must be 1..5, got {fold!r}")


def _media(root: Path, media: str, choices: dict[str, list[str]], what: str) -> tuple[str, Path]:
    """(media name, folder) of the clips: the named one, or the first that exists for "auto"."""
    if media != "auto" and media not in choices:
        raise DatasetError(f"{what}: media must be auto or one of {list(choices)}, got {media!r}")
    for name in ([media] if media != "auto" else list(choices)):
        for rel in choices[name]:
            if (root / rel).is_dir():
                return name, root / rel
    wanted = [f"{root / r}" for n in ([media] if media != "auto" else choices) for r in choices[n]]
    raise DatasetError(f"{what}: no clip folder found; looked for " + ", ".join(wanted))


def _files_by_stem(folder: Path) -> dict[str, str]:
    return {p.stem: p.name for p in folder.iterdir() if is_video_file(p)}


def _to_clip_file(row: Row, files: dict[str, str]) -> Row:
    """Point a frame-folder row at the video file of the same clip (``00001`` -> ``00001.mp4``), when there is one.

    The list's frame counts describe the face-frame folders, not the videos, so they are dropped.
    """
    local = files.get(PurePosixPath(row.fields["path"]).name)
    if local is None:
        return row
    return row._replace(fields={k: v for k, v in row.fields.items() if k != "num_frames"} | {"path": local})


def _reference(list_name: str, name: str, media_dir: Path, num_classes: int, video_files: bool,
               fold: int | None, allow_outside: bool) -> ItemList:
    lf = parse_list(media_dir, reference_list_path(list_name), num_classes, allow_outside=allow_outside)
    files = _files_by_stem(media_dir) if video_files else {}
    rows = [_to_clip_file(r, files) for r in lf.rows] if files else lf.rows
    return build(name, media_dir, rows, num_classes, "video", lf.info(lists="reference", fold=fold), source=lf.path,
                 allow_outside=allow_outside)


# ----------------------------------------------------------------------------------------------------- DFEW
DFEW_MEDIA = {"frames": ["Clip/clip_224x224", "clip_224x224"], "clips": ["Clip/original", "original"],
              "frames16": ["Clip/clip_224x224_16f", "clip_224x224_16f"]}


def read_dfew(root: str | Path, fold: int = 1, media: str = "auto", lists: str = "official",
              allow_outside: bool = False) -> ItemList:
    """DFEW test fold ``fold``: ``EmoLabel_DataSplit/test(single_labeled)/set_N.csv`` (``video_name,label``, ids 1-7)
    over ``Clip/clip_224x224/<5-digit id>/`` frame folders ("frames", the reference's choice), ``Clip/original``
    videos ("clips") or the time-interpolated ``clip_224x224_16f`` ("frames16")."""
    root = Path(root)
    _check(lists, fold, True)
    kind, media_dir = _media(root, media, DFEW_MEDIA if media != "auto" else
                             {k: DFEW_MEDIA[k] for k in ("frames", "clips")}, "DFEW")
    if lists == "reference":
        return _reference(f"DFEW_set_{fold}_test.txt", "DFEW", media_dir, 7, kind == "clips", fold, allow_outside)
    split = glob_one(root, [f"EmoLabel_DataSplit/test(single_labeled)/set_{fold}.csv",
                            f"EmoLabel_DataSplit/*test*/set_{fold}.csv", f"*test*/set_{fold}.csv"],
                     f"DFEW split file test/set_{fold}.csv")
    files = _files_by_stem(media_dir) if kind == "clips" else {}
    rows = []
    cols = {"video_name": 0, "label": 1}
    for k, (n, rec) in enumerate(iter_csv_records(split)):
        if k == 0 and not rec[0].isdigit():  # the header (`video_name,label`) is optional
            cols = {c: i for i, c in enumerate(rec)}
            if "video_name" not in cols or "label" not in cols:
                raise AnnotationError(split, n, f"expected the header 'video_name,label', got {rec[:10]}")
            continue
        if len(rec) <= max(cols.values()):
            raise AnnotationError(split, n, f"expected the columns video_name,label, got {rec[:10]}")
        vid = int_field(split, n, rec[cols["video_name"]], "video_name", 0, 99999)
        native = int_field(split, n, rec[cols["label"]], "label")
        stem = f"{vid:05d}"
        rows.append(Row({"path": files.get(stem, stem)}, mapped_field(split, n, native, "DFEW label", labelmaps.DFEW),
                        n))
    return build("DFEW", media_dir, rows, 7, "video", {"fold": fold, "split": split.name, "media": kind,
                                                        "lists": "official"}, source=split, allow_outside=allow_outside)


# -------------------------------------------------------------------------------------------------- FERV39k
def read_ferv39k(root: str | Path, lists: str = "official", split: str = "test",
                 allow_outside: bool = False) -> ItemList:
    """FERV39k ``4_setups/All_scenes/test_All.csv`` (space-separated ``Scene/Emotion/NNNN Emotion``, header
    tolerated) over ``2_ClipsforFaceCrop/`` frame folders."""
    root = Path(root)
    _check(lists, None, False)
    media_dir = existing(root, ["2_ClipsforFaceCrop", "."], "FERV39k 2_ClipsforFaceCrop folder")
    if lists == "reference":
        return _reference("FERV39k_test.txt", "FERV39k", media_dir, 7, False, None, allow_outside)
    split_file = existing(root, [f"4_setups/All_scenes/{split}_All.csv", f"All_scenes/{split}_All.csv"],
                          f"FERV39k split file {split}_All.csv")
    rows = []
    names = {k.lower() for k in labelmaps.BASIC7_NAMES}
    for k, (n, line) in enumerate(read_lines(split_file)):
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            raise AnnotationError(split_file, n, f"expected '<Scene/Emotion/NNNN> <Emotion>', got {line[:80]!r}")
        if k == 0 and "/" not in parts[0] and parts[1].lower() not in names:
            continue  # a header row
        cls = mapped_field(split_file, n, parts[1], "FERV39k class", labelmaps.BASIC7_NAMES, ignore_case=True)
        rows.append(Row({"path": parts[0]}, cls, n))
    return build("FERV39k", media_dir, rows, 7, "video", {"split": split, "lists": "official"}, source=split_file,
                 allow_outside=allow_outside)


# ----------------------------------------------------------------------------------------------------- MAFW
MAFW_MEDIA = {"faces": ["data/faces", "faces"], "frames": ["data/frames", "frames"], "clips": ["data/clips", "clips"]}


def read_mafw(root: str | Path, fold: int = 1, media: str = "auto", lists: str = "official",
              split_file: str | None = None, allow_outside: bool = False) -> ItemList:
    """MAFW single-label test fold ``fold``: ``Train & Test Set/single/no_caption/set_N/test.txt`` (``00025.mp4
    anger``; the tab-separated caption variants, UTF-8 or GBK, work too) over ``data/faces/<id>/`` (the reference's
    choice), ``data/frames/<id>/`` or ``data/clips/<id>.mp4``; "auto" takes the first present."""
    root = Path(root)
    _check(lists, fold, True)
    kind, media_dir = _media(root, media, MAFW_MEDIA, "MAFW")
    if lists == "reference":
        return _reference(f"MAFW_set_{fold}_test.txt", "MAFW", media_dir, 11, kind == "clips", fold, allow_outside)
    path = (root / split_file) if split_file else glob_one(
        root, [f"Train & Test Set/single/no_caption/set_{fold}/test.txt", f"*/single/no_caption*/set_{fold}/test.txt",
               f"*/*/no_caption*/set_{fold}/test.txt", f"*/single/*/set_{fold}/test.txt"],
        f"MAFW split file single/no_caption/set_{fold}/test.txt")
    files = _files_by_stem(media_dir) if kind == "clips" else {}
    rows = []
    for n, line in read_lines(path, encodings=("utf-8", "gbk")):
        parts = [p.strip() for p in (line.split("\t") if "\t" in line else line.split())]
        if len(parts) < 2 or not parts[0]:
            raise AnnotationError(path, n, f"expected '<clip>.mp4 <label>', got {line[:80]!r}")
        clip, label = parts[0], parts[1]
        if "_" in label:
            raise AnnotationError(path, n, f"compound label {label[:40]!r}: use the single-label split files")
        stem = PurePosixPath(clip).stem
        if not stem or stem in (".", ".."):
            raise AnnotationError(path, n, f"clip {clip[:80]!r} is not a clip file name")
        rows.append(Row({"path": files.get(stem, stem) if kind == "clips" else stem},
                        mapped_field(path, n, label, "MAFW class", labelmaps.MAFW, ignore_case=True), n))
    return build("MAFW", media_dir, rows, 11, "video", {"fold": fold, "split": path.name, "media": kind,
                                                         "lists": "official"}, source=path, allow_outside=allow_outside)


# ----------------------------------------------------------------------------------------------------- AFEW
AFEW_FOLDERS = {**labelmaps.BASIC7_NAMES, **{c.capitalize(): c for c in classes_for(7)}}  # + the QMUL renames
_QMUL_PREFIX = re.compile(r"^\d+_\d+_")  # AFEW_Face clip folders are <split>_<label>_<original name>


def read_afew(root: str | Path, split: str = "validation", lists: str = "official",
              allow_outside: bool = False) -> ItemList:
    """AFEW 7.0 ``Val_AFEW/<Emotion>/<clip>.avi`` (or frame folders per clip), also the face-frame copies
    ``AFEW_Face/validation/<Class>/<clip>/``; the class is the folder name (Angry ... Surprise, or Happiness ...)."""
    root = Path(root)
    _check(lists, None, False)
    names = ["Val_AFEW", "AFEW_Face/validation", "Val", "validation", "."] if split == "validation" else \
        ["Train_AFEW", "AFEW_Face/train", "Train", "train", "."]
    base = next((root / n for n in names if (root / n).is_dir() and _class_dirs(root / n)), None)
    if base is None:
        raise DatasetError(f"AFEW {split}: no class folders (Angry/, Happy/, ...) under any of "
                           + ", ".join(str(root / n) for n in names))
    rows = []
    for d in _class_dirs(base):
        cls = mapped_field(d, None, d.name, "AFEW class folder", AFEW_FOLDERS, ignore_case=True)
        for clip in sorted(d.iterdir()):
            if not clip.name.startswith(".") and (clip.is_dir() or is_video_file(clip)):
                rows.append(Row({"path": clip.relative_to(base).as_posix()}, cls))
    if lists == "official":
        return build("AFEW", base, rows, 7, "video", {"split": split, "lists": "official"},
                     allow_outside=allow_outside)
    return _afew_reference(base, rows, allow_outside)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and d.name.lower() in {k.lower() for k in AFEW_FOLDERS})


def _afew_reference(base: Path, native_rows: list[Row], allow_outside: bool) -> ItemList:
    """The reference's 381 validation clips, found in the local copy by their original clip name."""
    lf = parse_list(base, reference_list_path("AFEW_validation.txt"), 7, allow_outside=allow_outside)
    by_code = {_QMUL_PREFIX.sub("", Path(r.fields["path"]).stem): r.fields["path"] for r in native_rows}
    rows, missing = [], 0
    for r in lf.rows:
        if not (base / r.fields["path"]).exists():
            local = by_code.get(_QMUL_PREFIX.sub("", PurePosixPath(r.fields["path"]).name))
            if local is None:
                missing += 1
            else:
                fields = {**r.fields, "path": local}
                if is_video_file(local):  # the list counts face frames, not video frames
                    fields.pop("num_frames", None)
                r = r._replace(fields=fields)
        rows.append(r)
    if missing:
        log.warning("AFEW: %d clips of the reference list are not in %s (they will be reported as failures)",
                    missing, base)
    return build("AFEW", base, rows, 7, "video", lf.info(lists="reference", split="validation", missing=missing),
                 source=lf.path, allow_outside=allow_outside)
