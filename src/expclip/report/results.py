"""Results on disk: one JSON per cell, a merged CSV, a Markdown table, confusion-matrix PNGs.

A "cell" is one (model, dataset, fold, prompt set) evaluation. Seeds of one model group are aggregated as
mean ± std (after averaging folds within each seed).
"""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np

from ..data.registry import display_name
from ..files import atomic_write_bytes, atomic_write_json, slug
from ..prompts import OWN_PREDICTIONS, PAPER_PROMPT_SETS, prompt_set_display_name
from .figures import plot_confusion
from .inputs import read_cell
from .scored import notes_markdown, of_prompt_set
from .tables import dataset_order, new_table, per_seed, stat, table_markdown

log = logging.getLogger(__name__)


def cell_filename(r: dict) -> str:
    fold = f"__fold{r['fold']}" if r.get("fold") is not None else ""
    seed = f"__seed{r['seed']}" if r.get("seed") is not None else ""
    return f"{slug(r['group'])}{seed}__{slug(r['dataset'])}{fold}__{slug(r['prompt_set'])}.json"


def aggregate(results: Iterable[dict]) -> list[dict]:
    """Rows of (group, dataset, prompt_set) with UAR/WAR as percentages: mean ± std over seeds, folds averaged
    within each seed (:func:`~expclip.report.tables.per_seed`, the one aggregation of cells).

    Each row also carries the summed confusion matrix and the number of seeds and folds.
    """
    results = list(results)
    key = lambda r: (r["group"], r["dataset"], r["prompt_set"])  # noqa: E731
    stats = per_seed(results, key)
    cells: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))  # key -> seed -> cells (its folds)
    for r in results:
        cells[key(r)][r.get("seed")].append(r)
    rows = []
    for k, seeds in cells.items():
        some = next(iter(seeds.values()))
        first = some[0]
        cm = sum(np.asarray(c["confusion_matrix"]) for s in seeds.values() for c in s)
        rows.append({
            "group": k[0], "model": first["model"], "dataset": k[1], "prompt_set": k[2], **stat(stats[k]),
            "folds": max(len(s) for s in seeds.values()), "classes": first["classes"],
            "kind": first.get("kind", "image"),
            # every seed scores the same items; folds add up
            "num_samples": sum(int(c.get("num_samples", 0)) for c in some),
            "num_failed": sum(int(c.get("num_failed", 0)) for c in some),
            "confusion_matrix": np.asarray(cm).tolist(),
        })
    order = {p: i for i, p in enumerate(PAPER_PROMPT_SETS)}
    rows.sort(key=lambda r: (r["dataset"], r["group"] != "CLIP", r["group"], order.get(r["prompt_set"], 99), r["prompt_set"]))
    return rows


def _seeds_note(rows: list[dict]) -> str:
    seeds = max((r["seeds"] for r in rows), default=1)
    return "UAR / WAR (%)" + (f", mean ± std over {seeds} seeds" if seeds > 1 else "")


def _grid(rows: list[dict], column: str, columns: list[str], titles: dict[str, str]) -> dict:
    """Aggregated rows as a table (:mod:`~expclip.report.tables`): a row per group, ``column`` across."""
    table = new_table("", "", columns, titles)
    for g in dict.fromkeys(r["group"] for r in rows):
        table["rows"].append({"label": g, "section": None, "kind": "score",
                              "values": {r[column]: r for r in rows if r["group"] == g}})
    return table


def markdown_table(rows: list[dict], title: str | None = None) -> str:
    """One table per dataset: a row per model group, a UAR/WAR column pair per prompt set."""
    out = [f"# {title}", ""] if title else []
    for dataset in dataset_order(sorted({r["dataset"] for r in rows})):
        drows = [r for r in rows if r["dataset"] == dataset]
        psets = list(dict.fromkeys(r["prompt_set"] for r in drows))
        table = _grid(drows, "prompt_set", psets, {p: prompt_set_display_name(p) for p in psets})
        out += [f"## {dataset}", "", _seeds_note(drows), "", table_markdown(table, caption=False, bold=False)]
        failed = max(r.get("num_failed", 0) for r in drows)
        if failed:
            scored = min(r.get("num_samples", 0) for r in drows)
            out += [f"Scored {scored} items; {failed} could not be read and were skipped (listed in the feature "
                    "store's meta.json).", ""]
    return "\n".join(out)


def paper_tables(rows: list[dict], title: str | None = None) -> str:
    """The layout of the paper's Tables 1 and 2: per prompt set, a row per model and a UAR / WAR column per dataset.

    Static-image and video datasets get a table each; datasets in the paper's column order first. Folds are
    averaged within a seed, and seeds shown as mean ± std (see :func:`aggregate`). Systems scored from their own
    predictions (``expclip score``) used no prompts: they are rows of every prompt set's tables.
    """
    out = [f"# {title}", ""] if title else []
    folds: dict[str, int] = {}
    for r in rows:
        folds[r["dataset"]] = max(folds.get(r["dataset"], 0), r["folds"])
    psets = [p for p in dict.fromkeys(r["prompt_set"] for r in rows) if p != OWN_PREDICTIONS] or [OWN_PREDICTIONS]
    own = any(r["prompt_set"] == OWN_PREDICTIONS for r in rows) and psets != [OWN_PREDICTIONS]
    for ps in psets:
        prow = of_prompt_set(rows, ps)
        out += [f"## Prompts: {prompt_set_display_name(ps)}" + (" (scored systems: their own predictions)" * own), ""]
        for kind, label in (("image", "Static images"), ("video", "Videos")):
            krows = [r for r in prow if r["kind"] == kind]
            if not krows:
                continue
            datasets = dataset_order(sorted({r["dataset"] for r in krows}))
            table = _grid(krows, "dataset", datasets, {d: display_name(d) for d in datasets})
            out += [f"{label} — {_seeds_note(rows)}", "", table_markdown(table, caption=False, bold=False)]
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
    notes = notes_markdown(results)  # systems on fewer folds, and what scored systems left out
    md = markdown_table(rows, title) + notes
    if paper_layout:
        md = paper_tables(rows, title) + notes + "\n" + markdown_table(rows, "Per dataset: every prompt set")
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
                           f"{prompt_set_display_name(r['prompt_set'])}", out / "confusion" / name, note=banner)
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
    return [read_cell(p) for p in sorted(Path(out_dir, "cells").glob("*.json"))]
