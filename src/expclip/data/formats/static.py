"""Static-image benchmarks: RAF-DB (basic), AffectNet-7/-8 (legacy CSV with face boxes, or the 2021 release) and
CAER-S (the unlabelled training pool of the paper, either anger spelling)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from ..datasets import DatasetError, ItemList, list_images
from . import labelmaps
from .common import build, existing, line_error, lookup, lookup_name, parse_int, read_lines

log = logging.getLogger(__name__)

RAFDB_SPLITS = ("test", "train")


def read_rafdb(root: str | Path, split: str = "test", images: str = "aligned") -> ItemList:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned/<stem>_aligned.jpg``.

    The split is the file-name prefix (``test_0001.jpg``). Every line's label must be a basic id 1..7 (the compound
    release uses the same file name with ids up to 11, which is refused). Also accepts the folder variants where
    ``<root>/<split>/<1..7>/`` hold the images (native ids as folder names).
    """
    root = Path(root)
    if split not in RAFDB_SPLITS:
        raise DatasetError(f"RAF-DB split must be one of {RAFDB_SPLITS}, got {split!r}")
    if images not in ("aligned", "original"):
        raise DatasetError(f"RAF-DB images must be 'aligned' or 'original', got {images!r}")
    for folder in (root / split, root / "DATASET" / split):
        if folder.is_dir() and (folder / "1").is_dir():
            return _native_id_folders("RAFDB", folder, labelmaps.RAFDB, 7, {"split": split, "layout": "id folders"})
    label_file = existing(root, ["EmoLabel/list_patition_label.txt", "basic/EmoLabel/list_patition_label.txt"],
                          "RAF-DB label file EmoLabel/list_patition_label.txt")
    base = label_file.parent.parent
    if not (base / "Image" / images).is_dir():
        raise DatasetError(f"RAF-DB image folder {base / 'Image' / images} not found")
    rows = []
    for lineno, line in read_lines(label_file):
        parts = line.split()
        if len(parts) != 2:
            raise line_error(label_file, lineno, f"expected '<image name> <label>', got {line!r}")
        name, label = parts
        cls = lookup(labelmaps.RAFDB, parse_int(label, label_file, lineno, "label"), label_file, lineno,
                     "RAF-DB basic label (a compound-release file has ids up to 11)")
        if not name.startswith(f"{split}_"):
            continue
        stem = name.rsplit(".", 1)[0]
        rel = f"Image/aligned/{stem}_aligned.jpg" if images == "aligned" else f"Image/original/{name}"
        rows.append(({"path": rel}, cls))
    return build("RAFDB", base, rows, 7, info={"split": split, "images": images})


def _native_id_folders(name: str, folder: Path, table: dict, num_classes: int, info: dict) -> ItemList:
    """Images in ``folder/<native id>/`` (Kaggle-style copies), mapped through ``table``."""
    rows = []
    for sub in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        try:
            native = int(sub.name)
        except ValueError:
            raise DatasetError(f"{sub}: expected folders named by the native label id") from None
        if native not in table:
            raise DatasetError(f"{sub}: folder id {native} is not one of {sorted(table)}")
        cls = table[native]
        if cls is None:
            continue
        rows += [({"path": p.relative_to(folder).as_posix()}, cls) for p in list_images(sub)]
    return build(name, folder, rows, num_classes, info=info)


# ------------------------------------------------------------------------------------------------- AffectNet
LEGACY_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                  "expression", "valence", "arousal")


def read_affectnet(root: str | Path, num_classes: int = 7, release: str = "auto",
                   split: str = "validation") -> ItemList:
    """AffectNet-7 (``num_classes`` 7) or -8 on its validation set (the benchmarks' test set).

    release "legacy": ``Manually_Annotated_file_lists/validation.csv`` + ``Manually_Annotated_Images/``, each item
    cropped to its face box; "2021": ``val_set/images/<id>.jpg`` + ``val_set/annotations/<id>_exp.npy`` (already
    cropped); "auto": legacy when its CSV is there, else 2021. Ids 8-10 are dropped, and 7 (contempt) for -7.
    """
    root = Path(root)
    if num_classes not in (7, 8):
        raise DatasetError(f"AffectNet has 7 or 8 classes, got {num_classes}")
    if release not in ("auto", "legacy", "2021"):
        raise DatasetError(f"AffectNet release must be auto, legacy or 2021, got {release!r}")
    if split not in ("validation", "train"):
        raise DatasetError(f"AffectNet split must be validation or train, got {split!r}")
    csv_name = "training.csv" if split == "train" else "validation.csv"
    legacy_csv = [root / "Manually_Annotated_file_lists" / csv_name, root / csv_name]
    if release == "legacy" or (release == "auto" and any(p.is_file() for p in legacy_csv)):
        return _affectnet_legacy(root, num_classes, existing(root, [str(p.relative_to(root)) for p in legacy_csv],
                                                             f"AffectNet {csv_name}"))
    set_dir = existing(root, ["train_set" if split == "train" else "val_set", "."], "AffectNet 2021 set folder")
    if not (set_dir / "annotations").is_dir():
        raise DatasetError(f"AffectNet not found under {root}: expected Manually_Annotated_file_lists/{csv_name} "
                           "(legacy release) or val_set/annotations/*_exp.npy (2021 release)")
    return _affectnet_2021(set_dir, num_classes)


def _name(num_classes: int) -> str:
    return f"AffectNet{num_classes}"


def _affectnet_legacy(root: Path, num_classes: int, csv_path: Path) -> ItemList:
    images = existing(root, ["Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images", "."],
                      "AffectNet Manually_Annotated_Images folder")
    rows, dropped, no_box = [], 0, 0
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        col = {c: i for i, c in enumerate(LEGACY_COLUMNS)}
        for lineno, rec in enumerate(reader, 1):
            if not rec or not "".join(rec).strip():
                continue
            if lineno == 1 and rec[0].strip() == "subDirectory_filePath":  # some copies have no header
                col = {c.strip(): i for i, c in enumerate(rec)}
                missing = [c for c in ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                                       "expression") if c not in col]
                if missing:
                    raise line_error(csv_path, lineno, f"header lacks the columns {missing}")
                continue
            if len(rec) <= max(col["expression"], col["face_height"]):
                raise line_error(csv_path, lineno, f"expected {len(LEGACY_COLUMNS)} columns, got {len(rec)}")
            native = parse_int(rec[col["expression"]].strip(), csv_path, lineno, "expression")
            cls = lookup(labelmaps.AFFECTNET, native, csv_path, lineno, "expression id")
            if cls is None or (cls == "contempt" and num_classes == 7):
                dropped += 1
                continue
            box = [parse_int(rec[col[k]].strip().split(".")[0], csv_path, lineno, k)
                   for k in ("face_x", "face_y", "face_width", "face_height")]
            if box[2] <= 0 or box[3] <= 0:  # no face box: nothing to crop (HSEmotion skips these too)
                no_box += 1
                continue
            rows.append(({"path": rec[col["subDirectory_filePath"]].strip(), "box": box}, cls))
    if no_box:
        log.warning("%s: %d rows without a face box skipped", csv_path, no_box)
    return build(_name(num_classes), images, rows, num_classes,
                 info={"release": "legacy", "csv": csv_path.name, "dropped": dropped, "no_box": no_box})


def _affectnet_2021(set_dir: Path, num_classes: int) -> ItemList:
    ann, img_dir = set_dir / "annotations", set_dir / "images"
    if not img_dir.is_dir():
        raise DatasetError(f"AffectNet images folder {img_dir} not found")
    images = {p.stem: p.name for p in img_dir.iterdir() if p.is_file()}
    rows, dropped = [], 0
    files = sorted(ann.glob("*_exp.npy"), key=lambda p: (len(p.name), p.name))
    for p in files:
        try:
            native = int(np.load(p, allow_pickle=False).item())  # a 0-d array of an int or a digit string
        except (ValueError, OSError) as e:
            raise DatasetError(f"{p}: not a readable expression id ({e})") from e
        cls = lookup(labelmaps.AFFECTNET, native, p, None, "expression id")
        if cls is None or (cls == "contempt" and num_classes == 7):
            dropped += 1
            continue
        stem = p.name[: -len("_exp.npy")]
        if stem not in images:
            raise DatasetError(f"{p}: no image {stem}.* in {img_dir}")
        rows.append(({"path": f"images/{images[stem]}"}, cls))
    return build(_name(num_classes), set_dir, rows, num_classes, info={"release": "2021", "dropped": dropped})


# ------------------------------------------------------------------------------------------------- CAER-S
def read_caers(root: str | Path, split: str = "train") -> ItemList:
    """CAER-S ``<root>/<split>/<Class>/*.png`` (``Angry`` in train, ``Anger`` in test); ``root`` may be the split.

    Labels are kept (canonical order) though training ignores them, so the same list can be evaluated.
    """
    root = Path(root)
    folder = root / split if (root / split).is_dir() else root
    subdirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")) \
        if folder.is_dir() else []
    if not subdirs:
        raise DatasetError(f"CAER-S: no class folders under {folder} (expected {split}/Angry, {split}/Happy, ...)")
    rows = []
    for d in subdirs:
        cls = lookup_name(labelmaps.BASIC7_NAMES, d.name, d, None, "class folder")
        rows += [({"path": p.relative_to(folder).as_posix()}, cls) for p in list_images(d)]
    return build(f"CAER-S-{split}", folder, rows, 7, info={"split": split})
