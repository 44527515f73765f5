"""The paper's ablations as named presets over the feature store.

Each preset reads (or, when missing, extracts once) features from the store, trains what it needs with the same
recipe, scores zero-shot, and returns an :class:`Ablation`: its table (:mod:`expclip.tables`), the result cells
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
backbones      CLIP vs Exp-CLIP per backbone with the gain row (Table 2's layout), from result cells
gains          the mean gain of Exp-CLIP over CLIP across prompt sets per backbone, from result cells
tsne           t-SNE of image features before / after the head, coloured by class; silhouette table
=============  ==========================================================================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import versions
from .data.datasets import ItemList
from .evaluate import LazyBackbone, Model, clip_model, evaluate, head_model, image_store_for
from .extract import extract_teacher, find_prompt_features, find_teacher_store, prompt_features, require_store
from .fit import expand_head_dirs, fit_heads
from .metrics import summarize
from .models.backbone import DEFAULT_BACKBONE
from .models.heads import HEADS
from .models.teacher import DEFAULT_TEACHER, Teacher, resolve_instruction
from .models.tiny import is_random_model
from .prompts import resolve_prompt_sets
from .report import read_cells
from .store import FeatureStore, StaleStoreError, StoreError, atomic_write_bytes, atomic_write_json, key_digest
from .tables import backbone_table, dedup_cells, gain_table, table_csv, table_markdown, variants_table
from .train import TrainConfig
from .zeroshot import build_classifier, classify, embed_images

log = logging.getLogger(__name__)

HEAD_LABELS = {"linear": "linear (paper)", "mlp2": "2-layer MLP", "mlp3": "3-layer MLP",
               "transformer": "Transformer encoder"}
INSTRUCTION_LABELS = {"task": "task-related (paper)", "short": "short (paper's figure)",
                      "unrelated": "task-unrelated"}


@dataclass
class AblationSetup:
    """Everything a preset may need; each preset uses only its part (see ``PRESETS[name].needs``).

    ``train``: the unlabelled training pool; ``tests``: labelled evaluation data; ``results``: directories of
    result cells (``expclip eval --out``); ``head_runs``: existing heads (or run directories) to analyse instead of
    training the paper's linear head.
    """

    out: Path
    store: Path
    train: ItemList | None = None
    tests: list[ItemList] = field(default_factory=list)
    results: list[Path] = field(default_factory=list)
    head_runs: list[Path] = field(default_factory=list)
    backbone: str = DEFAULT_BACKBONE
    backbone_revision: str | None = None
    teacher: str = DEFAULT_TEACHER
    teacher_revision: str | None = None
    teacher_dtype: str | None = None
    preprocessing: str = "reference"
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    train_cfg: TrainConfig = field(default_factory=TrainConfig)
    logit_scale: float | None = None  # κ for training; None = the backbone's (from the image store)
    prompt_sets: str | list[str] = "all"
    prompt_set: str | None = None  # the prompt set the tables show; None = mean over the prompt sets
    instructions: list[str] = field(default_factory=lambda: ["task", "short", "unrelated"])
    heads: list[str] = field(default_factory=lambda: list(HEADS))
    tsne_max_points: int = 2000
    device: str | torch.device = "cpu"
    batch_size: int = 64
    num_workers: int | None = None
    progress: bool = True
    strict: bool = False
    _backbone: LazyBackbone | None = field(default=None, repr=False)
    _teacher: Teacher | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.out, self.store = Path(self.out), Path(self.store)
        self.results, self.head_runs = [Path(p) for p in self.results], [Path(p) for p in self.head_runs]

    def lazy_backbone(self) -> LazyBackbone:
        if self._backbone is None:
            self._backbone = LazyBackbone(self.backbone, self.backbone_revision, self.device)
        return self._backbone

    def use_models(self, backbone=None, teacher: Teacher | None = None) -> "AblationSetup":
        """Hand over models that are already loaded (they must be the ones named by ``backbone``/``teacher``)."""
        if backbone is not None:
            self.lazy_backbone()._bb = backbone
        if teacher is not None:
            self._teacher = teacher
        return self

    def load_teacher(self) -> Teacher:
        """The teacher, loaded on first use (only when a store it would fill is missing)."""
        if self._teacher is None:
            log.info("loading teacher %s", self.teacher)
            self._teacher = Teacher.from_pretrained(self.teacher, self.teacher_revision, device=self.device,
                                                    dtype=self.teacher_dtype)
        return self._teacher

    def describe(self) -> dict:
        """The resolved configuration, JSON-able (saved with every ablation)."""
        return {
            "train_data": None if self.train is None else {"name": self.train.name, "n": len(self.train)},
            "test_data": [{"name": d.name, "n": len(d), "classes": d.classes} for d in self.tests],
            "results": [str(p) for p in self.results], "head_runs": [str(p) for p in self.head_runs],
            "backbone": self.backbone, "backbone_revision": self.backbone_revision, "teacher": self.teacher,
            "teacher_revision": self.teacher_revision, "preprocessing": self.preprocessing, "seeds": self.seeds,
            "train": self.train_cfg.to_dict(), "logit_scale": self.logit_scale, "prompt_sets": self.prompt_sets,
            "table_prompt_set": self.prompt_set,
            "instructions": {i: resolve_instruction(i)[1] for i in self.instructions}, "heads": self.heads,
        }


@dataclass
class Ablation:
    """A preset's outcome: its table, the cells behind it, extra data (t-SNE coordinates) and configuration."""

    preset: str
    table: dict
    cells: list[dict]
    config: dict
    random_weights: bool
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"preset": self.preset, "summary": PRESETS[self.preset].summary, "table": self.table,
                "cells": self.cells, "config": self.config, "random_weights": self.random_weights,
                "extra": self.extra, "versions": versions()}


# ------------------------------------------------------------------------------------------------ store access
def _image_store(setup: AblationSetup, data: ItemList) -> FeatureStore:
    return image_store_for(data, setup.lazy_backbone(), setup.preprocessing, setup.store, setup.batch_size,
                           setup.num_workers, setup.progress, setup.strict)


def _teacher_store(setup: AblationSetup, data: ItemList, instruction: str) -> FeatureStore:
    """Teacher targets of ``data`` for ``instruction``: found by key, else computed now (once, cached)."""
    try:
        return find_teacher_store(setup.store, setup.teacher, data, instruction, setup.preprocessing,
                                  setup.teacher_revision)
    except StaleStoreError:
        raise
    except StoreError:
        pass
    return require_store(extract_teacher(setup.load_teacher(), data, setup.store, instruction, setup.preprocessing,
                                          num_workers=setup.num_workers, progress=setup.progress,
                                          strict=setup.strict),
                         f"teacher targets of {data.name}")


def instruction_tag(instruction: str) -> str:
    name, text = resolve_instruction(instruction)
    return name if name != "custom" else f"custom-{key_digest({'instruction': text})[:8]}"


def instruction_label(instruction: str) -> str:
    name, text = resolve_instruction(instruction)
    return INSTRUCTION_LABELS.get(name) or f'user-given: "{text if len(text) <= 64 else text[:61] + "..."}"'


def train_variant(setup: AblationSetup, head: str = "linear", instruction: str = "task") -> list[Path]:
    """Heads of type ``head`` trained on targets of ``instruction`` for every seed; returns their directories."""
    if setup.train is None:
        raise ValueError("this preset trains heads: give the unlabelled training pool (--train-data)")
    img = _image_store(setup, setup.train)
    tgt = _teacher_store(setup, setup.train, instruction)
    kappa = setup.logit_scale if setup.logit_scale is not None else float(img.meta.get("logit_scale", 100.0))
    cfg = replace(setup.train_cfg, head=head, logit_scale=kappa)
    tag = f"{head}-{instruction_tag(instruction)}"
    return fit_heads(img, tgt, setup.out / "heads" / tag, setup.seeds, cfg, run_name=tag, device=setup.device)


def _analysis_heads(setup: AblationSetup) -> list[Path]:
    """The heads to analyse: the given ones, else the paper's linear head on the task instruction."""
    return expand_head_dirs(setup.head_runs) if setup.head_runs else train_variant(setup, "linear", "task")


def _evaluate_groups(setup: AblationSetup, groups: list[tuple[str, list[Path]]], clip: bool = True) -> list[dict]:
    """Cells of plain CLIP (optional) and every (label, head dirs) group on every test set × prompt set."""
    if not setup.tests:
        raise ValueError("this preset scores zero-shot: give labelled evaluation data (--data)")
    models: list[Model] = [clip_model(setup.backbone, setup.preprocessing, setup.backbone_revision)] if clip else []
    for label, dirs in groups:
        for d in dirs:
            m = head_model(d, setup.device)
            m.group = label
            models.append(m)
    cells = []
    for data in setup.tests:
        cells += evaluate(data, models, resolve_prompt_sets(setup.prompt_sets, data.classes), setup.store,
                          setup.device, setup.batch_size, setup.num_workers, setup.progress)
    return cells


def _random_weights(setup: AblationSetup, cells: list[dict] = ()) -> bool:
    models = [setup.backbone, setup.teacher]
    return any(c.get("random_weights") for c in cells) or any(Path(m).is_dir() and is_random_model(m) for m in models)


def _variants(setup: AblationSetup, preset: str, title: str, caption: str,
              groups: list[tuple[str, list[Path]]]) -> Ablation:
    cells = _evaluate_groups(setup, groups)
    table = variants_table(cells, title, caption, ["CLIP"] + [g for g, _ in groups], setup.prompt_set)
    return Ablation(preset, table, cells, setup.describe(), _random_weights(setup, cells))


# ------------------------------------------------------------------------------------------------ presets
def run_heads(setup: AblationSetup) -> Ablation:
    """Projection heads: linear (paper), 2-/3-layer MLP, Transformer encoder; same recipe, same targets."""
    groups = [(HEAD_LABELS.get(h, h), train_variant(setup, h, "task")) for h in setup.heads]
    return _variants(setup, "heads", "Projection head", f"Head P trained with the same recipe on the same "
                     f"teacher targets ({len(setup.seeds)} seed(s)); the paper keeps the linear map.", groups)


def run_instructions(setup: AblationSetup) -> Ablation:
    """Instructions: one teacher run per instruction (each cached under its own key), a linear head on each."""
    groups = [(instruction_label(i), train_variant(setup, "linear", i)) for i in setup.instructions]
    return _variants(setup, "instructions", "Instruction given to the teacher", "Linear head trained on teacher "
                     "targets computed with each instruction; the paper finds the task-related one best.", groups)


class _T5Text:
    """The teacher's T5 encoder as a text encoder with the backbone's interface (mean-pooled, no image tokens),
    so that prompt features go through :func:`expclip.extract.prompt_features` and its cache."""

    def __init__(self, teacher: Teacher):
        self.teacher = teacher
        self.embed_dim = teacher.embed_dim
        self.amp_dtype = None if teacher.dtype == torch.float32 else teacher.dtype

    def identity(self) -> dict:
        return self.teacher.identity()

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.teacher.encode_text(texts).cpu()


def _llm_prompt_features(setup: AblationSetup, prompts: list[list[str]]):
    cached = find_prompt_features(setup.store, setup.teacher, prompts, setup.teacher_revision)
    return cached if cached is not None else prompt_features(_T5Text(setup.load_teacher()), prompts, setup.store)


def _clip_prompt_features(setup: AblationSetup, prompts: list[list[str]]):
    cached = find_prompt_features(setup.store, setup.backbone, prompts, setup.backbone_revision)
    return cached if cached is not None else prompt_features(setup.lazy_backbone().get(), prompts, setup.store)


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
        raise ValueError("llm-encoder scores zero-shot: give labelled evaluation data (--data)")
    heads = [head_model(d, setup.device) for d in _analysis_heads(setup)]
    instruction = heads[0].config.get("teacher", {}).get("instruction") or "task"
    rows = ["CLIP", "Exp-CLIP", "(a) LLM image · CLIP text + P", "(b) CLIP image + P · LLM text",
            "(c) LLM image · LLM text"]
    cells: list[dict] = []
    for data in setup.tests:
        img_store = _image_store(setup, data)
        tgt_store = _teacher_store(setup, data, instruction)
        x, y, labels = _aligned(img_store, tgt_store)
        for m in heads:
            if m.config.get("head", {}).get("out_dim") not in (None, y.shape[1]):
                raise ValueError(f"head {m.head_dir} maps to {m.config['head']['out_dim']}-d but the teacher "
                                 f"{setup.teacher} gives {y.shape[1]}-d targets: they are not in one space")
        kappa = float(img_store.meta.get("logit_scale", 100.0))
        base = {"dataset": data.name, "fold": data.info.get("fold"), "classes": data.classes,
                "backbone": img_store.key["model"], "teacher": tgt_store.key["model"], "num_items": len(x),
                "random_weights": _random_weights(setup)}
        for ps, plist in resolve_prompt_sets(setup.prompt_sets, data.classes).items():
            clip_pf, llm_pf = _clip_prompt_features(setup, plist), _llm_prompt_features(setup, plist)

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
                    _random_weights(setup, cells))


def _results_cells(setup: AblationSetup) -> list[dict]:
    """Cells of the given result directories; without any, CLIP and the given heads scored on ``tests``."""
    cells = dedup_cells(c for d in setup.results for c in read_cells(d))
    if not cells and setup.tests and setup.head_runs:
        heads = [head_model(d, setup.device) for d in expand_head_dirs(setup.head_runs)]
        clips = [clip_model(b, p, r) for b, r, p in
                 dict.fromkeys((m.backbone, m.backbone_revision, m.preprocessing) for m in heads)]
        for data in setup.tests:
            cells += evaluate(data, clips + heads, resolve_prompt_sets(setup.prompt_sets, data.classes), setup.store,
                              setup.device, setup.batch_size, setup.num_workers, setup.progress)
    if not cells:
        raise ValueError("this preset tabulates result cells: give --results DIR (from expclip eval) or --data "
                         "with --head")
    return cells


def run_backbones(setup: AblationSetup) -> Ablation:
    """CLIP vs Exp-CLIP per backbone, with the gain row (Table 2's layout)."""
    cells = _results_cells(setup)
    return Ablation("backbones", backbone_table(cells, setup.prompt_set), cells, setup.describe(),
                    any(c.get("random_weights") for c in cells))


def run_gains(setup: AblationSetup) -> Ablation:
    """The paper's mean gain of Exp-CLIP over CLIP across prompt sets, per backbone."""
    cells = _results_cells(setup)
    return Ablation("gains", gain_table(cells), cells, setup.describe(), any(c.get("random_weights") for c in cells))


def run_tsne(setup: AblationSetup) -> Ablation:
    """t-SNE of the image features before and after the head (first analysed head), coloured by class.

    At most ``tsne_max_points`` items per dataset (a fixed random subset). The table gives the silhouette score of
    the classes in each feature space (cosine): higher = features cluster by expression.
    """
    from sklearn.metrics import silhouette_score

    from .figures import tsne_2d

    if not setup.tests:
        raise ValueError("tsne needs labelled data to colour by class: give --data")
    m = head_model(_analysis_heads(setup)[0], setup.device)
    rows = ["before P (CLIP image features)", f"after P ({m.group})"]
    values: dict[str, dict] = {rows[0]: {}, rows[1]: {}}
    plots = []
    for data in setup.tests:
        feats, labels, _ = _image_store(setup, data).tensors()
        rng = np.random.default_rng(0)
        keep = np.sort(rng.permutation(len(feats))[: setup.tsne_max_points])
        before = F.normalize(feats[keep], dim=-1).numpy()
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
    table = {"title": "Feature clustering by expression (t-SNE figure)", "metrics": ["silhouette"],
             "caption": "Silhouette score of the true classes (cosine, in the feature space itself) before and after "
                        "the head; the paper's t-SNE (FERPlus, L/14) clusters by expression only after P.",
             "columns": [d.name for d in setup.tests], "column_titles": {d.name: d.name for d in setup.tests},
             "rows": [{"label": r, "section": None, "kind": "score", "values": values[r]} for r in rows]}
    return Ablation("tsne", table, [], {**setup.describe(), "head": m.head_dir}, _random_weights(setup),
                    {"tsne": plots})


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    needs: tuple[str, ...]  # AblationSetup fields that must be non-empty (any of a tuple inside)
    run: Callable[[AblationSetup], Ablation]

    def ready(self, setup: AblationSetup) -> bool:
        return all(any(bool(getattr(setup, f)) for f in need.split("|")) for need in self.needs)


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("heads", "projection heads: linear (paper) vs 2-/3-layer MLP vs Transformer encoder", ("train", "tests"),
           run_heads),
    Preset("instructions", "teacher instruction: task-related vs short vs task-unrelated vs user-given",
           ("train", "tests"), run_instructions),
    Preset("llm-encoder", "the LLM as zero-shot image and/or text encoder vs CLIP and Exp-CLIP",
           ("train|head_runs", "tests"), run_llm_encoder),
    Preset("backbones", "CLIP vs Exp-CLIP per backbone with the gain row (Table 2's layout)", ("results|head_runs",),
           run_backbones),
    Preset("gains", "mean gain of Exp-CLIP over CLIP across prompt sets, per backbone", ("results|head_runs",),
           run_gains),
    Preset("tsne", "t-SNE of image features before/after the head, coloured by class", ("train|head_runs", "tests"),
           run_tsne),
]}


def write_ablation(ab: Ablation, out_root: str | Path) -> dict[str, Path]:
    """``OUT/<preset>/ablation.json`` (table, cells, config, versions), ``table.md`` and ``table.csv``."""
    from .models.tiny import RANDOM_WEIGHTS_NOTE

    out = Path(out_root) / ab.preset
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "ablation.json", ab.to_json())
    banner = f"> **{RANDOM_WEIGHTS_NOTE}**\n\n" if ab.random_weights else ""
    summary = PRESETS[ab.preset].summary
    md = f"# {ab.table['title']}\n\n{banner}{summary[0].upper() + summary[1:]}.\n\n{table_markdown(ab.table)}"
    atomic_write_bytes(out / "table.md", md.encode())
    atomic_write_bytes(out / "table.csv", table_csv(ab.table).encode())
    return {"json": out / "ablation.json", "markdown": out / "table.md", "csv": out / "table.csv"}


def run_presets(names: list[str], setup: AblationSetup) -> dict[str, Ablation]:
    """Run presets in order and write each under ``setup.out``. "all" = every preset whose inputs are given."""
    if "all" in names:
        names = [n for n, p in PRESETS.items() if p.ready(setup)]
        if not names:
            raise ValueError("no preset has its inputs: give --train-data and --data, or --results")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ValueError(f"unknown ablation preset(s) {unknown}; choose from {list(PRESETS)} or all")
    done = {}
    for n in names:
        log.info("ablation %s: %s", n, PRESETS[n].summary)
        ab = PRESETS[n].run(setup)
        write_ablation(ab, setup.out)
        done[n] = ab
    return done
