"""The first seconds: ``expclip --help``, ``expclip <command> --help`` and ``expclip list`` import no deep-learning
library (torch, transformers, numpy, PIL), so they answer at once; only the commands that run models import them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "numpy", "PIL", "safetensors", "av")
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _imported_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_cli_imports_no_heavy_library():
    assert _imported_after("import expclip.cli") == []
    assert _imported_after("import expclip.cli; expclip.cli.build_parser()") == []


def _help(argv: list[str]) -> str:
    return ("from expclip.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n" % argv)


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["extract", "--help"], ["train", "--help"],
                                  ["eval", "--help"], ["predict", "--help"], ["ablate", "--help"],
                                  ["report", "--help"], ["score", "--help"], ["import-official", "--help"]])
def test_help_imports_no_heavy_library(argv):
    assert _imported_after(_help(argv)) == []


def test_list_imports_no_heavy_library(tmp_path):
    assert _imported_after(_help(["list", "--store", str(tmp_path)])) == []

