"""Head training from the store vs the machine's floor for the same work.

Ours: ``fit_heads`` for one seed — read a 45K × 768 image store and a 45K × 4096 teacher store (memory-mapped),
train the paper's head (linear 768 → 4096, SGD, batch 512, drop_last, 5 epochs, per-step history), save it.
Floor: the same number of steps of bare matrix products only — forward x·Wᵀ and logits v·eᵀ, backward
g·e and gᵀ·x — on preallocated tensors. Both timed alternately in one run; target: ours ≤ 1.5 × floor.

    python bench/training.py
    python bench/training.py --device cuda
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import Row, interleaved, load_note, median, met, print_table, record, timed  # noqa: E402
from _models import write_store  # noqa: E402

TARGET = 1.5


def make_stores(root: Path, n: int, d: int, e: int, seed: int = 0):
    """A random (n,d) image store and an (n,e) L2-normalized teacher store of the same items."""
    rng = np.random.default_rng(seed)

    def fill(dim: int, normalize: bool):
        def run(out: np.ndarray) -> None:
            for i in range(0, n, 8192):
                block = rng.standard_normal((min(n, i + 8192) - i, dim), dtype=np.float32)
                if normalize:
                    block /= np.linalg.norm(block, axis=1, keepdims=True)
                out[i : i + len(block)] = block
        return run

    img = write_store(root, "image", "bench-train", ((n, d), fill(d, False)))
    tgt = write_store(root, "teacher", "bench-train", ((n, e), fill(e, True)), extra_key={"instruction": "bench"})
    return img, tgt


def floor_fn(steps: int, b: int, d: int, e: int, device: torch.device):
    """``steps`` × the four matrix products of one training step, on preallocated tensors."""
    x, w, t = torch.randn(b, d, device=device), torch.randn(e, d, device=device), torch.randn(b, e, device=device)
    z, s, gz, gw = (torch.empty(b, e, device=device), torch.empty(b, b, device=device),
                    torch.empty(b, e, device=device), torch.empty(e, d, device=device))

    def run() -> None:
        for _ in range(steps):
            torch.mm(x, w.t(), out=z)  # forward: projected features
            torch.mm(z, t.t(), out=s)  # forward: logits
            torch.mm(s, t, out=gz)  # backward: d loss / d projected features
            torch.mm(gz.t(), x, out=gw)  # backward: d loss / d W
        float(gw[0, 0])  # wait for the device
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=45_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--out-dim", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    from expclip.runs.fit import fit_heads
    from expclip.train import TrainConfig

    dev = torch.device(args.device)
    tmp = tempfile.TemporaryDirectory(prefix="expclip-bench-") if args.workdir is None else None
    work = Path(args.workdir or tmp.name)
    try:
        img, tgt = make_stores(work / "store", args.n, args.dim, args.out_dim)
        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size)
        steps = (args.n // args.batch_size) * args.epochs
        runs = iter(range(10_000))

        def ours() -> None:
            fit_heads(img, tgt, work / f"run{next(runs)}", [1], cfg, device=dev)

        floor = floor_fn(steps, args.batch_size, args.dim, args.out_dim, dev)
        timed(floor_fn(3, args.batch_size, args.dim, args.out_dim, dev))  # warm-up
        times = interleaved({"floor": floor, "ours": ours}, args.repeats)
    finally:
        if tmp is not None:
            tmp.cleanup()
    t_ours, t_floor = median(times["ours"]), median(times["floor"])
    flops = steps * 2 * args.batch_size * (2 * args.dim * args.out_dim + 2 * args.batch_size * args.out_dim)
    r = t_ours / t_floor
    what = f"{args.n:,} × {args.dim} → {args.out_dim}, {args.epochs} epochs, batch {args.batch_size} = {steps} steps"
    rows = [
        Row("training", f"fit_heads 1 seed from the store ({what})", f"{t_ours:.1f} s"),
        Row("training", f"bare matmul floor, same {steps} steps ({flops / 1e12:.2f} TFLOP)",
            f"{t_floor:.1f} s ({flops / t_floor / 1e9:.0f} GFLOP/s)"),
        Row("training", "head training / floor", f"{r:.2f}×", "≤ 1.5×", met(r <= TARGET)),
    ]
    print_table(rows)
    print("raw seconds:", {k: [round(x, 2) for x in v] for k, v in times.items()}, f"(median of {args.repeats})")
    record(rows, args.device, not args.no_record, note=load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
