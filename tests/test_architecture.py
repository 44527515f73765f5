"""The package's layering (docs/architecture.md): imports run one way, from the CLI down to the leaf modules.

Each top-level module or folder of ``src/expclip`` has a layer; a module may import only from lower layers (or from
its own folder). Lazy imports inside functions count too: they hide cycles, they don't remove them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "expclip"

# Lowest first. Units of one layer may not import each other (runs and predict are peers).
LAYERS: list[set[str]] = [
    {"errors"},
    {"files", "devices", "hashes", "schema"},
    {"labels", "metrics"},
    {"data"},
    {"models"},
    {"prompts", "train", "zeroshot"},
    {"checkpoint"},
    {"official", "features"},
    {"report"},
    {"runs", "predict"},
    {"api"},
    {"cli", ""},  # "" is the package itself (expclip/__init__.py imports api lazily)
    {"__main__"},
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Every expclip module ``module`` imports, at the top or inside functions."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found |= {t for t in [target] + [f"{target}.{a.name}" for a in node.names] if t in known}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
    return found - {module}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def test_every_unit_has_a_layer(graph):
    assert {_unit(m) for m in graph} <= set(RANK), "a new top-level module or folder needs a layer here"


def test_imports_only_go_down(graph):
    upward = sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts
                    if _unit(m) != _unit(t) and RANK[_unit(t)] >= RANK[_unit(m)])
    assert upward == []


def test_no_import_cycles(graph):
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_every_folder_says_what_it_holds_and_may_import():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(PACKAGE)} has no docstring"
        if init.parent.parent == PACKAGE and init.parent.name not in ("cli",):
            assert "import" in doc.lower(), f"{init.relative_to(PACKAGE)} does not say what it may import"
