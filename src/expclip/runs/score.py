"""Score any system's per-sample predictions on the paper's protocol (``expclip score``): rows of a prediction file
matched to a benchmark's test lists (:mod:`.testsets`) by id, answers read by :mod:`.answers`, UAR / WAR per fold
-> result cells in the format of ``expclip eval`` (plus ``source``, ``test_list``, ``rules`` and ``counts``).

Two rules, recorded in every cell: an answer outside the label set counts as wrong (``outside="wrong"``, default)
or is left out (``"drop"``); a test sample without a prediction is left out of UAR / WAR (``missing="drop"``,
default) or counts as wrong (``"wrong"``). Samples counted wrong without a predicted class have no column in the
confusion matrix: they are in the cell's ``counts["wrong_outside_confusion"]`` (per true class).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..files import versions
from ..metrics import summarize
from ..prompts import OWN_PREDICTIONS
from .answers import MISSING_RULES, OUTSIDE, OUTSIDE_RULES, PredictionFile, answer_class, index_rule
from .testsets import ID_RULES, TestSet

log = logging.getLogger(__name__)


@dataclass
class Matched:
    """The rows of a prediction file matched to the test sets: per set, item index -> (class or OUTSIDE, form)."""

    answers: list[dict[int, tuple[int, str, int]]]  # item -> (class index or OUTSIDE, form, line)
    unmatched: int
    unmatched_examples: list[str]


def match(pf: PredictionFile, sets: list[TestSet]) -> Matched:
    """Match every row by the dataset's id rule; a sample answered twice is an InputError naming both lines."""
    rule = ID_RULES[sets[0].dataset]
    where: dict[str, list[tuple[int, int]]] = {}  # id -> (set, item) of every fold that holds it
    for s, ts in enumerate(sets):
        for i, sample in enumerate(ts.ids):
            where.setdefault(sample.lower(), []).append((s, i))
    answers: list[dict[int, tuple[int, str, int]]] = [{} for _ in sets]
    first_line: dict[tuple[int, int], int] = {}
    unmatched, examples = 0, []
    for row in pf.rows:
        key = rule.key(row.id)
        hits = where.get(key.lower(), []) if key else []
        if not hits:
            unmatched += 1
            if len(examples) < 5:
                examples.append(row.id)
        for hit in hits:
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
        f"{sets[0].ids[:3]}. If the ids are in another column, name it with --id-column "
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
    # The extra class (answers outside the label set) has no true sample, so uar() leaves it out, as balanced
    # accuracy does; per-class recall is named for the dataset's classes only, and the matrix cut to them.
    s = summarize(truth, pred, n_cls + 1, ts.classes)
    cm = np.asarray(s["confusion_matrix"])  # (C+1, C+1)
    n_test, predicted = len(ts.labels), len(answers)
    return {
        "model": name, "group": name, "seed": None, "head_dir": None, "dataset": ts.dataset, "fold": ts.fold,
        "kind": ts.kind, "classes": ts.classes, "prompt_set": OWN_PREDICTIONS,
        "uar": s["uar"], "war": s["war"], "per_class_recall": s["per_class_recall"],
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
    skipped_folds: list[int]  # folds with no answer in the file (not scored)
    unmatched: int  # rows whose id is in no fold of the test list
    unmatched_examples: list[str]
    other_fold_rows: int  # rows answering folds that were not asked for


def score_predictions(pf: PredictionFile, sets: list[TestSet], name: str, outside: str = "wrong",
                      missing: str = "drop", strict: bool = False, folds: list[int] | None = None) -> ScoreRun:
    """Cells of ``pf`` on the test sets of ``folds`` (default: every fold the file answers).

    ``sets``: every fold's (:func:`load_test_sets`). A fold asked for that the file does not answer is an error
    naming those it does; ``strict``: any missing sample or outside answer is an error.
    """
    if name.strip().lower() == "clip" or not name.strip():
        raise InputError(f"--name {name!r}: choose a name for the scored system ('CLIP' is the baseline's row)")
    m = match(pf, sets)
    answered = [ts.fold for ts, a in zip(sets, m.answers) if a]
    chosen = [k for k, ts in enumerate(sets) if folds is None or ts.fold in folds]
    if not answered:
        what = f"the {sets[0].dataset} test list" + (f" (fold {', '.join(map(str, folds))})" if folds else "")
        raise no_match_error(pf, [sets[k] for k in chosen], what)
    empty = [sets[k].fold for k in chosen if not m.answers[k]]
    if folds is not None and empty:
        raise InputError(f"{pf.path}: no id matches {sets[0].dataset} fold(s) {empty}; the file answers fold(s) "
                         f"{answered}: score those with --fold")
    cells = []
    for k in chosen:
        ts, answers = sets[k], m.answers[k]
        if not answers:
            continue
        cell = score_test_set(ts, answers, name, outside, missing)
        cell["source"] = pf.describe()
        cell["counts"].update(file_rows=len(pf.rows), unmatched_rows=m.unmatched,
                              unmatched_examples=m.unmatched_examples)
        if strict:
            _check_strict(pf, ts, answers, cell)
        cells.append(cell)
    other = sum(len(m.answers[k]) for k in range(len(sets)) if k not in chosen)
    return ScoreRun(cells, empty, m.unmatched, m.unmatched_examples, other)


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
