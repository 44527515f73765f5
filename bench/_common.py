"""Shared helpers of the bench scripts: machine and version description, timing, BENCHMARKS.md rows.

Plain Python (no test runner). Every script prints a table and appends one dated row per figure to
``BENCHMARKS.md`` at the repository root (``--no-record`` to skip), with its command, machine, versions, the
figure and the target it is checked against.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
# EXPCLIP_BENCH_LOG sends the rows elsewhere (the smoke tests use it to leave BENCHMARKS.md alone).
BENCHMARKS = Path(os.environ.get("EXPCLIP_BENCH_LOG") or ROOT / "BENCHMARKS.md")
ROWS_HEADER = "| date | bench | figure | value | target | met | machine | versions | command |"


# ------------------------------------------------------------------------------------------------ machine
def cpu_description() -> str:
    """CPU model and the cores this process may use (e.g. ``AMD EPYC, 2 cores``)."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def machine(device: str = "cpu") -> str:
    """The machine a figure was measured on: the GPU's name for cuda devices, else the CPU."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))} (+ {cpu_description()})"
    return cpu_description()


def versions() -> str:
    import numpy
    import PIL
    import torch
    import transformers

    import expclip

    commit = "?"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return (f"expclip {expclip.__version__}@{commit}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, numpy {numpy.__version__}, pillow {PIL.__version__}, "
            f"python {platform.python_version()}")


def command_line() -> str:
    rel = Path(sys.argv[0]).resolve()
    try:
        rel = rel.relative_to(ROOT)
    except ValueError:
        pass
    return "python " + " ".join(shlex.quote(a) for a in [str(rel), *sys.argv[1:]])


# ------------------------------------------------------------------------------------------------ timing
def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (wall clock; synchronizes CUDA before and after)."""
    _sync()
    t = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - t


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Time every function ``repeats`` times, alternating between them so that machine load hits all alike."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            out[k].append(timed(fn))
    return out


# ------------------------------------------------------------------------------------------------ rows
@dataclass
class Row:
    bench: str
    figure: str
    value: str
    target: str = "-"
    met: str = "-"  # "yes", "no", "-" (informative), or NOT_MEASURED


def print_table(rows: list[Row]) -> None:
    cols = [("figure", 58), ("value", 44), ("target", 16), ("met", 4)]
    print("  ".join(f"{c:<{w}}" for c, w in cols))
    for r in rows:
        print("  ".join(f"{str(getattr(r, c)):<{w}}" for c, w in cols))


def record(rows: list[Row], device: str = "cpu", enabled: bool = True, path: Path = BENCHMARKS,
           note: str | None = None) -> None:
    """Append one dated markdown row per figure to BENCHMARKS.md (created with its header if missing)."""
    if not enabled:
        return
    if not path.is_file():
        path.write_text("# Benchmarks\n\n" + ROWS_HEADER + "\n|" + "---|" * 9 + "\n")
    date = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    mach, vers, cmd = machine(device), versions(), command_line()
    # BENCH_NOTE (environment) labels a run, e.g. a baseline measured with older code on PYTHONPATH.
    for extra in (note, os.environ.get("BENCH_NOTE")):
        if extra:
            mach = f"{mach}; {extra}"
    lines = []
    for r in rows:
        cells = [date, r.bench, r.figure, r.value, r.target, r.met, mach, vers, f"`{cmd}`"]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    text = path.read_text()
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "\n".join(lines) + "\n")
    print(f"appended {len(lines)} row(s) to {path.name}")


def met(ok: bool) -> str:
    return "yes" if ok else "no"


def load_note() -> str:
    """The 1-minute load average at the time of measurement (the bench machine may be shared)."""
    try:
        return f"load avg {os.getloadavg()[0]:.1f}"
    except OSError:
        return ""
