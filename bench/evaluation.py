"""Evaluation from the store: scoring the whole paper suite vs the time to extract its features.

The suite: 3 backbones (B/32, B/16: 512-d; L/14: 768-d) × (CLIP + 3 seeds of Exp-CLIP heads) × the paper's 5 prompt
sets × the 8 test sets at the paper's sizes — RAF-DB 3,068; AffectNet-7 3,500; AffectNet-8 4,000; FERPlus 3,150;
DFEW 5 folds (2,341/2,341/2,340/2,339/2,336 clips); FERV39k 7,847; MAFW 5 folds (1,839/1,837/1,833/1,832/1,831);
AFEW 381 (video sizes: the line counts of the shipped test lists) — video clips × 16 frames. The stores hold random
features of those shapes (scoring cost does not depend on the values). Scoring = open each store (memory-mapped),
load it, and run ``evaluate.score_cells`` for every model: what ``expclip eval`` does once features are there.
Extraction time is EXTRAPOLATED: the suite's image/frame count ÷ each backbone's model-only images/s measured
here in the same run (model-only is faster than real extraction, so the ratio is an upper bound).
Target: scoring < 5% of extraction.

    python bench/evaluation.py
    python bench/evaluation.py --device cuda
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import Row, load_note, met, print_table, record, timed  # noqa: E402
from _models import CLIP_PROJECTION, random_backbone, write_store  # noqa: E402

TARGET = 0.05
FRAMES = 16
# (name, classes, clips or images per fold, video)
SUITE = [
    ("RAF-DB", 7, [3068], False), ("AffectNet-7", 7, [3500], False), ("AffectNet-8", 8, [4000], False),
    ("FERPlus", 8, [3150], False), ("DFEW", 7, [2341, 2341, 2340, 2339, 2336], True),
    ("FERV39k", 7, [7847], True), ("MAFW", 11, [1839, 1837, 1833, 1832, 1831], True), ("AFEW", 7, [381], True),
]
BACKBONES = ["B32", "B16", "L14"]
PROMPTS_PER_CLASS = {"class name": 1, "an expression of": 1, "a photo of a face": 1, "ensemble-5": 5,
                     "ensemble-10": 10}


def suite_images() -> int:
    return sum(sum(folds) * (FRAMES if video else 1) for _, _, folds, video in SUITE)


def make_stores(root: Path, dim: int, seed: int = 0) -> list[tuple[str, int, object]]:
    """One store per (dataset, fold) with random (N,D) or (N,16,D) features; returns (name, classes, store)."""
    rng = np.random.default_rng(seed)
    block = rng.standard_normal((4096, dim), dtype=np.float32)
    out = []
    for name, classes, folds, video in SUITE:
        for k, n in enumerate(folds):
            shape = (n, FRAMES, dim) if video else (n, dim)
            rows = int(np.prod(shape[:-1]))

            def fill(arr: np.ndarray, rows: int = rows) -> None:
                flat = arr.reshape(rows, dim)
                for i in range(0, rows, len(block)):
                    flat[i : i + len(block)] = block[: rows - i]

            tag = f"{name}-fold{k + 1}-d{dim}"
            labels = rng.integers(0, classes, n)
            store = write_store(root, "video" if video else "image", tag, (shape, fill), labels=labels)
            out.append((tag, classes, store))
    return out


def model_rate(arch: str, device: str, n: int) -> float:
    """Model-only images/s of a random ``arch`` CLIP on preprocessed tensors in memory."""
    bb = random_backbone(arch, device)
    x = torch.rand(n, 3, 224, 224)
    bb.encode_image(x)  # warm-up at the same batch size
    return n / timed(lambda: bb.encode_image(x))


def score_suite(stores, models, prompt_feats, device: str) -> int:
    """Score every model with every prompt set on every store; returns the number of result cells."""
    from expclip.features.store import FeatureStore
    from expclip.runs.evaluate import score_cells

    cells = 0
    for tag, classes, store in stores:
        feats, labels, _ = FeatureStore.open(store.path, store.key).tensors()
        names = [f"c{i}" for i in range(classes)]
        pf = {k: v[:classes] for k, v in prompt_feats.items()}
        for m in models:
            cells += len(score_cells(feats, labels, m, pf, names, 100.0, device))
    return cells


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rate-images", type=int, nargs=3, default=[32, 16, 4],
                    help="images timed for the model-only rate of B32, B16, L14 (default 32 16 4 on CPU)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    from expclip.models.heads import build_head
    from expclip.runs.evaluate import Model

    dev = torch.device(args.device)
    rates = {a: model_rate(a, args.device, n) for a, n in zip(BACKBONES, args.rate_images)}
    tmp = tempfile.TemporaryDirectory(prefix="expclip-bench-") if args.workdir is None else None
    work = Path(args.workdir or tmp.name)
    try:
        t0 = time.perf_counter()
        stores = {d: make_stores(work / f"d{d}", d) for d in sorted({CLIP_PROJECTION[a] for a in BACKBONES})}
        print(f"wrote synthetic stores in {time.perf_counter() - t0:.0f} s")
        scoring, cells = {}, 0
        for arch in BACKBONES:
            d = CLIP_PROJECTION[arch]
            torch.manual_seed(0)
            models = [Model("CLIP", "CLIP", arch, "reference")] + [
                Model("Exp-CLIP", "Exp-CLIP", arch, "reference", build_head("linear", d, 4096).to(dev), seed=s)
                for s in range(1, args.seeds + 1)]
            pf = {k: torch.randn(11, p, d) for k, p in PROMPTS_PER_CLASS.items()}
            counted = []
            scoring[arch] = timed(lambda: counted.append(score_suite(stores[d], models, pf, args.device)))
            print(f"{arch}: scored {counted[0]} cells in {scoring[arch]:.1f} s")
            cells += counted[0]
    finally:
        if tmp is not None:
            tmp.cleanup()
    n_img = suite_images()
    extract = {a: n_img / rates[a] for a in BACKBONES}
    t_score, t_extract = sum(scoring.values()), sum(extract.values())
    r = t_score / t_extract
    rows = [Row("evaluation", f"model-only rate {a} (random weights, {args.device})", f"{rates[a]:.1f} img/s")
            for a in BACKBONES]
    rows += [
        Row("evaluation", f"suite: {n_img:,} images+frames per backbone, {cells} result cells "
            f"(3 backbones × (CLIP + {args.seeds} heads) × 5 prompt sets × 14 test sets)",
            "scoring " + ", ".join(f"{a} {scoring[a]:.1f} s" for a in BACKBONES)),
        Row("evaluation", "extraction of the suite's features, EXTRAPOLATED from the model-only rates",
            f"{t_extract:,.0f} s (" + ", ".join(f"{a} {extract[a]:,.0f} s" for a in BACKBONES) + ")"),
        Row("evaluation", "scoring from the store / extraction, whole suite",
            f"{t_score:.1f} s / {t_extract:,.0f} s = {100 * r:.3g}%", "< 5%", met(r < TARGET)),
        Row("evaluation", "scoring / extraction, per backbone",
            ", ".join(f"{a} {100 * scoring[a] / extract[a]:.3g}%" for a in BACKBONES), "< 5%",
            met(max(scoring[a] / extract[a] for a in BACKBONES) < TARGET)),
    ]
    print_table(rows)
    record(rows, args.device, not args.no_record, note=load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
