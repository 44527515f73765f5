"""Zero-shot evaluation: datasets × models (CLIP and heads) × prompt sets → result cells.

Image features come from the store (extracted on first use), one store per (backbone, preprocessing, dataset),
and are reused for every head, seed and prompt set. Prompt features are cached the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..checkpoint import load_head
from ..files import versions
from ..data.datasets import ItemList
from ..features.extract import extract_features, find_image_store, find_prompt_features, prompt_features, require_store
from ..features.extraction import check_strict
from ..metrics import summarize
from ..models.backbone import Backbone, known_feature_dim
from ..models.tiny import is_random_model
from ..features.store import FeatureStore, StaleStoreError, StoreError
from ..zeroshot import build_classifier, classify, embed_images
from ..errors import InputError

log = logging.getLogger(__name__)


@dataclass
class Model:
    """What scores images: plain CLIP (``head`` None) or CLIP + a projection head."""

    name: str
    group: str  # seeds of one training run share a group; rows of the tables are groups
    backbone: str
    preprocessing: str
    head: nn.Module | None = None
    backbone_revision: str | None = None
    seed: int | None = None
    head_dir: str | None = None
    config: dict = field(default_factory=dict)


def clip_model(backbone: str, preprocessing: str = "reference", revision: str | None = None) -> Model:
    return Model("CLIP", "CLIP", backbone, preprocessing, None, revision)


def head_model(head_dir: str | Path, device: str | torch.device = "cpu") -> Model:
    """A saved head as a Model; its backbone, revision and preprocessing come from its config."""
    head, cfg = load_head(head_dir, device)
    group = cfg.get("run_name") or Path(head_dir).name
    return Model(
        name=cfg.get("name", "Exp-CLIP"), group=group, backbone=cfg["backbone"]["id"],
        preprocessing=cfg["preprocessing"]["mode"], head=head, backbone_revision=cfg["backbone"].get("revision"),
        seed=cfg.get("seed"), head_dir=str(head_dir), config=cfg,
    )


class LazyBackbone:
    """Loads the backbone only if something is missing from the store."""

    def __init__(self, name: str, revision: str | None, device: str | torch.device):
        self.name, self.revision, self.device = name, revision, device
        self._bb: Backbone | None = None

    def get(self) -> Backbone:
        if self._bb is None:
            log.info("loading backbone %s", self.name)
            self._bb = Backbone.from_pretrained(self.name, self.revision, device=self.device)
        return self._bb


def image_store_for(data: ItemList, lazy: LazyBackbone, preprocessing: str, store_root: Path,
                    batch_size: int = 64, num_workers: int | None = None, progress: bool = True,
                    strict: bool = False, extract: Callable | None = None, sampling: str = "reference",
                    num_segments: int = 16) -> FeatureStore:
    """The image/video store of ``data`` for this backbone: found by key, else extracted now."""
    try:
        store = find_image_store(store_root, lazy.name, data, preprocessing, lazy.revision, sampling, num_segments)
        return check_strict(store) if strict else store
    except StaleStoreError:
        raise
    except StoreError:
        pass
    kw = dict(batch_size=batch_size, num_workers=num_workers, progress=progress, strict=strict)
    if data.kind == "video":
        kw.update(sampling=sampling, num_segments=num_segments)
    fn = extract or extract_features
    return require_store(fn(lazy.get(), data, store_root, preprocessing, **kw), f"features of {data.name}")


def check_head_dims(models: list[Model]) -> None:
    """Refuse, before any feature is computed, a head whose input size differs from its backbone's features."""
    dims: dict[tuple, int | None] = {}
    for m in models:
        in_dim = m.config.get("head", {}).get("in_dim") if m.head is not None else None
        if in_dim is None:
            continue
        key = (m.backbone, m.backbone_revision)
        if key not in dims:
            dims[key] = known_feature_dim(m.backbone, m.backbone_revision)
        if dims[key] is not None and dims[key] != in_dim:
            raise InputError(f"head {m.head_dir} takes {in_dim}-d features but its backbone {m.backbone} gives "
                             f"{dims[key]}-d: its config.json names the wrong backbone, or the model changed")


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
    groups: dict[tuple, list[Model]] = {}
    for m in models:
        groups.setdefault((m.backbone, m.backbone_revision, m.preprocessing), []).append(m)
    for (bb_name, bb_rev, mode), group in groups.items():
        lazy = (backbones if backbones is not None else {}).setdefault((bb_name, bb_rev),
                                                                        LazyBackbone(bb_name, bb_rev, device))
        store = image_store_for(data, lazy, mode, store_root, batch_size, num_workers, progress, strict, extract,
                                sampling, num_segments)
        feats, labels, _ = store.tensors()
        if (labels < 0).any():
            raise InputError(f"{data.name}: some items have no label; cannot score them")
        logit_scale = float(store.meta.get("logit_scale", 100.0))
        pf = {}
        for name, plist in prompts.items():
            cached = find_prompt_features(store_root, bb_name, plist, bb_rev)
            pf[name] = cached if cached is not None else prompt_features(lazy.get(), plist, store_root)
        model_id = store.key["model"]["id"]
        random_weights = is_random_model(model_id) if Path(str(model_id)).is_dir() else False
        for m in group:
            in_dim = feats.shape[-1]
            if m.head is not None and m.config.get("head", {}).get("in_dim") not in (None, in_dim):
                raise InputError(
                    f"head {m.head_dir} expects {m.config['head']['in_dim']}-d features but {bb_name} gives {in_dim}-d"
                )
            for cell in score_cells(feats, labels, m, pf, data.classes, logit_scale, device):
                results.append({
                    "model": m.name, "group": m.group, "seed": m.seed, "head_dir": m.head_dir,
                    "dataset": data.name, "fold": data.info.get("fold"), "kind": data.kind, "classes": data.classes,
                    **cell, "data_info": {k: v for k, v in data.info.items() if k not in ("per_class", "annotations")},
                    "sampling": store.key.get("sampling"),
                    "clips": {k: v for k, v in store.meta["clips"].items() if k != "examples"}
                    if "clips" in store.meta else None,
                    "num_items": len(store), "num_failed": len(store.failures),
                    "backbone": store.key["model"], "preprocessing": store.key["preprocessing"],
                    "store": store.path.name, "random_weights": random_weights, "versions": versions(),
                })
        log.info("%s: scored %d models × %d prompt sets on %d items", data.name, len(group), len(prompts), len(feats))
    return results
