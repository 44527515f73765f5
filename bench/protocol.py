"""Protocol cost: the paper's training protocol (3 seeds × 5 epochs) run our way and the reference's way.

Ours: ``extract_images`` + ``extract_teacher`` once into the store, then ``fit_heads`` for 3 seeds from the store.
Reference's strategy: for every seed, every epoch and every batch, decode the batch, run CLIP and the teacher on
it, then take the head's SGD step (the reference re-runs both encoders per batch).
Both run in one process on the same models and images; every CLIP and teacher forward pass is counted by wrapping
the encoders. The counts are also given exactly for the paper's pool (49,000 images, batch 512, drop_last).
Target: 1 teacher pass per training image (reference: epochs × seeds = 15); on an H200 with the full-size models
the whole protocol ≥ 15× faster than the reference's strategy.

    python bench/protocol.py                                   # CPU, small stand-in models, 512 images
    python bench/protocol.py --device cuda --size full --images 8192   # blip2-flan-t5-xxl + CLIP L/14, bf16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _common import Row, load_note, met, print_table, record, timed  # noqa: E402
from _models import random_backbone, random_teacher, write_jpeg_folder  # noqa: E402

PAPER_POOL = 49_000


class Counter:
    """Wraps an encoder method on an instance and counts the images that go through it."""

    def __init__(self, obj, method: str):
        self.n = 0
        original = getattr(obj, method)

        def counted(x, *a, **k):
            self.n += len(x)
            return original(x, *a, **k)

        setattr(obj, method, counted)


def reference_strategy(bb, teacher, data, cfg, seeds, instruction: str, num_workers: int, device) -> None:
    """The reference's loop: both encoders on every batch of every epoch of every seed."""
    from torch.utils.data import DataLoader

    from expclip.data.loaders import ImageLoader
    from expclip.models.heads import build_head
    from expclip.train import contrastive_loss

    pre = bb.preprocess("reference")
    ds = _Images(ImageLoader(str(data.root), tuple(it["path"] for it in data.items), pre), len(data))
    for seed in seeds:
        torch.manual_seed(seed)
        head = build_head(cfg.head, bb.embed_dim, teacher.embed_dim).to(device)
        opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, drop_last=True, num_workers=num_workers,
                            generator=torch.Generator().manual_seed(seed), pin_memory=device.type == "cuda")
        for _ in range(cfg.epochs):
            for x in loader:
                f = bb.encode_image(x).to(device).clone()  # inference-mode outputs: clone for autograd
                e = teacher.encode(x, instruction).to(device).clone()
                loss = contrastive_loss(head(f), e, cfg.logit_scale)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()


class _Images(torch.utils.data.Dataset):
    def __init__(self, load, n: int):
        self.load, self.n = load, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.load(i)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="small", choices=["small", "full"],
                    help="small stand-ins (CPU) or the paper's models: CLIP L/14 + blip2-flan-t5-xxl (GPU)")
    ap.add_argument("--images", type=int, default=512, help="training pool size for the timed run")
    ap.add_argument("--batch-size", type=int, default=512, help="training batch (the paper's 512)")
    ap.add_argument("--extract-batch-size", type=int, default=None, help="our extraction batch (default: same)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--num-workers", type=int, default=None)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    from expclip.data.datasets import unlabelled_images
    from expclip.devices import default_num_workers
    from expclip.features.extract import extract_images, extract_teacher
    from expclip.models.teacher import INSTRUCTIONS
    from expclip.runs.fit import fit_heads
    from expclip.train import TrainConfig

    dev = torch.device(args.device)
    workers = default_num_workers() if args.num_workers is None else args.num_workers
    arch, tsize = ("L14", "xxl") if args.size == "full" else ("small", "small")
    bb, teacher = random_backbone(arch, args.device), random_teacher(tsize, args.device)
    clip_n, teacher_n = Counter(bb, "encode_image"), Counter(teacher, "encode")
    cfg = TrainConfig(batch_size=args.batch_size, epochs=args.epochs, logit_scale=bb.logit_scale)
    xb = args.extract_batch_size or args.batch_size
    tmp = tempfile.TemporaryDirectory(prefix="expclip-bench-") if args.workdir is None else None
    work = Path(args.workdir or tmp.name)
    try:
        folder = work / f"pool-{args.images}"
        if not folder.is_dir():
            write_jpeg_folder(folder, args.images, 224)
        data = unlabelled_images(folder)
        x = torch.rand(8, 3, 224, 224)
        timed(lambda: (bb.encode_image(x), teacher.encode(x)))  # warm-up
        clip_n.n = teacher_n.n = 0

        def ours() -> None:
            kw = dict(batch_size=xb, num_workers=workers, progress=False)
            img = extract_images(bb, data, work / "store", **kw)
            tgt = extract_teacher(teacher, data, work / "store", "task", **kw)
            fit_heads(img, tgt, work / "runs", args.seeds, cfg, device=dev)

        t_ours = timed(ours)
        ours_counts = (clip_n.n, teacher_n.n)
        clip_n.n = teacher_n.n = 0
        t_ref = timed(lambda: reference_strategy(bb, teacher, data, cfg, args.seeds, INSTRUCTIONS["task"],
                                                 workers, dev))
        ref_counts = (clip_n.n, teacher_n.n)
    finally:
        if tmp is not None:
            tmp.cleanup()

    n, s, e = args.images, len(args.seeds), args.epochs
    used = lambda pool: pool // args.batch_size * args.batch_size  # noqa: E731 (drop_last)
    assert ref_counts == (s * e * used(n),) * 2, ref_counts  # the formula below is what was counted
    assert ours_counts == (n, n), ours_counts
    per_img = ref_counts[1] / n
    models = "CLIP L/14 + blip2-flan-t5-xxl (random, bf16)" if args.size == "full" else "small stand-in models"
    run = f"{n} images, {s} seeds × {e} epochs, batch {args.batch_size}, {models}"
    speedup = t_ref / t_ours
    paper_ref = s * e * used(PAPER_POOL)
    rows = [
        Row("protocol", f"teacher passes, counted ({run})", f"ours {ours_counts[1]:,} vs reference {ref_counts[1]:,}"),
        Row("protocol", "teacher passes per training image",
            f"ours {ours_counts[1] / n:.0f} vs reference {per_img:.0f}", "1 (reference 15)", met(ours_counts[1] == n)),
        Row("protocol", "CLIP passes, counted", f"ours {ours_counts[0]:,} vs reference {ref_counts[0]:,}"),
        Row("protocol", f"paper pool {PAPER_POOL:,} images: teacher (= CLIP) passes",
            f"ours {PAPER_POOL:,} vs reference {paper_ref:,} (exact, from the counted formula)"),
        Row("protocol", "whole protocol wall time, side by side",
            f"ours {t_ours:.1f} s vs reference {t_ref:.1f} s = {speedup:.1f}× faster",
            "≥ 15× (H200, full size)" if args.size == "full" else "-",
            met(speedup >= 15) if args.size == "full" else "-"),
    ]
    print_table(rows)
    record(rows, args.device, not args.no_record, note=load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
