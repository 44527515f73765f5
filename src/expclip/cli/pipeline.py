"""``expclip demo | extract | train | eval``: the pipeline's commands."""

from __future__ import annotations

import argparse
import logging

from ..errors import InputError
from .options import (
    EPILOG, NONNEG_FLOAT, POSITIVE_FLOAT, POSITIVE_INT, _add_dataset_source, _add_pre, _add_recipe, _add_runtime,
    _add_store, _all_datasets, _data, _device, _device_map, _report_store,
)

log = logging.getLogger("expclip")


def cmd_demo(args) -> int:
    from ..files import writable_dir
    from ..models.hub import RANDOM_WEIGHTS_NOTE
    from ..runs.demo import run_demo

    writable_dir(args.out)
    print(f"expclip demo — {RANDOM_WEIGHTS_NOTE}.", flush=True)
    res = run_demo(args.out, progress=not args.no_progress)
    print()
    print(res["paths"]["markdown"].read_text())
    print("timings (s): " + ", ".join(f"{k}: {v}" for k, v in res["timings"].items()))
    print(f"outputs in {res['out']}/ (results/results.md, results/results.csv, results/cells/*.json, "
          f"results/confusion/*.png, runs/exp-clip-tiny/seed*/, ablations/*/table.md)")
    print(f"report: {res['report']['html']} (open it in a browser; no server or network needed) and "
          f"{res['report']['markdown']}")
    print(f"\n{RANDOM_WEIGHTS_NOTE}. With real weights, run the same steps with the commands in README.md.")
    return 0


def cmd_extract(args) -> int:
    import torch

    from ..devices import distributed_session
    from ..features.extract import extract_features, extract_teacher
    from ..models.teacher import Teacher, resolve_instruction, teacher_dtype

    if args.no_backbone and not args.teacher:
        raise InputError("--no-backbone without --teacher leaves nothing to extract: give --teacher MODEL")
    datasets = _all_datasets(args)  # every dataset is read before any work starts
    checked = _device(args)  # a GPU that is not there is refused before any work
    device_map = _device_map(getattr(args, "teacher_device_map", None))
    if args.teacher:  # refuse bad teacher options before the backbone's extraction, not after it
        if any(d.kind == "video" for d in datasets):
            raise InputError("teacher targets are computed for training images, not for video datasets")
        teacher_dtype(checked, args.teacher_dtype)
        for instr in args.instruction:
            resolve_instruction(instr)
    # Every model named is resolved and checked (files, config, weights' headers) before the first encoder runs: a
    # wrong --teacher fails now, not after the whole CLIP pass.
    if not args.no_backbone:
        from ..models.backbone import check_backbone

        for name in args.backbone:
            check_backbone(name, args.revision)
    if args.teacher:
        from ..models.teacher import check_teacher

        check_teacher(args.teacher, args.teacher_revision)
    tag = (lambda d: f" {d.name}" + (f" fold {d.info['fold']}" if d.info.get("fold") else "")) \
        if len(datasets) > 1 else (lambda d: "")
    # Under torchrun each process computes its share of every store's chunks; rank 0 assembles the stores.
    with distributed_session(args.device) as ctx:
        dev = ctx.device
        common = dict(num_workers=ctx.num_workers(args.num_workers), progress=not args.no_progress and ctx.is_main,
                      strict=args.strict)
        say = _report_store if ctx.is_main else (lambda what, store: None)
        if not args.no_backbone:
            from ..models.backbone import Backbone

            for name in args.backbone:
                bb = Backbone.from_pretrained(name, args.revision, device=dev)
                for data in datasets:
                    say(f"CLIP{tag(data)}", ctx.run(lambda shard: extract_features(
                        bb, data, args.store, args.preprocessing, sampling=args.sampling, num_segments=args.segments,
                        batch_size=args.batch_size, shard=shard, **common)))
                del bb
        if args.teacher:
            te = Teacher.from_pretrained(args.teacher, args.teacher_revision, device=dev, dtype=args.teacher_dtype,
                                         device_map=device_map)
            for instr in args.instruction:
                for data in datasets:
                    say(f"teacher{tag(data)} [{instr[:30]}]", ctx.run(lambda shard: extract_teacher(
                        te, data, args.store, instr, args.preprocessing, batch_size=args.teacher_batch_size,
                        shard=shard, **common)))
            del te
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return 0


def cmd_train(args) -> int:
    from ..features.extraction import check_strict
    from ..features.service import find_image_store, find_teacher_store, image_store, teacher_store
    from ..files import writable_dir
    from ..runs.fit import fit_heads
    from ..train import TrainConfig

    writable_dir(args.out)
    data = _data(args)
    if data.kind != "image":
        raise InputError(f"{data.name} is a {data.kind} dataset; heads are trained on images (e.g. CAER-S)")
    dev = _device(args)
    if args.extract:  # what is missing is extracted now, loading only the models it needs
        from ..features.service import LazyModel, check_needed
        from ..models.backbone import Backbone, check_backbone
        from ..models.teacher import Teacher, check_teacher, resolve_instruction, teacher_dtype

        teacher_dtype(dev, args.teacher_dtype)
        resolve_instruction(args.instruction)
        run = dict(num_workers=args.num_workers, progress=not args.no_progress, strict=args.strict)
        bb = LazyModel(args.backbone, args.revision,
                       lambda: Backbone.from_pretrained(args.backbone, args.revision, device=dev),
                       check=lambda: check_backbone(args.backbone, args.revision))
        te = LazyModel(args.teacher, args.teacher_revision, lambda: Teacher.from_pretrained(
            args.teacher, args.teacher_revision, device=dev, dtype=args.teacher_dtype),
            check=lambda: check_teacher(args.teacher, args.teacher_revision))
        # Both models are checked before either runs: a missing teacher fails before the CLIP pass, not after it.
        check_needed(lambda: find_image_store(args.store, args.backbone, data, args.preprocessing, args.revision), bb)
        check_needed(lambda: find_teacher_store(args.store, args.teacher, data, args.instruction, args.preprocessing,
                                                args.teacher_revision), te)
        img = image_store(data, bb, args.preprocessing, args.store, batch_size=args.batch_size, **run)
        tgt = teacher_store(data, te, args.instruction, args.preprocessing, args.store,
                            batch_size=args.teacher_batch_size, **run)
    else:
        img = find_image_store(args.store, args.backbone, data, args.preprocessing, args.revision)
        tgt = find_teacher_store(args.store, args.teacher, data, args.instruction, args.preprocessing,
                                 args.teacher_revision)
        if args.strict:
            check_strict(img)
            check_strict(tgt)
    kappa = args.logit_scale if args.logit_scale is not None else float(img.meta.get("logit_scale", 100.0))
    cfg = TrainConfig(head=args.head, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                      batch_size=args.train_batch_size, epochs=args.epochs, logit_scale=kappa)
    dirs = fit_heads(img, tgt, args.out, args.seeds, cfg, run_name=args.name, device=dev)
    for d in dirs:
        print(f"head: {d}")
    return 0


def cmd_eval(args) -> int:
    from ..checkpoint import expand_head_dirs
    from ..files import writable_dir
    from ..models.names import DEFAULT_BACKBONE
    from ..models.hub import RANDOM_WEIGHTS_NOTE
    from ..prompts import PAPER_PROMPT_SETS
    from ..report.results import write_results
    from ..runs.evaluate import head_model, with_backbone
    from ..runs.suite import run_suite, with_clip_baselines

    writable_dir(args.out)  # before anything is loaded or computed, not after
    datasets = _all_datasets(args)  # every dataset is read before any feature is computed
    dev = _device(args)
    backbones = args.backbone or []
    # A head is evaluated with the backbone and preprocessing it was trained with: an option that says otherwise
    # is refused here, before any feature is computed, instead of being silently ignored. A --backbone that is the
    # recorded model in another place (a moved or copied folder, same content fingerprint) is where it is now.
    # With several backbones (a sweep), every head's backbone must be one of them; each gets its CLIP row.
    models = [with_backbone(head_model(d, dev), backbones) for d in expand_head_dirs(args.head)]
    clash = [m for m in models if args.preprocessing is not None and m.preprocessing != args.preprocessing]
    if clash:
        raise InputError(f"--preprocessing {args.preprocessing} contradicts head {clash[0].head_dir}, trained with "
                         f"preprocessing {clash[0].preprocessing!r}; heads are evaluated as they were trained: drop "
                         f"--preprocessing, or evaluate a head trained with {args.preprocessing}")
    if not args.no_clip:
        models = with_clip_baselines(models, backbones or [DEFAULT_BACKBONE], args.preprocessing or "reference")
    if not models:
        raise InputError("nothing to evaluate: give --head and/or leave CLIP in (no --no-clip)")
    spec = args.prompts.split(",") if args.prompts != "all" else "all"
    unknown = [p for p in (spec if isinstance(spec, list) else []) if p not in PAPER_PROMPT_SETS]
    if unknown:
        raise InputError(f"unknown prompt set(s) {unknown}; choose from {list(PAPER_PROMPT_SETS)} or 'all'")
    results = run_suite(datasets, models, spec, args.store, device=dev, sampling=args.sampling,
                        num_segments=args.segments, batch_size=args.batch_size, num_workers=args.num_workers,
                        progress=not args.no_progress, strict=args.strict)
    banner = RANDOM_WEIGHTS_NOTE if any(r["random_weights"] for r in results) else None
    names = list(dict.fromkeys(d.name for d in datasets))
    paper = bool(args.suite or args.dataset)
    paths = write_results(results, args.out, title=f"Zero-shot results on {', '.join(names)}", banner=banner,
                          paper_layout=paper)
    print(paths["markdown"].read_text())
    for store, n, failed, scored in sorted({(c["store"], c["num_items"], c["num_failed"], c["num_samples"])
                                            for c in results}):
        print(f"{store}: scored {scored} of {n} items" + (f" ({failed} unreadable, skipped; listed in its meta.json)"
                                                          if failed else ""))
    print(f"results: {args.out}/ (results.md, results.csv, cells.csv, cells/*.json, confusion/*.png)")
    return 0

def add_parsers(sub) -> None:
    from ..models.names import DEFAULT_BACKBONE
    from ..models.heads import HEADS
    from ..models.names import DEFAULT_TEACHER
    from ..train import TrainConfig

    d = TrainConfig()
    s = sub.add_parser("demo", help="run the whole pipeline offline on tiny random models (about a minute on 2 "
                       "CPU cores shared with other jobs: 37-90 s)",
                       description="Build tiny random-weight CLIP and BLIP-2 models and synthetic faces, then run "
                       "extract -> teacher -> train 3 seeds -> evaluate -> results. The numbers mean nothing: the "
                       "weights are random. Rerunning reuses what is already in --out.")
    s.add_argument("--out", default="expclip-demo", help="output directory (default ./expclip-demo)")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(fn=cmd_demo)

    s = sub.add_parser("extract", help="compute CLIP image features and/or teacher targets into the store",
                       description="Encode every image of --data once and cache the features (chunked, resumable: "
                       "rerun the same command after an interruption). Unreadable images are skipped and listed. "
                       "Several processes/GPUs: torchrun --nproc-per-node N -m expclip extract ... (each process "
                       "computes a share of the chunks; the store is the same as a single process's).",
                       epilog=EPILOG)
    _add_dataset_source(s, "image folder (all images recursively, or class subfolders with --labelled)")
    s.add_argument("--labelled", action="store_true", help="--data has one subfolder per class (happy/, sad/...)")
    s.add_argument("--backbone", nargs="+", default=[DEFAULT_BACKBONE],
                   help=f"CLIP model(s) (default {DEFAULT_BACKBONE})")
    s.add_argument("--revision", default=None, help="hub revision of the backbone")
    s.add_argument("--no-backbone", action="store_true", help="skip CLIP features (teacher only)")
    s.add_argument("--teacher", default=None,
                   help=f"also extract teacher targets with this BLIP-2+T5 model (e.g. {DEFAULT_TEACHER})")
    s.add_argument("--teacher-revision", default=None, help="hub revision of the teacher")
    s.add_argument("--teacher-dtype", default="auto", help="auto (bfloat16 on GPU, float32 on CPU), bfloat16, float32")
    s.add_argument("--instruction", nargs="+", default=["task"],
                   help="preset(s) task, short, unrelated, or your own sentence(s) (default task)")
    s.add_argument("--teacher-batch-size", type=POSITIVE_INT, default=32, help="images per teacher pass (default 32)")
    s.add_argument("--teacher-device-map", default=None, metavar="auto|FILE.json",
                   help="split a teacher too large for one GPU: auto = vision/Q-Former on the first GPU, T5 encoder "
                        "blocks balanced over this process's GPUs; or a JSON file {module prefix: device}")
    _add_pre(s)
    _add_store(s)
    _add_runtime(s)
    s.set_defaults(fn=cmd_extract)

    s = sub.add_parser("train", help="train projection heads (one per seed) from the stored features",
                       description="Train Exp-CLIP heads on cached CLIP features and teacher targets. Runs no encoder "
                       "unless --extract is given and features are missing. Defaults are the paper's recipe.",
                       epilog=EPILOG)
    _add_dataset_source(s, "the training image folder that was extracted", video=False)
    s.add_argument("--labelled", action="store_true", help=argparse.SUPPRESS)
    s.add_argument("--backbone", default=DEFAULT_BACKBONE, help="CLIP model (default %(default)s)")
    s.add_argument("--revision", default=None, help="hub revision of the backbone (as extracted)")
    s.add_argument("--teacher", default=DEFAULT_TEACHER, help="teacher whose targets were extracted (default "
                   "%(default)s)")
    s.add_argument("--teacher-revision", default=None, help="hub revision of the teacher (as extracted)")
    s.add_argument("--teacher-dtype", default="auto", help="with --extract: auto (default), bfloat16, float32")
    s.add_argument("--teacher-batch-size", type=POSITIVE_INT, default=32, help="with --extract (default 32)")
    s.add_argument("--instruction", default="task", help="preset (task, short, unrelated) or your sentence "
                   "(default task)")
    s.add_argument("--out", required=True, help="run directory; heads go to OUT/seed<k>/")
    s.add_argument("--name", default=None, help="run name shown in result tables (default: OUT's folder name)")
    s.add_argument("--head", default=d.head, choices=list(HEADS),
                   help="projection head (default %(default)s, as the paper)")
    _add_recipe(s)
    s.add_argument("--momentum", type=NONNEG_FLOAT, default=d.momentum, help="SGD momentum (default %(default)s)")
    s.add_argument("--weight-decay", type=NONNEG_FLOAT, default=d.weight_decay,
                   help="SGD weight decay (default %(default)s)")
    s.add_argument("--logit-scale", type=POSITIVE_FLOAT, default=None,
                   help="κ (default: the backbone's, 100 for OpenAI CLIP)")
    s.add_argument("--extract", action="store_true", help="extract missing features first (loads the models)")
    s.add_argument("--no-backbone", action="store_true", help=argparse.SUPPRESS)
    _add_pre(s)
    _add_store(s)
    _add_runtime(s)
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("eval", help="zero-shot UAR/WAR of CLIP and heads on a folder, a benchmark or the paper's suite",
                       description="Evaluate plain CLIP and trained heads on a folder with one subfolder per class "
                       "(names like happy, Happiness, 3_joy are mapped to the canonical classes), on a benchmark in "
                       "its native format (--dataset NAME --root DIR, every fold) or on a suite (--suite paper "
                       "--data-root DIR). Features are computed once per dataset and fold and reused for every "
                       "head, seed and prompt set. Writes one JSON per cell, results.csv, cells.csv, results.md (the "
                       "paper's table layout for benchmarks) and confusion-matrix PNGs.", epilog=EPILOG)
    _add_dataset_source(s, "labelled image folder (class subfolders)", suite=True)
    s.add_argument("--head", nargs="*", default=[], help="head directories or run directories of seed*/ heads")
    s.add_argument("--no-clip", action="store_true", help="leave out the plain-CLIP baseline")
    s.add_argument("--backbone", nargs="+", default=None,
                   help=f"backbone(s) scored as plain CLIP: presets (expclip list), hub ids or folders (default "
                        f"{DEFAULT_BACKBONE} when no head is given); heads use their own")
    s.add_argument("--prompts", default="all", help="all (default) or comma-separated prompt-set names")
    s.add_argument("--out", default="results", help="output directory (default ./results)")
    _add_pre(s, default=None, note="default without --head; a head always uses its own")
    _add_store(s)
    _add_runtime(s)
    s.set_defaults(fn=cmd_eval)
