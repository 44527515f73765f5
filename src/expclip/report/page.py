"""``expclip report RUN_DIR``: everything a run directory holds, as one page people would rather look at.

It looks under RUN_DIR for result cells (``expclip eval --out``: ``summary.json`` + ``cells/``), ablations
(``expclip ablate``: ``ablation.json``) and trained heads (``config.json`` + ``history.json``), and writes
``report.html`` (self-contained) and ``report.md`` (figures in ``report_files/``). Nothing is recomputed but the
figures: no model, no store.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checkpoint import HeadConfig
from ..errors import CheckpointError, MissingError
from ..schema import read_json
from ..files import atomic_write_bytes, slug, versions
from ..models.hub import RANDOM_WEIGHTS_NOTE, declares_random_weights
from ..models.names import INSTRUCTIONS
from ..prompts import prompt_set_display_name
from .figures import plot_confusion, plot_recall_bars, plot_table_bars, plot_training_curves, plot_tsne
from .html import render_html, render_markdown
from .inputs import check_ablation, check_history, read_checked
from .results import read_cells
from .scored import is_scored, of_prompt_set, scored_notes
from .tables import (
    backbone_id, backbone_label, backbone_table, by_backbone, dataset_order, dedup_cells, gain_table, prompt_order,
    prompt_sets_table, variants_table,
)

log = logging.getLogger(__name__)

FILES = "report_files"
PRESET_ORDER = ["heads", "instructions", "llm-encoder", "tsne"]
MERGED_PRESETS = ("backbones", "gains")  # their cells feed the main tables instead of a section of their own


@dataclass(frozen=True)
class TrainedHead:
    """A head found in the run directory: its folder, config (and config.json as written), training history."""

    dir: Path
    config: HeadConfig
    raw: dict
    history: list[dict]


@dataclass
class RunContents:
    """What was found under a run directory."""

    results: list[Path] = field(default_factory=list)
    ablations: list[dict] = field(default_factory=list)
    runs: dict[Path, list[TrainedHead]] = field(default_factory=dict)


def collect(run_dir: Path) -> RunContents:
    """Walk ``run_dir`` (skipping feature stores, hidden folders and old report files)."""
    found = RunContents()
    runs: dict[Path, list] = defaultdict(list)
    for root, dirs, files in os.walk(run_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != FILES)
        here = Path(root)
        if "meta.json" in files and "items.json" in files:  # a feature store: nothing to report inside
            dirs[:] = []
            continue
        if "summary.json" in files and (here / "cells").is_dir():
            found.results.append(here)
        if "ablation.json" in files:
            found.ablations.append(read_checked(here / "ablation.json", check_ablation, "ablation"))
        if "history.json" in files and "config.json" in files:
            raw = read_json(here / "config.json", CheckpointError, "head config")
            cfg = HeadConfig.from_dict(raw, str(here / "config.json"))
            history = read_checked(here / "history.json", check_history, "training history")
            runs[here.parent].append(TrainedHead(here, cfg, raw, history))
    found.runs = dict(runs)
    return found


def _label_backbones(cells: list[dict]) -> list[dict]:
    """A group seen with several backbones ("CLIP" always, then) would merge into one row: name each by its
    backbone, "CLIP (CLIP L/14)", as Table 1 does."""
    backbones: dict[str, set] = defaultdict(set)
    for c in cells:
        backbones[c["group"]].add(backbone_id(c))
    return [{**c, "group": f"{c['group']} ({backbone_label(backbone_id(c))})"} if len(backbones[c["group"]]) > 1
            else c for c in cells]


def _figure_prompt_set(cells: list[dict], asked: str | None) -> str:
    psets = prompt_order(cells)
    if asked in psets:
        return asked
    return "ensemble_10" if "ensemble_10" in psets else psets[-1]


class _Figures:
    """Allocates figure files under report_files/ (cleared first, so no stale figure survives)."""

    def __init__(self, base: Path):
        self.dir = base / FILES
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.n = 0

    def path(self, name: str) -> Path:
        self.n += 1
        return self.dir / f"{self.n:02d}-{slug(name)[:60]}.png"


def _results_blocks(cells: list[dict], figs: _Figures, prompt_set: str | None) -> list[tuple]:
    cells = _label_backbones(by_backbone(cells))
    datasets = dataset_order(c["dataset"] for c in cells)
    scope = "mean over prompt sets" if prompt_set is None else prompt_set_display_name(prompt_set)
    blocks: list[tuple] = [("h2", "Zero-shot results"), ("p", f"CLIP and Exp-CLIP on {len(datasets)} "
                           f"dataset(s). Tables show {scope}; every prompt set is listed per dataset below."),
                           ("h3", "Models × datasets (Table 1 layout)"),
                           ("table", variants_table(cells, "Zero-shot UAR / WAR", "", prompt_set=prompt_set))]
    notes = scored_notes(cells)
    if notes:
        blocks += [("p", "Scored from their own predictions (expclip score): " + "; ".join(notes) + ".")]
    if not all(is_scored(c) for c in cells):  # Table 2 and the gains compare heads with CLIP on one backbone
        blocks += [("h3", "CLIP vs Exp-CLIP per backbone (Table 2 layout)"),
                   ("table", backbone_table(cells, prompt_set)),
                   ("h3", "Mean gain over prompt sets"), ("table", gain_table(cells))]
    for d in datasets:
        blocks += [("h3", f"{d}: every prompt set"), ("table", prompt_sets_table(cells, d))]
    ps = _figure_prompt_set(cells, prompt_set)
    blocks += [("h2", "Per-class view"), ("p", f"Confusion matrices (rows: true class, normalised colour, counts "
                "summed over seeds and folds) and per-class recall, with the prompt set "
                f"{prompt_set_display_name(ps)}.")]
    for d in datasets:
        dc = [c for c in of_prompt_set(cells, ps) if c["dataset"] == d]
        if not dc:
            continue
        classes = dc[0]["classes"]
        cms: dict[str, np.ndarray] = {}
        wrong: dict[str, np.ndarray] = {}  # per true class: counted wrong with no predicted class (expclip score)
        for c in dc:
            cms[c["group"]] = cms.get(c["group"], 0) + np.asarray(c["confusion_matrix"], dtype=float)
            extra = c.get("counts", {}).get("wrong_outside_confusion") or [0] * len(c["classes"])
            wrong[c["group"]] = wrong.get(c["group"], 0) + np.asarray(extra, dtype=float)
        note = RANDOM_WEIGHTS_NOTE if any(c.get("random_weights") for c in dc) else None  # seen alone, too
        conf = [(plot_confusion(cm, classes, f"{g} — {d}", figs.path(f"confusion-{d}-{g}"), note), f"{g} on {d}")
                for g, cm in cms.items()]
        recalls = {g: [None if cm[i].sum() + wrong[g][i] == 0 else cm[i, i] / (cm[i].sum() + wrong[g][i])
                       for i in range(len(classes))] for g, cm in cms.items()}
        bars = plot_recall_bars(recalls, classes, f"Per-class recall — {d}", figs.path(f"recall-{d}"))
        blocks += [("h3", d), ("figures", conf + [(bars, f"Per-class recall on {d} (pooled over seeds and folds)")])]
    return blocks


def _ablation_blocks(ablations: list[dict], figs: _Figures) -> list[tuple]:
    shown = sorted((a for a in ablations if a["preset"] not in MERGED_PRESETS),
                   key=lambda a: PRESET_ORDER.index(a["preset"]) if a["preset"] in PRESET_ORDER else 99)
    if not shown:
        return []
    blocks: list[tuple] = [("h2", "Ablations"), ("p", "Each preset of expclip ablate, computed from the feature "
                                                      "store with the paper's training recipe.")]
    for a in shown:
        t = a["table"]
        blocks += [("h3", t["title"]), ("p", a["summary"] + "."), ("table", t)]
        fig = [(plot_table_bars(t, figs.path(f"ablation-{a['preset']}")), f"{t['title']}: "
                f"{t['metrics'][0].upper() if t['metrics'][0] != 'silhouette' else 'silhouette'} per dataset")]
        for p in a.get("extra", {}).get("tsne", []):
            panels = [(name, np.asarray(xy)) for name, xy in p["panels"]]
            path = plot_tsne(panels, p["labels"], p["classes"], f"t-SNE of {p['dataset']} image features "
                             f"({p['n']} of {p['n_total']} items)", figs.path(f"tsne-{p['dataset']}"))
            fig.append((path, f"t-SNE on {p['dataset']}: before and after the head, coloured by true class"))
        blocks += [("figures", fig), ("details", "resolved configuration", json.dumps(a["config"], indent=1))]
    return blocks


def _training_blocks(runs: dict[Path, list], figs: _Figures, run_dir: Path) -> list[tuple]:
    if not runs:
        return []
    blocks: list[tuple] = [("h2", "Training"), ("p", "Contrastive loss and in-batch retrieval accuracy (image → "
                           "teacher target) per step; line = mean over seeds, band = min..max.")]
    by_parent: dict[Path, dict[str, list]] = defaultdict(dict)
    for run, seeds in sorted(runs.items()):
        label = seeds[0].config.run_name or run.name
        by_parent[run.parent][label] = [s.history for s in sorted(seeds, key=lambda s: s.config.seed or 0)]
    for parent, curves in by_parent.items():
        rel = _rel(parent, run_dir)
        path = plot_training_curves(curves, f"Training curves — {rel}", figs.path(f"training-{rel}"))
        blocks += [("figures", [(path, f"Training curves of the heads under {rel}/: " + ", ".join(curves))])]
    return blocks


def _rel(path: Path, run_dir: Path) -> str:
    """``path`` relative to the reported folder; "." for a folder above it (a report of one run or one head)."""
    try:
        return path.relative_to(run_dir).as_posix()
    except ValueError:
        return "."


def _run_fields(run: Path, seeds: list, run_dir: Path) -> dict[str, str]:
    """What identifies a training run, as display strings."""
    cfg = seeds[0].config
    tr, te = cfg.train or {}, cfg.teacher or {}
    finals = [s.config.final or {} for s in seeds]
    instr = te.get("instruction") or ""
    preset = next((k for k, v in INSTRUCTIONS.items() if v == instr), None)
    return {
        "run": cfg.run_name or run.name,
        "directory": _rel(run, run_dir),
        "backbone": f"{cfg.backbone.id} ({cfg.backbone.revision})" if cfg.backbone else "None",
        "preprocessing": str((cfg.preprocessing or {}).get("mode")),
        "teacher": f"{te.get('id')} ({te.get('revision')})",
        "instruction": f"{preset}: {instr}" if preset else f"custom: {instr}",
        "head": f"{cfg.head.type} {cfg.head.in_dim} → {cfg.head.out_dim}",
        "recipe": f"SGD lr {tr.get('lr')}, momentum {tr.get('momentum')}, weight decay {tr.get('weight_decay')}, "
                  f"batch {tr.get('batch_size')}, {tr.get('epochs')} epochs, κ {tr.get('logit_scale', 0):.4g}",
        "training data": f"{(cfg.data or {}).get('name')} ({(cfg.data or {}).get('n_used')} items)",
        "seeds": ", ".join(str(s.config.seed) for s in seeds),
        "final loss / in-batch acc": f"{np.mean([f.get('loss', np.nan) for f in finals]):.3f} / "
                                     f"{np.mean([f.get('acc', np.nan) for f in finals]):.3f}",
    }


def _config_blocks(runs: dict[Path, list], contents: RunContents, cells: list[dict], run_dir: Path) -> list[tuple]:
    """Settings shared by every run once, then a row per run with what differs; full configs folded away."""
    blocks: list[tuple] = [("h2", "Configuration and versions")]
    if runs:
        ordered = sorted(runs.items())
        fields = [_run_fields(run, seeds, run_dir) for run, seeds in ordered]
        shared = [k for k in fields[0] if k not in ("run", "directory") and len({f[k] for f in fields}) == 1]
        varying = [k for k in fields[0] if k not in shared]
        blocks += [("h3", "Training runs"), ("kv", [(k, fields[0][k]) for k in shared]),
                   ("grid", varying, [[f[k] for k in varying] for f in fields]),
                   ("details", "full config.json of each run (first seed)",
                    json.dumps({f["directory"]: seeds[0].raw for f, (_, seeds) in zip(fields, ordered)}, indent=1))]
    seen = {json.dumps(v, sort_keys=True) for v in [c.get("versions") for c in cells]
            + [s.config.versions for r in runs.values() for s in r] if v}
    import matplotlib
    import sklearn

    kv = [("report generated with", _fmt_versions({**versions(), "matplotlib": matplotlib.__version__,
                                                    "scikit-learn": sklearn.__version__}))]
    kv += [("results / heads computed with", _fmt_versions(json.loads(v))) for v in sorted(seen)]
    if contents.results:
        kv += [("result directories", ", ".join(p.relative_to(run_dir).as_posix() for p in contents.results))]
    return blocks + [("h3", "Versions"), ("kv", kv)]


def _fmt_versions(v: dict) -> str:
    return ", ".join(f"{k} {x}" for k, x in v.items())


def _is_random(cells: list[dict], contents: RunContents) -> bool:
    heads = [s.config.backbone.id for r in contents.runs.values() for s in r if s.config.backbone]
    return (any(c.get("random_weights") for c in cells) or any(a.get("random_weights") for a in contents.ablations)
            or any(declares_random_weights(str(h)) for h in heads))


def build_report(run_dir: str | Path, prompt_set: str | None = None, title: str | None = None) -> dict:
    """Write ``report.html`` and ``report.md`` into ``run_dir``; returns their paths and what they hold.

    ``prompt_set``: the prompt set the tables show (default: the mean over prompt sets; figures then use
    Expression Ensemble Ten).

    Raises:
        FileNotFoundError: nothing to report under ``run_dir``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MissingError(f"run directory not found: {run_dir}" + (" (it is a file; give the folder that holds "
                                "it)" if run_dir.is_file() else ""))
    contents = collect(run_dir)
    cells = dedup_cells([c for d in contents.results for c in read_cells(d)]
                        + [c for a in contents.ablations if a["preset"] in MERGED_PRESETS for c in a["cells"]])
    if not (cells or contents.ablations or contents.runs):
        raise MissingError(f"nothing to report in {run_dir}: no results (expclip eval --out), ablations "
                                "(expclip ablate --out) or trained heads (expclip train --out) under it")
    figs = _Figures(run_dir)
    random = _is_random(cells, contents)
    blocks: list[tuple] = [("banner", RANDOM_WEIGHTS_NOTE + ". This report shows the mechanics, not the method's "
                            "results.")] if random else []
    if cells:
        blocks += _results_blocks(cells, figs, prompt_set)
    blocks += _ablation_blocks(contents.ablations, figs)
    blocks += _training_blocks(contents.runs, figs, run_dir)
    blocks += _config_blocks(contents.runs, contents, cells, run_dir)
    title = title or f"expclip report — {run_dir.resolve().name}"
    subtitle = (f"Zero-shot facial expression recognition with Exp-CLIP · generated {time.strftime('%Y-%m-%d %H:%M')}"
                + (" · RANDOM WEIGHTS" if random else ""))
    html_path, md_path = run_dir / "report.html", run_dir / "report.md"
    atomic_write_bytes(html_path, render_html(blocks, title, subtitle).encode())
    atomic_write_bytes(md_path, render_markdown(blocks, title, subtitle, run_dir).encode())
    tables = sum(1 for b in blocks if b[0] in ("table", "kv", "grid"))
    figures = sum(len(b[1]) for b in blocks if b[0] == "figures")
    log.debug("report: %s (%d tables, %d figures)", html_path, tables, figures)
    return {"html": html_path, "markdown": md_path, "tables": tables, "figures": figures, "random_weights": random,
            "sections": [b[1] for b in blocks if b[0] == "h2"]}
