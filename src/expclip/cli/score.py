"""``expclip score``: any system's per-sample predictions scored on a benchmark's test list, as result cells."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from .options import EPILOG

DESCRIPTION = """\
Score a file of per-sample predictions (an LLM's answers, another method's outputs) on the paper's protocol and
write result cells like expclip eval's, so that expclip report and results.md put the system beside CLIP and
Exp-CLIP (give the --out of expclip eval to add it to those tables).

The file: CSV (header row) or JSON lines, one row per sample with
  an id column (--id-column, default id): the dataset's own sample id or a path ending in it
      DFEW 00001 | FERV39k Action/Happy/0015 | MAFW 00025 | AFEW 002916200 | RAF-DB test_0001 |
      FERPlus fer0032220 | AffectNet the image file name
  a label column (--label-column, default label): a class name or synonym (happy, Angry., joy), an index in the
      package's class order (0 happiness, 1 sadness, 2 neutral, 3 anger, 4 surprise, 5 disgust, 6 fear,
      7 contempt, 8 anxiety, 9 helplessness, 10 disappointment), or a ranked list (JSON list, or names joined
      by , ; |) of which the first counts.

Test lists: the reference lists shipped with expclip for DFEW, FERV39k, MAFW and AFEW (or, with --root, the
download's split files); the download's annotation files under --root for RAF-DB, AffectNet-7/-8 and FERPlus.
Rules, recorded in every cell and printed: an answer outside the dataset's classes counts as wrong (--outside
drop: left out); a test sample without a prediction is left out of UAR/WAR (--missing wrong: counted wrong).
DFEW and MAFW are scored per fold (every fold the file answers, or --fold); tables show the mean over the folds
scored and say when a system has fewer folds than the others.

example:
  expclip score gpt4v_dfew.jsonl --dataset DFEW --fold 1 --name GPT-4V --out results/paper
  expclip score llava_rafdb.csv --dataset RAFDB --root ~/datasets/RAF-DB/basic --name LLaVA --out results/paper
"""


def cmd_score(args) -> int:
    from ..files import writable_dir
    from ..report.results import write_results
    from ..runs.answers import read_predictions
    from ..runs.score import merge_cells, score_predictions
    from ..runs.suite import parse_options
    from ..runs.testsets import check_folds, load_test_sets

    check_folds(args.dataset, args.fold)  # a wrong dataset or fold is named before anything is read
    opts = parse_options(args.option)
    if any(k is not None for k in opts):
        raise InputError("--option: write KEY=VALUE (no DATASET: prefix) with expclip score")
    out = writable_dir(args.out)
    existing = _existing_cells(out)
    pf = read_predictions(args.predictions, args.id_column, args.label_column)
    sets = load_test_sets(args.dataset, args.fold, args.root, opts.get(None, {}), args.allow_outside_root)
    name = args.name or Path(args.predictions).stem
    run = score_predictions(pf, sets, name, args.outside, args.missing, args.strict, folds=args.fold)
    for cell in run.cells:
        print(_summary(cell))
    if run.skipped_folds:
        print(f"{sets[0].dataset} fold(s) {run.skipped_folds}: no prediction in the file, not scored; tables say "
              f"{name} was scored on {len(run.cells)} of {len(sets)} folds")
    if run.other_fold_rows:
        print(f"{run.other_fold_rows} rows answer other {sets[0].dataset} folds than --fold {args.fold} (not scored)")
    if run.unmatched:
        print(f"{run.unmatched} of {len(pf.rows)} rows have an id in no {sets[0].dataset} test list and were ignored "
              f"(e.g. {run.unmatched_examples[:3]})")
    cells, replaced = merge_cells(existing[0], run.cells)
    if replaced:
        print(f"replaced {replaced} earlier cell(s) of {name} on {sets[0].dataset} in {out}")
    datasets = list(dict.fromkeys(c["dataset"] for c in cells))
    write_results(cells, out, title=f"Zero-shot results on {', '.join(datasets)}", banner=existing[1],
                  paper_layout=True)
    print(f"results: {out}/ (results.md, results.csv, cells.csv, cells/*.json); expclip report {out} for the page")
    return 0


def _existing_cells(out: Path) -> tuple[list[dict], str | None]:
    """The cells (and banner) already in ``out``, which the new ones join; a damaged cell is named."""
    from ..report.inputs import read_cell
    from ..schema import read_json

    cells = []
    for p in sorted((out / "cells").glob("*.json")) if (out / "cells").is_dir() else []:
        try:
            cells.append(read_cell(p))  # one schema for every cell: a damaged one names its file and field
        except InputError as e:
            raise InputError(f"{e}; remove it or choose another --out") from None
    banner = None
    if (out / "summary.json").is_file():
        try:
            summary = read_json(out / "summary.json")
            banner = summary.get("banner") if isinstance(summary, dict) else None
        except InputError:
            banner = None  # rewritten below
    return cells, banner


def _summary(cell: dict) -> str:
    c, r = cell["counts"], cell["rules"]
    what = "clips" if cell["kind"] == "video" else "images"
    where = cell["dataset"] + (f" fold {cell['fold']}" if cell["fold"] is not None else "")
    lines = [(f"{cell['group']} on {where}: UAR {cell['uar'] * 100:.2f}  WAR {cell['war'] * 100:.2f}  "
              f"({c['scored']} of {c['test']} test {what} scored, {c['scored_fraction'] * 100:.1f}%)")]
    lines.append(f"  missing: {c['missing']} without a prediction -> " + (
        "counted wrong (--missing wrong)" if r["missing"] == "wrong" else
        "left out of UAR/WAR (--missing wrong counts them wrong)"))
    lines.append(f"  outside: {c['outside']} answers outside the {len(cell['classes'])} classes -> " + (
        "left out (--outside drop)" if r["outside"] == "drop" else "counted wrong (--outside drop leaves them out)"))
    ranked = sum(n for f, n in c["label_forms"].items() if f.startswith("ranked"))
    if ranked:
        lines.append(f"  ranked lists: {ranked} answers; the first label counts")
    return "\n".join(lines)


def add_parsers(sub) -> None:
    from ..data.registry import PAPER_DATASETS
    from ..runs.answers import MISSING_RULES, OUTSIDE_RULES

    s = sub.add_parser("score", help="score another system's per-sample predictions on a benchmark's test list "
                       "(UAR/WAR per fold, result cells beside CLIP and Exp-CLIP)", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    s.add_argument("predictions", metavar="PREDICTIONS", help="CSV (.csv, .tsv) or JSON lines (.jsonl, .ndjson, "
                   ".json) file, one row per sample")
    s.add_argument("--dataset", required=True, metavar="NAME", help=f"one of {', '.join(PAPER_DATASETS)}")
    s.add_argument("--fold", type=int, nargs="+", default=None, help="DFEW/MAFW fold(s) to score (default: every "
                   "fold the file answers)")
    s.add_argument("--root", default=None, help="the dataset's folder as downloaded: required for RAF-DB, "
                   "AffectNet-7/-8 and FERPlus (their test lists are read from its annotation files); for a video "
                   "set, its official split files replace the shipped reference lists")
    s.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="reader option with --root, as for expclip eval: votes=label.csv, rule=plurality (FERPlus), "
                   "release=2021 (AffectNet), lists=reference (videos)")
    s.add_argument("--out", default="results", help="output folder (default ./results); cells already there "
                   "(expclip eval's, other scores) are kept and the tables rebuilt with them")
    s.add_argument("--name", default=None, help="the system's row name in the tables (default: the file's name)")
    s.add_argument("--id-column", default="id", help="column of the sample ids (default id)")
    s.add_argument("--label-column", default="label", help="column of the predicted labels (default label)")
    s.add_argument("--outside", choices=OUTSIDE_RULES, default="wrong", help="an answer outside the label set: "
                   "counted wrong (default) or left out (drop)")
    s.add_argument("--missing", choices=MISSING_RULES, default="drop", help="a test sample without a prediction: "
                   "left out of UAR/WAR (default) or counted wrong")
    s.add_argument("--strict", action="store_true", help="a missing sample or an answer outside the label set is "
                   "an error")
    s.add_argument("--allow-outside-root", action="store_true",
                   help="accept annotation-file paths that leave --root (refused by default)")
    s.set_defaults(fn=cmd_score)
