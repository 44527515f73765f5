"""Zero-shot evaluation: datasets × models (CLIP and heads) × prompt sets → result cells.

Image features come from the store (extracted on first use), one store per (backbone, preprocessing, dataset),
and are reused for every head, seed and prompt set. Prompt features are cached the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..checkpoint import HeadConfig, load_head
from ..data.datasets import ItemList
from ..errors import CheckpointError, InputError, ModelNotAvailableError
from ..features.service import (
    LazyModel, check_needed, check_prompts_needed, find_image_store, image_store, prompt_features_for,
)
from ..files import versions
from ..metrics import summarize
from ..models.backbone import Backbone, check_backbone, known_feature_dim
from ..prompts import resolve_prompt_sets
from ..models.hub import declares_random_weights, model_name
from ..zeroshot import build_classifier, classify, embed_images

log = logging.getLogger(__name__)


@dataclass
class Model:
    """What scores images: plain CLIP (``head`` None) or CLIP + a projection head and its config."""

    name: str
    group: str  # seeds of one training run share a group; rows of the tables are groups
    backbone: str
    preprocessing: str
    head: nn.Module | None = None
    backbone_revision: str | None = None
    seed: int | None = None
    head_dir: str | None = None
    config: HeadConfig | None = None


def clip_model(backbone: str, preprocessing: str = "reference", revision: str | None = None) -> Model:
    return Model("CLIP", "CLIP", backbone, preprocessing, None, revision)


def head_model(head_dir: str | Path, device: str | torch.device = "cpu") -> Model:
    """A saved head as a Model; its backbone, revision and preprocessing come from its config."""
    head, cfg = load_head(head_dir, device)
    if cfg.backbone is None:
        raise CheckpointError(f"{Path(head_dir) / 'config.json'} records no backbone: it cannot be evaluated")
    return Model(name=cfg.name or "Exp-CLIP", group=cfg.run_name or Path(head_dir).name, backbone=cfg.backbone.id,
                 preprocessing=cfg.preprocessing_mode, head=head, backbone_revision=cfg.backbone.revision,
                 seed=cfg.seed, head_dir=str(head_dir), config=cfg)


def with_backbone(m: Model, backbones: str | list[str] | None) -> Model:
    """Head ``m`` scored on the one of ``backbones`` that is the model its config records, wherever it lives now (a
    moved or copied local folder with the same content fingerprint, :meth:`~expclip.checkpoint.ModelRecord.matches`);
    InputError when none is (heads are evaluated as they were trained)."""
    names = [backbones] if isinstance(backbones, str) else list(backbones or [])
    if not names or m.config is None or m.config.backbone is None or any(
            model_name(m.backbone) == model_name(b) for b in names):
        return m
    found = next((b for b in names if m.config.backbone.matches(b)), None)
    if found is None:
        raise InputError(f"--backbone {' '.join(names)} contradicts head {m.head_dir}, trained with backbone "
                         f"{m.backbone!r} (revision {m.backbone_revision}); heads are evaluated as they were trained: "
                         "drop --backbone, or give that model (a copy or moved folder with the same content is "
                         "accepted)")
    log.info("head %s: its backbone %s is %s now (same content)", m.head_dir, m.backbone, found)
    m.backbone = model_name(found)
    return m


def lazy_backbone(name: str, revision: str | None, device: str | torch.device) -> LazyModel[Backbone]:
    """The backbone ``name``, loaded only if something is missing from the store."""
    return LazyModel(name, revision, lambda: Backbone.from_pretrained(name, revision, device=device),
                     check=lambda: check_backbone(name, revision))


def model_groups(models: list[Model]) -> dict[tuple, list[Model]]:
    """Models by (backbone, revision, preprocessing): each group scores one image store."""
    groups: dict[tuple, list[Model]] = {}
    for m in models:
        groups.setdefault((m.backbone, m.backbone_revision, m.preprocessing), []).append(m)
    return groups


def check_models_needed(datasets: list[ItemList], models: list[Model], prompts: str | list[str],
                        store_root: str | Path, backbones: dict, device: str | torch.device = "cpu",
                        sampling: str = "reference", num_segments: int = 16) -> None:
    """Before the first encoder runs: every backbone whose features (of any dataset) or prompt features are missing
    from the store is resolved and checked (:func:`~expclip.features.service.check_needed`)."""
    for data in datasets:
        for (bb, rev, mode), group in model_groups(models).items():
            lazy = backbones.setdefault((bb, rev), lazy_backbone(bb, rev, device))
            try:
                check_needed(lambda: find_image_store(store_root, bb, data, mode, rev, sampling, num_segments), lazy)
                for plist in resolve_prompt_sets(prompts, data.classes).values():
                    check_prompts_needed(lazy, plist, store_root)
            except ModelNotAvailableError as e:
                heads = [m.head_dir for m in group if m.head_dir]
                if not heads:
                    raise
                raise ModelNotAvailableError(f"{e} (the backbone recorded by head {heads[0]}; if its folder moved, "
                                             "give the new one with --backbone: a folder with the same content is "
                                             "accepted)") from e


def check_head_dims(models: list[Model]) -> None:
    """Refuse, before any feature is computed, a head whose input size differs from its backbone's features (as far
    as the backbone's config files tell without loading it)."""
    dims: dict[tuple, int | None] = {}
    for m in models:
        if m.config is None:
            continue
        key = (m.backbone, m.backbone_revision)
        if key not in dims:
            dims[key] = known_feature_dim(m.backbone, m.backbone_revision)
        if dims[key] is not None:
            m.config.check_features(dims[key], f"its backbone {m.backbone}", m.head_dir)


def score_cells(feats: torch.Tensor, labels: torch.Tensor, model: Model, prompt_sets: dict[str, object],
                classes: list[str], logit_scale: float, device: str | torch.device = "cpu") -> list[dict]:
    """Metrics of one model on one feature matrix, for every prompt set (image embeddings computed once)."""
    head = model.head
    emb = embed_images(feats.to(device), head)
    out = []
    for ps_name, pf in prompt_sets.items():
        clf = build_classifier(pf, head, logit_scale)
        pred = classify(emb, clf).argmax(dim=1).cpu()
        out.append({"prompt_set": ps_name, **summarize(labels, pred, len(classes), classes)})
    return out


def evaluate(
    data: ItemList,
    models: list[Model],
    prompts: dict[str, list[list[str]]],
    store_root: str | Path,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: bool = True,
    strict: bool = False,
    extract: Callable | None = None,
    sampling: str = "reference",
    num_segments: int = 16,
    backbones: dict | None = None,
) -> list[dict]:
    """Evaluate every model on ``data`` with every prompt set; returns one result dict per cell.

    ``prompts``: prompt-set name -> per-class prompt lists for ``data.classes``.
    ``sampling``/``num_segments``: the frame sampling of video data. ``backbones``: a dict shared between calls
    (datasets, folds) so that a backbone is loaded at most once.
    """
    if not data.classes:
        raise InputError(f"{data.name} has no classes: zero-shot evaluation needs labelled data")
    data.validate(check_files=False)
    if any(label is None for label in data.labels()):
        raise InputError(f"{data.name}: some items have no label; cannot score them")
    check_head_dims(models)
    store_root = Path(store_root)
    results = []
    for (bb_name, bb_rev, mode), group in model_groups(models).items():
        lazy = (backbones if backbones is not None else {}).setdefault((bb_name, bb_rev),
                                                                        lazy_backbone(bb_name, bb_rev, device))
        store = image_store(data, lazy, mode, store_root, sampling=sampling, num_segments=num_segments,
                            strict=strict, extract=extract, batch_size=batch_size, num_workers=num_workers,
                            progress=progress)
        feats, labels, _ = store.tensors()
        if (labels < 0).any():
            raise InputError(f"{data.name}: some items have no label; cannot score them")
        logit_scale = float(store.meta.get("logit_scale", 100.0))
        pf = {name: prompt_features_for(lazy, plist, store_root) for name, plist in prompts.items()}
        model_id = store.key["model"]["id"]
        random_weights = declares_random_weights(str(model_id))
        for m in group:
            if m.config is not None:
                m.config.check_features(feats.shape[-1], bb_name, m.head_dir)
            for cell in score_cells(feats, labels, m, pf, data.classes, logit_scale, device):
                results.append({
                    "model": m.name, "group": m.group, "seed": m.seed, "head_dir": m.head_dir,
                    "dataset": data.name, "fold": data.info.get("fold"), "kind": data.kind, "classes": data.classes,
                    **cell, "data_info": {k: v for k, v in data.info.items() if k not in ("per_class", "annotations")},
                    "sampling": store.key.get("sampling"),
                    "clips": {k: v for k, v in store.meta["clips"].items() if k != "examples"}
                    if "clips" in store.meta else None,
                    "num_items": len(store), "num_failed": len(store.failures),
                    "backbone": store.key["model"], "preprocessing": store.key.get("preprocessing"),
                    "store": store.path.name, "random_weights": random_weights, "versions": versions(),
                })
        log.info("%s: scored %d models × %d prompt sets on %d items", data.name, len(group), len(prompts), len(feats))
    return results
