"""Static-image benchmarks: RAF-DB (basic), AffectNet-7/-8 (legacy CSV with face boxes, or the 2021 release) and
CAER-S (the unlabelled training pool of the paper, either anger spelling)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...errors import InputError
from ..datasets import DatasetError, ItemList, list_images
from ..safe import AnnotationError, int_field, iter_csv_records, mapped_field, read_lines, split_fields
from . import labelmaps
from .common import Row, build, existing

log = logging.getLogger(__name__)

RAFDB_SPLITS = ("test", "train")


def read_rafdb(root: str | Path, split: str = "test", images: str = "aligned", allow_outside: bool = False) -> ItemList:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned/<stem>_aligned.jpg``.

    The split is the file-name prefix (``test_0001.jpg``). Every line's label must be a basic id 1..7 (the compound
    release uses the same file name with ids up to 11, which is refused). Also accepts the folder variants where
    ``<root>/<split>/<1..7>/`` hold the images (native ids as folder names). ``allow_outside``: accept image paths
    (and links) that leave the dataset folder.
    """
    root = Path(root)
    if split not in RAFDB_SPLITS:
        raise DatasetError(f"RAF-DB split must be one of {RAFDB_SPLITS}, got {split!r}")
    if images not in ("aligned", "original"):
        raise DatasetError(f"RAF-DB images must be 'aligned' or 'original', got {images!r}")
    for folder in (root / split, root / "DATASET" / split):
        if folder.is_dir() and (folder / "1").is_dir():
            return _native_id_folders("RAFDB", folder, labelmaps.RAFDB, 7, {"split": split, "layout": "id folders"},
                                      allow_outside)
    label_file = existing(root, ["EmoLabel/list_patition_label.txt", "basic/EmoLabel/list_patition_label.txt"],
                          "RAF-DB label file EmoLabel/list_patition_label.txt")
    base = label_file.parent.parent
    if not (base / "Image" / images).is_dir():
        raise DatasetError(f"RAF-DB image folder {base / 'Image' / images} not found")
    rows = []
    for n, line in read_lines(label_file):
        name, label = split_fields(label_file, n, line, 2, "<image name> <label>")
        cls = mapped_field(label_file, n, int_field(label_file, n, label, "label"), "RAF-DB basic label (ids 1-7; "
                           "a compound-release file has ids up to 11)", labelmaps.RAFDB)
        prefix = name.split("_", 1)[0]
        if prefix not in RAFDB_SPLITS:  # a mistyped prefix would silently drop the image from both splits
            raise AnnotationError(label_file, n, f"image name {name[:60]!r} starts with neither 'train_' nor 'test_'")
        if prefix != split:
            continue
        stem = name.rsplit(".", 1)[0]
        rel = f"Image/aligned/{stem}_aligned.jpg" if images == "aligned" else f"Image/original/{name}"
        rows.append(Row({"path": rel}, cls, n))
    return build("RAFDB", base, rows, 7, info={"split": split, "images": images}, source=label_file,
                 allow_outside=allow_outside)


def _native_id_folders(name: str, folder: Path, table: dict, num_classes: int, info: dict,
                       allow_outside: bool) -> ItemList:
    """Images in ``folder/<native id>/`` (Kaggle-style copies), mapped through ``table``."""
    rows = []
    for sub in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        if not (sub.name.isascii() and sub.name.isdigit()):
            raise DatasetError(f"{sub}: expected folders named by the native label id {sorted(table)}")
        cls = mapped_field(sub, None, int(sub.name), "folder id", table)
        if cls is not None:
            rows += [Row({"path": p.relative_to(folder).as_posix()}, cls) for p in list_images(sub)]
    return build(name, folder, rows, num_classes, info=info, allow_outside=allow_outside)


# ------------------------------------------------------------------------------------------------- AffectNet
LEGACY_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                  "expression", "valence", "arousal")


def read_affectnet(root: str | Path, num_classes: int = 7, release: str = "auto", split: str = "validation",
                   allow_outside: bool = False) -> ItemList:
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
        csv_path = existing(root, [str(p.relative_to(root)) for p in legacy_csv], f"AffectNet {csv_name}")
        return _affectnet_legacy(root, num_classes, csv_path, allow_outside)
    set_dir = existing(root, ["train_set" if split == "train" else "val_set", "."], "AffectNet 2021 set folder")
    if not (set_dir / "annotations").is_dir():
        raise DatasetError(f"AffectNet not found under {root}: expected Manually_Annotated_file_lists/{csv_name} "
                           "(legacy release) or val_set/annotations/*_exp.npy (2021 release)")
    return _affectnet_2021(set_dir, num_classes, allow_outside)


def _name(num_classes: int) -> str:
    return f"AffectNet{num_classes}"


def _keep(cls: str | None, num_classes: int) -> bool:
    """Ids 8-10 map to None (dropped); contempt only counts for AffectNet-8."""
    return cls is not None and not (cls == "contempt" and num_classes == 7)


BOX = ("face_x", "face_y", "face_width", "face_height")


def _affectnet_legacy(root: Path, num_classes: int, csv_path: Path, allow_outside: bool) -> ItemList:
    images = existing(root, ["Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images", "."],
                      "AffectNet Manually_Annotated_Images folder")
    rows, dropped, no_box = [], 0, 0
    col = {c: i for i, c in enumerate(LEGACY_COLUMNS)}
    width = len(LEGACY_COLUMNS)
    for k, (n, rec) in enumerate(iter_csv_records(csv_path)):
        if k == 0 and rec[0] == "subDirectory_filePath":  # some copies have no header
            col, width = {c: i for i, c in enumerate(rec)}, len(rec)
            missing = [c for c in ("subDirectory_filePath", *BOX, "expression") if c not in col]
            if missing:
                raise AnnotationError(csv_path, n, f"header lacks the columns {missing}")
            continue
        if len(rec) != width:  # a missing field would shift the expression into another column
            raise AnnotationError(csv_path, n, f"expected {width} columns, got {len(rec)}")
        native = int_field(csv_path, n, rec[col["expression"]], "expression")
        cls = mapped_field(csv_path, n, native, "expression id", labelmaps.AFFECTNET)
        if not _keep(cls, num_classes):
            dropped += 1
            continue
        box = [int_field(csv_path, n, rec[col[c]].split(".")[0], c) for c in BOX]
        if box[2] <= 0 or box[3] <= 0:  # no face box: nothing to crop (HSEmotion skips these too)
            no_box += 1
            continue
        rows.append(Row({"path": rec[col["subDirectory_filePath"]], "box": box}, cls, n))
    if no_box:
        log.warning("%s: %d rows without a face box skipped", csv_path, no_box)
    return build(_name(num_classes), images, rows, num_classes, source=csv_path, allow_outside=allow_outside,
                 info={"release": "legacy", "csv": csv_path.name, "dropped": dropped, "no_box": no_box})


def _npy_label(path: Path) -> int:
    """The expression id in ``<id>_exp.npy``: a 0-d (or one-element) array of an integer, an integer-valued float,
    or a digit string (numpy ``str_`` or ``bytes_``, as some copies have).

    The header is read first, so a file that declares a huge array (or Python objects) is refused unread; any
    malformed header or body is an AnnotationError naming the file.
    """
    try:
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
        if int(np.prod(shape)) != 1 or dtype.hasobject or dtype.itemsize > 256:
            raise InputError(f"expected one number or string, found an array of shape {shape} and dtype {dtype}")
        value = np.load(path, allow_pickle=False).reshape(1)  # 1-d: a view works at any itemsize
        if dtype.kind == "U" and (value.view(np.uint32) > 0x10FFFF).any():  # numpy would fail deep inside item()
            raise InputError("the string holds code points that are not Unicode")
        item = value[0].item()
    except AnnotationError:
        raise
    except Exception as e:  # numpy's header parser raises anything on a malformed file (even tokenize errors)
        raise AnnotationError(path, None, f"not a readable .npy expression id ({type(e).__name__}: "
                              f"{str(e)[:200]})") from None
    if isinstance(item, bytes):
        item = item.decode("ascii", "replace")
    if isinstance(item, str):
        return int_field(path, None, item.strip(), "expression id")
    if isinstance(item, bool) or not isinstance(item, (int, float)) or (isinstance(item, float) and
                                                                        not item.is_integer()):
        raise AnnotationError(path, None, f"expression id {item!r} is not an integer")
    return int(item)


def _affectnet_2021(set_dir: Path, num_classes: int, allow_outside: bool) -> ItemList:
    ann, img_dir = set_dir / "annotations", set_dir / "images"
    if not img_dir.is_dir():
        raise DatasetError(f"AffectNet images folder {img_dir} not found")
    images = {p.stem: p.name for p in img_dir.iterdir() if p.is_file()}
    rows, dropped = [], 0
    files = sorted(ann.glob("*_exp.npy"), key=lambda p: (len(p.name), p.name))
    for p in files:
        cls = mapped_field(p, None, _npy_label(p), "expression id", labelmaps.AFFECTNET)
        if not _keep(cls, num_classes):
            dropped += 1
            continue
        stem = p.name[: -len("_exp.npy")]
        if stem not in images:
            raise DatasetError(f"{p}: no image {stem}.* in {img_dir}")
        rows.append(Row({"path": f"images/{images[stem]}"}, cls))
    return build(_name(num_classes), set_dir, rows, num_classes, info={"release": "2021", "dropped": dropped},
                 source=ann, allow_outside=allow_outside)


# ------------------------------------------------------------------------------------------------- CAER-S
def read_caers(root: str | Path, split: str = "train", allow_outside: bool = False) -> ItemList:
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
        cls = mapped_field(d, None, d.name, "class folder", labelmaps.BASIC7_NAMES, ignore_case=True)
        rows += [Row({"path": p.relative_to(folder).as_posix()}, cls) for p in list_images(d)]
    return build(f"CAER-S-{split}", folder, rows, 7, info={"split": split}, allow_outside=allow_outside)
