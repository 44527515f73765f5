"""Training runs from the store: align image features with teacher targets, train one head per seed, save each.

No encoder runs here. A seed whose head is already saved with the same configuration is skipped, so an
interrupted multi-seed run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import HeadConfig, HeadSpec, ModelRecord, read_head_config, save_head
from ..models.hub import model_name
from ..features.store import FeatureStore, describe_key_difference
from ..files import atomic_write_json
from ..train import TrainConfig, train_head
from ..errors import CheckpointError, ConflictError, InputError

log = logging.getLogger(__name__)


def aligned_training_tensors(image_store: FeatureStore, teacher_store: FeatureStore) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(N,D) image features and (N,E) targets of the items valid in both stores, matched by path."""
    if image_store.key["data"].get("sha256") != teacher_store.key["data"].get("sha256"):
        raise InputError(
            f"the image store ({image_store.key['data']['name']}) and the teacher store "
            f"({teacher_store.key['data']['name']}) were extracted from different data"
        )
    paths_i = [it["path"] for it in image_store.items]
    pos_t = {it["path"]: i for i, it in enumerate(teacher_store.items)}
    vi, vt = image_store.valid(), teacher_store.valid()
    rows_i, rows_t = [], []
    for i, p in enumerate(paths_i):
        j = pos_t.get(p)
        if j is not None and vi[i] and vt[j]:
            rows_i.append(i)
            rows_t.append(j)
    x = torch.from_numpy(np.asarray(image_store.features()[rows_i], dtype=np.float32))
    y = torch.from_numpy(np.asarray(teacher_store.features()[rows_t], dtype=np.float32))
    summary = {"name": image_store.key["data"]["name"], "sha256": image_store.key["data"].get("sha256"),
               "n_items": len(paths_i), "n_used": len(rows_i)}
    return x, y, summary


def fit_heads(
    image_store: FeatureStore,
    teacher_store: FeatureStore,
    out_dir: str | Path,
    seeds: list[int],
    cfg: TrainConfig | None = None,
    run_name: str | None = None,
    device: str | torch.device = "cpu",
) -> list[Path]:
    """Train one head per seed on the aligned stores; heads go to ``out_dir/seed<k>/``. Returns their dirs."""
    cfg = cfg or TrainConfig()
    twice = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if twice:
        raise InputError(f"--seeds: seed(s) {twice} given more than once")
    out = Path(out_dir)
    run_name = run_name or out.name
    x, y, data_summary = aligned_training_tensors(image_store, teacher_store)
    if data_summary["n_used"] < data_summary["n_items"]:
        log.warning("training on %d of %d items (the rest failed extraction)", data_summary["n_used"], data_summary["n_items"])
    tkey = teacher_store.key
    dirs = []
    for seed in seeds:
        scfg = replace(cfg, seed=seed)
        head_dir = out / f"seed{seed}"
        bb = image_store.key["model"]
        config = HeadConfig(
            name="Exp-CLIP", run_name=run_name,
            head=HeadSpec(scfg.head, int(x.shape[1]), int(y.shape[1]), scfg.head_kwargs),
            backbone=ModelRecord(model_name(bb["id"]), bb.get("revision")),
            preprocessing=image_store.key.get("preprocessing"),
            teacher={**_named(tkey["model"]), "instruction": tkey.get("instruction"),
                     "preprocessing": tkey.get("preprocessing")},
            train=scfg.to_dict(), seed=seed, data=data_summary,
            stores={"image": image_store.path.name, "teacher": teacher_store.path.name},
        )
        if _already_trained(head_dir, config):
            log.info("seed %d: head already trained in %s, skipping", seed, head_dir)
            dirs.append(head_dir)
            continue
        history: list[dict] = []
        head = train_head(x, y, scfg, device=device, history=history)
        last = history[-1]
        config.final = {"loss": last["loss"], "acc": last["acc"], "steps": last["step"]}
        head_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(head_dir / "history.json", history)
        save_head(head_dir, head, config)  # config.json last: its presence marks the seed done
        log.info("seed %d: final loss %.4f, in-batch acc %.3f -> %s", seed, last["loss"], last["acc"], head_dir)
        dirs.append(head_dir)
    return dirs


def _named(model: dict) -> dict:
    """A store key's model with a local directory named by its absolute path: the head must load it from anywhere."""
    return {**model, "id": model_name(model["id"])}


def _already_trained(head_dir: Path, config: HeadConfig) -> bool:
    if not (head_dir / "head.safetensors").is_file():
        return False
    try:
        old = read_head_config(head_dir).to_dict()
    except CheckpointError:
        return False
    for k in ("backbone", "teacher"):  # heads saved before ids were absolute name the same model relatively
        if isinstance(old.get(k), dict) and "id" in old[k]:
            old[k] = _named(old[k])
    new = json.loads(json.dumps(config.to_dict()))
    if any(old.get(k) != v for k, v in new.items()):
        diffs = describe_key_difference(new, {k: old.get(k) for k in new})
        raise ConflictError(
            f"{head_dir} holds a head trained with another configuration ("
            + "; ".join(d.replace("store has", "that head has") for d in diffs[:3])
            + "); choose another --out or delete it"
        )
    return True
