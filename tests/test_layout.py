"""The test tree mirrors the package: one folder per part of src/expclip, helpers shared through tests/support/ only,
no test module importing another, names that pytest's default import mode can tell apart, markers declared."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import expclip

TESTS = Path(__file__).resolve().parent
SUPPORT = TESTS / "support"
TEST_MODULES = sorted(TESTS.rglob("test_*.py"))
NOT_A_PACKAGE_FOLDER = {"faults"}  # fault injection cuts across the stages


def _imported(path: Path) -> list[str]:
    """The modules ``path`` imports anywhere in its code (a relative import as ``.name``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def test_no_test_module_imports_another_test_module():
    """Helpers that tests share live in tests/support/; a test module, conftest.py or a stray helper beside the
    tests is never imported (by a test or by support)."""
    local = {p.stem for p in TESTS.rglob("*.py") if SUPPORT not in p.parents} | {"tests"}
    found = []
    for path in [*TEST_MODULES, *SUPPORT.rglob("*.py")]:
        for name in _imported(path):
            top = name.split(".")[0]
            if top in local or (name.startswith(".") and SUPPORT not in path.parents):
                found.append(f"{path.relative_to(TESTS)} imports {name}")
    assert not found, "import shared helpers from tests/support/ instead:\n" + "\n".join(found)


def test_test_folders_mirror_the_package_and_module_names_are_unique():
    assert len(TEST_MODULES) > 20
    package = Path(expclip.__file__).parent
    folders = {p.parent.relative_to(TESTS).as_posix() for p in TEST_MODULES} - {"."}
    assert folders and all((package / f).is_dir() or f in NOT_A_PACKAGE_FOLDER for f in folders), folders
    # Without __init__.py in the test folders, pytest imports each test module by its basename.
    twice = [name for name, n in Counter(p.name for p in TEST_MODULES).items() if n > 1]
    assert not twice, f"test modules with the same name in two folders: {twice}"
    assert [p.relative_to(TESTS).as_posix() for p in TESTS.rglob("__init__.py")] == ["support/__init__.py"]


def test_the_slow_and_gpu_markers_are_declared(pytestconfig):
    declared = {line.split(":")[0].strip() for line in pytestconfig.getini("markers")}
    assert {"slow", "gpu"} <= declared
    assert "--strict-markers" in pytestconfig.getini("addopts")  # a misspelt marker is an error, not a no-op
