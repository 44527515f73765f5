"""Extraction efficiency: end-to-end ``extract`` images/s vs the model-only rate of the same model.

Model-only: ``Backbone.encode_image`` on preprocessed tensors already in memory (same batches).
End to end: what ``expclip extract`` does once the model is loaded — list the folder, fingerprint it, decode and
resize JPEGs in DataLoader workers, encode, write the chunked store, finalize it. Both are timed alternately in one
run on the same model; medians of ``--repeats``. Target (CPU, ViT-B/32-sized random CLIP): end to end >= 85% of
model-only. Also prints the per-image cost of each data-path stage (decode, resize, to tensor) in one process.

    python bench/extraction.py                       # CPU, B/32-sized vision tower
    python bench/extraction.py --device cuda --arch L14 --images 4096 --batch-size 256   # GPU: CLIP L/14 images/s
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _common import Row, interleaved, load_note, median, met, print_table, record, timed  # noqa: E402
from _models import build_random_clip, write_jpeg_folder  # noqa: E402

TARGET = 0.85


def stage_costs(paths: list[Path], pre, n: int = 64) -> dict[str, float]:
    """Milliseconds per image of each data-path stage, in this process (median over ``n`` images)."""
    from expclip.data.images import load_image, pil_to_tensor01

    dec, rs, tt = [], [], []
    for p in paths[:n]:
        t0 = time.perf_counter()
        img = load_image(p)
        t1 = time.perf_counter()
        img = img.resize((pre.image_size, pre.image_size), pre.resample)
        t2 = time.perf_counter()
        pil_to_tensor01(img)
        t3 = time.perf_counter()
        dec.append(t1 - t0), rs.append(t2 - t1), tt.append(t3 - t2)
    return {"decode": 1e3 * median(dec), "resize": 1e3 * median(rs), "to tensor": 1e3 * median(tt)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="B32", choices=["B32", "B16", "L14"], help="vision tower size (default B32)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--image-px", type=int, default=256, help="side of the synthetic JPEGs (default 256)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="*", default=None,
                    help="DataLoader worker counts to compare (default: the CLI's default only)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", default=None, help="keep models/images here (default: a temporary directory)")
    ap.add_argument("--no-record", action="store_true", help="do not append rows to BENCHMARKS.md")
    args = ap.parse_args(argv)

    from expclip.data.datasets import unlabelled_images
    from expclip.data.images import load_image
    from expclip.devices import default_num_workers
    from expclip.features.extract import extract_images
    from expclip.models.backbone import Backbone

    default_workers = default_num_workers()
    workers = args.workers if args.workers else [default_workers]
    tmp = tempfile.TemporaryDirectory(prefix="expclip-bench-") if args.workdir is None else None
    work = Path(args.workdir or tmp.name)
    try:
        model_dir = work / f"clip-{args.arch}"
        if not (model_dir / "config.json").is_file():
            build_random_clip(model_dir, args.arch)
        folder = work / f"jpeg-{args.images}-{args.image_px}"
        if not folder.is_dir():
            write_jpeg_folder(folder, args.images, args.image_px)
        bb = Backbone.from_pretrained(model_dir, device=args.device)
        pre = bb.preprocess("reference")
        paths = sorted(folder.glob("*.jpg"))
        tensors = torch.stack([pre(load_image(p)) for p in paths])
        batches = [b.to(bb.device) for b in tensors.split(args.batch_size)]  # model-only: inputs already there
        costs = stage_costs(paths, pre)

        def model_only() -> None:
            for b in batches:
                bb.encode_image(b).cpu().numpy()

        def end_to_end(w: int):
            def run() -> None:
                store = work / "store"
                shutil.rmtree(store, ignore_errors=True)
                data = unlabelled_images(folder)
                extract_images(bb, data, store, batch_size=args.batch_size, num_workers=w, progress=False)
            return run

        timed(lambda: bb.encode_image(batches[0]))  # warm-up (kernel selection, allocator)
        fns = {"model": model_only, **{f"e2e-w{w}": end_to_end(w) for w in workers}}
        times = interleaved(fns, args.repeats)
    finally:
        if tmp is not None:
            tmp.cleanup()

    n = args.images
    rate = {k: n / median(v) for k, v in times.items()}
    desc = (f"{args.arch}-sized random CLIP, {n} JPEGs {args.image_px}px, batch {args.batch_size}, "
            f"torch threads {torch.get_num_threads()}, median of {args.repeats}")
    rows = [Row("extraction", f"model-only images/s ({desc})", f"{rate['model']:.1f} img/s")]
    for w in workers:
        r = rate[f"e2e-w{w}"] / rate["model"]
        head = w == default_workers
        rows.append(Row("extraction", f"end-to-end extract images/s, {w} workers{' (CLI default)' if head else ''}",
                        f"{rate[f'e2e-w{w}']:.1f} img/s = {100 * r:.1f}% of model-only",
                        "≥ 85% of model-only" if head else "-", met(r >= TARGET) if head else "-"))
    rows.append(Row("extraction", "data path per image in one process (decode / resize / to tensor)",
                    " / ".join(f"{v:.2f} ms" for v in costs.values())))
    print_table(rows)
    print("raw seconds:", {k: [round(x, 2) for x in v] for k, v in times.items()})
    record(rows, args.device, not args.no_record, note=load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
