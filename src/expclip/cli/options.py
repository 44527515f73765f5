"""Options and helpers shared by the ``expclip`` subcommands."""

from __future__ import annotations

import argparse
import logging
import math
import os
from pathlib import Path

from ..errors import InputError

log = logging.getLogger("expclip")

DEFAULT_STORE = os.environ.get("EXPCLIP_STORE", str(Path("~/.cache/expclip/store").expanduser()))
EPILOG = "Models: any hub id or local directory saved with save_pretrained. Docs: README.md."


# ------------------------------------------------------------------------------------------------ shared options
def _number(kind: type, low: float, strict: bool, high: float | None = None):
    """An argparse type: a finite ``kind`` number above ``low`` (``strict``) or at least ``low``, and at most
    ``high``; errors name the value."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not math.isfinite(value):  # NaN and inf: no count, rate or size is infinite
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if value <= low if strict else value < low:
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if strict else '>='} {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} must be <= {high}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


POSITIVE_INT, NONNEG_INT = _number(int, 0, True), _number(int, 0, False)
POSITIVE_FLOAT, NONNEG_FLOAT = _number(float, 0.0, True), _number(float, 0.0, False)
SEED = _number(int, 0, False, 2 ** 32 - 1)  # what torch and numpy generators take
SCORE = _number(float, 0.0, False, 1.0)  # a detector's confidence


def nonempty(text: str) -> str:
    """An argparse type for every string option: an empty or blank value (``--data ''``) names nothing."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value")
    return text


nonempty.__name__ = "value"


def refuse_empty_values(parser: argparse.ArgumentParser) -> None:
    """Give every string option and argument of ``parser`` and its subcommands the :func:`nonempty` type, so that
    ``--dataset ''`` or ``--data ''`` is refused by name instead of meaning the current folder or nothing."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                refuse_empty_values(sub)
        elif action.type is None and action.nargs != 0 and not action.choices:  # nargs 0: flags, --help
            action.type = nonempty


def _device(args):
    """--device as a torch.device, checked before any model is loaded."""
    from ..devices import check_visible, resolve_device

    try:
        dev = resolve_device(args.device)
    except (RuntimeError, ValueError) as e:
        raise InputError(f"--device {args.device!r} is not a device ({str(e).splitlines()[0]}); use cpu, cuda or "
                         "cuda:N") from None
    return check_visible(dev, "--device", "--device cpu")


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=DEFAULT_STORE,
                   help="feature store directory (default: $EXPCLIP_STORE or ~/.cache/expclip/store)")


def _add_runtime(p: argparse.ArgumentParser, batch: int = 64, workers_help: str | None = None,
                 datasets: bool = True) -> None:
    """--device, --batch-size, --num-workers, --strict, --no-progress, and --allow-outside-root for the commands
    that read datasets (``datasets``).

    ``workers_help``: what --num-workers means for a command that does not decode through DataLoader workers.
    """
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=batch, help=f"images per forward pass (default {batch})")
    p.add_argument("--num-workers", type=NONNEG_INT, default=None,
                   help=workers_help or "DataLoader worker processes for decoding (default: cores - 1, at most 8)")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable item instead of skipping it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    if datasets:
        p.add_argument("--allow-outside-root", action="store_true",
                       help="accept dataset items outside the dataset folder (--data, --root or a suite's roots): "
                       "paths of list/annotation files with '..' or absolute paths, and links (refused by default)")


def _add_pre(p: argparse.ArgumentParser, default: str | None = "reference", note: str = "default") -> None:
    from ..data.images import PREPROCESSING_MODES

    p.add_argument("--preprocessing", choices=PREPROCESSING_MODES, default=default,
                   help=f"reference: the paper's code (squash 224, [0,1], no normalization; {note}); "
                        "clip: the model's own processor (resize, center crop, mean/std)")


def _data(args) -> "object":
    from ..data.datasets import image_folder, unlabelled_images

    if getattr(args, "dataset", None):
        return _one_dataset(args)
    if args.labelled:
        return image_folder(args.data, allow_outside=args.allow_outside_root)
    return unlabelled_images(args.data, allow_outside=args.allow_outside_root)


# ------------------------------------------------------------------------------------------------ benchmark datasets
def _add_dataset_source(p: argparse.ArgumentParser, data_help: str, suite: bool = False, video: bool = True) -> None:
    """--data FOLDER | --dataset NAME --root DIR [| --suite ...], reader options and (for videos) frame sampling."""
    from ..data.registry import DATASETS, PAPER_DATASETS

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
        from ..data.video import SAMPLING_RULES

        p.add_argument("--sampling", choices=SAMPLING_RULES, default="reference",
                       help="frames of clips with at most --segments frames: reference = frame 0 repeated (the "
                       "paper's code, default); edge = every frame, then the last one repeated")
        p.add_argument("--segments", type=POSITIVE_INT, default=16, help="frames sampled per clip (default 16)")
    else:
        p.set_defaults(sampling="reference", segments=16)


def _all_datasets(args) -> list:
    """The ItemLists named on the command line (every fold), all read before any work starts."""
    from ..runs.suite import SuiteEntry, load_entries, parse_options, preset_entries, read_preset

    opts = parse_options(args.option)
    allow = getattr(args, "allow_outside_root", False)
    suite = getattr(args, "suite", None)
    if suite:
        only = args.only.split(",") if args.only else None
        entries = (read_preset(suite, args.data_root, only, opts, allow) if Path(suite).is_file()
                   else preset_entries(suite, args.data_root or ".", only, opts, allow))
        return load_entries(entries)
    if args.dataset:
        if not args.root:
            raise InputError(f"--dataset {args.dataset} needs --root: the folder you downloaded")
        unknown = [k for k in opts if k is not None]
        if unknown:
            raise InputError("--option DATASET:... prefixes are for --suite; with --dataset write KEY=VALUE")
        return load_entries([SuiteEntry(args.dataset, Path(args.root), args.fold, opts.get(None, {}), allow)])
    if args.option or args.fold:
        raise InputError("--option and --fold apply to --dataset and --suite, not to --data")
    return [_data(args)]


def _one_dataset(args):
    datasets = _all_datasets(args)
    if len(datasets) != 1:
        raise InputError(f"{args.dataset} has {len(datasets)} folds here; choose one with --fold")
    return datasets[0]


# ------------------------------------------------------------------------------------------------ commands
def _device_map(spec: str | None) -> "dict | str | None":
    """--teacher-device-map: none, auto (this process's GPUs) or a JSON file {module prefix: device}, read and
    checked before any model is loaded."""
    from ..schema import read_json, show

    if spec in (None, "", "none"):
        return None
    if spec == "auto":
        return "auto"
    if not Path(spec).is_file():
        raise InputError(f"--teacher-device-map {spec}: no such file (give auto, none or a JSON file)")
    obj = read_json(spec, InputError, "--teacher-device-map file")
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and (isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)))
            for k, v in obj.items()):
        raise InputError(f"--teacher-device-map {spec}: must be a JSON object {{module prefix: device}}, e.g. "
                         f'{{"vision_model": "cuda:0", "t5.encoder.block.12": 1}}; got {show(obj)}')
    return obj


def _report_store(what: str, store) -> None:
    if store is None:
        print(f"{what}: this shard is done; another process finalizes the store")
        return
    n, bad = len(store), len(store.failures)
    fewer = (store.meta.get("clips") or {}).get("frame_count_above_found", 0)
    notes = ([f"{bad} skipped"] if bad else []) + \
        ([f"{fewer} clip(s) have fewer frames than listed, sampled from those found"] if fewer else [])
    print(f"{what}: {n - bad} of {n} items -> {store.path}" + (f" ({'; '.join(notes)}, see meta.json)" * bool(notes)))


def _add_recipe(p: argparse.ArgumentParser) -> None:
    """Training options shared by ``train`` and ``ablate`` (defaults: the paper's recipe), validated alike."""
    from ..train import TrainConfig

    d = TrainConfig()
    p.add_argument("--seeds", type=SEED, nargs="+", default=[1, 2, 3], help="seeds (default 1 2 3, as the paper)")
    p.add_argument("--epochs", type=POSITIVE_INT, default=d.epochs, help="training epochs (default %(default)s)")
    p.add_argument("--train-batch-size", type=POSITIVE_INT, default=d.batch_size,
                   help="training batch size; the last partial batch is dropped (default %(default)s)")
    p.add_argument("--lr", type=POSITIVE_FLOAT, default=d.lr, help="SGD learning rate (default %(default)s)")
