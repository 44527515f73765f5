"""The cost of a better backbone: images/s of ``Backbone.encode_image`` for every family at its real size.

Each family's image tower is built from its published config's shapes (random weights: speed does not depend on
the values; nothing is downloaded), wrapped in expclip's ``Backbone`` with the family's conventions (SigLIP 2 NaFlex
cuts the images into patches inside ``encode_image``, as in extraction), and timed on preprocessed tensors of the
side its own processor gives. The text towers are small: image extraction never runs them. Per family: warm-up
(which also counts its FLOPs per image, exactly), then the median over ``--repeats`` of one batch, alternating with
the paper's CLIP L/14 on the same batch size so that the ratio to it is measured side by side (a shared machine's
load moves the absolute rates, much less the ratios); float32 on CPU, bfloat16 autocast on CUDA (as the loader).

    python bench/backbones.py                                   # every family, real sizes, CPU
    python bench/backbones.py --only siglip-so400m laion-bigG   # some of them
    python bench/backbones.py --size small --no-record          # toy sizes: the mechanics in seconds
    python bench/backbones.py --device cuda --batch-size 64     # the GPU rows
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from _common import Row, interleaved, load_note, median, print_table, record  # noqa: E402

# Image towers of the presets (models/presets.py), from the checkpoints' published configs (shapes only).
VIT_L14 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, patch_size=14,
               image_size=224)
FULL = {
    # preset: (family, vision config, projection width, image side)
    "clip-l14": ("clip", VIT_L14, 768, 224),  # the paper's largest, for comparison
    "laion-bigG": ("clip", dict(hidden_size=1664, intermediate_size=8192, num_hidden_layers=48, num_attention_heads=16,
                                patch_size=14, image_size=224), 1280, 224),
    "metaclip2-h14": ("metaclip_2", dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                                         num_attention_heads=16, patch_size=14, image_size=224), 1024, 224),
    "siglip-l16-384": ("siglip", dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                      num_attention_heads=16, patch_size=16, image_size=384), 1024, 384),
    "siglip-so400m": ("siglip", dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                                     num_attention_heads=16, patch_size=14, image_size=384), 1152, 384),
    "siglip2-so400m-naflex": ("siglip2", dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                                              num_attention_heads=16, patch_size=16, num_patches=256), 1152, 256),
    "align-base": ("align", dict(image_size=289), 640, 289),  # AlignVisionConfig defaults: EfficientNet-B7
    "altclip": ("altclip", VIT_L14, 768, 224),  # AltCLIP's image tower is CLIP L/14's
    "chinese-clip-b16": ("chinese_clip", dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                              num_attention_heads=12, patch_size=16, image_size=224), 512, 224),
}
SMALL_VIT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, patch_size=16)
SMALL = {  # the same families at toy sizes (the smoke test): mechanics, not figures
    "clip-l14": ("clip", dict(SMALL_VIT, image_size=64), 32, 64),
    "siglip-so400m": ("siglip", dict(SMALL_VIT, image_size=64), 64, 64),
    "siglip2-so400m-naflex": ("siglip2", dict(SMALL_VIT, num_patches=16), 64, 64),
    "align-base": ("align", dict(image_size=64, width_coefficient=0.1, depth_coefficient=0.2, hidden_dim=64,
                                 num_block_repeats=(1,) * 7), 32, 64),
    "altclip": ("altclip", dict(SMALL_VIT, image_size=64), 32, 64),
}
REFERENCE = "clip-l14"  # every family is timed side by side with the paper's largest backbone
TEXT = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
            max_position_embeddings=80, pad_token_id=1, bos_token_id=0, eos_token_id=2)


def build(family: str, vision: dict, width: int):
    """A random-weight model of ``family`` with this image tower and a small text tower (eval, no grad)."""
    import transformers

    names = {"clip": "CLIP", "metaclip_2": "MetaClip2", "siglip": "Siglip", "siglip2": "Siglip2", "align": "Align",
             "altclip": "AltCLIP", "chinese_clip": "ChineseCLIP"}
    cfg_cls = getattr(transformers, f"{names[family]}Config")
    model_cls = getattr(transformers, f"{names[family]}Model")
    text = dict(TEXT)
    if family in ("siglip", "siglip2"):
        text.update(projection_size=width, max_position_embeddings=64)
        cfg = cfg_cls(text_config=text, vision_config=vision)
    elif family == "align":
        cfg = cfg_cls(text_config=text, vision_config=vision, projection_dim=width)
    elif family == "altclip":
        cfg = cfg_cls(text_config=dict(text, project_dim=width), vision_config=vision, projection_dim=width)
    else:
        cfg = cfg_cls(text_config=text, vision_config=vision, projection_dim=width)
    try:
        cfg._attn_implementation = "sdpa"  # as Backbone.from_pretrained asks for it
        model = model_cls(cfg)
    except ValueError:  # no attention to choose (ALIGN's EfficientNet)
        cfg._attn_implementation = None
        model = model_cls(cfg)
    return model.eval().requires_grad_(False)


def backbone(name: str, spec: tuple, device: torch.device):
    """The preset's image tower as an expclip Backbone (the family's conventions, no files)."""
    from expclip.models import families
    from expclip.models.backbone import Backbone
    from expclip.models.hub import ResolvedModel

    family, vision, width, side = spec
    torch.manual_seed(0)
    model = build(family, vision, width).to(device)
    return Backbone(model=model, tokenizer=None, device=device, resolved=ResolvedModel(f"random-{name}", Path("."),
                    "random"), image_size=side, embed_dim=width, max_text_length=64,
                    amp_dtype=torch.bfloat16 if device.type == "cuda" else None, family=families.get_family(family))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="full", choices=["full", "small"], help="real sizes (default) or toy ones")
    ap.add_argument("--only", nargs="+", default=None, help="presets to time (default: all of the size)")
    ap.add_argument("--batch-size", type=int, default=4, help="images per timed batch (default 4)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-record", action="store_true", help="do not append rows to BENCHMARKS.md")
    args = ap.parse_args(argv)

    table = FULL if args.size == "full" else SMALL
    unknown = [n for n in args.only or [] if n not in table]
    if unknown:
        ap.error(f"unknown preset(s) {unknown}; choose from {list(table)}")
    dev = torch.device(args.device)
    dtype = "bf16 autocast" if dev.type == "cuda" else "float32"
    ref = backbone(REFERENCE, table[REFERENCE], dev)
    x_ref = torch.rand(args.batch_size, 3, table[REFERENCE][3], table[REFERENCE][3], device=dev)
    ref.encode_image(x_ref[:1])
    rows = []
    for name in args.only or list(table):
        t0 = time.perf_counter()
        bb = ref if name == REFERENCE else backbone(name, table[name], dev)
        built = time.perf_counter() - t0
        params = sum(p.numel() for p in bb.model.vision_model.parameters())
        side = table[name][3]
        x = torch.rand(args.batch_size, 3, side, side, device=dev)
        fc = FlopCounterMode(display=False)
        with fc:  # the warm-up (allocator, kernels) also counts the FLOPs of one image, exactly
            bb.encode_image(x[:1])
        gflop = fc.get_total_flops() / 1e9
        fns = {name: lambda bb=bb, x=x: bb.encode_image(x)}
        if name != REFERENCE:
            fns[REFERENCE] = lambda: ref.encode_image(x_ref)
        times = {k: median(v) for k, v in interleaved(fns, args.repeats).items()}
        secs = times[name]
        ratio = secs / times.get(REFERENCE, secs)
        size = "real size" if args.size == "full" else "toy size"
        rows.append(Row("backbones", f"{name} ({bb.family.display}) images/s, {side}px, {size}, {dtype}, "
                        f"batch {args.batch_size}",
                        f"{args.batch_size / secs:.3g} img/s ({secs / args.batch_size:.3g} s/img, {ratio:.2f}x "
                        f"{REFERENCE}'s time side by side; {gflop:.4g} GFLOP/img counted; image tower "
                        f"{params / 1e6:,.4g}M params)"))
        print(f"{name}: built in {built:.0f} s, {rows[-1].value}", flush=True)
        del bb, x, fns
        gc.collect()
    print_table(rows)
    record(rows, args.device, not args.no_record, note=load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
