"""``expclip ablate | report``: the paper's analyses and the HTML report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import InputError
from .options import EPILOG, _add_pre, _add_recipe, _add_runtime, _add_store, _device

log = logging.getLogger("expclip")


def cmd_ablate(args) -> int:
    from ..data.datasets import image_folder, unlabelled_images
    from ..files import writable_dir
    from ..prompts import PAPER_PROMPT_SETS
    from ..report.tables import table_markdown
    from ..runs.ablations import AblationSetup, run_presets
    from ..train import TrainConfig

    spec = args.prompts.split(",") if args.prompts != "all" else "all"
    for p in (spec if isinstance(spec, list) else []) + ([args.prompt_set] if args.prompt_set else []):
        if p not in PAPER_PROMPT_SETS:
            raise InputError(f"unknown prompt set {p!r}; choose from {list(PAPER_PROMPT_SETS)}")
    backbones = args.backbone or []
    one_backbone = [n for n in args.presets if n not in ("backbones", "gains")]
    if len(backbones) > 1 and one_backbone:
        raise InputError(f"--backbone names {len(backbones)} backbones, but {', '.join(one_backbone)} runs on one: "
                         "sweep several only with the backbones and gains presets")
    tests = [image_folder(d) for d in args.data]
    names = [d.name for d in tests]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # their cells would be averaged together as one dataset
        raise InputError(f"--data: {len(names)} folders are named {twice[0]!r} in the tables (a split folder is "
                         "named by its parent); give folders with different names")
    setup = AblationSetup(
        out=writable_dir(args.out) / "ablations", store=args.store,
        train=unlabelled_images(args.train_data) if args.train_data else None,
        tests=tests, results=args.results, head_runs=args.head,
        backbone=backbones[0] if backbones else None, backbones=backbones if len(backbones) > 1 else [],
        backbone_revision=args.revision, teacher=args.teacher,
        teacher_revision=args.teacher_revision, teacher_dtype=args.teacher_dtype, preprocessing=args.preprocessing,
        seeds=args.seeds, train_cfg=TrainConfig(epochs=args.epochs, batch_size=args.train_batch_size, lr=args.lr),
        prompt_sets=spec, prompt_set=args.prompt_set, instructions=args.instructions, heads=args.heads,
        device=_device(args), batch_size=args.batch_size, num_workers=args.num_workers,
        progress=not args.no_progress, strict=args.strict,
    )
    done = run_presets(args.presets, setup)
    for name, ab in done.items():
        print(f"\n## {ab.table['title']} ({name})\n")
        print(table_markdown(ab.table))
        print(f"-> {setup.out / name}/ (table.md, table.csv, ablation.json)")
    if any(ab.random_weights for ab in done.values()):
        from ..models.hub import RANDOM_WEIGHTS_NOTE

        print(f"\n{RANDOM_WEIGHTS_NOTE}")
    if not args.no_report:
        return cmd_report(argparse.Namespace(run_dir=args.out, prompt_set=args.prompt_set, title=None))
    return 0


def cmd_report(args) -> int:
    from ..files import writable_dir
    from ..report.page import build_report

    if Path(args.run_dir).is_dir():
        writable_dir(args.run_dir, "RUN_DIR")  # report.html is written into it
    res = build_report(args.run_dir, prompt_set=args.prompt_set, title=args.title)
    print(f"report: {res['html']} ({res['tables']} tables, {res['figures']} figures; sections: "
          f"{', '.join(res['sections'])}); Markdown twin: {res['markdown']}")
    if res["random_weights"]:
        print("note: random-weight models were involved; the report carries a banner saying so")
    return 0


def add_parsers(sub) -> None:
    from ..models.names import DEFAULT_BACKBONE
    from ..models.heads import HEADS
    from ..models.names import DEFAULT_TEACHER
    from ..prompts import PAPER_PROMPT_SETS
    from ..runs.ablations import PRESETS
    presets = "\n".join(f"  {k:13s}{v.summary}" for k, v in PRESETS.items())
    s = sub.add_parser("ablate", help="run the paper's ablations (heads, instructions, LLM encoder, backbones, "
                       "gains, t-SNE) from the store", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run named ablation presets. Features come from the store (extracted once if "
                       "missing; the teacher runs once per instruction); heads are trained with the paper's recipe "
                       "and reused across presets. Each preset writes OUT/ablations/<preset>/table.md, table.csv "
                       "and ablation.json; then OUT/report.html is (re)built.\n\npresets:\n" + presets +
                       "\n  all          every preset whose inputs are given", epilog=EPILOG)
    s.add_argument("presets", nargs="+", metavar="PRESET", choices=list(PRESETS) + ["all"],
                   help="one or more of the presets below, or all")
    s.add_argument("--train-data", default=None, help="unlabelled training pool (heads, instructions; llm-encoder "
                   "and tsne unless --head is given)")
    s.add_argument("--data", nargs="+", default=[], help="labelled test folder(s), one subfolder per class")
    s.add_argument("--results", nargs="+", default=[], help="result directories of expclip eval (backbones, gains)")
    s.add_argument("--head", nargs="+", default=[], help="existing heads or run directories to analyse (llm-encoder, "
                   "tsne; backbones/gains score them on --data when no --results is given)")
    s.add_argument("--backbone", nargs="+", default=None, help=f"backbone: a preset (expclip list), hub id or "
                   f"folder (default: the --head's backbone, else {DEFAULT_BACKBONE}); several for the backbones and "
                   "gains presets: a head is trained on each (--train-data) and scored with its CLIP (--data)")
    s.add_argument("--revision", default=None, help="hub revision of the backbone")
    s.add_argument("--teacher", default=DEFAULT_TEACHER, help="BLIP-2 + T5 teacher, for the presets that train or "
                   "use it (default %(default)s)")
    s.add_argument("--teacher-revision", default=None, help="hub revision of the teacher")
    s.add_argument("--teacher-dtype", default="auto", help="auto (bfloat16 on GPU, float32 on CPU), bfloat16, float32")
    s.add_argument("--instructions", nargs="+", default=["task", "short", "unrelated"],
                   help="instructions compared by the instructions preset: presets and/or your own sentences "
                        "(default: task short unrelated)")
    s.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS), help="heads compared (default all)")
    _add_recipe(s)
    s.add_argument("--prompts", default="all", help="all (default) or comma-separated prompt-set names")
    s.add_argument("--prompt-set", default=None, choices=list(PAPER_PROMPT_SETS),
                   help="the prompt set the tables show (default: the mean over the prompt sets)")
    s.add_argument("--out", default="analyses", help="run directory (default ./analyses)")
    s.add_argument("--no-report", action="store_true", help="do not rebuild OUT/report.html")
    _add_pre(s, default=None, note="default, or the --head's own")
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
