"""``expclip list | import-official``: what is available (classes, datasets, prompt sets, instructions, models,
the stores on disk) and the reference's released heads brought into expclip's format."""

from __future__ import annotations

import logging
from pathlib import Path

from .options import _add_store

log = logging.getLogger("expclip")


def cmd_import(args) -> int:
    from ..checkpoint import read_head_config
    from ..files import writable_dir
    from ..official import import_official

    writable_dir(args.out)
    out = import_official(args.pth, args.out, args.backbone)
    cfg = read_head_config(out)
    print(f"imported {args.pth} -> {out} (linear {cfg.head.in_dim}->{cfg.head.out_dim}, "
          f"backbone {cfg.backbone.id}, preprocessing reference)")
    return 0


def cmd_list(args) -> int:
    from ..errors import StoreError
    from ..features.meta import read_meta
    from ..data.registry import DATASETS, display_name
    from ..labels import CLASS_ORDER
    from ..models.families import FAMILIES
    from ..models.names import DEFAULT_BACKBONE, DEFAULT_TEACHER, INSTRUCTIONS, PAPER_BACKBONES
    from ..models.presets import PRESETS
    from ..prompts import PAPER_PROMPT_SETS, prompt_set_display_name

    print("classes (index: name): " + ", ".join(f"{i}: {c}" for i, c in enumerate(CLASS_ORDER)))
    print("datasets (--dataset NAME; README: 'Benchmarks'):")
    roles = {"static": "test set, images", "video": "test set, videos", "train": "training pool (its labels unused)"}
    for spec in DATASETS.values():
        also = f" (also {display_name(spec.name)})" if display_name(spec.name) != spec.name else ""
        classes = f", {spec.num_classes} classes" if spec.num_classes else ""
        print(f"  {spec.name}{also}: {roles.get(spec.table, spec.download)}{classes}")
    print("prompt sets: " + ", ".join(f"{p} ({prompt_set_display_name(p)})" for p in PAPER_PROMPT_SETS))
    print("instructions:")
    for k, v in INSTRUCTIONS.items():
        print(f"  {k}: {v}")
    print(f"backbones: {', '.join(f'{k}={v}' for k, v in PAPER_BACKBONES.items())} (default {DEFAULT_BACKBONE})")
    print("backbone presets (--backbone NAME, anywhere a backbone is named; width = feature size = a head's input):")
    fams = {f.model_type: f.display for f in FAMILIES.values()}
    w = max(len(p.name) for p in PRESETS.values())
    h = max(len(p.hub_id) for p in PRESETS.values())
    for p in PRESETS.values():
        print(f"  {p.name:<{w}}  {p.hub_id:<{h}}  {fams.get(p.family, p.family):<17}  width {p.feature_dim:<4}  "
              f"image {p.image_size}  ({p.source})")
    print(f"teacher: {DEFAULT_TEACHER}")
    root = Path(args.store)
    metas = sorted(root.glob("*/meta.json")) if root.is_dir() else []
    print(f"stores in {root}: {len(metas)}")
    for m in metas:
        try:
            meta = read_meta(m)
        except StoreError as e:
            print(f"  {m.parent.name}: damaged meta.json ({str(e).removeprefix(str(m) + ': ')})")
            continue
        k = meta["key"]
        state = "complete" if meta.get("complete") else "INCOMPLETE (rerun to resume)"
        extra = f" instruction={k['instruction'][:40]!r}" if "instruction" in k else ""
        pre = (k.get("preprocessing") or {}).get("mode", "-")
        print(f"  {m.parent.name}: {k['kind']} model={k['model']['id']} data={k['data']['name']} "
              f"n={meta.get('n')} preprocessing={pre}{extra} {state}")
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("import-official", help="convert a released reference head (.pth) to expclip's format",
                       description="Read ExpCLIP_{B32,B16,L14}_model.pth with torch.load(weights_only=True) (a pickle "
                       "that would run code is refused) and write head.safetensors + config.json, preprocessing "
                       "'reference'.")
    s.add_argument("pth", metavar="FILE.pth", help="a released head, e.g. ExpCLIP_L14_model.pth")
    s.add_argument("--out", required=True, help="new (or empty) folder for head.safetensors + config.json")
    s.add_argument("--backbone", default=None, help="backbone id (default: from the file name B32/B16/L14)")
    s.set_defaults(fn=cmd_import)

    s = sub.add_parser("list", help="prompt sets, instructions, default models and the stores on disk",
                       description="List the paper's classes, the datasets expclip reads (test sets, the training "
                       "pool, generic formats), the prompt sets, the teacher's instruction presets, the default "
                       "models, and every feature store under --store with its model, data and state.")
    _add_store(s)
    s.set_defaults(fn=cmd_list)
