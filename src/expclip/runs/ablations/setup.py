"""The workspace of the ablations: what they run on (:class:`AblationSetup`) and what each returns (:class:`Ablation`).

The setup finds features in the store by key and computes only what is missing (CLIP features, teacher targets per
instruction, prompt features through CLIP or through the T5 encoder); models load lazily, on first need. Heads are
trained under ``out/heads/<head>-<instruction>/seed<k>/`` and reused by every preset that needs the same one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

import torch

from ...checkpoint import expand_head_dirs, read_head_config
from ...data.datasets import ItemList
from ...errors import InputError
from ...features.service import (
    LazyModel, check_needed, find_image_store, find_teacher_store, image_store, prompt_features_for, teacher_store,
)
from ...features.store import FeatureStore, key_digest
from ...models.backbone import DEFAULT_BACKBONE, Backbone
from ...models.heads import HEADS
from ...models.hub import declares_random_weights, model_name
from ...models.teacher import DEFAULT_TEACHER, Teacher, check_teacher, resolve_instruction
from ...prompts import resolve_prompt_sets
from ...train import TrainConfig
from ...zeroshot import PromptFeatures
from ..evaluate import Model, clip_model, evaluate, head_model, lazy_backbone, with_backbone
from ..fit import fit_heads

log = logging.getLogger(__name__)


@dataclass
class AblationSetup:
    """Everything a preset may need; each preset uses only its part (see ``expclip.runs.ablations.presets.PRESETS``).

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
    backbone: str | None = None  # None: the first --head's backbone, else DEFAULT_BACKBONE
    backbones: list[str] = field(default_factory=list)  # the backbones preset's sweep (empty: ``backbone`` alone)
    backbone_revision: str | None = None
    teacher: str = DEFAULT_TEACHER
    teacher_revision: str | None = None
    teacher_dtype: str | None = None
    preprocessing: str | None = None  # None: the first --head's, else "reference"
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
    _backbone: LazyModel[Backbone] | None = field(default=None, repr=False)
    _teacher: LazyModel[Teacher] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.out, self.store = Path(self.out), Path(self.store)
        self.results, self.head_runs = [Path(p) for p in self.results], [Path(p) for p in self.head_runs]
        self._follow_heads()

    def _follow_heads(self) -> None:
        """Given heads are analysed on the backbone and preprocessing they were trained with (as ``expclip eval``
        does): those fill what was not given, and a --backbone that none of them uses is refused."""
        cfgs = [read_head_config(d) for d in expand_head_dirs(self.head_runs)] if self.head_runs else []
        if cfgs and self.backbone is not None:
            # the heads' own model, wherever it lives now (a moved or copied folder with the same content)
            if not any(c.backbone.matches(self.backbone) for c in cfgs if c.backbone):
                used = {model_name(c.backbone.id) for c in cfgs if c.backbone}
                raise InputError(f"--backbone {self.backbone} is not the backbone of the given --head "
                                 f"({', '.join(sorted(used))}); drop --backbone to use the heads' own")
        if cfgs and self.backbone is None and cfgs[0].backbone:
            self.backbone = cfgs[0].backbone.id
            self.backbone_revision = self.backbone_revision or cfgs[0].backbone.revision
        self.backbone = self.backbone or DEFAULT_BACKBONE
        self.preprocessing = self.preprocessing or (cfgs[0].preprocessing_mode if cfgs else "reference")

    def lazy_backbone(self) -> LazyModel[Backbone]:
        if self._backbone is None:
            self._backbone = lazy_backbone(self.backbone, self.backbone_revision, self.device)
        return self._backbone

    def lazy_teacher(self) -> LazyModel[Teacher]:
        """The teacher, loaded on first use (only when a store it would fill is missing)."""
        if self._teacher is None:
            self._teacher = LazyModel(self.teacher, self.teacher_revision, lambda: Teacher.from_pretrained(
                self.teacher, self.teacher_revision, device=self.device, dtype=self.teacher_dtype),
                check=lambda: check_teacher(self.teacher, self.teacher_revision))
        return self._teacher

    def check_models(self, presets: list[str]) -> None:
        """Before any preset extracts or trains: the backbone and the teacher are resolved and checked when a store
        those presets would fill is missing (:func:`~expclip.features.service.check_needed`)."""
        trains = any(p in ("heads", "instructions") or (p in ("llm-encoder", "tsne") and not self.head_runs)
                     for p in presets)
        scores = any(p not in ("backbones", "gains") or not self.results for p in presets)
        for data in ([self.train] if trains and self.train is not None else []) + (self.tests if scores else []):
            check_needed(lambda: find_image_store(self.store, self.backbone, data, self.preprocessing,
                                                  self.backbone_revision), self.lazy_backbone())
        needs: list[tuple[ItemList, str]] = []
        if trains and self.train is not None:
            needs += [(self.train, i) for i in (self.instructions if "instructions" in presets else [])]
            needs += [(self.train, "task")]
        if "llm-encoder" in presets:
            heads = expand_head_dirs(self.head_runs) if self.head_runs else []
            instr = (read_head_config(heads[0]).instruction if heads else None) or "task"
            needs += [(d, instr) for d in self.tests]
        seen: set[tuple[int, str]] = set()
        for data, instr in needs:
            resolve_instruction(instr)  # an empty sentence is refused now, not after the CLIP pass
            if (id(data), instr) in seen:
                continue
            seen.add((id(data), instr))
            check_needed(lambda: find_teacher_store(self.store, self.teacher, data, instr, self.preprocessing,
                                                    self.teacher_revision), self.lazy_teacher())

    def use_models(self, backbone=None, teacher: Teacher | None = None) -> "AblationSetup":
        """Hand over models that are already loaded (they must be the ones named by ``backbone``/``teacher``)."""
        if backbone is not None:
            self.lazy_backbone().use(backbone)
        if teacher is not None:
            self.lazy_teacher().use(teacher)
        return self

    def describe(self) -> dict:
        """The resolved configuration, JSON-able (saved with every ablation)."""
        return {
            "train_data": None if self.train is None else {"name": self.train.name, "n": len(self.train)},
            "test_data": [{"name": d.name, "n": len(d), "classes": d.classes} for d in self.tests],
            "results": [str(p) for p in self.results], "head_runs": [str(p) for p in self.head_runs],
            "backbone": self.backbone, "backbone_revision": self.backbone_revision, "backbones": self.backbones,
            "teacher": self.teacher,
            "teacher_revision": self.teacher_revision, "preprocessing": self.preprocessing, "seeds": self.seeds,
            "train": self.train_cfg.to_dict(), "logit_scale": self.logit_scale, "prompt_sets": self.prompt_sets,
            "table_prompt_set": self.prompt_set,
            "instructions": {i: resolve_instruction(i)[1] for i in self.instructions}, "heads": self.heads,
        }

    # -------------------------------------------------------------------------------------------- store access
    def image_store(self, data: ItemList) -> FeatureStore:
        """CLIP image features of ``data``: found by key, else extracted now (once, cached)."""
        return image_store(data, self.lazy_backbone(), self.preprocessing, self.store, strict=self.strict,
                           batch_size=self.batch_size, num_workers=self.num_workers, progress=self.progress)

    def teacher_store(self, data: ItemList, instruction: str) -> FeatureStore:
        """Teacher targets of ``data`` for ``instruction``: found by key, else computed now (once, cached)."""
        return teacher_store(data, self.lazy_teacher(), instruction, self.preprocessing, self.store,
                             strict=self.strict, num_workers=self.num_workers, progress=self.progress)

    def clip_prompt_features(self, prompts: list[list[str]]) -> PromptFeatures:
        """(C,P,D) CLIP text features of a prompt set (cached in the store)."""
        return prompt_features_for(self.lazy_backbone(), prompts, self.store)

    def llm_prompt_features(self, prompts: list[list[str]]) -> PromptFeatures:
        """(C,P,E) prompts through the teacher's T5 encoder alone, mean-pooled (cached in the store)."""
        t5 = LazyModel(self.teacher, self.teacher_revision, lambda: _T5Text(self.lazy_teacher().get()))
        return prompt_features_for(t5, prompts, self.store)

    # -------------------------------------------------------------------------------------------- heads, scoring
    def train_variant(self, head: str = "linear", instruction: str = "task", under: str | None = None) -> list[Path]:
        """Heads of type ``head`` trained on targets of ``instruction``, one per seed, under
        ``out/heads/[<under>/]<head>-<instruction>/``; already trained ones are reused. Returns their directories."""
        if self.train is None:
            raise InputError("this preset trains heads: give the unlabelled training pool (--train-data)")
        img = self.image_store(self.train)
        tgt = self.teacher_store(self.train, instruction)
        kappa = self.logit_scale if self.logit_scale is not None else float(img.meta.get("logit_scale", 100.0))
        cfg = replace(self.train_cfg, head=head, logit_scale=kappa)
        tag = f"{head}-{instruction_tag(instruction)}"
        folder = self.out / "heads" / under / tag if under else self.out / "heads" / tag
        return fit_heads(img, tgt, folder, self.seeds, cfg, run_name=tag, device=self.device)

    def check_head_features(self, m: Model) -> None:
        """Refuse to analyse head ``m`` on image features of another backbone or preprocessing than its own
        (ValueError naming the head and the option to pass)."""
        same = model_name(m.backbone) == model_name(self.backbone)  # one local folder, however it is spelled
        for opt, ok, have, want in (("--backbone", same, self.backbone, m.backbone),
                                    ("--preprocessing", m.preprocessing == self.preprocessing, self.preprocessing,
                                     m.preprocessing)):
            if not ok:
                raise InputError(f"head {m.head_dir} was trained on {want!r} ({opt[2:]}) but this analysis computes "
                                 f"features with {have!r}: pass {opt} {want}, or analyse heads of one backbone and "
                                 "preprocessing at a time")

    def head_model(self, head_dir: str | Path) -> Model:
        """A head to analyse, on this setup's backbone when that is the head's own model in another place (a moved
        or copied folder with the same content, :func:`~expclip.runs.evaluate.with_backbone`)."""
        return with_backbone(head_model(head_dir, self.device), self.backbone)

    def analysis_heads(self) -> list[Path]:
        """The heads to analyse: the given ones, else the paper's linear head on the task instruction."""
        return expand_head_dirs(self.head_runs) if self.head_runs else self.train_variant("linear", "task")

    def evaluate_groups(self, groups: list[tuple[str, list[Path]]], clip: bool = True) -> list[dict]:
        """Cells of plain CLIP (optional) and every (label, head dirs) group on every test set × prompt set."""
        if not self.tests:
            raise InputError("this preset scores zero-shot: give labelled evaluation data (--data)")
        models: list[Model] = [clip_model(self.backbone, self.preprocessing, self.backbone_revision)] if clip else []
        for label, dirs in groups:
            for d in dirs:
                m = self.head_model(d)
                m.group = label
                models.append(m)
        return self.evaluate(models)

    def evaluate(self, models: list[Model]) -> list[dict]:
        """Cells of ``models`` on every test set × prompt set (:func:`expclip.runs.evaluate.evaluate`)."""
        cells = []
        for data in self.tests:
            cells += evaluate(data, models, resolve_prompt_sets(self.prompt_sets, data.classes), self.store,
                              self.device, self.batch_size, self.num_workers, self.progress)
        return cells

    def sweep_backbones(self) -> list[dict]:
        """Table 2 over any list of backbones: per backbone, the paper's linear head (every seed) trained on its own
        features and the shared teacher targets, then CLIP and Exp-CLIP scored on every test set. Each backbone's
        features live in their own stores (the key holds the model and its revision); its heads go to
        ``out/heads/<backbone>/linear-task/``."""
        from ...files import slug
        from ...models.backbone import backbone_short_name

        if self.train is None or not self.tests:
            raise InputError("sweeping backbones trains a head on each: give --train-data and --data (or tabulate "
                             "existing results with --results / --head)")
        names = list(dict.fromkeys(self.backbones or [self.backbone]))
        folders = [slug(backbone_short_name(n)) for n in names]
        if len(set(folders)) < len(folders):  # two local folders of one name: tell their heads apart
            folders = [f"{f}-{key_digest({'model': model_name(n)})[:6]}" for f, n in zip(folders, names)]
        cells: list[dict] = []
        for name, folder in zip(names, folders):
            sub = replace(self, backbone=name, backbone_revision=None if name != self.backbone else
                          self.backbone_revision, backbones=[], head_runs=[], results=[], _backbone=None)
            sub._teacher = self.lazy_teacher()  # one teacher for every backbone (its targets are cached anyway)
            heads = [head_model(d, self.device) for d in sub.train_variant("linear", "task", under=folder)]
            for m in heads:
                m.group = "Exp-CLIP"
            cells += sub.evaluate([clip_model(name, self.preprocessing, sub.backbone_revision)] + heads)
        return cells

    def random_weights(self, cells: Iterable[dict] = ()) -> bool:
        """True when a model involved is one of the tiny random-weight ones (reports then carry a banner)."""
        models = [self.backbone, self.teacher]
        return any(c.get("random_weights") for c in cells) or any(declares_random_weights(m) for m in models)


def instruction_tag(instruction: str) -> str:
    """A folder-safe name: the preset name, or "custom-<digest>" for a sentence."""
    name, text = resolve_instruction(instruction)
    return name if name != "custom" else f"custom-{key_digest({'instruction': text})[:8]}"


@dataclass
class Ablation:
    """A preset's outcome: its table, the cells behind it, extra data (t-SNE coordinates) and configuration."""

    preset: str
    table: dict
    cells: list[dict]
    config: dict
    random_weights: bool
    extra: dict = field(default_factory=dict)


class _T5Text:
    """The teacher's T5 encoder as a text encoder with the backbone's interface (mean-pooled, no image tokens),
    so that prompt features go through :func:`expclip.features.extract.prompt_features` and its cache."""

    def __init__(self, teacher: Teacher):
        self.teacher = teacher
        self.embed_dim = teacher.embed_dim
        self.amp_dtype = None if teacher.dtype == torch.float32 else teacher.dtype

    def identity(self) -> dict:
        return self.teacher.identity()

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.teacher.encode_text(texts).cpu()
