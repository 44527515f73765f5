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

from ...checkpoint import read_head_config
from ...data.datasets import ItemList
from ..evaluate import LazyBackbone, Model, clip_model, evaluate, head_model, image_store_for
from ...features.extract import (
    extract_teacher, find_prompt_features, find_teacher_store, prompt_features, require_store,
)
from ..fit import expand_head_dirs, fit_heads
from ...models.backbone import DEFAULT_BACKBONE
from ...models.heads import HEADS
from ...models.hub import model_name
from ...models.teacher import DEFAULT_TEACHER, Teacher, resolve_instruction
from ...models.tiny import is_random_model
from ...prompts import resolve_prompt_sets
from ...features.store import FeatureStore, StaleStoreError, StoreError, key_digest
from ...train import TrainConfig
from ...zeroshot import PromptFeatures
from ...errors import InputError

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
    _backbone: LazyBackbone | None = field(default=None, repr=False)
    _teacher: Teacher | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.out, self.store = Path(self.out), Path(self.store)
        self.results, self.head_runs = [Path(p) for p in self.results], [Path(p) for p in self.head_runs]
        self._follow_heads()

    def _follow_heads(self) -> None:
        """Given heads are analysed on the backbone and preprocessing they were trained with (as ``expclip eval``
        does): those fill what was not given, and a --backbone that none of them uses is refused."""
        cfgs = [read_head_config(d) for d in expand_head_dirs(self.head_runs)] if self.head_runs else []
        if cfgs and self.backbone is not None:
            used = {model_name(c["backbone"]["id"]) for c in cfgs}
            if model_name(self.backbone) not in used:
                raise InputError(f"--backbone {self.backbone} is not the backbone of the given --head "
                                 f"({', '.join(sorted(used))}); drop --backbone to use the heads' own")
        if cfgs and self.backbone is None:
            self.backbone = cfgs[0]["backbone"]["id"]
            self.backbone_revision = self.backbone_revision or cfgs[0]["backbone"].get("revision")
        self.backbone = self.backbone or DEFAULT_BACKBONE
        self.preprocessing = self.preprocessing or (cfgs[0]["preprocessing"]["mode"] if cfgs else "reference")

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

    # -------------------------------------------------------------------------------------------- store access
    def image_store(self, data: ItemList) -> FeatureStore:
        """CLIP image features of ``data``: found by key, else extracted now (once, cached)."""
        return image_store_for(data, self.lazy_backbone(), self.preprocessing, self.store, self.batch_size,
                               self.num_workers, self.progress, self.strict)

    def teacher_store(self, data: ItemList, instruction: str) -> FeatureStore:
        """Teacher targets of ``data`` for ``instruction``: found by key, else computed now (once, cached)."""
        try:
            return find_teacher_store(self.store, self.teacher, data, instruction, self.preprocessing,
                                      self.teacher_revision)
        except StaleStoreError:
            raise
        except StoreError:
            pass
        return require_store(extract_teacher(self.load_teacher(), data, self.store, instruction, self.preprocessing,
                                              num_workers=self.num_workers, progress=self.progress,
                                              strict=self.strict), f"teacher targets of {data.name}")

    def clip_prompt_features(self, prompts: list[list[str]]) -> PromptFeatures:
        """(C,P,D) CLIP text features of a prompt set (cached in the store)."""
        cached = find_prompt_features(self.store, self.backbone, prompts, self.backbone_revision)
        return cached if cached is not None else prompt_features(self.lazy_backbone().get(), prompts, self.store)

    def llm_prompt_features(self, prompts: list[list[str]]) -> PromptFeatures:
        """(C,P,E) prompts through the teacher's T5 encoder alone, mean-pooled (cached in the store)."""
        cached = find_prompt_features(self.store, self.teacher, prompts, self.teacher_revision)
        return cached if cached is not None else prompt_features(_T5Text(self.load_teacher()), prompts, self.store)

    # -------------------------------------------------------------------------------------------- heads, scoring
    def train_variant(self, head: str = "linear", instruction: str = "task") -> list[Path]:
        """Heads of type ``head`` trained on targets of ``instruction``, one per seed, under
        ``out/heads/<head>-<instruction>/``; already trained ones are reused. Returns their directories."""
        if self.train is None:
            raise InputError("this preset trains heads: give the unlabelled training pool (--train-data)")
        img = self.image_store(self.train)
        tgt = self.teacher_store(self.train, instruction)
        kappa = self.logit_scale if self.logit_scale is not None else float(img.meta.get("logit_scale", 100.0))
        cfg = replace(self.train_cfg, head=head, logit_scale=kappa)
        tag = f"{head}-{instruction_tag(instruction)}"
        return fit_heads(img, tgt, self.out / "heads" / tag, self.seeds, cfg, run_name=tag, device=self.device)

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
                m = head_model(d, self.device)
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

    def random_weights(self, cells: Iterable[dict] = ()) -> bool:
        """True when a model involved is one of the tiny random-weight ones (reports then carry a banner)."""
        models = [self.backbone, self.teacher]
        return any(c.get("random_weights") for c in cells) or any(Path(m).is_dir() and is_random_model(m)
                                                                  for m in models)


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
