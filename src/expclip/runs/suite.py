"""Evaluation suites: which datasets (and folds, reader options) to score, from a preset name or a preset file.

``paper`` is the paper's eight columns (RAF-DB, AffectNet-7/-8, FERPlus, DFEW, FERV39k, MAFW, AFEW), found under
one data root by their usual folder names. A preset file (JSON) names any subset with explicit roots and options::

    {"datasets": [{"dataset": "RAFDB", "root": "RAF-DB/basic"},
                  {"dataset": "DFEW", "root": "DFEW", "folds": [1, 2], "options": {"media": "clips"}}]}

Every dataset is read before any feature is computed, so a wrong path fails in seconds, not hours in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.datasets import DatasetError, ItemList, image_folder
from ..data.registry import PAPER_DATASETS, find_dataset_root, get_spec, load_dataset
from .evaluate import Model, check_models_needed, clip_model, evaluate
from ..models.hub import model_name
from ..models.names import PAPER_BACKBONES, backbone_short_name
from ..prompts import resolve_prompt_sets
from ..errors import InputError
from ..schema import Fields, is_int, is_number, read_json, show

log = logging.getLogger(__name__)

SUITES = {"paper": PAPER_DATASETS}


@dataclass
class SuiteEntry:
    """One dataset of a suite: registry name, root folder, folds (None = all), reader options, and whether its
    item paths may leave the root (``--allow-outside-root``)."""

    dataset: str
    root: Path
    folds: list[int] | None = None
    options: dict = field(default_factory=dict)
    allow_outside: bool = False

    def load(self) -> list[ItemList]:
        if "allow_outside" in self.options:
            raise DatasetError(f"{self.dataset}: allow_outside is not a reader option; pass --allow-outside-root "
                               "(Python: SuiteEntry(..., allow_outside=True))")
        if self.dataset == "folder":  # the plain labelled folder of `expclip eval --data`
            bad = sorted(set(self.options) - {"name", "classes"})
            if bad or not isinstance(self.options.get("name", ""), str) or not (
                    isinstance(self.options.get("classes", []), list)
                    and all(isinstance(c, str) for c in self.options.get("classes", []))):
                raise DatasetError(f"folder {self.root}: its options are name (a string) and classes (a list of "
                                   f"class names), got {self.options}")
            return [image_folder(self.root, allow_outside=self.allow_outside, **self.options)]
        return load_dataset(self.dataset, self.root, self.folds, self.allow_outside, **self.options)


def parse_options(pairs: list[str]) -> dict[str | None, dict]:
    """``["rule=plurality", "DFEW:media=clips"]`` -> {None: {"rule": "plurality"}, "DFEW": {"media": "clips"}}.

    Integer-looking values become ints. Options without a dataset prefix apply to every dataset that takes them.
    """
    out: dict[str | None, dict] = {}
    for pair in pairs:
        head, sep, value = pair.partition("=")
        target, _, key = head.rpartition(":")
        if not sep or not key.strip():
            raise InputError(f"option {pair!r} is not KEY=VALUE (or DATASET:KEY=VALUE)")
        out.setdefault(get_spec(target).name if target else None, {})[key.strip()] = \
            int(value) if value.strip().lstrip("-").isdigit() else value.strip()
    return out


def _options_for(dataset: str, options: dict[str | None, dict]) -> dict:
    accepted = set(get_spec(dataset).accepted_options())
    common = {k: v for k, v in options.get(None, {}).items() if k in accepted}
    return {**common, **options.get(get_spec(dataset).name, {})}


def preset_entries(name: str, data_root: str | Path, only: list[str] | None = None,
                   options: dict[str | None, dict] | None = None, allow_outside: bool = False) -> list[SuiteEntry]:
    """The entries of a built-in suite whose folders exist under ``data_root`` (the others are logged, skipped)."""
    if name not in SUITES:
        raise InputError(f"unknown suite {name!r}; built-in suites: {list(SUITES)} (or give a preset .json file)")
    if not Path(data_root).is_dir():
        folders = list(dict.fromkeys(get_spec(ds).dir_names[0] for ds in SUITES[name]))
        raise DatasetError(f"--data-root {data_root}: folder not found (it should hold the datasets' folders: "
                           f"{', '.join(folders)})")
    names = _select(SUITES[name], only)
    entries, missing = [], []
    for ds in names:
        root = find_dataset_root(ds, data_root)
        if root is None:
            missing.append(f"{ds} (looked for {', '.join(get_spec(ds).dir_names)})")
            continue
        entries.append(SuiteEntry(ds, root, None, _options_for(ds, options or {}), allow_outside))
    if not entries:
        raise DatasetError(f"suite {name!r}: none of its datasets is under {data_root}: " + "; ".join(missing))
    if missing:
        log.warning("suite %s: not found under %s, left out: %s", name, data_root, "; ".join(missing))
    return entries


def read_preset(path: str | Path, data_root: str | Path | None = None, only: list[str] | None = None,
                options: dict[str | None, dict] | None = None, allow_outside: bool = False) -> list[SuiteEntry]:
    """Entries of a preset file; relative roots are taken from ``data_root`` or else the file's folder."""
    path = Path(path)
    obj = read_json(path, DatasetError, "suite preset")
    shape = '{"datasets": [{"dataset": NAME, "root": DIR, "folds": [1, 2], "options": {KEY: VALUE}}, ...]}'
    rows = obj.get("datasets") if isinstance(obj, dict) else obj
    if not isinstance(rows, list) or not rows:
        raise DatasetError(f"{path}: expected {shape}, got {show(obj)}")
    base = Path(data_root) if data_root else path.parent
    entries = []
    for i, row in enumerate(rows):
        f = Fields(row, path, DatasetError, f"datasets[{i}]")
        dataset, root = f.str("dataset", empty=False), f.str("root", empty=False)
        folds = f.list("folds", None, is_int, "a list of fold numbers")
        opts_row = f.dict("options", {})
        for k, v in opts_row.items():
            if not (isinstance(v, (str, bool)) or is_number(v) or
                    isinstance(v, list) and all(isinstance(x, str) for x in v)):
                raise f.fail(f"datasets[{i}].options.{k}", "a string, number, true/false or a list of strings", v)
        name = "folder" if dataset == "folder" else get_spec(dataset).name
        root_path = Path(root).expanduser()
        opts = {**(_options_for(name, options or {}) if name != "folder" else {}), **opts_row}
        entries.append(SuiteEntry(name, root_path if root_path.is_absolute() else base / root_path, folds, opts,
                                  allow_outside))
    keep = set(_select([e.dataset for e in entries], only))
    return [e for e in entries if e.dataset in keep]


def _select(names: list[str] | tuple[str, ...], only: list[str] | None) -> list[str]:
    if not only:
        return list(names)
    wanted = {get_spec(n).name for n in only}
    unknown = wanted - set(names)
    if unknown:
        raise InputError(f"--only names {sorted(unknown)} that are not in the suite ({list(names)})")
    return [n for n in names if n in wanted]


def load_entries(entries: list[SuiteEntry]) -> list[ItemList]:
    """Read every dataset (and fold) of the suite up front."""
    out = [data for e in entries for data in e.load()]
    seen = [(d.name, d.info.get("fold")) for d in out]
    twice = sorted({f"{n}" + (f" fold {k}" if k is not None else "") for n, k in seen if seen.count((n, k)) > 1})
    if twice:  # results are merged by dataset name and fold: a second entry would be averaged in as another fold
        raise DatasetError(f"the suite names {', '.join(twice)} more than once; list each dataset once (evaluate "
                           "another variant of it, e.g. other reader options, with its own expclip eval --out)")
    return out


def with_clip_baselines(models: list[Model], backbone: str | list[str], preprocessing: str) -> list[Model]:
    """``models`` with a plain-CLIP row in front of the heads of each backbone; ``backbone`` (one or a list) are
    scored too: alone when there are no heads, else those the heads do not already use.

    Rows follow the paper's tables (CLIP B/32, Exp-CLIP B/32, CLIP B/16, ...); with several backbones the CLIP rows
    are named "CLIP B/16", ... (and by preprocessing when that differs) so that they do not merge.
    """
    pairs = {(m.backbone, m.backbone_revision, m.preprocessing) for m in models}
    named = [backbone] if isinstance(backbone, str) else list(backbone)
    used = {model_name(b) for b, _, _ in pairs}
    if not pairs or len(named) > 1:
        pairs |= {(b, None, preprocessing) for b in named if model_name(b) not in used}
    rank = {v: i for i, v in enumerate(PAPER_BACKBONES.values())}  # the paper's first, then as named
    rank |= {model_name(b): len(PAPER_BACKBONES) + i for i, b in enumerate(named) if model_name(b) not in rank}
    out = []
    for b, rev, pre in sorted(pairs, key=lambda p: (rank.get(model_name(p[0]), len(rank)), str(p))):
        m = clip_model(b, pre, rev)
        if len(pairs) > 1:
            m.group = f"CLIP {backbone_short_name(b)}"
        if len({p for _, _, p in pairs}) > 1:
            m.group += f" [{pre}]"
        out += [m] + [h for h in models if (h.backbone, h.backbone_revision, h.preprocessing) == (b, rev, pre)]
    return out


def run_suite(datasets: list[ItemList], models: list[Model], prompts: str | list[str], store_root: str | Path,
              device: str | torch.device = "cpu", sampling: str = "reference", num_segments: int = 16,
              **kw) -> list[dict]:
    """Score every model on every dataset/fold with every prompt set; one result dict per cell.

    Image/video features are computed once per (backbone, preprocessing, dataset, fold) and reused for every head,
    seed and prompt set; each backbone is loaded at most once. ``kw``: batch_size, num_workers, progress, strict.
    """
    backbones: dict = {}
    check_models_needed(datasets, models, prompts, store_root, backbones, device, sampling, num_segments)
    results = []
    for data in datasets:
        results += evaluate(data, models, resolve_prompt_sets(prompts, data.classes), store_root, device=device,
                            sampling=sampling, num_segments=num_segments, backbones=backbones, **kw)
    return results
