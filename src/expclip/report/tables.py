"""Result cells -> the paper's table layouts, as plain dicts that render to Markdown, CSV and HTML.

A *cell* is one evaluation (see :mod:`expclip.runs.evaluate`): model group, seed, dataset, fold, prompt set, UAR, WAR.
Every table here is computed the same way: within one seed, cells are averaged over folds (and over prompt sets
when no single prompt set is asked for); then mean ± std over seeds. Values are percentages.

A table is a dict::

    {"title", "caption", "metrics": ["uar", "war"], "columns": [...], "column_titles": {col: title},
     "rows": [{"label", "section", "kind": "score" | "gain", "values": {col: {"uar", "uar_std", ..., "seeds"}}}]}

so that every layout (variants × datasets, Table 2's backbone blocks with a gain row, mean gains over prompt sets)
renders through the same three functions.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from typing import Callable, Iterable

import numpy as np

from ..errors import InputError
from ..data.registry import PAPER_DATASETS
from ..models.names import PAPER_BACKBONES, backbone_short_name
from ..prompts import PAPER_PROMPT_SETS, prompt_set_display_name
from .scored import fewer_folds_note, is_scored, of_prompt_set

MEAN = "mean"
METRIC_TITLES = {"uar": "UAR", "war": "WAR", "silhouette": "silhouette"}


# ------------------------------------------------------------------------------------------------ statistics
def per_seed(cells: Iterable[dict], key: Callable[[dict], tuple], metrics: tuple[str, ...] = ("uar", "war"),
             scale: float = 100.0) -> dict[tuple, dict]:
    """{key: {seed: (M,) array}}: each metric averaged over the cells of one seed (folds, prompt sets...)."""
    acc: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        acc[key(c)][c.get("seed")].append([float(c[m]) * scale for m in metrics])
    return {k: {s: np.mean(v, axis=0) for s, v in seeds.items()} for k, seeds in acc.items()}


def stat(seed_values: dict, metrics: tuple[str, ...] = ("uar", "war")) -> dict:
    """Mean ± std over seeds of per-seed (M,) arrays -> {"uar", "uar_std", ..., "seeds"}."""
    arr = np.stack(list(seed_values.values()))
    out: dict = {"seeds": len(arr)}
    for i, m in enumerate(metrics):
        out[m] = float(arr[:, i].mean())
        out[f"{m}_std"] = float(arr[:, i].std()) if len(arr) > 1 else 0.0
    return out


def _filter(cells: Iterable[dict], prompt_set: str | None) -> list[dict]:
    cells = list(cells)
    if prompt_set is None:
        return cells
    kept = of_prompt_set(cells, prompt_set)
    if any(not is_scored(c) for c in cells) and not any(c["prompt_set"] == prompt_set for c in cells):
        have = sorted({c["prompt_set"] for c in cells})
        raise InputError(f"no result for prompt set {prompt_set!r}; the cells have {have}")
    return kept


def dedup_cells(cells: Iterable[dict]) -> list[dict]:
    """Cells with duplicates (the same evaluation read from two places) removed, first kept."""
    seen, out = set(), []
    for c in cells:
        k = (c.get("model"), c["group"], c.get("seed"), c["dataset"], c.get("fold"), c["prompt_set"],
             backbone_id(c), c.get("head_dir"))
        if k not in seen:
            seen.add(k)
            out.append(c)
    return out


def dataset_order(names: Iterable[str]) -> list[str]:
    """Dataset names in the paper's column order where known, then the others in the order given."""
    seen = list(dict.fromkeys(names))
    known = [d for d in PAPER_DATASETS if d in seen]
    return known + [d for d in seen if d not in known]


def prompt_order(cells: Iterable[dict]) -> list[str]:
    seen = list(dict.fromkeys(c["prompt_set"] for c in cells))
    return [p for p in PAPER_PROMPT_SETS if p in seen] + [p for p in seen if p not in PAPER_PROMPT_SETS]


def backbone_id(cell: dict) -> str:
    bb = cell.get("backbone")
    return str(bb.get("id")) if isinstance(bb, dict) else str(bb)


def backbone_label(model_id: str) -> str:
    """"openai/clip-vit-large-patch14" -> "ViT-L/14"; other ids and local directories by their last part."""
    short = backbone_short_name(model_id)
    return f"ViT-{short}" if model_id in PAPER_BACKBONES.values() else short


def by_backbone(cells: Iterable[dict]) -> list[dict]:
    """Cells reordered so that backbones come in the paper's order (B/32, B/16, L/14), then the others as they
    appear; the order within a backbone is kept."""
    cells = list(cells)
    paper = list(PAPER_BACKBONES.values())
    seen = list(dict.fromkeys(backbone_id(c) for c in cells))
    rank = {b: i for i, b in enumerate([b for b in paper if b in seen] + [b for b in seen if b not in paper])}
    return sorted(cells, key=lambda c: rank[backbone_id(c)])


def scope_note(prompt_set: str | None, cells: Iterable[dict]) -> str:
    cells = list(cells)
    own = "; scored systems: their own predictions" if any(is_scored(c) for c in cells) else ""
    if prompt_set is not None:
        return f"prompt set: {prompt_set_display_name(prompt_set)}{own}"
    n = len({c["prompt_set"] for c in cells if not is_scored(c)})
    if not n:
        return "own predictions"
    return f"mean over {n} prompt set{'s' if n != 1 else ''}{own}"


def spread_note(cells: Iterable[dict]) -> str:
    """The "± = std over seeds" caption note, naming the datasets first averaged over their folds within a seed."""
    folds: dict[str, set] = defaultdict(set)
    for c in cells:
        if c.get("fold") is not None:
            folds[c["dataset"]].add(c["fold"])
    multi = [f"{d} the mean of {len(f)} folds" for d, f in folds.items() if len(f) > 1]
    return "± = std over seeds" + (f" ({', '.join(multi)} within each seed)" if multi else "") + "."


# ------------------------------------------------------------------------------------------------ layouts
def new_table(title: str, caption: str, columns: list[str], titles: dict[str, str] | None = None,
              metrics: tuple[str, ...] = ("uar", "war")) -> dict:
    """An empty table (rows to be appended); ``titles`` maps columns to their display names."""
    return {"title": title, "caption": caption, "metrics": list(metrics), "columns": columns,
            "column_titles": {c: (titles or {}).get(c, c) for c in columns}, "rows": []}


def variants_table(cells: list[dict], title: str, caption: str = "", order: list[str] | None = None,
                   prompt_set: str | None = None) -> dict:
    """Rows = model groups (``order`` first, then the rest as they appear), columns = datasets.

    This is Table 1's layout (models × datasets, UAR / WAR) and every head/instruction/encoder ablation's.
    """
    cells = _filter(cells, prompt_set)
    groups = list(dict.fromkeys((order or []) + [c["group"] for c in cells]))
    datasets = dataset_order(c["dataset"] for c in cells)
    seeds = per_seed(cells, lambda c: (c["group"], c["dataset"]))
    t = new_table(title, f"{caption} UAR / WAR (%), {scope_note(prompt_set, cells)}; {spread_note(cells)} "
                   f"{fewer_folds_note(cells)}".strip(), datasets)
    for g in groups:
        values = {d: stat(seeds[(g, d)]) for d in datasets if (g, d) in seeds}
        if values:
            t["rows"].append({"label": g, "section": None, "kind": "score", "values": values})
    return t


def _is_clip(c: dict) -> bool:
    return c.get("model") == "CLIP" or c.get("group") == "CLIP"


def _row(c: dict) -> str:
    """The row of a cell within its backbone's block: "CLIP" for plain CLIP (however its group is labelled)."""
    return "CLIP" if _is_clip(c) else c["group"]


def backbone_table(cells: list[dict], prompt_set: str | None = None, title: str = "CLIP vs Exp-CLIP per backbone"
                   ) -> dict:
    """Table 2's layout: per backbone a CLIP row, a row per Exp-CLIP run and its gain row; columns = datasets."""
    cells = by_backbone(c for c in _filter(cells, prompt_set) if not is_scored(c))  # no backbone, no gain
    datasets = dataset_order(c["dataset"] for c in cells)
    seeds = per_seed(cells, lambda c: (backbone_id(c), _row(c), c["dataset"]))
    t = new_table(title, f"UAR / WAR (%), {scope_note(prompt_set, cells)}; gain = Exp-CLIP − CLIP; "
                   f"{spread_note(cells)}", datasets)
    for bb in dict.fromkeys(backbone_id(c) for c in cells):
        section = backbone_label(bb)
        clip = {d: stat(seeds[(bb, "CLIP", d)]) for d in datasets if (bb, "CLIP", d) in seeds}
        if clip:
            t["rows"].append({"label": "CLIP", "section": section, "kind": "score", "values": clip})
        for g in dict.fromkeys(c["group"] for c in cells if backbone_id(c) == bb and not _is_clip(c)):
            exp = {d: stat(seeds[(bb, g, d)]) for d in datasets if (bb, g, d) in seeds}
            t["rows"].append({"label": g, "section": section, "kind": "score", "values": exp})
            gain = {}
            for d in datasets:
                if (bb, g, d) in seeds and (bb, "CLIP", d) in seeds:
                    base = np.mean(list(seeds[(bb, "CLIP", d)].values()), axis=0)
                    gain[d] = stat({s: v - base for s, v in seeds[(bb, g, d)].items()})
            if gain:
                t["rows"].append({"label": f"gain ({g})", "section": section, "kind": "gain", "values": gain})
    return t


def gain_table(cells: list[dict], title: str = "Mean gain of Exp-CLIP over CLIP across prompt sets") -> dict:
    """Rows = (backbone, Exp-CLIP run); columns = prompt sets + their mean; value = gain averaged over datasets.

    The "mean" column is the paper's "mean gain over prompts" per backbone (B/32 +2.71 UAR / +4.42 WAR, ...).
    """
    cells = by_backbone(c for c in cells if not is_scored(c))
    psets = prompt_order(cells)
    datasets = dataset_order(c["dataset"] for c in cells)
    seeds = per_seed(cells, lambda c: (backbone_id(c), _row(c), c["dataset"], c["prompt_set"]))
    t = new_table(title, f"Exp-CLIP − CLIP, UAR / WAR (percentage points), averaged over {len(datasets)} "
                   f"dataset{'s' if len(datasets) != 1 else ''} ({', '.join(datasets)}); {spread_note(cells)}",
                   psets + [MEAN], {**{p: prompt_set_display_name(p) for p in psets}, MEAN: "mean over prompt sets"})
    for bb in dict.fromkeys(backbone_id(c) for c in cells):
        runs = list(dict.fromkeys(c["group"] for c in cells if backbone_id(c) == bb and not _is_clip(c)))
        for g in runs:
            by_seed: dict = defaultdict(dict)  # seed -> prompt set -> (2,) gain averaged over datasets
            for p in psets:
                per_d = [(seeds[(bb, g, d, p)], np.mean(list(seeds[(bb, "CLIP", d, p)].values()), axis=0))
                         for d in datasets if (bb, g, d, p) in seeds and (bb, "CLIP", d, p) in seeds]
                for s in set().union(*(exp.keys() for exp, _ in per_d)):
                    by_seed[s][p] = np.mean([exp[s] - base for exp, base in per_d if s in exp], axis=0)
            if not by_seed:
                continue
            values = {p: stat({s: v[p] for s, v in by_seed.items() if p in v}) for p in psets
                      if any(p in v for v in by_seed.values())}
            values[MEAN] = stat({s: np.mean(list(v.values()), axis=0) for s, v in by_seed.items()})
            label = backbone_label(bb) if len(runs) == 1 else f"{backbone_label(bb)} · {g}"
            t["rows"].append({"label": label, "section": None, "kind": "gain", "values": values})
    return t


def prompt_sets_table(cells: list[dict], dataset: str, title: str | None = None) -> dict:
    """One dataset: rows = model groups, columns = prompt sets (the layout of expclip eval's results.md)."""
    cells = [c for c in cells if c["dataset"] == dataset]
    psets = prompt_order(cells)
    seeds = per_seed(cells, lambda c: (c["group"], c["prompt_set"]))
    t = new_table(title or dataset, f"UAR / WAR (%) for every prompt set; {spread_note(cells)} "
                  f"{fewer_folds_note(cells)}".strip(), psets, {p: prompt_set_display_name(p) for p in psets})
    for g in dict.fromkeys(c["group"] for c in cells):
        t["rows"].append({"label": g, "section": None, "kind": "score",
                          "values": {p: stat(seeds[(g, p)]) for p in psets if (g, p) in seeds}})
    return t


# ------------------------------------------------------------------------------------------------ rendering
def digits(metric: str) -> int:
    """Decimals shown: percentages with 2, scores in [-1, 1] (silhouette) with 3."""
    return 3 if metric == "silhouette" else 2


def format_value(v: dict | None, metric: str, gain: bool = False) -> str:
    if v is None or v.get(metric) is None or (isinstance(v[metric], float) and math.isnan(v[metric])):
        return "–"
    d = digits(metric)
    x = round(v[metric], d) + 0.0  # no "-0.00"
    s = f"{x:+.{d}f}" if gain else f"{x:.{d}f}"
    return s + (f" ± {v[f'{metric}_std']:.{d}f}" if v.get("seeds", 1) > 1 else "")


def best_rows(table: dict) -> dict[tuple[str, str], set[int]]:
    """{(column, metric): indices of the best score rows} (ties share), within each section."""
    best: dict[tuple[str, str], set[int]] = {}
    sections = dict.fromkeys(r["section"] for r in table["rows"])
    for sec in sections:
        idx = [i for i, r in enumerate(table["rows"]) if r["section"] == sec and r["kind"] == "score"]
        if len(idx) < 2:
            continue
        for col in table["columns"]:
            for m in table["metrics"]:
                vals = {i: round(table["rows"][i]["values"][col][m], digits(m)) for i in idx
                        if col in table["rows"][i]["values"] and table["rows"][i]["values"][col].get(m) is not None}
                if len(vals) > 1:
                    top = max(vals.values())
                    best.setdefault((col, m), set()).update(i for i, v in vals.items() if v == top)
    return best


def table_markdown(table: dict, caption: bool = True, bold: bool = True) -> str:
    """GitHub Markdown: a caption line (``caption``), then the table; best scores per column in bold (``bold``)."""
    cols = table["columns"]
    has_sections = any(r["section"] for r in table["rows"])
    head = (["backbone"] if has_sections else []) + ["model"] + [table["column_titles"][c] for c in cols]
    lines = ([f"*{table['caption']}*", ""] if caption else []) + ["| " + " | ".join(head) + " |",
                                                                   "|" + "---|" * len(head)]
    best = best_rows(table) if bold else {}
    for i, r in enumerate(table["rows"]):
        parts = []
        for c in cols:
            v = r["values"].get(c)
            vals = [format_value(v, m, r["kind"] == "gain") if v else "–" for m in table["metrics"]]
            vals = [f"**{s}**" if i in best.get((c, m), ()) else s for s, m in zip(vals, table["metrics"])]
            parts.append(" / ".join(vals))
        label = f"*{r['label']}*" if r["kind"] == "gain" else r["label"]
        lines.append("| " + " | ".join(([r["section"] or ""] if has_sections else []) + [label] + parts) + " |")
    return "\n".join(lines) + "\n"


def table_csv(table: dict) -> str:
    """Long format: one line per (row, column) with every metric and its std."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    ms = table["metrics"]
    w.writerow(["section", "row", "kind", "column"] + [x for m in ms for x in (m, f"{m}_std")] + ["seeds"])
    for r in table["rows"]:
        for c in table["columns"]:
            v = r["values"].get(c)
            if v is not None:
                w.writerow([r["section"] or "", r["label"], r["kind"], c]
                           + [f"{v[x]:.4f}" for m in ms for x in (m, f"{m}_std")] + [v.get("seeds", 1)])
    return buf.getvalue()
