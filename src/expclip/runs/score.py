"""Score any system's per-sample predictions on the paper's protocol (``expclip score``): the test list of a
benchmark, its ids, the label rules, UAR / WAR per fold -> result cells in the format of ``expclip eval``.

Test lists: the reference's lists shipped with the package for the video sets (DFEW, FERV39k, MAFW, AFEW), or the
native annotation files of a download (``root``; always for the static sets: RAF-DB, AffectNet-7/-8, FERPlus).
Ids match by the dataset's own naming (:data:`ID_RULES`): the last part(s) of whatever path or name the file
holds, without a file extension, are compared with the test list's, case ignored.

Two rules, recorded in every cell: an answer outside the label set counts as wrong (``outside="wrong"``, default)
or is left out (``"drop"``); a test sample without a prediction is left out of UAR / WAR (``missing="drop"``,
default) or counts as wrong (``"wrong"``). Samples counted wrong without a predicted class have no column in the
confusion matrix: they are in the cell's ``counts["wrong_outside_confusion"]`` (per true class).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ..data.formats.generic import parse_list, reference_list_path
from ..data.images import IMAGE_EXTENSIONS
from ..data.registry import PAPER_DATASETS, get_spec, load_dataset
from ..data.video import VIDEO_EXTENSIONS
from ..errors import InputError
from ..files import versions
from ..labels import classes_for
from ..metrics import confusion_matrix, per_class_recall, uar, war
from ..prompts import OWN_PREDICTIONS
from .answers import OUTSIDE, PredictionFile, answer_class, file_sha256, index_rule

log = logging.getLogger(__name__)

OUTSIDE_RULES = ("wrong", "drop")
MISSING_RULES = ("drop", "wrong")
_EXTENSIONS = {e.lower() for e in (*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS)}


@dataclass(frozen=True)
class IdRule:
    """How a dataset names its samples: the last ``depth`` path parts, a file extension dropped, ``prefix`` /
    ``suffix`` (regular expressions) removed from the last part, digits zero-padded to ``pad``."""

    depth: int
    example: str
    what: str
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


_AFFECTNET = IdRule(1, "<image file name>", "the image file name (subDirectory_filePath's last part, or the 2021 "
                    "release's <id>), extension optional")
ID_RULES: dict[str, IdRule] = {
    "RAFDB": IdRule(1, "test_0001", "the image name of list_patition_label.txt, e.g. 'test_0001' ('test_0001.jpg', "
                    "'test_0001_aligned.jpg' and paths ending in them work too)", suffix=r"_aligned$"),
    "AffectNet7": _AFFECTNET,
    "AffectNet8": _AFFECTNET,
    "FERPlus": IdRule(1, "fer0032220", "the FERPlus image name, e.g. 'fer0032220' or 'fer0032220.png'"),
    "DFEW": IdRule(1, "00001", "the 5-digit clip id (video_name), e.g. '00001', '1', '00001.mp4' or a path ending in "
                   "it", pad=5),
    "FERV39k": IdRule(3, "Action/Happy/0015", "Scene/Emotion/NNNN, e.g. 'Action/Happy/0015' (or a longer path "
                      "ending in it)", pad=4),
    "MAFW": IdRule(1, "00025", "the 5-digit clip id, e.g. '00025', '00025.mp4' or a path ending in it", pad=5),
    "AFEW": IdRule(1, "002916200", "the 9-digit clip name, e.g. '002916200', '002916200.avi' or the face-frame "
                   "folder '1_1_002916200'", pad=9, prefix=r"^\d+_\d+_"),
}
REFERENCE_LIST_NAMES = {"DFEW": "DFEW_set_{fold}_test.txt", "MAFW": "MAFW_set_{fold}_test.txt",
                        "FERV39k": "FERV39k_test.txt", "AFEW": "AFEW_validation.txt"}


@dataclass
class TestSet:
    """One test list (a fold): sample ids (as the dataset writes them) and label indices into ``classes``."""

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
    the download's native annotation files read by the dataset's reader (``options`` go to it)."""
    spec = scoreable_spec(dataset)
    fold_list = check_folds(spec.name, folds)
    rule = ID_RULES[spec.name]
    if root is None:
        if spec.kind != "video":
            raise InputError(f"--dataset {spec.name} needs --root: its test list is read from the download's own "
                             f"annotation files ({spec.download})")
        if options:
            raise InputError("--option applies to the files of a download: give --root too, or drop --option")
        out = []
        for fold in fold_list:
            lf = parse_list(".", reference_list_path(REFERENCE_LIST_NAMES[spec.name].format(fold=fold)),
                            spec.num_classes)
            classes = classes_for(lf.num_classes)
            out.append(TestSet(spec.name, fold, spec.kind, classes, [r.fields["path"] for r in lf.rows],
                               [classes.index(r.cls) for r in lf.rows],
                               {"lists": "reference", "file": lf.path.name, "sha256": file_sha256(lf.path)},
                               lf.info(lists="reference", fold=fold)))
    else:
        out = []
        for data in load_dataset(spec.name, root, folds if folds is not None else None, allow_outside,
                                 **(options or {})):
            ann = data.info.get("annotations")
            source = {"lists": data.info.get("lists", "official"), "file": str(ann) if ann else str(data.root),
                      "sha256": file_sha256(Path(ann)) if ann and Path(ann).is_file() else None}
            info = {k: v for k, v in data.info.items() if k not in ("per_class", "annotations")}
            out.append(TestSet(spec.name, data.info.get("fold"), data.kind, list(data.classes),
                               [it["path"] for it in data.items], [int(it["label"]) for it in data.items], source,
                               info))
    for ts in out:  # the ids of one list must be unique, or a prediction could not say which sample it is for
        seen: dict[str, str] = {}
        for path in ts.ids:
            k = (rule.key(path) or path).lower()
            if k in seen:
                raise InputError(f"{ts.name()}: the test items {seen[k]!r} and {path!r} both have the id {k!r}; "
                                 "expclip score cannot tell their predictions apart")
            seen[k] = path
    return out


@dataclass
class Matched:
    """The rows of a prediction file matched to the test sets: per set, item index -> (class or OUTSIDE, form)."""

    answers: list[dict[int, tuple[int, str, int]]]  # item -> (class index or OUTSIDE, form, line)
    unmatched: int
    unmatched_examples: list[str]


def match(pf: PredictionFile, sets: list[TestSet]) -> Matched:
    """Match every row by the dataset's id rule; a sample answered twice is an InputError naming both lines."""
    rule = ID_RULES[sets[0].dataset]
    where: dict[str, tuple[int, int]] = {}
    for s, ts in enumerate(sets):
        for i, path in enumerate(ts.ids):
            where[(rule.key(path) or path).lower()] = (s, i)
    answers: list[dict[int, tuple[int, str, int]]] = [{} for _ in sets]
    first_line: dict[tuple[int, int], int] = {}
    unmatched, examples = 0, []
    for row in pf.rows:
        key = rule.key(row.id)
        hit = where.get(key.lower()) if key else None
        if hit is None:
            unmatched += 1
            if len(examples) < 5:
                examples.append(row.id)
            continue
        if hit in first_line:
            ts = sets[hit[0]]
            raise InputError(f"{pf.path}, line {row.line}: {ts.name()} sample {ts.ids[hit[1]]!r} already has a "
                             f"prediction on line {first_line[hit]}; keep one row per sample")
        first_line[hit] = row.line
        cls, form = answer_class(row.label, sets[hit[0]].classes)
        answers[hit[0]][hit[1]] = (cls, form, row.line)
    return Matched(answers, unmatched, examples)


def no_match_error(pf: PredictionFile, sets: list[TestSet], what: str) -> InputError:
    rule = ID_RULES[sets[0].dataset]
    ids = [r.id for r in pf.rows[:3]]
    read = [rule.key(i) for i in ids]
    return InputError(
        f"{pf.path}: none of its {len(pf.rows)} ids matches {what} ({sum(len(s.ids) for s in sets)} samples); its ids "
        f"look like {ids} (read as {read}), {sets[0].dataset} ids are {rule.what}; test ids: "
        f"{[rule.key(i) for i in sets[0].ids[:3]]}. If the ids are in another column, name it with --id-column "
        f"(columns: {pf.columns[:10]})")


def score_test_set(ts: TestSet, answers: dict[int, tuple[int, str, int]], name: str, outside: str = "wrong",
                   missing: str = "drop") -> dict:
    """The result cell of one test set from its matched answers (pure: no file is read).

    UAR / WAR follow the rules; ``confusion_matrix`` (C, C) holds the samples with a predicted class, and
    ``counts["wrong_outside_confusion"]`` (C,) the samples counted wrong without one.
    """
    if outside not in OUTSIDE_RULES or missing not in MISSING_RULES:
        raise InputError(f"rules: outside must be one of {OUTSIDE_RULES}, missing one of {MISSING_RULES}")
    n_cls = len(ts.classes)
    truth, pred = [], []  # pred == n_cls: counted wrong, no class (an extra column, cut off below)
    outside_pc, missing_pc = np.zeros(n_cls, int), np.zeros(n_cls, int)
    forms: Counter = Counter()
    for i, label in enumerate(ts.labels):
        if i not in answers:
            missing_pc[label] += 1
            if missing == "wrong":
                truth.append(label)
                pred.append(n_cls)
            continue
        cls, form, _ = answers[i]
        forms[form] += 1
        if cls == OUTSIDE:
            outside_pc[label] += 1
            if outside == "drop":
                continue
            cls = n_cls
        truth.append(label)
        pred.append(cls)
    if not truth:
        raise InputError(f"{ts.name()}: nothing left to score (every answer is outside the label set and --outside "
                         "drop leaves them out)")
    cm = confusion_matrix(truth, pred, n_cls + 1)
    recall = per_class_recall(truth, pred, n_cls + 1)[:n_cls]
    n_test, predicted = len(ts.labels), len(answers)
    return {
        "model": name, "group": name, "seed": None, "head_dir": None, "dataset": ts.dataset, "fold": ts.fold,
        "kind": ts.kind, "classes": ts.classes, "prompt_set": OWN_PREDICTIONS,
        # the extra class has no true sample, so uar() leaves it out, as balanced accuracy does
        "uar": uar(truth, pred, n_cls + 1), "war": war(truth, pred, n_cls + 1),
        "per_class_recall": {c: (None if np.isnan(r) else float(r)) for c, r in zip(ts.classes, recall)},
        "confusion_matrix": cm[:n_cls, :n_cls].tolist(), "num_samples": len(truth),
        "data_info": ts.info, "test_list": ts.source, "sampling": None, "clips": None, "num_items": n_test,
        "num_failed": 0, "backbone": None, "preprocessing": None, "store": None, "random_weights": False,
        "rules": {"outside": outside, "missing": missing, "ranked": "first label counts",
                  "labels": f"class names and synonyms; indices: {index_rule(ts.classes)}",
                  "ids": ID_RULES[ts.dataset].what},
        "counts": {"test": n_test, "predicted": predicted, "missing": n_test - predicted,
                   "outside": int(outside_pc.sum()), "scored": len(truth), "scored_fraction": len(truth) / n_test,
                   "outside_per_class": outside_pc.tolist(), "missing_per_class": missing_pc.tolist(),
                   "wrong_outside_confusion": cm[:n_cls, n_cls].tolist(), "label_forms": dict(sorted(forms.items()))},
        "versions": versions(),
    }


@dataclass
class ScoreRun:
    """What :func:`score_predictions` made: one cell per scored fold, and what the user should be told."""

    cells: list[dict]
    skipped_folds: list[int]
    unmatched: int
    unmatched_examples: list[str]


def score_predictions(pf: PredictionFile, sets: list[TestSet], name: str, outside: str = "wrong",
                      missing: str = "drop", strict: bool = False, folds_given: bool = False) -> ScoreRun:
    """Cells of ``pf`` on every test set. A fold none of whose ids is in the file is skipped (an error when it was
    asked for: ``folds_given``); ``strict``: any missing sample or outside answer is an error."""
    if name.strip().lower() == "clip" or not name.strip():
        raise InputError(f"--name {name!r}: choose a name for the scored system ('CLIP' is the baseline's row)")
    m = match(pf, sets)
    what = f"the {sets[0].dataset} test list" + (f" (folds {[s.fold for s in sets]})" if len(sets) > 1 else
                                                  f" fold {sets[0].fold}" if sets[0].fold else "")
    if not any(m.answers):
        raise no_match_error(pf, sets, what)
    empty = [ts.fold for ts, a in zip(sets, m.answers) if not a]
    if empty and folds_given:
        raise InputError(f"{pf.path}: no id matches {sets[0].dataset} fold(s) {empty}; the file answers fold(s) "
                         f"{[ts.fold for ts, a in zip(sets, m.answers) if a]}: score those with --fold")
    cells = []
    for ts, answers in zip(sets, m.answers):
        if not answers:
            continue
        cell = score_test_set(ts, answers, name, outside, missing)
        cell["source"] = pf.describe()
        cell["counts"].update(file_rows=len(pf.rows), unmatched_rows=m.unmatched,
                              unmatched_examples=m.unmatched_examples)
        if strict:
            _check_strict(pf, ts, answers, cell)
        cells.append(cell)
    return ScoreRun(cells, empty, m.unmatched, m.unmatched_examples)


def _check_strict(pf: PredictionFile, ts: TestSet, answers: dict, cell: dict) -> None:
    c = cell["counts"]
    if c["missing"]:
        ids = [ts.ids[i] for i in range(len(ts.ids)) if i not in answers][:3]
        raise InputError(f"--strict: {c['missing']} of {c['test']} {ts.name()} samples have no prediction in "
                         f"{pf.path} (e.g. {ids}); drop --strict to leave them out, or --missing wrong")
    if c["outside"]:
        lines = sorted(line for cls, _, line in answers.values() if cls == OUTSIDE)[:3]
        raise InputError(f"--strict: {c['outside']} answers in {pf.path} are outside the {len(ts.classes)} classes "
                         f"of {ts.dataset} (lines {lines}); drop --strict to count them wrong, or --outside drop")


def merge_cells(existing: list[dict], new: list[dict]) -> tuple[list[dict], int]:
    """``existing`` cells of an output folder with ``new`` scored cells in: earlier scores of the same system on
    the same dataset are replaced (every fold: a rescore never mixes two files). A system name already used by a
    model of ``expclip eval`` there is an InputError. Returns (cells, number replaced)."""
    names = {(c["group"], c["dataset"]) for c in new}
    clash = sorted({c["group"] for c in existing if c["group"] in {g for g, _ in names}
                    and c.get("prompt_set") != OWN_PREDICTIONS})
    if clash:
        raise InputError(f"--name {clash[0]!r} is a model evaluated by expclip eval in this --out folder; choose "
                         "another --name")
    kept = [c for c in existing if (c["group"], c["dataset"]) not in names]
    return kept + new, len(existing) - len(kept)
