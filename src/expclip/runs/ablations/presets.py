"""The paper's ablations as named presets over the feature store.

Each preset reads (or, when missing, extracts once) features from the store, trains what it needs with the same
recipe, scores zero-shot, and returns an :class:`Ablation`: its table (:mod:`expclip.report.tables`), the result cells
behind it and its resolved configuration. :func:`write_ablation` puts ``ablation.json``, ``table.md`` and
``table.csv`` in ``OUT/<preset>/``; heads go to ``OUT/heads/<head>-<instruction>/seed<k>/`` and are shared by
presets (a head already trained with the same configuration is reused, not retrained).

Presets are generic over the evaluation data: ``AblationSetup.tests`` is a list of item lists (any labelled folder
or benchmark reader) and ``AblationSetup.results`` any directories of result cells.

=============  ==========================================================================================
heads          linear (paper) vs 2-layer MLP vs 3-layer MLP vs Transformer encoder, same recipe
instructions   teacher targets with the task-related, short, task-unrelated and user-given instructions
llm-encoder    the LLM as zero-shot encoder in the head's E-d space: (a) image via teacher, text via CLIP+P;
               (b) image via CLIP+P, text via T5 encoder; (c) both via the LLM — against CLIP and Exp-CLIP
backbones      CLIP vs Exp-CLIP per backbone with the gain row (Table 2's layout), from result cells or a
               linear head trained on each backbone of a sweep (any list: presets, hub ids, folders)
gains          the mean gain of Exp-CLIP over CLIP across prompt sets per backbone, from result cells
tsne           t-SNE of image features before / after the head, coloured by class; silhouette table
=============  ==========================================================================================
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .registry import PRESETS, Preset  # noqa: F401 (Preset: re-exported)
from .setup import Ablation, AblationSetup
from ...files import versions
from ..evaluate import Model, clip_model
from ...checkpoint import expand_head_dirs
from ...metrics import summarize
from ...models.teacher import resolve_instruction
from ...models.hub import RANDOM_WEIGHTS_NOTE
from ...prompts import resolve_prompt_sets
from ...report.results import read_cells
from ...features.store import FeatureStore
from ...files import atomic_write_bytes, atomic_write_json
from ...report.tables import (
    backbone_table, dedup_cells, gain_table, new_table, table_csv, table_markdown, variants_table,
)
from ...zeroshot import build_classifier, classify, embed_images
from ...errors import InputError, MissingError

log = logging.getLogger(__name__)

HEAD_LABELS = {"linear": "linear (paper)", "mlp2": "2-layer MLP", "mlp3": "3-layer MLP",
               "transformer": "Transformer encoder"}
INSTRUCTION_LABELS = {"task": "task-related (paper)", "short": "short (paper's figure)",
                      "unrelated": "task-unrelated"}


def instruction_label(instruction: str) -> str:
    name, text = resolve_instruction(instruction)
    return INSTRUCTION_LABELS.get(name) or f'user-given: "{text if len(text) <= 64 else text[:61] + "..."}"'


def _variants(setup: AblationSetup, preset: str, title: str, caption: str,
              groups: list[tuple[str, list[Path]]]) -> Ablation:
    cells = setup.evaluate_groups(groups)
    table = variants_table(cells, title, caption, ["CLIP"] + [g for g, _ in groups], setup.prompt_set)
    return Ablation(preset, table, cells, setup.describe(), setup.random_weights(cells))


# ------------------------------------------------------------------------------------------------ presets
def run_heads(setup: AblationSetup) -> Ablation:
    """Projection heads: linear (paper), 2-/3-layer MLP, Transformer encoder; same recipe, same targets."""
    groups = [(HEAD_LABELS.get(h, h), setup.train_variant(h, "task")) for h in setup.heads]
    return _variants(setup, "heads", "Projection head", f"Head P trained with the same recipe on the same "
                     f"teacher targets ({len(setup.seeds)} seed(s)); the paper keeps the linear map.", groups)


def run_instructions(setup: AblationSetup) -> Ablation:
    """Instructions: one teacher run per instruction (each cached under its own key), a linear head on each."""
    groups = [(instruction_label(i), setup.train_variant("linear", i)) for i in setup.instructions]
    return _variants(setup, "instructions", "Instruction given to the teacher", "Linear head trained on teacher "
                     "targets computed with each instruction; the paper finds the task-related one best.", groups)


def _aligned(image_store: FeatureStore, teacher_store: FeatureStore) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(M,D) image features, (M,E) teacher targets and (M,) labels of the items valid in both stores."""
    pos = {it["path"]: j for j, it in enumerate(teacher_store.items)}
    vi, vt = image_store.valid(), teacher_store.valid()
    pairs = [(i, pos[it["path"]]) for i, it in enumerate(image_store.items)
             if it["path"] in pos and vi[i] and vt[pos[it["path"]]]]
    ri, rt = [p[0] for p in pairs], [p[1] for p in pairs]
    x = torch.from_numpy(np.asarray(image_store.features()[ri], dtype=np.float32))
    y = torch.from_numpy(np.asarray(teacher_store.features()[rt], dtype=np.float32))
    return x, y, torch.from_numpy(image_store.labels()[ri])


def run_llm_encoder(setup: AblationSetup) -> Ablation:
    """The LLM as the zero-shot encoder, in the head's E-d space, against CLIP and Exp-CLIP.

    (a) image: teacher target (BLIP-2 image tokens + instruction -> T5 encoder); text: CLIP text + P.
    (b) image: CLIP image + P; text: T5 encoder on the prompt alone, mean-pooled.
    (c) image and text both through the LLM (no CLIP, no head).
    """
    if not setup.tests:
        raise InputError("llm-encoder scores zero-shot: give labelled evaluation data (--data)")
    heads = [setup.head_model(d) for d in setup.analysis_heads()]
    for m in heads:
        setup.check_head_features(m)
    instruction = heads[0].config.instruction or "task"
    rows = ["CLIP", "Exp-CLIP", "(a) LLM image · CLIP text + P", "(b) CLIP image + P · LLM text",
            "(c) LLM image · LLM text"]
    cells: list[dict] = []
    for data in setup.tests:
        img_store = setup.image_store(data)
        tgt_store = setup.teacher_store(data, instruction)
        x, y, labels = _aligned(img_store, tgt_store)
        for m in heads:
            if m.config.head.out_dim != y.shape[1]:
                raise InputError(f"head {m.head_dir} maps to {m.config.head.out_dim}-d but the teacher "
                                 f"{setup.teacher} gives {y.shape[1]}-d targets: they are not in one space")
        kappa = float(img_store.meta.get("logit_scale", 100.0))
        base = {"dataset": data.name, "fold": data.info.get("fold"), "classes": data.classes,
                "backbone": img_store.key["model"], "teacher": tgt_store.key["model"], "num_items": len(x),
                "random_weights": setup.random_weights()}
        for ps, plist in resolve_prompt_sets(setup.prompt_sets, data.classes).items():
            clip_pf, llm_pf = setup.clip_prompt_features(plist), setup.llm_prompt_features(plist)

            def cell(group: str, img: torch.Tensor, clf, m: Model | None = None) -> dict:
                pred = classify(img, clf).argmax(1).cpu()
                return {"model": group, "group": group, "seed": m.seed if m else None,
                        "head_dir": m.head_dir if m else None, "prompt_set": ps, **base,
                        **summarize(labels, pred, len(data.classes), data.classes)}

            llm_img = embed_images(y)
            cells.append(cell(rows[0], embed_images(x), build_classifier(clip_pf, None, kappa)))
            cells.append(cell(rows[4], llm_img, build_classifier(llm_pf, None, kappa)))
            for m in heads:
                img_p, clf_p = embed_images(x.to(setup.device), m.head), build_classifier(clip_pf, m.head, kappa)
                cells.append(cell(rows[1], img_p, clf_p, m))
                cells.append(cell(rows[2], llm_img, clf_p, m))
                cells.append(cell(rows[3], img_p, build_classifier(llm_pf, None, kappa), m))
    table = variants_table(cells, "The LLM as zero-shot encoder", "In the head's space: LLM = BLIP-2's T5 "
                           "encoder (images: with their image tokens and the instruction; prompts: text alone, "
                           "mean-pooled). The paper finds it far below CLIP and Exp-CLIP.", rows, setup.prompt_set)
    return Ablation("llm-encoder", table, cells, {**setup.describe(), "teacher_instruction": instruction},
                    setup.random_weights(cells))


def _results_cells(setup: AblationSetup) -> list[dict]:
    """Cells of the given result directories; without any, CLIP and the given heads scored on ``tests``."""
    for d in setup.results:
        if not any(Path(d, "cells").glob("*.json")):
            raise MissingError(f"--results {d}: " + ("folder not found" if not Path(d).is_dir() else
                                    "no result cells (cells/*.json) in it; give the --out folder of expclip eval"))
    cells = dedup_cells(c for d in setup.results for c in read_cells(d))
    if not cells and setup.tests and setup.head_runs:
        heads = [setup.head_model(d) for d in expand_head_dirs(setup.head_runs)]
        clips = [clip_model(b, p, r) for b, r, p in
                 dict.fromkeys((m.backbone, m.backbone_revision, m.preprocessing) for m in heads)]
        cells = setup.evaluate(clips + heads)
    if not cells:
        raise InputError("this preset tabulates result cells: give --results DIR (from expclip eval) or --data "
                         "with --head")
    return cells


def run_backbones(setup: AblationSetup) -> Ablation:
    """CLIP vs Exp-CLIP per backbone, with the gain row (Table 2's layout): from result cells or given heads, else
    a head trained on each backbone of the sweep (``--backbone A B ...``)."""
    cells = _results_cells(setup) if setup.results or setup.head_runs else setup.sweep_backbones()
    return Ablation("backbones", backbone_table(cells, setup.prompt_set), cells, setup.describe(),
                    setup.random_weights(cells))


def run_gains(setup: AblationSetup) -> Ablation:
    """The paper's mean gain of Exp-CLIP over CLIP across prompt sets, per backbone (cells as for backbones)."""
    cells = _results_cells(setup) if setup.results or setup.head_runs else setup.sweep_backbones()
    return Ablation("gains", gain_table(cells), cells, setup.describe(), setup.random_weights(cells))


def run_tsne(setup: AblationSetup) -> Ablation:
    """t-SNE of the image features before and after the head (first analysed head), coloured by class.

    At most ``tsne_max_points`` items per dataset (a fixed random subset). The table gives the silhouette score of
    the classes in each feature space (cosine): higher = features cluster by expression.
    """
    from sklearn.metrics import silhouette_score

    from ...report.figures import tsne_2d

    if not setup.tests:
        raise InputError("tsne needs labelled data to colour by class: give --data")
    m = setup.head_model(setup.analysis_heads()[0])
    setup.check_head_features(m)
    rows = ["before P (CLIP image features)", f"after P ({m.group})"]
    values: dict[str, dict] = {rows[0]: {}, rows[1]: {}}
    plots = []
    for data in setup.tests:
        feats, labels, _ = setup.image_store(data).tensors()
        rng = np.random.default_rng(0)
        keep = np.sort(rng.permutation(len(feats))[: setup.tsne_max_points])
        before = embed_images(feats[keep]).numpy()  # normalized; video frames averaged first, as when scoring
        after = embed_images(feats[keep].to(setup.device), m.head).cpu().numpy()
        y = labels[keep].numpy()
        plot = {"dataset": data.name, "classes": data.classes, "labels": y.tolist(), "n": len(keep),
                "n_total": len(feats), "head_dir": m.head_dir, "panels": []}  # [name, (n,2) coordinates]
        for row, x in zip(rows, (before, after)):
            plot["panels"].append([row, np.round(tsne_2d(x), 3).tolist()])
            ok = 1 < len(set(y.tolist())) < len(y)
            values[row][data.name] = {"silhouette": float(silhouette_score(x, y, metric="cosine")) if ok else None,
                                      "silhouette_std": 0.0, "seeds": 1}
        plots.append(plot)
    table = new_table("Feature clustering by expression (t-SNE figure)", "Silhouette score of the true classes "
                      "(cosine, in the feature space itself) before and after the head; the paper's t-SNE (FERPlus, "
                      "L/14) clusters by expression only after P.", [d.name for d in setup.tests],
                      metrics=("silhouette",))
    table["rows"] = [{"label": r, "section": None, "kind": "score", "values": values[r]} for r in rows]
    return Ablation("tsne", table, [], {**setup.describe(), "head": m.head_dir}, setup.random_weights(),
                    {"tsne": plots})


RUNNERS: dict[str, Callable[[AblationSetup], Ablation]] = {
    "heads": run_heads, "instructions": run_instructions, "llm-encoder": run_llm_encoder,
    "backbones": run_backbones, "gains": run_gains, "tsne": run_tsne,
}
assert set(RUNNERS) == set(PRESETS), "every preset of registry.PRESETS has its function here"

_OPTION = {"train": "--train-data", "tests": "--data", "results": "--results", "head_runs": "--head"}


def write_ablation(ab: Ablation, out_root: str | Path) -> dict[str, Path]:
    """``OUT/<preset>/ablation.json`` (table, cells, config, versions), ``table.md`` and ``table.csv``."""
    out = Path(out_root) / ab.preset
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "ablation.json", {
        "preset": ab.preset, "summary": PRESETS[ab.preset].summary, "table": ab.table, "cells": ab.cells,
        "config": ab.config, "random_weights": ab.random_weights, "extra": ab.extra, "versions": versions()})
    banner = f"> **{RANDOM_WEIGHTS_NOTE}**\n\n" if ab.random_weights else ""
    md = f"# {ab.table['title']}\n\n{banner}{PRESETS[ab.preset].summary}.\n\n{table_markdown(ab.table)}"
    atomic_write_bytes(out / "table.md", md.encode())
    atomic_write_bytes(out / "table.csv", table_csv(ab.table).encode())
    return {"json": out / "ablation.json", "markdown": out / "table.md", "csv": out / "table.csv"}


def run_presets(names: list[str], setup: AblationSetup) -> dict[str, Ablation]:
    """Run presets in order and write each under ``setup.out``. "all" = every preset whose inputs are given."""
    if "all" in names:
        names = [n for n, p in PRESETS.items() if p.ready(setup)]
        if not names:
            raise InputError("no preset has its inputs: give --train-data and --data, or --results")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise InputError(f"unknown ablation preset(s) {unknown}; choose from {list(PRESETS)} or all")
    for n in names:  # every preset's inputs are checked before the first one trains or extracts anything
        missing = [need for need in PRESETS[n].needs if not any(getattr(setup, f) for f in need.split("|"))]
        if missing:
            raise InputError(f"ablation {n} needs " + " and ".join(
                " or ".join(_OPTION[f] for f in need.split("|")) for need in missing))
    setup.check_models(names)  # and the models they would run, before any encoder does
    done = {}
    for n in names:
        log.info("ablation %s: %s", n, PRESETS[n].summary)
        ab = RUNNERS[n](setup)
        write_ablation(ab, setup.out)
        done[n] = ab
    return done
