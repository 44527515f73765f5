"""The dataset registry: one :class:`DatasetSpec` per benchmark (and per generic format), looked up by name.

``load_dataset("DFEW", root)`` returns one ItemList per fold. Adding a dataset is adding an entry to
:data:`DATASETS`; nothing else dispatches on names.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from .datasets import DatasetError, ItemList, image_folder

log = logging.getLogger(__name__)


class _Reader:
    """A format reader named by ``"module:function"`` of :mod:`expclip.data.formats` (with fixed keyword
    arguments), imported on its first call: the registry's names and facts (``--help``, ``expclip list``) cost no
    import of numpy or PIL."""

    def __init__(self, ref: str, **fixed):
        self.ref, self.fixed = ref, fixed

    def target(self) -> Callable[..., ItemList]:
        module, name = self.ref.split(":")
        fn = getattr(importlib.import_module(f"{__package__}.formats.{module}"), name)
        return partial(fn, **self.fixed) if self.fixed else fn

    def __call__(self, *args, **kwargs) -> ItemList:
        return self.target()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:  # what inspect.signature reports: the reader's own
        return inspect.signature(self.target())


@dataclass(frozen=True)
class DatasetSpec:
    """How to read one benchmark: its reader, kind, class count, folds, and where it usually lives.

    ``reader(root, allow_outside=False, **options)`` (plus ``fold=k`` when ``folds`` has more than one) returns a
    validated ItemList; ``allow_outside`` lets its annotation files' paths leave ``root``.
    ``dir_names``: folder names tried under a data root (``--data-root``) to find it.
    ``table``: the paper table it is a column of ("static", "video"), "train" for the training pool, or None.
    """

    name: str
    reader: Callable[..., ItemList]
    kind: str
    num_classes: int | None
    folds: tuple[int | None, ...] = (None,)
    dir_names: tuple[str, ...] = ()
    table: str | None = None
    download: str = ""  # what to download and point --root at (README, errors)
    options: tuple[str, ...] = ()  # reader options; empty = the reader's keyword parameters

    def typed_options(self, options: dict) -> dict:
        """``options`` with the types the reader's signature gives them: integers where it takes an int (e.g.
        num_classes), strings elsewhere (``--option votes=123`` is the file "123"); anything else is refused."""
        params = inspect.signature(self.reader).parameters
        out = {}
        for k, v in options.items():
            wants_int = k in params and "int" in str(params[k].annotation)
            if wants_int and isinstance(v, int) and not isinstance(v, bool):
                out[k] = v
            elif not wants_int and isinstance(v, (str, int)) and not isinstance(v, bool):
                out[k] = str(v)
            else:
                raise DatasetError(f"{self.name}: option {k} must be {'an integer' if wants_int else 'a string'}, "
                                   f"got {v!r}")
        return out

    def accepted_options(self) -> tuple[str, ...]:
        if self.options:
            return self.options
        params = inspect.signature(self.reader).parameters
        return tuple(p for p in params if p not in ("root", "fold", "allow_outside"))


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in [
    DatasetSpec("RAFDB", _Reader("static:read_rafdb"), "image", 7,
                dir_names=("RAF-DB/basic", "RAF-DB", "RAFDB", "raf-basic", "basic"), table="static",
                download="RAF-DB basic: the folder holding EmoLabel/ and Image/aligned/"),
    DatasetSpec("AffectNet7", _Reader("static:read_affectnet", num_classes=7), "image", 7,
                dir_names=("AffectNet", "affectnet"), table="static", options=("release", "split"),
                download="AffectNet: Manually_Annotated_file_lists/ + Manually_Annotated_Images/, or val_set/"),
    DatasetSpec("AffectNet8", _Reader("static:read_affectnet", num_classes=8), "image", 8,
                dir_names=("AffectNet", "affectnet"), table="static", options=("release", "split"),
                download="AffectNet: Manually_Annotated_file_lists/ + Manually_Annotated_Images/, or val_set/"),
    DatasetSpec("FERPlus", _Reader("ferplus:read_ferplus"), "image", 8, dir_names=("FERPlus", "ferplus"),
                table="static", download="fer2013.csv (Kaggle) + fer2013new.csv (microsoft/FERPlus), or the "
                "FER2013Test/ PNG folder with label.csv"),
    DatasetSpec("DFEW", _Reader("video_sets:read_dfew"), "video", 7, folds=(1, 2, 3, 4, 5),
                dir_names=("DFEW", "dfew"), table="video",
                download="DFEW: Clip/clip_224x224/ (or Clip/original/) + EmoLabel_DataSplit/"),
    DatasetSpec("FERV39k", _Reader("video_sets:read_ferv39k"), "video", 7,
                dir_names=("FERV39k", "FERV39K", "ferv39k"), table="video",
                download="FERV39k: 2_ClipsforFaceCrop/ + 4_setups/"),
    DatasetSpec("MAFW", _Reader("video_sets:read_mafw"), "video", 11, folds=(1, 2, 3, 4, 5),
                dir_names=("MAFW", "mafw"), table="video",
                download="MAFW: data/faces/ (or data/frames/, data/clips/) + 'Train & Test Set/'"),
    DatasetSpec("AFEW", _Reader("video_sets:read_afew"), "video", 7, dir_names=("AFEW", "afew", "AFEW7"),
                table="video", download="AFEW 7.0: Val_AFEW/<Emotion>/*.avi (or frame folders, or "
                "AFEW_Face/validation/)"),
    DatasetSpec("CAER-S", _Reader("static:read_caers"), "image", 7, dir_names=("CAER-S", "CAERS", "caer-s"),
                table="train", download="CAER-S: the folder holding train/ (and test/) with one folder per class"),
    DatasetSpec("folder", image_folder, "image", None, options=("name", "classes"),
                download="any folder with one subfolder of images per class"),
    DatasetSpec("csv", _Reader("generic:read_csv_labels"), "any", None,
                download="a CSV of path,label rows under --root"),
    DatasetSpec("list", _Reader("generic:read_list_file"), "video", None,
                download="a '<path> <num_frames> <label>' list file (option list_path) and the clips' root"),
]}

# The paper's evaluation columns, in the order of its tables, and their column titles.
PAPER_DATASETS: tuple[str, ...] = ("RAFDB", "AffectNet7", "AffectNet8", "FERPlus", "DFEW", "FERV39k", "MAFW", "AFEW")
DISPLAY_NAMES = {"RAFDB": "RAF-DB", "AffectNet7": "AffectNet-7", "AffectNet8": "AffectNet-8"}


def display_name(dataset: str) -> str:
    """The paper's column title of a dataset ("AffectNet-7"); other names pass through."""
    return DISPLAY_NAMES.get(dataset, dataset)


def _spelling(name: str) -> str:
    return "".join(c for c in str(name).lower() if c.isalnum())


def get_spec(name: str) -> DatasetSpec:
    """The spec of ``name``, however it is spelled: case, hyphens and spaces are ignored, so the paper's column
    titles ("RAF-DB", "AffectNet-7") and the folder names ("CAERS") name their datasets too."""
    for k, s in DATASETS.items():
        if _spelling(name) in {_spelling(k), _spelling(display_name(k))}:
            return s
    raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def load_dataset(name: str, root: str | Path, folds: list[int] | None = None, allow_outside: bool = False,
                 **options) -> list[ItemList]:
    """The test ItemLists of dataset ``name`` under ``root``: one per fold (every fold unless ``folds``).

    ``options`` go to the reader (e.g. ``votes``/``rule`` for FERPlus, ``media``/``lists`` for the videos); an
    option the reader does not take is an error that lists the accepted ones. ``allow_outside``: accept item paths
    of the annotation files (and links) that leave ``root``; refused by default, naming the file and line.
    """
    spec = get_spec(name)
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{spec.name}: folder {root} not found (expected {spec.download})")
    bad = sorted(set(options) - set(spec.accepted_options()))
    if bad:
        raise DatasetError(f"{spec.name} does not take the option(s) {bad}; it accepts {list(spec.accepted_options())}")
    options = spec.typed_options(options)
    if folds is not None:
        unknown = [f for f in folds if f not in spec.folds]
        if unknown:
            have = f"folds {list(spec.folds)}" if spec.folds != (None,) else "no folds"
            raise DatasetError(f"{spec.name} has {have}, not {unknown}")
        twice = sorted({f for f in folds if list(folds).count(f) > 1})
        if twice:  # a fold read twice would be averaged in twice, as if it were another fold
            raise DatasetError(f"{spec.name}: fold(s) {twice} given more than once")
    out = []
    for fold in (folds if folds is not None else spec.folds):
        kwargs = dict(options, fold=fold) if fold is not None else dict(options)
        data = spec.reader(root, allow_outside=allow_outside, **kwargs)
        data.info.setdefault("fold", fold)
        data.info.setdefault("dataset", spec.name)
        data.info.setdefault("root", str(root))  # the --root it was read from (data.root may be a folder inside)
        out.append(data)
    return out


def find_dataset_root(name: str, data_root: str | Path) -> Path | None:
    """The folder of dataset ``name`` under ``data_root`` (first of its ``dir_names`` that exists), or None."""
    spec = get_spec(name)
    for d in spec.dir_names:
        p = Path(data_root).expanduser() / d
        if p.is_dir():
            return p
    return None
