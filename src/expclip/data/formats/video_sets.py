"""Video benchmarks: DFEW (5 folds), FERV39k, MAFW (5 folds, 11 classes) and AFEW (validation).

Each reads the official split files of the download, or (``lists="reference"``) the reference's own test lists
shipped with the package, re-based onto the local frame folders. Clips are frame folders (sorted file names) or
video files; frame counts come from the folder/file when the clip is read, or from the list file when it has one.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

from ...labels import classes_for
from ..datasets import DatasetError, ItemList
from ..video import is_video_file
from . import labelmaps
from .common import build, existing, glob_one, line_error, lookup, lookup_name, parse_int, read_lines
from .generic import read_list_file, reference_list_path

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


def _to_clip_files(data: ItemList, media_dir: Path) -> ItemList:
    """Point the items of a frame-folder list at the video files of the same clips (``00001`` -> ``00001.mp4``).

    The list's frame counts describe the face-frame folders, not the videos, so they are dropped.
    """
    files = _files_by_stem(media_dir)
    for it in data.items:
        it["path"] = files.get(Path(it["path"]).name, it["path"])
        it.pop("num_frames", None)
    return data


def _reference(list_name: str, name: str, media_dir: Path, num_classes: int, video_files: bool,
               fold: int | None) -> ItemList:
    data = read_list_file(media_dir, reference_list_path(list_name), num_classes, name=name)
    data.info.update({"lists": "reference", "fold": fold})
    return _to_clip_files(data, media_dir) if video_files else data


# ----------------------------------------------------------------------------------------------------- DFEW
DFEW_MEDIA = {"frames": ["Clip/clip_224x224", "clip_224x224"], "clips": ["Clip/original", "original"],
              "frames16": ["Clip/clip_224x224_16f", "clip_224x224_16f"]}


def read_dfew(root: str | Path, fold: int = 1, media: str = "auto", lists: str = "official") -> ItemList:
    """DFEW test fold ``fold``: ``EmoLabel_DataSplit/test(single_labeled)/set_N.csv`` (``video_name,label``, ids 1-7)
    over ``Clip/clip_224x224/<5-digit id>/`` frame folders ("frames", the reference's choice), ``Clip/original``
    videos ("clips") or the time-interpolated ``clip_224x224_16f`` ("frames16")."""
    root = Path(root)
    _check(lists, fold, True)
    kind, media_dir = _media(root, media, DFEW_MEDIA if media != "auto" else
                             {k: DFEW_MEDIA[k] for k in ("frames", "clips")}, "DFEW")
    if lists == "reference":
        return _reference(f"DFEW_set_{fold}_test.txt", "DFEW", media_dir, 7, kind == "clips", fold)
    split = glob_one(root, [f"EmoLabel_DataSplit/test(single_labeled)/set_{fold}.csv",
                            f"EmoLabel_DataSplit/*test*/set_{fold}.csv", f"*test*/set_{fold}.csv"],
                     f"DFEW split file test/set_{fold}.csv")
    files = _files_by_stem(media_dir) if kind == "clips" else {}
    rows = []
    with open(split, newline="", encoding="utf-8-sig") as f:
        cols = {"video_name": 0, "label": 1}
        for lineno, rec in enumerate(csv.reader(f), 1):
            if not rec or not "".join(rec).strip():
                continue
            if lineno == 1 and not rec[0].strip().isdigit():  # the header (`video_name,label`) is optional
                cols = {c.strip(): i for i, c in enumerate(rec)}
                if "video_name" not in cols or "label" not in cols:
                    raise line_error(split, lineno, f"expected the header 'video_name,label', got {rec}")
                continue
            vid = parse_int(rec[cols["video_name"]].strip(), split, lineno, "video_name")
            cls = lookup(labelmaps.DFEW, parse_int(rec[cols["label"]].strip(), split, lineno, "label"), split,
                         lineno, "DFEW label")
            stem = f"{vid:05d}"
            rows.append(({"path": files.get(stem, stem)}, cls))
    return build("DFEW", media_dir, rows, 7, "video", {"fold": fold, "split": split.name, "media": kind,
                                                        "lists": "official"})


# -------------------------------------------------------------------------------------------------- FERV39k
def read_ferv39k(root: str | Path, lists: str = "official", split: str = "test") -> ItemList:
    """FERV39k ``4_setups/All_scenes/test_All.csv`` (space-separated ``Scene/Emotion/NNNN Emotion``, header
    tolerated) over ``2_ClipsforFaceCrop/`` frame folders."""
    root = Path(root)
    _check(lists, None, False)
    media_dir = existing(root, ["2_ClipsforFaceCrop", "."], "FERV39k 2_ClipsforFaceCrop folder")
    if lists == "reference":
        return _reference("FERV39k_test.txt", "FERV39k", media_dir, 7, False, None)
    split_file = existing(root, [f"4_setups/All_scenes/{split}_All.csv", f"All_scenes/{split}_All.csv"],
                          f"FERV39k split file {split}_All.csv")
    rows = []
    for lineno, line in read_lines(split_file):
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            raise line_error(split_file, lineno, f"expected '<Scene/Emotion/NNNN> <Emotion>', got {line!r}")
        if lineno == 1 and "/" not in parts[0] and parts[1] not in labelmaps.BASIC7_NAMES:
            continue  # a header row
        rows.append(({"path": parts[0]}, lookup_name(labelmaps.BASIC7_NAMES, parts[1], split_file, lineno,
                                                     "FERV39k class")))
    return build("FERV39k", media_dir, rows, 7, "video", {"split": split, "lists": "official"})


# ----------------------------------------------------------------------------------------------------- MAFW
MAFW_MEDIA = {"faces": ["data/faces", "faces"], "frames": ["data/frames", "frames"], "clips": ["data/clips", "clips"]}


def read_mafw(root: str | Path, fold: int = 1, media: str = "auto", lists: str = "official",
              split_file: str | None = None) -> ItemList:
    """MAFW single-label test fold ``fold``: ``Train & Test Set/single/no_caption/set_N/test.txt`` (``00025.mp4
    anger``; tab-separated caption variants work too) over ``data/faces/<id>/`` (the reference's choice),
    ``data/frames/<id>/`` or ``data/clips/<id>.mp4``; "auto" takes the first present."""
    root = Path(root)
    _check(lists, fold, True)
    kind, media_dir = _media(root, media, MAFW_MEDIA, "MAFW")
    if lists == "reference":
        return _reference(f"MAFW_set_{fold}_test.txt", "MAFW", media_dir, 11, kind == "clips", fold)
    path = (root / split_file) if split_file else glob_one(
        root, [f"Train & Test Set/single/no_caption/set_{fold}/test.txt", f"*/single/no_caption*/set_{fold}/test.txt",
               f"*/*/no_caption*/set_{fold}/test.txt", f"*/single/*/set_{fold}/test.txt"],
        f"MAFW split file single/no_caption/set_{fold}/test.txt")
    files = _files_by_stem(media_dir) if kind == "clips" else {}
    rows = []
    for lineno, line in read_lines(path):
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 2:
            raise line_error(path, lineno, f"expected '<clip>.mp4 <label>', got {line!r}")
        clip, label = parts[0].strip(), parts[1].strip()
        if "_" in label:
            raise line_error(path, lineno, f"compound label {label!r}: use the single-label split files")
        stem = Path(clip).stem
        rows.append(({"path": files.get(stem, stem) if kind == "clips" else stem},
                     lookup_name(labelmaps.MAFW, label, path, lineno, "MAFW class")))
    return build("MAFW", media_dir, rows, 11, "video", {"fold": fold, "split": path.name, "media": kind,
                                                         "lists": "official"})


# ----------------------------------------------------------------------------------------------------- AFEW
AFEW_FOLDERS = {**labelmaps.BASIC7_NAMES, **{c.capitalize(): c for c in classes_for(7)}}  # + the QMUL renames
_QMUL_PREFIX = re.compile(r"^\d+_\d+_")  # AFEW_Face clip folders are <split>_<label>_<original name>


def read_afew(root: str | Path, split: str = "validation", lists: str = "official") -> ItemList:
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
        cls = lookup_name(AFEW_FOLDERS, d.name, d, None, "AFEW class folder")
        for clip in sorted(d.iterdir()):
            if not clip.name.startswith(".") and (clip.is_dir() or is_video_file(clip)):
                rows.append(({"path": clip.relative_to(base).as_posix()}, cls))
    if lists == "official":
        return build("AFEW", base, rows, 7, "video", {"split": split, "lists": "official"})
    return _afew_reference(base, rows)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and d.name.lower() in {k.lower() for k in AFEW_FOLDERS})


def _afew_reference(base: Path, native_rows: list[tuple[dict, str]]) -> ItemList:
    """The reference's 381 validation clips, found in the local copy by their original clip name."""
    data = read_list_file(base, reference_list_path("AFEW_validation.txt"), 7, name="AFEW")
    by_code = {_QMUL_PREFIX.sub("", Path(it["path"]).stem): it["path"] for it, _ in native_rows}
    missing = 0
    for it in data.items:
        if (base / it["path"]).exists():
            continue
        local = by_code.get(_QMUL_PREFIX.sub("", Path(it["path"]).name))
        if local is None:
            missing += 1
            continue
        if is_video_file(local):  # the list counts face frames, not video frames
            it.pop("num_frames", None)
        it["path"] = local
    if missing:
        log.warning("AFEW: %d clips of the reference list are not in %s (they will be reported as failures)",
                    missing, base)
    data.info.update({"lists": "reference", "split": "validation", "missing": missing})
    return data
