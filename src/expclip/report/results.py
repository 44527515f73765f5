"""Results on disk: one JSON per cell, a merged CSV, a Markdown table, confusion-matrix PNGs.

A "cell" is one (model, dataset, fold, prompt set) evaluation. Seeds of one model group are aggregated as
mean ± std (after averaging folds within each seed).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np

from ..data.registry import PAPER_DATASETS, display_name
from ..files import atomic_write_bytes, atomic_write_json, slug
from ..prompts import PAPER_PROMPT_SETS, prompt_set_display_name
from .figures import plot_confusion

log = logging.getLogger(__name__)


def cell_filename(r: dict) -> str:
    fold = f"__fold{r['fold']}" if r.get("fold") is not None else ""
    seed = f"__seed{r['seed']}" if r.get("seed") is not None else ""
    return f"{slug(r['group'])}{seed}__{slug(r['dataset'])}{fold}__{slug(r['prompt_set'])}.json"


def aggregate(results: Iterable[dict]) -> list[dict]:
    """Rows of (group, dataset, prompt_set) with UAR/WAR as percentages: mean ± std over seeds, folds averaged.

    Each row also carries the summed confusion matrix and the number of seeds and folds.
    """
    by_cell: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))
    meta: dict[tuple, dict] = {}
    for r in results:
        k = (r["group"], r["dataset"], r["prompt_set"])
        by_cell[k][r.get("seed")].append(r)
        meta.setdefault(k, {"classes": r["classes"], "model": r["model"], "cm": None, "kind": r.get("kind", "image")})
        cm = np.asarray(r["confusion_matrix"])
        meta[k]["cm"] = cm if meta[k]["cm"] is None else meta[k]["cm"] + cm
    rows = []
    for k, seeds in by_cell.items():
        uars = [float(np.mean([c["uar"] for c in cells])) * 100 for cells in seeds.values()]
        wars = [float(np.mean([c["war"] for c in cells])) * 100 for cells in seeds.values()]
        folds = max(len(c) for c in seeds.values())
        first = next(iter(seeds.values()))  # every seed scores the same items; folds add up
        rows.append({
            "group": k[0], "model": meta[k]["model"], "dataset": k[1], "prompt_set": k[2],
            "uar": float(np.mean(uars)), "uar_std": float(np.std(uars)) if len(uars) > 1 else 0.0,
            "war": float(np.mean(wars)), "war_std": float(np.std(wars)) if len(wars) > 1 else 0.0,
            "seeds": len(seeds), "folds": folds, "classes": meta[k]["classes"], "kind": meta[k]["kind"],
            "num_samples": sum(int(c.get("num_samples", 0)) for c in first),
            "num_failed": sum(int(c.get("num_failed", 0)) for c in first),
            "confusion_matrix": meta[k]["cm"].tolist(),
        })
    order = {p: i for i, p in enumerate(PAPER_PROMPT_SETS)}
    rows.sort(key=lambda r: (r["dataset"], r["group"] != "CLIP", r["group"], order.get(r["prompt_set"], 99), r["prompt_set"]))
    return rows


def fmt(mean: float, std: float, seeds: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if seeds > 1 else f"{mean:.2f}"


def in_paper_order(datasets) -> list[str]:
    """Dataset names in the paper's column order, others after them alphabetically."""
    order = {d: i for i, d in enumerate(PAPER_DATASETS)}
    return sorted(datasets, key=lambda d: (order.get(d, len(order)), d))


def markdown_table(rows: list[dict], title: str | None = None) -> str:
    """One table per dataset: a row per model group, a UAR/WAR column pair per prompt set."""
    out = [f"# {title}", ""] if title else []
    for dataset in in_paper_order({r["dataset"] for r in rows}):
        drows = [r for r in rows if r["dataset"] == dataset]
        psets = list(dict.fromkeys(r["prompt_set"] for r in drows))
        groups = list(dict.fromkeys(r["group"] for r in drows))
        seeds = max(r["seeds"] for r in drows)
        out += [f"## {dataset}", "", "UAR / WAR (%)" + (f", mean ± std over {seeds} seeds" if seeds > 1 else ""), ""]
        out.append("| model | " + " | ".join(prompt_set_display_name(p) for p in psets) + " |")
        out.append("|---|" + "---|" * len(psets))
        for g in groups:
            cells = []
            for p in psets:
                r = next((x for x in drows if x["group"] == g and x["prompt_set"] == p), None)
                cells.append("–" if r is None else f"{fmt(r['uar'], r['uar_std'], r['seeds'])} / "
                             f"{fmt(r['war'], r['war_std'], r['seeds'])}")
            out.append(f"| {g} | " + " | ".join(cells) + " |")
        failed = max(r.get("num_failed", 0) for r in drows)
        if failed:
            scored = min(r.get("num_samples", 0) for r in drows)
            out += ["", f"Scored {scored} items; {failed} could not be read and were skipped (listed in the feature "
                    "store's meta.json)."]
        out.append("")
    return "\n".join(out)


def paper_tables(rows: list[dict], title: str | None = None) -> str:
    """The layout of the paper's Tables 1 and 2: per prompt set, a row per model and a UAR / WAR column per dataset.

    Static-image and video datasets get a table each; datasets in the paper's column order first. Folds are
    averaged within a seed, and seeds shown as mean ± std (see :func:`aggregate`).
    """
    out = [f"# {title}", ""] if title else []
    seeds = max((r["seeds"] for r in rows), default=1)
    folds = {r["dataset"]: r["folds"] for r in rows}
    for ps in dict.fromkeys(r["prompt_set"] for r in rows):
        prow = [r for r in rows if r["prompt_set"] == ps]
        out += [f"## Prompts: {prompt_set_display_name(ps)}", ""]
        for kind, label in (("image", "Static images"), ("video", "Videos")):
            krows = [r for r in prow if r["kind"] == kind]
            if not krows:
                continue
            datasets = in_paper_order({r["dataset"] for r in krows})
            out += [f"{label} — UAR / WAR (%)" + (f", mean ± std over {seeds} seeds" if seeds > 1 else ""), ""]
            out.append("| model | " + " | ".join(display_name(d) for d in datasets) + " |")
            out.append("|---|" + "---|" * len(datasets))
            for g in dict.fromkeys(r["group"] for r in krows):
                cells = []
                for d in datasets:
                    r = next((x for x in krows if x["group"] == g and x["dataset"] == d), None)
                    cells.append("–" if r is None else f"{fmt(r['uar'], r['uar_std'], r['seeds'])} / "
                                 f"{fmt(r['war'], r['war_std'], r['seeds'])}")
                out.append(f"| {g} | " + " | ".join(cells) + " |")
            out.append("")
    multi = {d: n for d, n in folds.items() if n > 1}
    if multi:
        out += ["Folds averaged: " + ", ".join(f"{display_name(d)} {n}" for d, n in sorted(multi.items())), ""]
    return "\n".join(out)


def write_results(results: list[dict], out_dir: str | Path, title: str = "Zero-shot results",
                  banner: str | None = None, confusion: bool = True, paper_layout: bool = False) -> dict[str, Path]:
    """Write every cell's JSON, ``results.csv``, ``cells.csv``, ``results.md`` and confusion PNGs under ``out_dir``.

    ``paper_layout``: results.md opens with :func:`paper_tables` (datasets as columns), then the per-dataset tables.
    """
    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    for r in results:
        atomic_write_json(out / "cells" / cell_filename(r), r)
    rows = aggregate(results)
    fields = ["dataset", "group", "model", "prompt_set", "uar", "uar_std", "war", "war_std", "seeds", "folds",
              "num_samples", "num_failed"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for r in rows:
        writer.writerow([f"{r[f]:.4f}" if isinstance(r[f], float) else r[f] for f in fields])
    atomic_write_bytes(out / "results.csv", buf.getvalue().encode())
    atomic_write_bytes(out / "cells.csv", _cells_csv(results).encode())
    md = markdown_table(rows, title)
    if paper_layout:
        md = paper_tables(rows, title) + "\n" + markdown_table(rows, "Per dataset: every prompt set")
    if banner:
        md = f"> **{banner}**\n\n" + md
    atomic_write_bytes(out / "results.md", md.encode())
    atomic_write_json(out / "summary.json", {"rows": rows, "banner": banner})
    paths = {"csv": out / "results.csv", "cells_csv": out / "cells.csv", "markdown": out / "results.md",
             "summary": out / "summary.json"}
    if confusion:
        for r in rows:
            name = f"{slug(r['group'])}__{slug(r['dataset'])}__{slug(r['prompt_set'])}.png"
            plot_confusion(r["confusion_matrix"], r["classes"], f"{r['group']} — {r['dataset']} — "
                           f"{prompt_set_display_name(r['prompt_set'])}", out / "confusion" / name)
    log.info("results written to %s", out)
    return paths


def _cells_csv(results: list[dict]) -> str:
    """One line per cell (fold and seed kept apart), UAR/WAR in %."""
    fields = ["dataset", "fold", "group", "seed", "prompt_set", "uar", "war", "num_samples"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for r in sorted(results, key=lambda r: (r["dataset"], str(r.get("fold")), r["group"], str(r.get("seed")),
                                            r["prompt_set"])):
        writer.writerow([f"{r[f] * 100:.4f}" if f in ("uar", "war") else ("" if r.get(f) is None else r[f])
                         for f in fields])
    return buf.getvalue()


def read_cells(out_dir: str | Path) -> list[dict]:
    """Every cell JSON under ``out_dir/cells`` (to merge runs)."""
    return [json.loads(p.read_text()) for p in sorted(Path(out_dir, "cells").glob("*.json"))]
