"""Each benchmark's download in its native on-disk layout (DATASETS.md), for the tests: one writer per format.

``write_<format>`` puts the annotation file(s) where the reader looks and lays out the media, each file written by a
:data:`Media` function: :func:`touch` (an empty file) or :func:`mkdir` (an empty clip folder) where the reader
decodes nothing, real images, frame folders or videos (:mod:`support.media`) where it does. Two kinds of callers
share them: the tiny copies of :mod:`support.native` and the parser fuzzers' cases (:mod:`support.format_cases`).
The native label tables come from PROTOCOL.md's table, spelled out independently of the package's mapping tables.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

# PROTOCOL.md, "Native label ids -> class order": native id/name -> index in the canonical order.
CANON = ["happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear", "contempt", "anxiety",
         "helplessness", "disappointment"]
RAFDB_TO_INDEX = [4, 6, 5, 0, 1, 3, 2]  # native 1..7
AFFECTNET_TO_INDEX = [2, 0, 1, 4, 6, 5, 3, 7]  # native 0..7; 8-10 dropped
FERPLUS_TO_INDEX = [2, 0, 4, 1, 3, 5, 6, 7]  # vote columns 0..7
BASIC7_FOLDERS = ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
BASIC7_TO_INDEX = [3, 5, 6, 0, 2, 1, 4]
MAFW_NAMES = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
              "helplessness", "disappointment"]
MAFW_TO_INDEX = [3, 5, 6, 0, 2, 1, 4, 7, 8, 9, 10]

Media = Callable[[Path], object]  # writes one media file (or clip folder) at the path it is given


# ------------------------------------------------------------------------------------------------- files
def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def lay_out(root: Path, media: Mapping[str, Media], files: Mapping[str, bytes] | None = None) -> Path:
    """``root`` with each of ``media`` (relative path -> writer) and ``files`` (relative path -> content)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, write in media.items():
        write(root / rel)
    for rel, data in (files or {}).items():
        put(root / rel, data)
    return root


def csv_lines(rows: list[list]) -> list[str]:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().splitlines()


def text(lines: list[str], end: str = "\n", final: bool = True, encoding: str = "utf-8") -> bytes:
    """``lines`` joined by ``end``, with a final one or not (several real files lack it)."""
    return (end.join(lines) + (end if final else "")).encode(encoding)


def csv_file(rows: list[list]) -> bytes:
    """``rows`` as Python's csv module writes a file (CRLF line ends)."""
    return text(csv_lines(rows), "\r\n")


# ------------------------------------------------------------------------------------------------- writers
RAFDB_LABELS = "EmoLabel/list_patition_label.txt"


def rafdb_image(name: str) -> str:
    """The aligned face a list name stands for: test_0001.jpg -> Image/aligned/test_0001_aligned.jpg."""
    return f"Image/aligned/{Path(name).stem}_aligned.jpg"


def write_rafdb(root: Path, labels: bytes, images: Mapping[str, Media]) -> Path:
    """RAF-DB basic/: the label list and the aligned image of each list name in ``images``."""
    return lay_out(root, {rafdb_image(name): m for name, m in images.items()}, {RAFDB_LABELS: labels})


AFFECTNET_CSV = "Manually_Annotated_file_lists/validation.csv"
AFFECTNET_HEADER = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                    "expression", "valence", "arousal"]


def write_affectnet_csv(root: Path, rows: bytes, images: Mapping[str, Media]) -> Path:
    """AffectNet's first release: the validation CSV, each image at Manually_Annotated_Images/<its CSV path>."""
    return lay_out(root, {f"Manually_Annotated_Images/{rel}": m for rel, m in images.items()}, {AFFECTNET_CSV: rows})


def write_affectnet_npy(root: Path, annotations: Mapping[str, bytes], image: Media = touch) -> Path:
    """AffectNet 2021 val_set/: per stem an image and an ``<stem>_exp.npy`` holding ``annotations[stem]``."""
    return lay_out(root, {f"val_set/images/{stem}.jpg": image for stem in annotations},
                   {f"val_set/annotations/{stem}_exp.npy": data for stem, data in annotations.items()})


def npy(value: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, value)
    return buf.getvalue()


FER_COLUMNS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]
FER2013_HEADER = ["emotion", "pixels", "Usage"]


def vote_header(named: bool) -> list[str]:
    """fer2013new.csv's header, with its "Image name" column or (first release) without it."""
    return ["Usage", "Image name", *FER_COLUMNS] if named else ["Usage", *FER_COLUMNS]


def vote_row(usage: str, name: str | None, votes: list[int]) -> list:
    """A fer2013new.csv row; ``name`` None: the first release's (no "Image name" column)."""
    return [usage, *([] if name is None else [name]), *votes]


def write_ferplus(root: Path, pixels: bytes, votes: bytes) -> Path:
    """FER2013's fer2013.csv (pixels, usage) beside FERPlus' fer2013new.csv (votes)."""
    return lay_out(root, {}, {"fer2013.csv": pixels, "fer2013new.csv": votes})


FER_BOX = "(0, 0, 48, 48)"


def write_ferplus_png(root: Path, labels: bytes, images: Mapping[str, Media]) -> Path:
    """FERPlus' PNG release: FER2013Test/ with its images and label.csv (no header; name, face box, 10 counts)."""
    return lay_out(root / "FER2013Test", images, {"label.csv": labels}).parent


def write_caers(root: Path, split: str, files: Mapping[str, Media]) -> Path:
    """CAER-S: <split>/<class folder>/<image>, ``files`` keyed by "<class folder>/<image>"."""
    lay_out(root / split, files)
    return root


def write_afew(root: Path, clips: Mapping[str, Media]) -> Path:
    """AFEW: Val_AFEW/<Emotion>/<9-digit code> (a frame folder) or <code>.avi, keyed by "<Emotion>/<clip>"."""
    lay_out(root / "Val_AFEW", clips)
    return root


DFEW_MEDIA = {"frames": "Clip/clip_224x224", "clips": "Clip/original"}


def dfew_split(fold: int) -> str:
    return f"EmoLabel_DataSplit/test(single_labeled)/set_{fold}.csv"


def write_dfew(root: Path, splits: Mapping[int, bytes], clips: Mapping[str, Media], media: str = "frames") -> Path:
    """DFEW: the split CSV of each fold, each clip under Clip/clip_224x224/ (frames) or Clip/original/ (clips)."""
    return lay_out(root, {f"{DFEW_MEDIA[media]}/{rel}": m for rel, m in clips.items()},
                   {dfew_split(fold): data for fold, data in splits.items()})


FERV39K_SETUP = "4_setups/All_scenes/test_All.csv"
FERV39K_CLIPS = [(f"{'Action' if k % 2 else 'War'}/{folder}/{k + 1:04d}", folder, idx)
                 for k, (folder, idx) in enumerate(zip(BASIC7_FOLDERS, BASIC7_TO_INDEX))]  # (clip, folder, class)


def write_ferv39k(root: Path, setup: bytes, clips: Mapping[str, Media]) -> Path:
    """FERV39k: 2_ClipsforFaceCrop/<Scene>/<Emotion>/<NNNN>/ and the setup file (space-separated)."""
    return lay_out(root, {f"2_ClipsforFaceCrop/{rel}": m for rel, m in clips.items()}, {FERV39K_SETUP: setup})


MAFW_MEDIA = {"faces": ("data/faces", ""), "clips": ("data/clips", ".mp4")}


def mafw_clip(k: int) -> str:
    return f"{k * 1000 + 25:05d}"


def mafw_split(fold: int) -> str:
    return f"Train & Test Set/single/no_caption/set_{fold}/test.txt"


def write_mafw(root: Path, splits: Mapping[int, bytes], clips: Mapping[str, Media], media: str = "faces") -> Path:
    """MAFW: data/faces/<id>/ (or data/clips/<id>.mp4) and the test list of each fold."""
    folder, ext = MAFW_MEDIA[media]
    return lay_out(root, {f"{folder}/{clip}{ext}": m for clip, m in clips.items()},
                   {mafw_split(fold): data for fold, data in splits.items()})
