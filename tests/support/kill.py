"""The kill harness: processes killed with SIGKILL at chosen points, and trees compared byte for byte.

- :func:`kill_points` runs a job in forked children, each SIGKILLed at its k-th commit point (every
  ``os.replace``/``os.unlink``/``os.rmdir`` of the job, before and after the call); :func:`run_and_kill` SIGKILLs a
  subprocess when a file appears. Jobs are plain functions of a JSON spec in :data:`JOBS` (extraction, training,
  ``predict --out``, any CLI command); to cover a new writer, add a job here and a test that resumes and compares.
- :func:`patch_cli_for_kill_tests` makes the CLI's stores small-chunked (and its encoder slow) so that a kill lands
  mid-run; :meth:`KillPatch.check` and :func:`check_chunks` assert that it took effect.
- :func:`tree_bytes` reads a directory into {relative path: bytes} (temporary files of dead writers left out).

Run as a script (``python tests/support/kill.py JOB SPEC_JSON``) it is the driver that the tests spawn.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

TESTS = Path(__file__).resolve().parents[1]
TMP_NAME = re.compile(r"^\..+\.tmp(-\d+)?$")


def driver_env() -> dict[str, str]:
    """The driver's environment (also for a test that starts a driver itself): this one, with tests/ importable
    ahead of whatever PYTHONPATH already holds (such as the src/ of a checkout that is not the installed one)."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


# ------------------------------------------------------------------------------------------------ trees
def tree_bytes(root: str | Path, skip_tmp: bool = True) -> dict[str, bytes]:
    """Every file under ``root`` as {relative POSIX path: bytes}; temporary files (``.x.tmp-PID``) left out."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not (skip_tmp and TMP_NAME.match(p.name))}


# ------------------------------------------------------------------------------------------------ kill points
HOOKED = ("replace", "unlink", "rmdir")


def count_events(job: Callable[[dict], object], spec: dict) -> int:
    """How many commit events (hooked calls) ``job(spec)`` makes when nothing goes wrong (run in this process)."""
    calls = {"n": 0}
    saved = {name: getattr(os, name) for name in HOOKED}

    def counting(fn):
        def wrapped(*a, **k):
            calls["n"] += 1
            return fn(*a, **k)
        return wrapped

    for name, fn in saved.items():
        setattr(os, name, counting(fn))
    try:
        job(spec)
    finally:
        for name, fn in saved.items():
            setattr(os, name, fn)
    return calls["n"]


def _install_killer(point: int) -> None:
    """SIGKILL this process at commit point ``point``: 2k = just before the k-th hooked call, 2k+1 = just after."""
    state = {"n": 0}

    def hook(fn):
        def wrapped(*a, **k):
            i = state["n"]
            state["n"] += 1
            if 2 * i == point:
                os.kill(os.getpid(), signal.SIGKILL)
            try:
                return fn(*a, **k)
            finally:  # also after a call that raised (unlink(missing_ok=True) of a file already gone)
                if 2 * i + 1 == point:
                    os.kill(os.getpid(), signal.SIGKILL)
        return wrapped

    for name in HOOKED:
        setattr(os, name, hook(getattr(os, name)))


def kill_points(job: str, specs: list[dict], timeout: float = 300) -> list[int]:
    """Run ``JOBS[job](spec)`` once per spec in a fresh child process killed at ``spec["kill_at"]``.

    One driver process imports everything once and forks a child per spec (the children die by SIGKILL, as a
    crash, an OOM kill or a pulled plug would end them). Returns each child's status: -9 killed, 0 finished,
    1 failed (traceback on the driver's stderr).
    """
    proc = subprocess.run([sys.executable, str(Path(__file__)), job, json.dumps(specs)], capture_output=True,
                          text=True, timeout=timeout, env=driver_env())
    if proc.returncode != 0:
        raise RuntimeError(f"driver failed ({proc.returncode}): {proc.stderr[-3000:]}")
    status = json.loads(proc.stdout.strip().splitlines()[-1])
    if any(s not in (0, -signal.SIGKILL) for s in status):
        raise RuntimeError(f"a job failed instead of finishing or being killed: {status}\n{proc.stderr[-3000:]}")
    return status


def driver_argv(job: str, spec: dict) -> list[str]:
    """The command line that runs ``JOBS[job](spec)`` once in a new process (for :func:`run_and_kill`)."""
    return [sys.executable, str(Path(__file__)), job, json.dumps([spec])]


def run_and_kill(argv: list[str], until: Callable[[], bool], timeout: float = 120) -> None:
    """Start ``argv`` (e.g. :func:`driver_argv`) and SIGKILL it as soon as ``until()`` holds.

    Raises AssertionError if the process ends first (the test then proves nothing), TimeoutError if neither happens.
    """
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=driver_env())
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if until():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return
            time.sleep(0.01)
        if proc.poll() is None:
            raise TimeoutError(f"{argv[:3]} neither ended nor met the condition in {timeout} s")
        out, err = proc.communicate()
        raise AssertionError(f"the process ended before it could be killed (rc {proc.returncode}): {err[-2000:]!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------------------ jobs
TOY_KEY = {"kind": "image", "model": {"id": "toy", "revision": "r1"}, "data": {"name": "toy"}}


def toy_items(n: int) -> list[dict]:
    return [{"path": f"img{i:03d}.png", "label": i % 3} for i in range(n)]


def toy_load(i: int):
    import torch

    if i % 7 == 3:
        raise ValueError(f"img{i:03d}.png: corrupt")
    return torch.full((4,), float(i))


def toy_encode(batch):
    import torch

    return torch.stack([batch[:, 0] * 2, batch.sum(1), torch.sin(batch[:, 0]), torch.ones(len(batch))], dim=1)


def job_extract(spec: dict):
    """A chunked extraction of ``spec["n"]`` toy items into ``spec["dir"]``."""
    from expclip.features.extraction import run_extraction

    return run_extraction(spec["dir"], TOY_KEY, toy_items(spec["n"]), toy_load, toy_encode, (4,), batch_size=4,
                          chunk_size=8, progress=False)


def job_fit(spec: dict):
    """Two seeds of head training from the stores ``spec["image"]``/``spec["teacher"]`` into ``spec["dir"]``."""
    from expclip.features.store import FeatureStore
    from expclip.runs.fit import fit_heads
    from expclip.train import TrainConfig

    return fit_heads(FeatureStore.open(spec["image"]), FeatureStore.open(spec["teacher"]), spec["dir"], [1, 2],
                     TrainConfig(batch_size=8, epochs=2), run_name="toy")


def predict_argv(spec: dict) -> list[str]:
    """``expclip predict INPUTS --out PATH --resume`` (a first run, or the rerun after a crash) with ``spec["head"]``,
    one crop per forward pass so that a resumed run computes exactly what an uninterrupted one does."""
    return ["predict", *spec["inputs"], "--out", spec["path"], "--resume", "--head", spec["head"], "--faces", "none",
            "--frames", "4", "--batch-size", "1", "--num-workers", "0", "--no-progress", "--device", "cpu"]


def job_lines(spec: dict):
    """A streamed output file: ``expclip predict --out`` (:func:`predict_argv`), each forward pass slowed by
    ``spec["sleep"]`` seconds so that a kill lands mid-run."""
    if spec.get("sleep"):
        patch_cli_for_kill_tests(spec["sleep"])
    from expclip.cli import main

    return main(predict_argv(spec))


def job_cli(spec: dict):
    """``expclip`` itself, with smaller store chunks and a slowed CLIP encoder so that a kill lands mid-run."""
    patch_cli_for_kill_tests(spec.get("sleep", 0.0))
    from expclip.cli import main

    return main(spec["argv"])


# The module that calls run_extraction for the CLI (image, teacher, video and prompt stores): the patch swaps the
# name there, where the call looks it up, not on features.extraction where it is defined.
CALLER = "expclip.features.extract"
KILL_CHUNK_SIZE = 16


@dataclass
class KillPatch:
    """What :func:`patch_cli_for_kill_tests` did: ``calls`` counts the extractions that went through the patch."""

    chunk_size: int
    calls: int = 0

    def check(self, store: str | Path) -> None:
        """Assert that the patch took effect: extractions went through it and every store under ``store`` was chunked
        by it."""
        assert self.calls > 0, f"no extraction called the patched {CALLER}.run_extraction: patch the module that calls it"
        check_chunks(store, self.chunk_size)


def check_chunks(store: str | Path, chunk_size: int = KILL_CHUNK_SIZE) -> None:
    """Assert that every store under the folder ``store`` was written in chunks of ``chunk_size`` items (meta.json)."""
    metas = sorted(Path(store).glob("*/meta.json"))
    assert metas, f"no store in {store}"
    sizes = {m.parent.name: json.loads(m.read_text())["chunk_size"] for m in metas}
    assert set(sizes.values()) == {chunk_size}, f"stores not in chunks of {chunk_size} (the kill tests' patch): {sizes}"


def patch_cli_for_kill_tests(sleep: float = 0.0, chunk_size: int = KILL_CHUNK_SIZE,
                             setattr: Callable = setattr) -> KillPatch:
    """Chunks of ``chunk_size`` items (the CLI's default is 2048) and an optional pause per encoded batch.

    ``setattr``: pass pytest's ``monkeypatch.setattr`` to patch for one test only. Returns a :class:`KillPatch` to
    check, after the run, that the patch took effect.
    """
    import importlib

    from expclip.features.extraction import run_extraction
    from expclip.models.backbone import Backbone

    caller = importlib.import_module(CALLER)
    assert getattr(caller, "run_extraction", None) is run_extraction, \
        f"{CALLER} no longer calls run_extraction: point CALLER at the module that does"
    patch = KillPatch(chunk_size)

    def small_chunks(*a, **k):
        patch.calls += 1
        k.setdefault("chunk_size", chunk_size)
        return run_extraction(*a, **k)

    setattr(caller, "run_extraction", small_chunks)
    if sleep:
        encode = Backbone.encode_image

        def slow(self, x):
            time.sleep(sleep)
            return encode(self, x)

        setattr(Backbone, "encode_image", slow)
    return patch


JOBS: dict[str, Callable[[dict], object]] = {"extract": job_extract, "fit": job_fit, "lines": job_lines, "cli": job_cli}


def _driver(job: str, specs: list[dict]) -> None:
    import torch

    import expclip.cli  # noqa: F401  (import everything once, before forking)
    import expclip.predict.run  # noqa: F401
    import expclip.runs.fit  # noqa: F401
    from expclip.files import versions

    # Imports only: torch.optim pulls in its lazy dependencies (sympy, dynamo...) when an optimizer is built. No
    # tensor maths before fork(): a child inheriting torch's started thread pools can deadlock.
    torch.optim.SGD([torch.nn.Parameter(torch.empty(1))], lr=0.1)
    versions()
    if len(specs) == 1 and "kill_at" not in specs[0]:  # one plain run, to be killed from outside
        result = JOBS[job](specs[0])
        sys.exit(result if job in ("cli", "lines") else 0)
    results = []
    for spec in specs:
        pid = os.fork()
        if pid == 0:  # the child: die at the chosen point, or finish (exit 0), or fail (exit 1)
            code = 1
            signal.alarm(120)  # a child that hangs dies (SIGALRM) and is reported, instead of outliving the test
            try:
                _install_killer(int(spec["kill_at"]))
                JOBS[job](spec)
                code = 0
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        results.append(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
    print(json.dumps(results))


if __name__ == "__main__":
    _driver(sys.argv[1], json.loads(sys.argv[2]))
