"""Teacher memory: the teacher as expclip loads it vs the full BLIP-2 model, on a mid-size config.

A random mid-size BLIP-2 + T5 (~490M parameters, the xxl model's proportions; see ``_models.BLIP2_MID``) is saved
with ``save_pretrained``. Each loader then runs in a fresh process, after its imports: ``Teacher.from_pretrained``
(vision + Q-Former + projector + T5 encoder, no decoder) and transformers' ``Blip2ForConditionalGeneration
.from_pretrained``, both float32 on CPU. Measured: peak resident memory during loading (VmHWM, reset after the
imports) from loading until every weight has been read once (weights may be lazily memory-mapped), and resident
memory after that, minus the process's RSS after the imports. Also counted exactly:
parameters and bytes of both, for the mid config and for the full-size blip2-flan-t5-xxl (on the meta device).
Target: teacher ≤ 55% of the full model.

    python bench/teacher_memory.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Row, load_note, met, print_table, record  # noqa: E402
from _models import blip2_config, random_teacher  # noqa: E402

TARGET = 0.55

CHILD = r"""
import gc, json, sys
def kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
import torch, transformers
from transformers import Blip2ForConditionalGeneration
from expclip.models.teacher import Teacher
path, which = sys.argv[1], sys.argv[2]
gc.collect()
base = kb("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
if which == "teacher":
    m = Teacher.from_pretrained(path, device="cpu", dtype="float32")
else:
    m = Blip2ForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
# Weights may still be lazily mapped from the file: read each once so that all of them count as resident.
with torch.no_grad():
    touched = float(sum(p.float().sum() for p in m.parameters()))
gc.collect()
print(json.dumps({"base": base, "peak": kb("VmHWM"), "after": kb("VmRSS"),
                  "params": sum(p.numel() for p in m.parameters())}))
"""


def measure(path: Path, which: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), which], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def build_mid(path: Path) -> None:
    import torch
    from transformers import Blip2ForConditionalGeneration

    from expclip.models.hub import mark_random_weights
    from expclip.models.tiny import tiny_t5_tokenizer

    torch.manual_seed(0)
    Blip2ForConditionalGeneration(blip2_config("mid")).save_pretrained(path)
    tiny_t5_tokenizer().save_pretrained(path)
    mark_random_weights(path)


def counted(size: str) -> tuple[int, int]:
    """(teacher, full) parameter counts of a config, built on the meta device (no memory)."""
    import torch
    from transformers import Blip2ForConditionalGeneration

    with torch.device("meta"):
        full = Blip2ForConditionalGeneration(blip2_config(size))
    return random_teacher(size, meta_only=True).num_parameters(), sum(p.numel() for p in full.parameters())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="expclip-bench-") if args.workdir is None else None
    work = Path(args.workdir or tmp.name)
    try:
        path = work / "blip2-mid"
        if not (path / "config.json").is_file():
            build_mid(path)
        runs = {w: [measure(path, w) for _ in range(args.repeats)] for w in ("teacher", "full")}
    finally:
        if tmp is not None:
            tmp.cleanup()
    mb = lambda r, k: (min(x[k] for x in r) - min(x["base"] for x in r)) / 1024  # noqa: E731
    peak = {w: mb(r, "peak") for w, r in runs.items()}
    held = {w: mb(r, "after") for w, r in runs.items()}
    params = {w: r[0]["params"] for w, r in runs.items()}
    xxl_t, xxl_f = counted("xxl")
    rp, rh = peak["teacher"] / peak["full"], held["teacher"] / held["full"]
    rows = [
        Row("teacher memory", "parameters, mid config (~490M), counted",
            f"teacher {params['teacher'] / 1e6:.0f}M vs full {params['full'] / 1e6:.0f}M = "
            f"{100 * params['teacher'] / params['full']:.1f}%"),
        Row("teacher memory", "parameters, blip2-flan-t5-xxl, counted on the meta device",
            f"teacher {xxl_t / 1e9:.2f}B vs full {xxl_f / 1e9:.2f}B = {100 * xxl_t / xxl_f:.1f}% "
            f"(bf16: {2 * xxl_t / 1e9:.1f} GB vs {2 * xxl_f / 1e9:.1f} GB)", "≤ 55%", met(xxl_t / xxl_f <= TARGET)),
        Row("teacher memory", "peak RSS, load + read every weight once, mid config, float32 CPU",
            f"teacher {peak['teacher']:.0f} MB vs full {peak['full']:.0f} MB = {100 * rp:.1f}%", "≤ 55%",
            met(rp <= TARGET)),
        Row("teacher memory", "RSS once loaded, mid config",
            f"teacher {held['teacher']:.0f} MB vs full {held['full']:.0f} MB = {100 * rh:.1f}%", "≤ 55%",
            met(rh <= TARGET)),
    ]
    print_table(rows)
    record(rows, "cpu", not args.no_record, note=load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
