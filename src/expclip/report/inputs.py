"""The schemas of what the tables and the report read from disk: result cells (``cells/*.json`` of
``expclip eval``), ablations (``ablation.json`` of ``expclip ablate``) and training histories (``history.json``).
A damaged or hand-edited file is one line naming the file, the field and what was expected, never a KeyError
from inside a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import Fields, each, is_int, is_number, read_json


def check_cell(cell: Any, source: str | Path, path: str = "") -> dict:
    """One result cell: what aggregation, tables and figures use, typed (the rest is kept as written)."""
    f = Fields(cell, source, InputError, path)
    for k in ("group", "dataset", "prompt_set"):
        f.str(k, empty=False)
    f.str("model", None)
    f.str("kind", None, choices=("image", "video"))
    for k in ("uar", "war"):
        f.number(k, lo=0.0, hi=1.0)
    f.int("seed", None)
    f.int("fold", None)
    classes = f.list("classes", item=lambda c: isinstance(c, str), want="a list of class names", min_len=1)
    n = len(classes)
    f.list("confusion_matrix", item=lambda row: isinstance(row, list) and len(row) == n
           and all(is_number(v) and v >= 0 for v in row), want=f"a {n}x{n} list of counts (one row per class)")
    if len(f.data["confusion_matrix"]) != n:
        raise f.fail(f.name("confusion_matrix"), f"a {n}x{n} list of counts", f.data["confusion_matrix"])
    for k in ("num_samples", "num_failed", "num_items"):
        f.int(k, None, lo=0)
    f.check("backbone", lambda v: isinstance(v, (dict, str)), "an object {id, revision} or a model id", None)
    f.str("head_dir", None)
    f.bool("random_weights", None)
    f.dict("versions", None)
    return cell


def read_cell(path: str | Path) -> dict:
    return check_cell(read_json(path, InputError, "result cell"), path)


def _check_table(t: Fields) -> None:
    t.str("title")
    t.list("metrics", item=lambda m: isinstance(m, str), want="a list of metric names", min_len=1)
    t.list("columns", item=lambda c: isinstance(c, str), want="a list of column names")
    t.dict("column_titles", {})
    for r in t.objects("rows"):
        r.str("label")
        r.str("section", None)
        r.str("kind")
        for col, v in r.dict("values").items():
            if not isinstance(v, dict):
                raise r.fail(r.name(f"values.{col}"), "an object of metric values", v)


def check_ablation(obj: Any, source: str | Path) -> dict:
    """An ``ablation.json``: its preset, summary, table, cells, configuration and extras."""
    f = Fields(obj, source, InputError)
    f.str("preset", empty=False)
    f.str("summary", "")
    _check_table(f.obj("table"))
    for i, c in enumerate(f.list("cells", [], want="a list of result cells")):
        check_cell(c, source, f"cells[{i}]")
    f.dict("config", {})
    f.bool("random_weights", False)
    extra = f.obj("extra", None)
    if extra is not None:
        for p in extra.objects("tsne", []):
            p.str("dataset")
            p.list("classes", item=lambda c: isinstance(c, str), want="a list of class names")
            p.list("labels", item=is_int, want="a list of class indices")
            p.int("n", lo=0)
            p.int("n_total", lo=0)
            p.list("panels", item=lambda x: isinstance(x, list) and len(x) == 2 and isinstance(x[0], str)
                   and isinstance(x[1], list), want="a list of [name, coordinates] pairs")
    return obj


def check_history(obj: Any, source: str | Path) -> list[dict]:
    """A ``history.json``: one {epoch, step, loss, acc, lr} per training step."""
    for r in each(obj, source, InputError, "a training history"):
        r.int("epoch", lo=0)
        r.int("step", lo=0)
        r.number("loss")
        r.number("acc", lo=0.0, hi=1.0)
        r.number("lr", None)
    return obj


def read_checked(path: str | Path, check: Any, what: str) -> Any:
    """``check(read_json(path), path)``."""
    return check(read_json(path, InputError, what), path)
