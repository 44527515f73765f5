"""The test lists ``expclip score`` scores against, and how each benchmark names its samples.

Video sets (DFEW, FERV39k, MAFW, AFEW): the reference's lists shipped with the package, or with a download's folder
(``root``) its official split files; static sets (RAF-DB, AffectNet-7/-8, FERPlus): the download's annotation files,
read by the dataset's reader. Ids match by the dataset's own naming (:data:`ID_RULES`): the last part(s) of
whatever path or name a prediction file holds, without a file extension, compared with the test list's, case
ignored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..data.formats.generic import parse_list, reference_list_path
from ..data.images import IMAGE_EXTENSIONS
from ..data.registry import PAPER_DATASETS, get_spec, load_dataset
from ..data.video import VIDEO_EXTENSIONS
from ..errors import InputError
from ..hashes import file_sha256
from ..labels import classes_for

log = logging.getLogger(__name__)

_EXTENSIONS = {e.lower() for e in (*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS)}


@dataclass(frozen=True)
class IdRule:
    """How a dataset names its samples: the last ``depth`` path parts, a file extension dropped, ``prefix`` /
    ``suffix`` (regular expressions) removed from the last part, digits zero-padded to ``pad``."""

    depth: int
    what: str  # for messages and the cell's rules
    pad: int = 0
    prefix: str | None = None
    suffix: str | None = None

    def key(self, text: str) -> str | None:
        """The id of a path or name as this dataset writes it ("Clip/original/1.mp4" -> "00001"); None if too short."""
        parts = [p for p in text.strip().replace("\\", "/").split("/") if p not in ("", ".")]
        if len(parts) < self.depth:
            return None
        parts = parts[-self.depth:]
        last = parts[-1]
        if PurePosixPath(last).suffix.lower() in _EXTENSIONS:
            last = last[: -len(PurePosixPath(last).suffix)]
        if self.prefix:
            last = re.sub(self.prefix, "", last)
        if self.suffix:
            last = re.sub(self.suffix, "", last)
        if self.pad and last.isdigit():
            last = last.zfill(self.pad)
        return "/".join([*parts[:-1], last]) if last else None


_AFFECTNET = IdRule(1, "the image file name (subDirectory_filePath's last part, or the 2021 "
                    "release's <id>), extension optional")
ID_RULES: dict[str, IdRule] = {
    "RAFDB": IdRule(1, "the image name of list_patition_label.txt, e.g. 'test_0001' ('test_0001.jpg', "
                    "'test_0001_aligned.jpg' and paths ending in them work too)", suffix=r"_aligned$"),
    "AffectNet7": _AFFECTNET,
    "AffectNet8": _AFFECTNET,
    "FERPlus": IdRule(1, "the FERPlus image name, e.g. 'fer0032220' or 'fer0032220.png'"),
    "DFEW": IdRule(1, "the 5-digit clip id (video_name), e.g. '00001', '1', '00001.mp4' or a path ending in "
                   "it", pad=5),
    "FERV39k": IdRule(3, "Scene/Emotion/NNNN, e.g. 'Action/Happy/0015' (or a longer path "
                      "ending in it)", pad=4),
    "MAFW": IdRule(1, "the 5-digit clip id, e.g. '00025', '00025.mp4' or a path ending in it", pad=5),
    "AFEW": IdRule(1, "the 9-digit clip name, e.g. '002916200', '002916200.avi' or the face-frame "
                   "folder '1_1_002916200'", pad=9, prefix=r"^\d+_\d+_"),
}
REFERENCE_LIST_NAMES = {"DFEW": "DFEW_set_{fold}_test.txt", "MAFW": "MAFW_set_{fold}_test.txt",
                        "FERV39k": "FERV39k_test.txt", "AFEW": "AFEW_validation.txt"}


@dataclass
class TestSet:
    """One test list (a fold): sample ids (the dataset's own, :data:`ID_RULES`) and label indices into ``classes``.

    Use :func:`make_test_set`, which derives the ids from the items' paths and refuses two items of one id.
    """

    __test__ = False  # not a pytest class, whatever its name

    dataset: str
    fold: int | None
    kind: str
    classes: list[str]
    ids: list[str]
    labels: list[int]
    source: dict  # where the list comes from: {"lists", "file", "sha256"}
    info: dict = field(default_factory=dict)

    def name(self) -> str:
        return f"{self.dataset}" + (f" fold {self.fold}" if self.fold is not None else "")


def make_test_set(dataset: str, fold: int | None, kind: str, classes: list[str], paths: list[str],
                  labels: list[int], source: dict, info: dict) -> TestSet:
    """A TestSet of items given by their paths in the list; two items of one id are an InputError (a prediction
    could not say which of them it is for)."""
    rule = ID_RULES[dataset]
    ids, seen = [], {}
    for path in paths:
        sample = rule.key(path) or path
        if sample.lower() in seen:
            raise InputError(f"{dataset}{f' fold {fold}' if fold else ''}: the test items {seen[sample.lower()]!r} "
                             f"and {path!r} both have the id {sample!r}; their predictions cannot be told apart")
        seen[sample.lower()] = path
        ids.append(sample)
    return TestSet(dataset, fold, kind, classes, ids, labels, source, info)


def scoreable_spec(dataset: str):
    """The registry spec of a paper dataset, or an InputError listing them."""
    spec = get_spec(dataset)
    if spec.name not in PAPER_DATASETS:
        raise InputError(f"--dataset {spec.name}: expclip score knows the test lists of {', '.join(PAPER_DATASETS)}")
    return spec


def check_folds(dataset: str, folds: list[int] | None) -> list[int | None]:
    """The folds to score (all of the dataset's when None); an unknown or repeated fold is an InputError."""
    spec = scoreable_spec(dataset)
    if folds is None:
        return list(spec.folds)
    if spec.folds == (None,):
        raise InputError(f"--fold: {spec.name} has no folds (one test set); drop --fold")
    bad = [f for f in folds if f not in spec.folds]
    if bad:
        raise InputError(f"--fold {bad[0]}: {spec.name} has folds {list(spec.folds)}")
    if len(set(folds)) != len(folds):
        raise InputError(f"--fold: a fold given twice ({folds}); each fold is scored once")
    return list(folds)


def load_test_sets(dataset: str, folds: list[int] | None = None, root: str | Path | None = None,
                   options: dict | None = None, allow_outside: bool = False) -> list[TestSet]:
    """The test lists of ``dataset`` (one per fold): shipped reference lists for a video set without ``root``, else
    the download's native annotation files read by the dataset's reader (``options`` go to it).

    Every fold is read, so that a row of another fold is told apart from an unknown id; of the folds not in
    ``folds``, one that cannot be read from ``root`` is left out.
    """
    spec = scoreable_spec(dataset)
    check_folds(spec.name, folds)
    if root is None:
        if spec.kind != "video":
            raise InputError(f"--dataset {spec.name} needs --root: its test list is read from the download's own "
                             f"annotation files ({spec.download})")
        if options:
            raise InputError("--option applies to the files of a download: give --root too, or drop --option")
        out = []
        for fold in spec.folds:
            lf = parse_list(".", reference_list_path(REFERENCE_LIST_NAMES[spec.name].format(fold=fold)),
                            spec.num_classes)
            classes = classes_for(lf.num_classes)
            out.append(make_test_set(spec.name, fold, spec.kind, classes, [r.fields["path"] for r in lf.rows],
                                     [classes.index(r.cls) for r in lf.rows],
                                     {"lists": "reference", "file": lf.path.name, "sha256": file_sha256(lf.path)},
                                     lf.info(lists="reference", fold=fold)))
    else:
        out = []
        loaded = load_dataset(spec.name, root, folds, allow_outside, **(options or {}))
        for other in [f for f in spec.folds if folds is not None and f not in folds]:
            try:
                loaded += load_dataset(spec.name, root, [other], allow_outside, **(options or {}))
            except InputError as e:  # e.g. a copy with only some split files: only the asked folds must be there
                log.debug("%s fold %s not read: %s", spec.name, other, e)
        for data in sorted(loaded, key=lambda d: d.info.get("fold") or 0):
            ann = data.info.get("annotations")
            source = {"lists": data.info.get("lists", "official"), "file": str(ann) if ann else str(data.root),
                      "sha256": file_sha256(Path(ann)) if ann and Path(ann).is_file() else None}
            info = {k: v for k, v in data.info.items() if k not in ("per_class", "annotations")}
            out.append(make_test_set(spec.name, data.info.get("fold"), data.kind, list(data.classes),
                                     [it["path"] for it in data.items], [int(it["label"]) for it in data.items],
                                     source, info))
    return out
