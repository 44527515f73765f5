"""The paper's pictures, from data already on disk: t-SNE before/after the head, per-class recall bars, training
curves, ablation bars, and confusion matrices.

Every function draws with matplotlib's Agg backend (no display needed) and writes one PNG atomically.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

# Okabe-Ito, then tab10: distinguishable for colour-blind readers, 11 classes at most.
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
          "#8c564b", "#7f7f7f", "#bcbd22", "#17becf"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "axes.spines.top": False,
        "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25, "figure.dpi": 110, "savefig.dpi": 110,
        "savefig.bbox": "tight",
    })
    return plt


def _save(fig, path: str | Path) -> Path:
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, facecolor="white")
    plt.close(fig)
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------------------ t-SNE
def plot_confusion(cm: np.ndarray | list, classes: list[str], title: str, path: str | Path,
                   note: str | None = None) -> Path:
    """Row-normalized confusion matrix as a PNG (counts in each cell). ``note`` (e.g. the random-weights warning) is
    drawn under the title and kept in the PNG's metadata ("Comment"), so the file says it when seen alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n), dpi=100)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), [c[:10] for c in classes], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), [c[:10] for c in classes], fontsize=8)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title if note is None else f"{title}\n{note.split(':')[0]}", fontsize=9,
                 color="black" if note is None else "#b00020")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, metadata={"Comment": note} if note else None)
    plt.close(fig)
    tmp.replace(path)
    return path


def tsne_2d(features: np.ndarray, seed: int = 0, perplexity: float | None = None) -> np.ndarray:
    """(N,D) features -> (N,2) t-SNE coordinates (scikit-learn; PCA init; perplexity min(30, (N-1)/3)).

    Up to 500 points the exact gradient is used: on a few busy cores it is several times faster than Barnes-Hut,
    whose OpenMP threads then mostly wait for each other.
    """
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float32)
    if len(x) < 5:
        raise InputError(f"t-SNE needs at least 5 points, got {len(x)}")
    perplexity = perplexity or float(min(30.0, (len(x) - 1) / 3))
    method = "exact" if len(x) <= 500 else "barnes_hut"
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, method=method).fit_transform(x)


def plot_tsne(panels: Sequence[tuple[str, np.ndarray]], labels: Sequence[int], classes: list[str], title: str,
              path: str | Path) -> Path:
    """Side-by-side scatter plots of (N,2) coordinates, one colour per class (the paper's FERPlus figure)."""
    plt = _pyplot()
    labels = np.asarray(labels)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (name, xy) in zip(axes[0], panels):
        xy = np.asarray(xy)
        for k, c in enumerate(classes):
            m = labels == k
            if m.any():
                ax.scatter(xy[m, 0], xy[m, 1], s=9, alpha=0.8, color=COLORS[k % len(COLORS)], label=c, linewidths=0)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 8), frameon=False, markerscale=2,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------ recall bars
def plot_recall_bars(recalls: dict[str, Sequence[float | None]], classes: list[str], title: str,
                     path: str | Path) -> Path:
    """Grouped bars: per class (x), one bar per model (``recalls``: model -> (C,) recall in [0,1] or None)."""
    plt = _pyplot()
    n, k = len(classes), max(1, len(recalls))
    width = 0.8 / k
    fig, ax = plt.subplots(figsize=(max(4.5, 0.75 * n + 1.5), 3.0))
    for j, (name, rec) in enumerate(recalls.items()):
        vals = [np.nan if r is None else 100 * float(r) for r in rec]
        ax.bar(np.arange(n) + (j - (k - 1) / 2) * width, vals, width, label=name, color=COLORS[j % len(COLORS)])
    ax.set_xticks(range(n), classes, rotation=30, ha="right")
    ax.set_ylabel("recall (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(frameon=False, ncol=min(k, 4), loc="upper right")
    ax.grid(axis="x", visible=False)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------ training curves
def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(y) < window:
        return y
    kernel = np.ones(window) / window
    head = np.convolve(y, kernel, mode="valid")
    return np.concatenate([np.full(window - 1, np.nan), head])


def plot_training_curves(runs: dict[str, list[list[dict]]], title: str, path: str | Path) -> Path:
    """Loss and in-batch retrieval accuracy per step: one line per run (mean over its seeds, band = min..max).

    ``runs``: run label -> one history per seed (the dicts :func:`expclip.train.train_head` appends: step, loss,
    acc). Curves longer than 60 steps are smoothed with a moving average (window = steps / 30).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.2))
    for j, (name, hists) in enumerate(runs.items()):
        n = min(len(h) for h in hists)
        if n == 0:
            continue
        steps = np.array([r["step"] for r in hists[0][:n]])
        window = max(1, n // 30) if n > 60 else 1
        for ax, key in zip(axes, ("loss", "acc")):
            y = np.array([[r[key] for r in h[:n]] for h in hists], dtype=float) * (100 if key == "acc" else 1)
            ys = np.stack([_smooth(row, window) for row in y])
            color = COLORS[j % len(COLORS)]
            ax.plot(steps, ys.mean(0), color=color, lw=1.4, label=f"{name} ({len(hists)} seed{'s' * (len(hists) > 1)})")
            if len(hists) > 1:
                ax.fill_between(steps, ys.min(0), ys.max(0), color=color, alpha=0.18, lw=0)
    axes[0].set_ylabel("contrastive loss")
    axes[1].set_ylabel("in-batch retrieval accuracy (%)")
    for ax in axes:
        ax.set_xlabel("step")
    axes[1].legend(frameon=False, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------ ablation bars
def plot_table_bars(table: dict, path: str | Path, metric: str | None = None) -> Path:
    """Grouped bars of a table (see :mod:`expclip.report.tables`): one group per column, one bar per score row."""
    plt = _pyplot()
    metric = metric or table["metrics"][0]
    rows = [r for r in table["rows"] if r["kind"] == "score"] or table["rows"]
    cols = table["columns"]
    k = max(1, len(rows))
    width = 0.8 / k
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(cols) * max(1.0, k / 4) + 2), 3.0))
    for j, r in enumerate(rows):
        vals = [r["values"].get(c, {}).get(metric) for c in cols]
        vals = [math.nan if v is None else v for v in vals]  # e.g. no silhouette for a one-class dataset
        errs = [r["values"].get(c, {}).get(f"{metric}_std") or 0.0 for c in cols]
        label = f"{r['section']} · {r['label']}" if r.get("section") else r["label"]
        ax.bar(np.arange(len(cols)) + (j - (k - 1) / 2) * width, vals, width, yerr=errs, capsize=2, label=label,
               color=COLORS[j % len(COLORS)], error_kw={"lw": 0.8})
    ax.set_xticks(range(len(cols)), [table["column_titles"].get(c, c) for c in cols])
    ax.set_ylabel(_metric_title(metric) + ("" if metric == "silhouette" else " (%)"))
    ax.axhline(0, color="black", lw=0.6)
    ax.set_title(table["title"])
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="x", visible=False)
    return _save(fig, path)


def _metric_title(metric: str) -> str:
    from .tables import METRIC_TITLES

    return METRIC_TITLES.get(metric, metric)
