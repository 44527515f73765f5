"""Metrics of the protocol: WAR (accuracy), UAR (mean per-class recall), per-class recall, confusion matrix.

Inputs are integer class indices (sequences, numpy arrays or tensors). Classes with no true sample are left out
of UAR (scikit-learn's ``balanced_accuracy_score`` rule); their recall is reported as NaN.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import InputError

ArrayLike = Sequence[int] | np.ndarray


def _arr(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 1:
        raise InputError(f"labels must be 1-D, got shape {a.shape}")
    return a.astype(np.int64)


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """(C,C) counts, rows = true class, columns = predicted class."""
    t, p = _arr(y_true), _arr(y_pred)
    if len(t) != len(p):
        raise InputError(f"{len(t)} true labels but {len(p)} predictions")
    c = num_classes if num_classes is not None else int(max(t.max(initial=-1), p.max(initial=-1)) + 1)
    if len(t) and (t.min() < 0 or p.min() < 0 or t.max() >= c or p.max() >= c):
        raise InputError(f"labels must lie in 0..{c - 1}")
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def per_class_recall(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """(C,) recall of each class; NaN for a class with no true sample."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def uar(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> float:
    """Unweighted average recall: mean of the diagonal of the row-normalized confusion matrix, in [0,1]."""
    r = per_class_recall(y_true, y_pred, num_classes)
    r = r[~np.isnan(r)]
    return float(r.mean()) if len(r) else float("nan")


def war(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> float:
    """Weighted average recall = accuracy, in [0,1]."""
    t, p = _arr(y_true), _arr(y_pred)
    if len(t) != len(p):
        raise InputError(f"{len(t)} true labels but {len(p)} predictions")
    return float((t == p).mean()) if len(t) else float("nan")


def summarize(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int, classes: list[str] | None = None) -> dict:
    """All metrics as a JSON-able dict (UAR/WAR as fractions)."""
    rec = per_class_recall(y_true, y_pred, num_classes)
    names = classes or [str(i) for i in range(num_classes)]
    return {
        "uar": uar(y_true, y_pred, num_classes),
        "war": war(y_true, y_pred, num_classes),
        "per_class_recall": {n: (None if np.isnan(r) else float(r)) for n, r in zip(names, rec)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, num_classes).tolist(),
        "num_samples": int(len(_arr(y_true))),
    }
