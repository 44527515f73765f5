"""The ``expclip`` command line: wiring only. ``main(argv) -> int``."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
from pathlib import Path

from . import __version__

log = logging.getLogger("expclip")

DEFAULT_STORE = os.environ.get("EXPCLIP_STORE", str(Path("~/.cache/expclip/store").expanduser()))
EPILOG = "Models: any hub id or local directory saved with save_pretrained. Docs: README.md."


# ------------------------------------------------------------------------------------------------ shared options
def _number(kind: type, low: float, strict: bool):
    """An argparse type: a ``kind`` number above ``low`` (``strict``) or at least ``low``; errors name the value."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if value != value or (value <= low if strict else value < low):  # value != value: NaN
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if strict else '>='} {low}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


POSITIVE_INT, NONNEG_INT = _number(int, 0, True), _number(int, 0, False)
POSITIVE_FLOAT, NONNEG_FLOAT = _number(float, 0.0, True), _number(float, 0.0, False)


def _device(args):
    """--device as a torch.device, checked before any model is loaded."""
    import torch

    from .models.backbone import resolve_device

    try:
        dev = resolve_device(args.device)
    except RuntimeError as e:
        raise ValueError(f"--device {args.device!r} is not a device ({e}); use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"--device {args.device}: no such CUDA GPU is visible "
                         f"({torch.cuda.device_count()} found); use --device cpu")
    return dev


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=DEFAULT_STORE,
                   help="feature store directory (default: $EXPCLIP_STORE or ~/.cache/expclip/store)")


def _add_runtime(p: argparse.ArgumentParser, batch: int = 64) -> None:
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=batch, help=f"images per forward pass (default {batch})")
    p.add_argument("--num-workers", type=NONNEG_INT, default=None,
                   help="DataLoader worker processes for decoding (default: cores - 1, at most 8)")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable item instead of skipping it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="accept dataset files that are links to places outside --data (refused by default)")


def _add_pre(p: argparse.ArgumentParser, default: str | None = "reference", note: str = "default") -> None:
    p.add_argument("--preprocessing", choices=["reference", "clip"], default=default,
                   help=f"reference: the paper's code (squash 224, [0,1], no normalization; {note}); "
                        "clip: the model's own processor (resize, center crop, mean/std)")


def _data(args) -> "object":
    from .data.datasets import image_folder, unlabelled_images

    if getattr(args, "dataset", None):
        return _one_dataset(args)
    if args.labelled:
        return image_folder(args.data, allow_outside=args.allow_outside_root)
    return unlabelled_images(args.data, allow_outside=args.allow_outside_root)


# ------------------------------------------------------------------------------------------------ benchmark datasets
def _add_dataset_source(p: argparse.ArgumentParser, data_help: str, suite: bool = False, video: bool = True) -> None:
    """--data FOLDER | --dataset NAME --root DIR [| --suite ...], reader options and (for videos) frame sampling."""
    from .data.registry import DATASETS, PAPER_DATASETS

    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", help=data_help)
    g.add_argument("--dataset", metavar="NAME", help=f"a dataset in its native format, read from --root: "
                   f"{', '.join(DATASETS)} (README: 'Benchmarks')")
    if suite:
        g.add_argument("--suite", metavar="paper|FILE.json", help=f"'paper' ({', '.join(PAPER_DATASETS)}, found "
                       "under --data-root by their usual folder names) or a preset file naming datasets and roots")
        p.add_argument("--data-root", default=None, help="folder holding the datasets of --suite (default: the "
                       "current folder; for a preset file, the file's folder)")
        p.add_argument("--only", default=None, help="comma-separated subset of the suite's datasets")
        p.set_defaults(labelled=True)  # eval's --data is a labelled folder
    p.add_argument("--root", default=None, help="the folder of --dataset as downloaded")
    p.add_argument("--fold", type=int, nargs="+", default=None, help="folds of DFEW/MAFW (default: all five)")
    p.add_argument("--option", action="append", default=[], metavar="[DATASET:]KEY=VALUE",
                   help="reader option, repeatable: e.g. split=train, votes=label.csv, rule=plurality (FERPlus), "
                   "media=clips, lists=reference (videos), release=2021 (AffectNet), list_path=FILE (list)")
    if video:
        p.add_argument("--sampling", choices=["reference", "edge"], default="reference",
                       help="frames of clips with at most --segments frames: reference = frame 0 repeated (the "
                       "paper's code, default); edge = every frame, then the last one repeated")
        p.add_argument("--segments", type=int, default=16, help="frames sampled per clip (default 16)")
    else:
        p.set_defaults(sampling="reference", segments=16)


def _all_datasets(args) -> list:
    """The ItemLists named on the command line (every fold), all read before any work starts."""
    from .suite import SuiteEntry, load_entries, parse_options, preset_entries, read_preset

    opts = parse_options(args.option)
    suite = getattr(args, "suite", None)
    if suite:
        only = args.only.split(",") if args.only else None
        entries = (read_preset(suite, args.data_root, only, opts) if Path(suite).is_file()
                   else preset_entries(suite, args.data_root or ".", only, opts))
        return load_entries(entries)
    if args.dataset:
        if not args.root:
            raise ValueError(f"--dataset {args.dataset} needs --root: the folder you downloaded")
        unknown = [k for k in opts if k is not None]
        if unknown:
            raise ValueError("--option DATASET:... prefixes are for --suite; with --dataset write KEY=VALUE")
        return load_entries([SuiteEntry(args.dataset, Path(args.root), args.fold, opts.get(None, {}))])
    if args.option or args.fold:
        raise ValueError("--option and --fold apply to --dataset and --suite, not to --data")
    return [_data(args)]


def _one_dataset(args):
    datasets = _all_datasets(args)
    if len(datasets) != 1:
        raise ValueError(f"{args.dataset} has {len(datasets)} folds here; choose one with --fold")
    return datasets[0]


# ------------------------------------------------------------------------------------------------ commands
def cmd_demo(args) -> int:
    from .demo import run_demo
    from .models.tiny import RANDOM_WEIGHTS_NOTE

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

    from .distributed import distributed_session
    from .extract import extract_features, extract_teacher
    from .models.teacher import Teacher, resolve_instruction, teacher_dtype

    datasets = _all_datasets(args)  # every dataset is read before any work starts
    checked = _device(args)  # a GPU that is not there is refused before any work
    if args.teacher:  # refuse bad teacher options before the backbone's extraction, not after it
        if any(d.kind == "video" for d in datasets):
            raise ValueError("teacher targets are computed for training images, not for video datasets")
        teacher_dtype(checked, args.teacher_dtype)
        for instr in args.instruction:
            resolve_instruction(instr)
    tag = (lambda d: f" {d.name}" + (f" fold {d.info['fold']}" if d.info.get("fold") else "")) \
        if len(datasets) > 1 else (lambda d: "")
    # Under torchrun each process computes its share of every store's chunks; rank 0 assembles the stores.
    with distributed_session(args.device) as ctx:
        dev = ctx.device
        common = dict(num_workers=ctx.num_workers(args.num_workers), progress=not args.no_progress and ctx.is_main,
                      strict=args.strict)
        say = _report_store if ctx.is_main else (lambda what, store: None)
        if not args.no_backbone:
            from .models.backbone import Backbone

            for name in args.backbone:
                bb = Backbone.from_pretrained(name, args.revision, device=dev)
                for data in datasets:
                    say(f"CLIP{tag(data)}", ctx.run(lambda shard: extract_features(
                        bb, data, args.store, args.preprocessing, sampling=args.sampling, num_segments=args.segments,
                        batch_size=args.batch_size, shard=shard, **common)))
                del bb
        if args.teacher:
            te = Teacher.from_pretrained(args.teacher, args.teacher_revision, device=dev, dtype=args.teacher_dtype,
                                         device_map=_device_map(getattr(args, "teacher_device_map", None)))
            for instr in args.instruction:
                for data in datasets:
                    say(f"teacher{tag(data)} [{instr[:30]}]", ctx.run(lambda shard: extract_teacher(
                        te, data, args.store, instr, args.preprocessing, batch_size=args.teacher_batch_size,
                        shard=shard, **common)))
            del te
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return 0


def _device_map(spec: str | None) -> "dict | str | None":
    """--teacher-device-map: none, auto (this process's GPUs) or a JSON file {module prefix: device}."""
    if spec in (None, "", "none"):
        return None
    return "auto" if spec == "auto" else json.loads(Path(spec).read_text())


def _report_store(what: str, store) -> None:
    if store is None:
        print(f"{what}: this shard is done; another process finalizes the store")
        return
    n, bad = len(store), len(store.failures)
    print(f"{what}: {n - bad} of {n} items -> {store.path}" + (f" ({bad} skipped, see meta.json)" if bad else ""))


def cmd_train(args) -> int:
    from .extract import find_image_store, find_teacher_store
    from .features import check_strict
    from .fit import fit_heads
    from .store import StaleStoreError, StoreError
    from .train import TrainConfig

    data = _data(args)
    if data.kind != "image":
        raise ValueError(f"{data.name} is a {data.kind} dataset; heads are trained on images (e.g. CAER-S)")
    try:
        img = find_image_store(args.store, args.backbone, data, args.preprocessing, args.revision)
        tgt = find_teacher_store(args.store, args.teacher, data, args.instruction, args.preprocessing)
    except StaleStoreError:
        raise
    except StoreError:
        if not args.extract:
            raise
        args.no_backbone, args.backbone = False, [args.backbone]
        args.instruction = [args.instruction]
        cmd_extract(args)
        args.backbone, args.instruction = args.backbone[0], args.instruction[0]
        img = find_image_store(args.store, args.backbone, data, args.preprocessing, args.revision)
        tgt = find_teacher_store(args.store, args.teacher, data, args.instruction, args.preprocessing)
    if args.strict:
        check_strict(img)
        check_strict(tgt)
    kappa = args.logit_scale if args.logit_scale is not None else float(img.meta.get("logit_scale", 100.0))
    cfg = TrainConfig(head=args.head, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                      batch_size=args.train_batch_size, epochs=args.epochs, logit_scale=kappa)
    dirs = fit_heads(img, tgt, args.out, args.seeds, cfg, run_name=args.name, device=_device(args))
    for d in dirs:
        print(f"head: {d}")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import head_model
    from .fit import expand_head_dirs
    from .models.backbone import DEFAULT_BACKBONE
    from .models.tiny import RANDOM_WEIGHTS_NOTE
    from .prompts import PAPER_PROMPT_SETS
    from .report import write_results
    from .suite import run_suite, with_clip_baselines

    datasets = _all_datasets(args)  # every dataset is read before any feature is computed
    dev = _device(args)
    models = [head_model(d, dev) for d in expand_head_dirs(args.head)]
    # A head is evaluated with the backbone and preprocessing it was trained with: an option that says otherwise
    # is refused here, before any feature is computed, instead of being silently ignored.
    for opt, value, attr in (("--preprocessing", args.preprocessing, "preprocessing"),
                             ("--backbone", args.backbone, "backbone")):
        clash = [m for m in models if value is not None and getattr(m, attr) != value]
        if clash:
            raise ValueError(f"{opt} {value} contradicts head {clash[0].head_dir}, trained with {attr} "
                             f"{getattr(clash[0], attr)!r}; heads are evaluated as they were trained: drop {opt}, or "
                             f"evaluate a head trained with {value}")
    if not args.no_clip:
        models = with_clip_baselines(models, args.backbone or DEFAULT_BACKBONE, args.preprocessing or "reference")
    if not models:
        raise ValueError("nothing to evaluate: give --head and/or leave CLIP in (no --no-clip)")
    spec = args.prompts.split(",") if args.prompts != "all" else "all"
    unknown = [p for p in (spec if isinstance(spec, list) else []) if p not in PAPER_PROMPT_SETS]
    if unknown:
        raise ValueError(f"unknown prompt set(s) {unknown}; choose from {list(PAPER_PROMPT_SETS)} or 'all'")
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


def cmd_predict(args) -> int:
    from tqdm.auto import tqdm

    from .api import ExpCLIP
    from .models.backbone import DEFAULT_BACKBONE
    from .predict_run import format_row, predict_to_file

    if args.head and args.backbone:
        log.warning("--backbone %s replaces the backbone recorded in the head", args.backbone)
    model = ExpCLIP.from_pretrained(args.head or args.backbone or DEFAULT_BACKBONE, args.device,
                                    backbone=args.backbone if args.head else None, revision=args.revision,
                                    preprocessing=args.preprocessing)
    try:
        s = predict_to_file(model, args.paths, args.out, args.labels, args.template or args.prompts,
                            resume=args.resume, overwrite=args.overwrite, annotate_dir=args.annotate,
                            progress=not args.no_progress,
                            on_rows=None if args.out else lambda rows: [tqdm.write(format_row(r)) for r in rows],
                            faces=args.faces, margin=args.margin, no_face=args.no_face, max_faces=args.max_faces,
                            num_frames=args.frames, video_fps=args.video_fps, batch_size=args.batch_size,
                            num_workers=min(4, os.cpu_count() or 1) if args.num_workers is None else args.num_workers,
                            strict=args.strict)
    except KeyboardInterrupt:
        if not args.out:
            raise
        print(f"\ninterrupted: the rows written so far are in {args.out}; add --resume to the same command to "
              "continue", file=sys.stderr)
        return 130
    print(f"{model.name} ({model.backbone.name}): {s}")
    return 0


def cmd_import(args) -> int:
    from .checkpoint import import_official

    out = import_official(args.pth, args.out, args.backbone)
    cfg = json.loads((out / "config.json").read_text())
    print(f"imported {args.pth} -> {out} (linear {cfg['head']['in_dim']}->{cfg['head']['out_dim']}, "
          f"backbone {cfg['backbone']['id']}, preprocessing reference)")
    return 0


def cmd_list(args) -> int:
    from .labels import CLASS_ORDER, DATASET_NUM_CLASSES
    from .models.backbone import DEFAULT_BACKBONE, PAPER_BACKBONES
    from .models.teacher import DEFAULT_TEACHER, INSTRUCTIONS
    from .prompts import PAPER_PROMPT_SETS, prompt_set_display_name

    print("classes (index: name): " + ", ".join(f"{i}: {c}" for i, c in enumerate(CLASS_ORDER)))
    print("datasets (classes used): " + ", ".join(f"{k} ({v})" for k, v in DATASET_NUM_CLASSES.items()))
    print("prompt sets: " + ", ".join(f"{p} ({prompt_set_display_name(p)})" for p in PAPER_PROMPT_SETS))
    print("instructions:")
    for k, v in INSTRUCTIONS.items():
        print(f"  {k}: {v}")
    print(f"backbones: {', '.join(f'{k}={v}' for k, v in PAPER_BACKBONES.items())} (default {DEFAULT_BACKBONE})")
    print(f"teacher: {DEFAULT_TEACHER}")
    root = Path(args.store)
    metas = sorted(root.glob("*/meta.json")) if root.is_dir() else []
    print(f"stores in {root}: {len(metas)}")
    for m in metas:
        try:
            meta = json.loads(m.read_text())
        except (OSError, json.JSONDecodeError):
            print(f"  {m.parent.name}: unreadable meta.json")
            continue
        k = meta.get("key", {})
        state = "complete" if meta.get("complete") else "INCOMPLETE (rerun to resume)"
        extra = f" instruction={k['instruction'][:40]!r}" if "instruction" in k else ""
        pre = (k.get("preprocessing") or {}).get("mode", "-")
        print(f"  {m.parent.name}: {k.get('kind')} model={k.get('model', {}).get('id')} data={k.get('data', {}).get('name')} "
              f"n={meta.get('n')} preprocessing={pre}{extra} {state}")
    return 0


# ------------------------------------------------------------------------------------------------ analyses
def cmd_ablate(args) -> int:
    from .ablations import AblationSetup, run_presets
    from .data.datasets import image_folder, unlabelled_images
    from .models.backbone import resolve_device
    from .prompts import PAPER_PROMPT_SETS
    from .tables import table_markdown
    from .train import TrainConfig

    spec = args.prompts.split(",") if args.prompts != "all" else "all"
    for p in (spec if isinstance(spec, list) else []) + ([args.prompt_set] if args.prompt_set else []):
        if p not in PAPER_PROMPT_SETS:
            raise ValueError(f"unknown prompt set {p!r}; choose from {list(PAPER_PROMPT_SETS)}")
    setup = AblationSetup(
        out=Path(args.out) / "ablations", store=args.store,
        train=unlabelled_images(args.train_data) if args.train_data else None,
        tests=[image_folder(d) for d in args.data], results=args.results, head_runs=args.head,
        backbone=args.backbone, backbone_revision=args.revision, teacher=args.teacher,
        teacher_revision=args.teacher_revision, teacher_dtype=args.teacher_dtype, preprocessing=args.preprocessing,
        seeds=args.seeds, train_cfg=TrainConfig(epochs=args.epochs, batch_size=args.train_batch_size, lr=args.lr),
        prompt_sets=spec, prompt_set=args.prompt_set, instructions=args.instructions, heads=args.heads,
        device=resolve_device(args.device), batch_size=args.batch_size, num_workers=args.num_workers,
        progress=not args.no_progress, strict=args.strict,
    )
    done = run_presets(args.presets, setup)
    for name, ab in done.items():
        print(f"\n## {ab.table['title']} ({name})\n")
        print(table_markdown(ab.table))
        print(f"-> {setup.out / name}/ (table.md, table.csv, ablation.json)")
    if any(ab.random_weights for ab in done.values()):
        from .models.tiny import RANDOM_WEIGHTS_NOTE

        print(f"\n{RANDOM_WEIGHTS_NOTE}")
    if not args.no_report:
        return cmd_report(argparse.Namespace(run_dir=args.out, prompt_set=args.prompt_set, title=None))
    return 0


def cmd_report(args) -> int:
    from .run_report import build_report

    res = build_report(args.run_dir, prompt_set=args.prompt_set, title=args.title)
    print(f"report: {res['html']} ({res['tables']} tables, {res['figures']} figures; sections: "
          f"{', '.join(res['sections'])}); Markdown twin: {res['markdown']}")
    if res["random_weights"]:
        print("note: random-weight models were involved; the report carries a banner saying so")
    return 0


def _add_analysis_parsers(sub) -> None:
    from .ablations import PRESETS
    from .models.backbone import DEFAULT_BACKBONE
    from .models.heads import HEADS
    from .models.teacher import DEFAULT_TEACHER
    from .prompts import PAPER_PROMPT_SETS
    from .train import TrainConfig

    d = TrainConfig()
    presets = "\n".join(f"  {k:13s}{v.summary}" for k, v in PRESETS.items())
    s = sub.add_parser("ablate", help="run the paper's ablations (heads, instructions, LLM encoder, backbones, "
                       "gains, t-SNE) from the store", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run named ablation presets. Features come from the store (extracted once if "
                       "missing; the teacher runs once per instruction); heads are trained with the paper's recipe "
                       "and reused across presets. Each preset writes OUT/ablations/<preset>/table.md, table.csv "
                       "and ablation.json; then OUT/report.html is (re)built.\n\npresets:\n" + presets +
                       "\n  all          every preset whose inputs are given", epilog=EPILOG)
    s.add_argument("presets", nargs="+", metavar="PRESET", choices=list(PRESETS) + ["all"])
    s.add_argument("--train-data", default=None, help="unlabelled training pool (heads, instructions; llm-encoder "
                   "and tsne unless --head is given)")
    s.add_argument("--data", nargs="+", default=[], help="labelled test folder(s), one subfolder per class")
    s.add_argument("--results", nargs="+", default=[], help="result directories of expclip eval (backbones, gains)")
    s.add_argument("--head", nargs="+", default=[], help="existing heads or run directories to analyse (llm-encoder, "
                   "tsne; backbones/gains score them on --data when no --results is given)")
    s.add_argument("--backbone", default=DEFAULT_BACKBONE)
    s.add_argument("--revision", default=None)
    s.add_argument("--teacher", default=DEFAULT_TEACHER)
    s.add_argument("--teacher-revision", default=None)
    s.add_argument("--teacher-dtype", default="auto")
    s.add_argument("--instructions", nargs="+", default=["task", "short", "unrelated"],
                   help="instructions compared by the instructions preset: presets and/or your own sentences "
                        "(default: task short unrelated)")
    s.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS), help="heads compared (default all)")
    s.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    s.add_argument("--epochs", type=int, default=d.epochs)
    s.add_argument("--train-batch-size", type=int, default=d.batch_size)
    s.add_argument("--lr", type=float, default=d.lr)
    s.add_argument("--prompts", default="all", help="all (default) or comma-separated prompt-set names")
    s.add_argument("--prompt-set", default=None, choices=list(PAPER_PROMPT_SETS),
                   help="the prompt set the tables show (default: the mean over the prompt sets)")
    s.add_argument("--out", default="analyses", help="run directory (default ./analyses)")
    s.add_argument("--no-report", action="store_true", help="do not rebuild OUT/report.html")
    _add_pre(s)
    _add_store(s)
    _add_runtime(s)
    s.set_defaults(fn=cmd_ablate)

    s = sub.add_parser("report", help="one self-contained HTML page (and a Markdown twin) of a run directory",
                       description="Collect what RUN_DIR holds (results of expclip eval, ablations of expclip "
                       "ablate, trained heads and their training curves) and write RUN_DIR/report.html: tables in "
                       "the paper's layouts, figures (confusion matrices, per-class recall, t-SNE, training "
                       "curves), resolved configs and versions. It embeds everything and opens offline, without a "
                       "server. RUN_DIR/report.md links the same figures from RUN_DIR/report_files/.", epilog=EPILOG)
    s.add_argument("run_dir", help="directory to report on (searched recursively)")
    s.add_argument("--prompt-set", default=None, choices=list(PAPER_PROMPT_SETS),
                   help="the prompt set the tables show (default: the mean over prompt sets)")
    s.add_argument("--title", default=None, help="page title")
    s.set_defaults(fn=cmd_report)


# ------------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    from .models.backbone import DEFAULT_BACKBONE
    from .models.teacher import DEFAULT_TEACHER
    from .train import TrainConfig

    d = TrainConfig()
    p = argparse.ArgumentParser(prog="expclip", description="Zero-shot facial expression recognition with Exp-CLIP "
                                "(CLIP + a head trained to match an LLM's view of the face).", epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"expclip {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    s = sub.add_parser("demo", help="run the whole pipeline offline on tiny random models (about a minute)",
                       description="Build tiny random-weight CLIP and BLIP-2 models and synthetic faces, then run "
                       "extract -> teacher -> train 3 seeds -> evaluate -> results. The numbers mean nothing: the "
                       "weights are random. Rerunning reuses what is already in --out.")
    s.add_argument("--out", default="expclip-demo", help="output directory (default ./expclip-demo)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_demo)

    s = sub.add_parser("extract", help="compute CLIP image features and/or teacher targets into the store",
                       description="Encode every image of --data once and cache the features (chunked, resumable: "
                       "rerun the same command after an interruption). Unreadable images are skipped and listed. "
                       "Several processes/GPUs: torchrun --nproc-per-node N -m expclip extract ... (each process "
                       "computes a share of the chunks; the store is the same as a single process's).",
                       epilog=EPILOG)
    _add_dataset_source(s, "image folder (all images recursively, or class subfolders with --labelled)")
    s.add_argument("--labelled", action="store_true", help="--data has one subfolder per class (happy/, sad/...)")
    s.add_argument("--backbone", nargs="+", default=[DEFAULT_BACKBONE], help=f"CLIP model(s) (default {DEFAULT_BACKBONE})")
    s.add_argument("--revision", default=None, help="hub revision of the backbone")
    s.add_argument("--no-backbone", action="store_true", help="skip CLIP features (teacher only)")
    s.add_argument("--teacher", default=None, help=f"also extract teacher targets with this BLIP-2+T5 model (e.g. {DEFAULT_TEACHER})")
    s.add_argument("--teacher-revision", default=None)
    s.add_argument("--teacher-dtype", default="auto", help="auto (bfloat16 on GPU, float32 on CPU), bfloat16, float32")
    s.add_argument("--instruction", nargs="+", default=["task"],
                   help="preset(s) task, short, unrelated, or your own sentence(s) (default task)")
    s.add_argument("--teacher-batch-size", type=POSITIVE_INT, default=32)
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
    s.add_argument("--backbone", default=DEFAULT_BACKBONE)
    s.add_argument("--revision", default=None)
    s.add_argument("--teacher", default=DEFAULT_TEACHER)
    s.add_argument("--teacher-revision", default=None)
    s.add_argument("--teacher-dtype", default="auto")
    s.add_argument("--teacher-batch-size", type=POSITIVE_INT, default=32)
    s.add_argument("--instruction", default="task", help="preset (task, short, unrelated) or your sentence")
    s.add_argument("--out", required=True, help="run directory; heads go to OUT/seed<k>/")
    s.add_argument("--name", default=None, help="run name shown in result tables (default: OUT's folder name)")
    s.add_argument("--seeds", type=NONNEG_INT, nargs="+", default=[1, 2, 3], help="seeds (default 1 2 3, as the paper)")
    s.add_argument("--head", default=d.head, choices=["linear", "mlp2", "mlp3", "transformer"])
    s.add_argument("--epochs", type=POSITIVE_INT, default=d.epochs)
    s.add_argument("--train-batch-size", type=POSITIVE_INT, default=d.batch_size)
    s.add_argument("--lr", type=POSITIVE_FLOAT, default=d.lr)
    s.add_argument("--momentum", type=NONNEG_FLOAT, default=d.momentum)
    s.add_argument("--weight-decay", type=NONNEG_FLOAT, default=d.weight_decay)
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
    s.add_argument("--backbone", default=None,
                   help=f"backbone for CLIP when no head is given (default {DEFAULT_BACKBONE}); heads use their own")
    s.add_argument("--prompts", default="all", help="all (default) or comma-separated prompt-set names")
    s.add_argument("--out", default="results", help="output directory (default ./results)")
    _add_pre(s, default=None, note="default without --head; a head always uses its own")
    _add_store(s)
    _add_runtime(s)
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("predict", help="expression labels for your photos, folders and videos (faces found for you)",
                       description="Detect faces and score them zero-shot with CLIP or an Exp-CLIP head, with the "
                       "paper's classes or your own words. Writes one row per face (and per sampled video frame, plus "
                       "a clip-level row per video) as it goes; rerun with --resume after an interruption.",
                       epilog="Examples: expclip predict photos/ --head runs/expclip-L14/seed1 --out results.csv; "
                       "expclip predict talk.mp4 --labels happy,bored,focused --video-fps 2 --annotate viz/. " + EPILOG)
    s.add_argument("paths", nargs="+", help="image or video files, or folders (searched recursively)")
    s.add_argument("--head", default=None, help="an Exp-CLIP head directory (its backbone and preprocessing are used)")
    s.add_argument("--backbone", default=None,
                   help=f"CLIP model for plain-CLIP zero-shot without --head (default {DEFAULT_BACKBONE}); "
                        "with --head, a replacement for the recorded backbone (e.g. a local copy)")
    s.add_argument("--revision", default=None, help="hub revision of the backbone")
    s.add_argument("--labels", default=None,
                   help="7, 8 or 11 (the paper's classes; default 7), comma-separated words (happy,bored,focused), "
                        "or a JSON/YAML label file with labels, templates or per-class descriptions")
    s.add_argument("--prompts", default="ensemble_10",
                   help="the paper's prompt set used for every class (class_name, an_expression_of, "
                        "a_photo_of_a_face, ensemble_5, ensemble_10; default ensemble_10)")
    s.add_argument("--template", action="append", default=None,
                   help="your own prompt template with {} for the label, e.g. 'a photo of a {} face.' (repeatable; "
                        "replaces --prompts)")
    s.add_argument("--out", default=None, help="results file, .csv or .jsonl (default: print one line per row)")
    s.add_argument("--resume", action="store_true", help="continue --out: skip inputs already written, redo cut ones")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    s.add_argument("--annotate", default=None, metavar="DIR",
                   help="write images with boxes and labels, and a probability timeline PNG per video, into DIR")
    s.add_argument("--faces", choices=["detect", "none"], default="detect",
                   help="detect: find faces (OpenCV Haar cascade; default); none: inputs are already face crops")
    s.add_argument("--margin", type=float, default=0.2, help="grow face boxes by this fraction per side (0.2)")
    s.add_argument("--max-faces", type=int, default=None, help="keep at most N faces per image, largest first")
    s.add_argument("--no-face", choices=["whole", "skip"], default="whole",
                   help="when no face is found: score the whole image (default) or leave the row unscored; the row "
                        "says face_detected=False either way")
    s.add_argument("--frames", type=int, default=16, help="frames sampled per video, spread as the paper's (16)")
    s.add_argument("--video-fps", type=float, default=None, help="instead sample this many frames per second")
    s.add_argument("--preprocessing", choices=["reference", "clip"], default=None,
                   help="default: the head's own; reference (the paper's) for plain CLIP")
    _add_runtime(s)
    s.set_defaults(fn=cmd_predict)

    s = sub.add_parser("import-official", help="convert a released reference head (.pth) to expclip's format",
                       description="Read ExpCLIP_{B32,B16,L14}_model.pth with torch.load(weights_only=True) (a pickle "
                       "that would run code is refused) and write head.safetensors + config.json, preprocessing "
                       "'reference'.")
    s.add_argument("pth")
    s.add_argument("--out", required=True)
    s.add_argument("--backbone", default=None, help="backbone id (default: from the file name B32/B16/L14)")
    s.set_defaults(fn=cmd_import)

    s = sub.add_parser("list", help="prompt sets, instructions, default models and the stores on disk")
    _add_store(s)
    s.set_defaults(fn=cmd_list)
    _add_analysis_parsers(sub)
    return p


def _friendly_errors():
    from .checkpoint import CheckpointError
    from .data.datasets import DatasetError
    from .data.faces import FaceDetectorUnavailable
    from .data.images import ImageDecodeError
    from .features import ExtractionFailure
    from .models.hub import ModelNotAvailableError
    from .store import StoreError

    return (ModelNotAvailableError, StoreError, DatasetError, CheckpointError, FileNotFoundError, FileExistsError,
            ValueError, KeyError, ExtractionFailure, ImageDecodeError, FloatingPointError, FaceDetectorUnavailable)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s")
    for noisy in ("httpx", "huggingface_hub", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 2
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        return int(args.fn(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted: finished chunks are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    except OSError as e:
        if e.errno == errno.ENOSPC:
            print(f"error: disk full while writing ({e.filename or e}); nothing half-written is kept and finished "
                  "work (store chunks, trained seeds) is: free space and rerun the same command", file=sys.stderr)
            return 1
        if args.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, (FileNotFoundError, FileExistsError)) else 1
    except _friendly_errors() as e:
        if args.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
