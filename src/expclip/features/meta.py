"""The schemas of a feature store's ``meta.json`` and ``items.json`` (see :mod:`expclip.features.store`): what
readers rely on, typed, so that a damaged or hand-edited file is one line naming the file and the field. Imports
neither numpy nor torch (``expclip list`` reads every store's meta.json)."""

from __future__ import annotations

from pathlib import Path

from ..errors import StoreError
from ..schema import Fields, each, is_int, read_json

MAX_FEATURE_DIM = 1 << 20


def check_meta(meta: object, source: str | Path) -> dict:
    """The schema of a store's ``meta.json``: the fields readers use, typed; StoreError naming the file and field."""
    f = Fields(meta, source, StoreError)
    k = f.obj("key")
    k.str("kind", empty=False)
    m = k.obj("model")
    m.str("id", empty=False)
    m.str("revision", None)
    pre = k.obj("preprocessing", None)
    if pre is not None:
        pre.str("mode", empty=False)
    d = k.obj("data")
    d.str("name")
    d.str("sha256", None)
    k.str("instruction", None)
    f.int("n", lo=0)
    f.list("feature_shape", None, lambda v: is_int(v) and 0 < v <= MAX_FEATURE_DIM,
           f"a list of integers in 1..{MAX_FEATURE_DIM}")
    f.bool("complete", False)
    for fail in f.objects("failures", []):
        fail.int("index", lo=0, hi=f.data["n"] - 1 if f.data["n"] else 0)
        fail.str("path", None)
        fail.str("reason", "")
    f.int("batch_size", None, lo=1)
    f.int("chunk_size", None, lo=1)
    f.number("logit_scale", None, lo=1e-6)
    f.dict("clips", None)
    f.str("items_sha256", None)
    return meta  # type: ignore[return-value]


def read_meta(path: str | Path) -> dict:
    """A store's ``meta.json``, read and checked by :func:`check_meta`."""
    return check_meta(read_json(path, StoreError, "store meta.json"), path)


def check_items(items: object, n: int, source: str | Path) -> list[dict]:
    """The schema of a store's ``items.json``: ``n`` objects with a "path" (string or null) and a "label" (integer
    or null)."""
    rows = list(each(items, source, StoreError, "items.json"))
    if len(rows) != n:
        raise StoreError(f"{source}: holds {len(rows)} items but meta.json says {n}")
    for r in rows:
        r.str("path", None)
        r.int("label", None, lo=-1)
    return items  # type: ignore[return-value]
