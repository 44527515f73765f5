"""GPU encoder throughput: the teacher (blip2-flan-t5-xxl) images/s and model FLOP utilisation, CLIP L/14 images/s.

Full-size architectures with random weights (speed does not depend on the values; nothing is downloaded): the
teacher as expclip loads it (ViT-g + Q-Former in float32 + projector + T5-XXL encoder, bfloat16) running
``Teacher.encode`` with the paper's instruction, and CLIP L/14 running ``Backbone.encode_image`` under bfloat16
autocast, both on preprocessed tensors already on the device. FLOPs per image are counted exactly with
torch's FlopCounterMode on the meta device (same code path); MFU = achieved FLOP/s ÷ the GPU's dense bfloat16
peak (H100/H200 SXM: 989 TFLOP/s; ``--peak-tflops`` to override). Target: teacher MFU ≥ 40% on an H200.

    python bench/model_throughput.py --device cuda                 # full size (needs ~16 GB of GPU memory)
    python bench/model_throughput.py --size small --no-record      # CPU dry run of the mechanics
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _common import Row, load_note, median, met, print_table, record, timed  # noqa: E402
from _models import clip_config, random_backbone, random_teacher  # noqa: E402

TARGET_MFU = 0.40
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 PCIe": 756.0, "H100": 989.4,
                    "A100": 312.0, "L40S": 362.0}


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, v in PEAK_BF16_TFLOPS.items():
        if key in name:
            return v
    return None


def flops_per_image(run, build_meta) -> float:
    """Forward FLOPs of one image, counted on the meta device (batch 2, halved)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_meta()
    x = torch.empty(2, 3, 224, 224, device="meta")
    fc = FlopCounterMode(display=False)
    with fc:
        run(model, x)
    return fc.get_total_flops() / 2


def meta_clip(arch: str):
    """CLIP of ``arch`` on the meta device (shapes only, no memory)."""
    from transformers import CLIPModel

    with torch.device("meta"):
        return CLIPModel(clip_config(arch)).eval().requires_grad_(False)


def rate(fn, x: torch.Tensor, iters: int, repeats: int) -> float:
    """Images/s of ``fn(x)``: median over ``repeats`` of ``iters`` calls (after two warm-up calls)."""
    fn(x), fn(x)
    return len(x) * iters / median([timed(lambda: [fn(x) for _ in range(iters)]) for _ in range(repeats)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default=None, choices=["small", "full"], help="default: full on cuda, small on cpu")
    ap.add_argument("--teacher-batch", type=int, default=64)
    ap.add_argument("--clip-batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the GPU (default: by name)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    from expclip.models.teacher import INSTRUCTIONS

    dev = torch.device(args.device)
    full = (args.size or ("full" if dev.type == "cuda" else "small")) == "full"
    tsize, arch = ("xxl", "L14") if full else ("small", "small")
    instr = INSTRUCTIONS["task"]
    t_flops = flops_per_image(lambda m, x: m.encode(x, instr),
                              lambda: random_teacher(tsize, meta_only=True).eval().requires_grad_(False))
    c_flops = flops_per_image(lambda m, x: m.get_image_features(pixel_values=x), lambda: meta_clip(arch))

    teacher = random_teacher(tsize, args.device)
    n_tok = len(teacher.instruction_ids(instr))
    xt = torch.rand(args.teacher_batch, 3, 224, 224, device=dev)
    t_rate = rate(lambda x: teacher.encode(x, instr), xt, args.iters, args.repeats)
    t_mem = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    teacher = xt = None  # free the teacher before building CLIP
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    bb = random_backbone(arch, args.device)
    xc = torch.rand(args.clip_batch, 3, 224, 224, device=dev)
    c_rate = rate(bb.encode_image, xc, args.iters, args.repeats)

    peak = args.peak_tflops or peak_tflops(dev)
    mfu = t_rate * t_flops / (peak * 1e12) if peak else None
    tname = "blip2-flan-t5-xxl teacher" if full else "small stand-in teacher"
    cname = "CLIP L/14" if full else "small stand-in CLIP"
    dtype = "bf16" if dev.type == "cuda" else "float32"
    rows = [
        Row("gpu models", f"{tname} images/s (random weights, {dtype}, batch {args.teacher_batch})",
            f"{t_rate:.1f} img/s" + (f", peak memory {t_mem:.1f} GiB" if t_mem else "")),
        Row("gpu models", f"{tname} FLOPs per image (counted, forward; 32 query + {n_tok} instruction tokens)",
            f"{t_flops / 1e9:.4g} GFLOP"),
        Row("gpu models", f"{tname} model FLOP utilisation",
            f"{100 * mfu:.1f}% of {peak:.0f} TFLOP/s" if mfu is not None else "n/a (no peak known for this device)",
            "≥ 40% (H200)", met(mfu >= TARGET_MFU) if mfu is not None else "-"),
        Row("gpu models", f"{cname} images/s ({'bf16 autocast' if dev.type == 'cuda' else dtype}, "
            f"batch {args.clip_batch})", f"{c_rate:.1f} img/s ({c_flops / 1e9:.3g} GFLOP/img counted)"),
    ]
    print_table(rows)
    record(rows, args.device, not args.no_record and dev.type == "cuda", note=load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
