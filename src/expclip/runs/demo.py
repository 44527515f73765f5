"""The offline demo: the real pipeline end to end on tiny random-weight models and synthetic faces.

extract CLIP features and teacher targets -> train 3 seeds -> evaluate CLIP and the heads on every prompt set ->
results (JSON, CSV, Markdown, confusion PNGs) -> every ablation preset -> report.html. The weights are random, so
the numbers mean nothing.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from ..data.datasets import image_folder, unlabelled_images
from ..data.synthetic import write_face_folder
from .evaluate import clip_model, evaluate, head_model
from ..features.extract import extract_images, extract_teacher
from ..features.extraction import require_store
from .fit import fit_heads
from ..labels import classes_for
from ..models.backbone import Backbone
from ..models.teacher import Teacher
from ..models.hub import RANDOM_WEIGHTS_NOTE
from ..models.tiny import build_tiny_blip2, build_tiny_clip
from ..prompts import resolve_prompt_sets
from ..report.results import write_results
from ..train import TrainConfig

log = logging.getLogger(__name__)


def run_demo(out_dir: str | Path = "expclip-demo", train_per_class: int = 80, test_per_class: int = 20,
             seeds: tuple[int, ...] = (1, 2, 3), num_workers: int = 0, progress: bool = True) -> dict:
    """Run the whole pipeline in ``out_dir``; returns paths and timings. Reruns reuse what is already there."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    timings: dict[str, float] = {}

    def lap(name: str, start: float) -> float:
        timings[name] = round(time.perf_counter() - start, 2)
        return time.perf_counter()

    t = time.perf_counter()
    clip_dir, blip_dir = out / "models" / "tiny-clip", out / "models" / "tiny-blip2-t5"
    if not (clip_dir / "config.json").is_file():
        build_tiny_clip(clip_dir, seed=0)
    if not (blip_dir / "config.json").is_file():
        build_tiny_blip2(blip_dir, seed=0)
    classes = classes_for(7)
    train_dir, test_dir = out / "data" / "train-pool", out / "data" / "test"
    if not train_dir.is_dir():
        write_face_folder(train_dir, classes, train_per_class, seed=1, labelled=False)
    if not test_dir.is_dir():
        write_face_folder(test_dir, classes, test_per_class, seed=2, labelled=True)
    t = lap("setup (tiny models + synthetic faces)", t)

    store = out / "store"
    pool = unlabelled_images(train_dir, name="synthetic-train-pool")
    backbone = Backbone.from_pretrained(clip_dir, device="cpu")
    teacher = Teacher.from_pretrained(blip_dir, device="cpu")
    image_store = require_store(extract_images(backbone, pool, store, num_workers=num_workers, progress=progress), "CLIP")
    t = lap("extract CLIP image features", t)
    teacher_store = require_store(extract_teacher(teacher, pool, store, num_workers=num_workers, progress=progress), "teacher")
    t = lap("extract teacher targets", t)

    cfg = TrainConfig(batch_size=64, logit_scale=backbone.logit_scale)
    head_dirs = fit_heads(image_store, teacher_store, out / "runs" / "exp-clip-tiny", list(seeds), cfg)
    t = lap(f"train {len(seeds)} seeds", t)

    test = image_folder(test_dir, name="synthetic-test")
    models = [clip_model(str(clip_dir))] + [head_model(d) for d in head_dirs]
    results = evaluate(test, models, resolve_prompt_sets("all", test.classes), store, num_workers=num_workers,
                       progress=progress)
    t = lap("evaluate (CLIP + heads × 5 prompt sets)", t)
    paths = write_results(results, out / "results", title="expclip demo: synthetic faces, tiny models",
                          banner=RANDOM_WEIGHTS_NOTE)
    t = lap("write results", t)
    report = _demo_analyses(out, pool, test, backbone, teacher, cfg, num_workers, progress)
    lap("ablations + report", t)
    timings["total"] = round(time.perf_counter() - t0, 2)
    return {"out": out, "paths": paths, "timings": timings, "results": results, "heads": head_dirs,
            "report": report}


def _demo_analyses(out: Path, pool, test, backbone: Backbone, teacher: Teacher, cfg: TrainConfig,
                   num_workers: int, progress: bool) -> dict:
    """Every ablation preset on the demo's data (2 seeds), then ``out/report.html`` + ``out/report.md``."""
    from .ablations.presets import AblationSetup, run_presets
    from ..report.page import build_report

    setup = AblationSetup(
        out=out / "ablations", store=out / "store", train=pool, tests=[test], results=[out / "results"],
        head_runs=[out / "runs" / "exp-clip-tiny"], backbone=str(out / "models" / "tiny-clip"),
        teacher=str(out / "models" / "tiny-blip2-t5"), seeds=[1, 2], train_cfg=cfg, num_workers=num_workers,
        progress=progress,
    ).use_models(backbone, teacher)
    # The tiny models' ops are so small that more than one intra-op thread only adds waiting (several times slower
    # on a busy machine); the previous setting is restored.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_presets(["all"], setup)
    finally:
        torch.set_num_threads(threads)
    return build_report(out, title="expclip demo report — synthetic faces, tiny random models")
