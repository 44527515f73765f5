"""Reading the JSON files of strangers: one reader that names the file, and typed field checks that name the field
and what was expected.

Every JSON file expclip reads (a head's ``config.json``, a model's ``config.json`` and ``preprocessor_config.json``,
a store's ``meta.json`` and ``items.json``, result cells, ablations, training histories, suite presets, device
maps) goes through :func:`read_json` and then through its format's one schema, written with :class:`Fields`, so that
a list where an object belongs, a string where a number belongs or a value out of range is one line such as
``runs/x/seed1/config.json: head.in_dim must be an integer in 1..1048576, got -1`` instead of a traceback from
deep inside.

A leaf module: it imports nothing of expclip but :mod:`expclip.errors`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import InputError

MISSING: Any = object()  # the default of a required field


def read_json(path: str | Path, error: type[Exception] = InputError, what: str = "JSON file") -> Any:
    """The parsed content of ``path``; an unreadable, non-UTF-8, malformed or absurdly nested file raises ``error``
    naming the file (``what`` says what it should be)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise error(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{path}: the {what} is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{path}: the {what} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise error(f"{path}: the {what} is nested too deeply to be one") from None


def show(value: Any, n: int = 60) -> str:
    """A short description of a JSON value for messages: ``a list``, ``'abc'``, ``-1``..."""
    if isinstance(value, (dict, list)):
        return f"{'an object' if isinstance(value, dict) else 'a list'} ({len(value)} entries)"
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def is_int(value: Any) -> bool:
    """A JSON integer (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite JSON number (a bool is not one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Fields:
    """A JSON object read field by field: each getter checks one field and names the file, the field's dotted path
    and what was expected in the error it raises (``error``, an :class:`~expclip.errors.ExpclipError` family).

    >>> f = Fields({"head": {"in_dim": 512}}, "config.json")
    >>> f.obj("head").int("in_dim", lo=1)
    512
    """

    def __init__(self, obj: Any, source: str | Path, error: type[Exception] = InputError, path: str = ""):
        self.source, self.error, self.path = str(source), error, path
        if not isinstance(obj, dict):
            raise self.fail(path or "the file", "a JSON object", obj)
        self.data: dict = obj

    def fail(self, field: str, want: str, got: Any) -> Exception:
        return self.error(f"{self.source}: {field} must be {want}, got {show(got)}")

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str, default: Any = MISSING) -> Any:
        """The raw value; a required field (no ``default``) that is missing or null is an error."""
        value = self.data.get(key)
        if value is None:
            if default is MISSING:
                raise self.error(f"{self.source}: the field {self.name(key)!r} is missing")
            return default
        return value

    def check(self, key: str, ok: Callable[[Any], bool], want: str, default: Any = MISSING) -> Any:
        value = self.get(key, default)
        if value is not default and not ok(value):
            raise self.fail(self.name(key), want, value)
        return value

    def str(self, key: str, default: Any = MISSING, choices: tuple | list | None = None, empty: bool = True) -> Any:
        want = f"one of {list(choices)}" if choices else "a string" if empty else "a non-empty string"
        return self.check(key, lambda v: isinstance(v, str) and (choices is None or v in choices)
                          and (empty or bool(v.strip())), want, default)

    def int(self, key: str, default: Any = MISSING, lo: int | None = None, hi: int | None = None) -> Any:
        return self.check(key, lambda v: is_int(v) and in_range(v, lo, hi), "an integer" + range_text(lo, hi),
                          default)

    def number(self, key: str, default: Any = MISSING, lo: float | None = None, hi: float | None = None) -> Any:
        return self.check(key, lambda v: is_number(v) and in_range(v, lo, hi), "a finite number" + range_text(lo, hi),
                          default)

    def bool(self, key: str, default: Any = MISSING) -> Any:
        return self.check(key, lambda v: isinstance(v, bool), "true or false", default)

    def dict(self, key: str, default: Any = MISSING) -> Any:
        """A nested object as a plain dict (its content unchecked)."""
        return self.check(key, lambda v: isinstance(v, dict), "an object", default)

    def obj(self, key: str, default: Any = MISSING) -> "Fields | None":
        """A nested object read field by field; None for a missing optional one (``default`` None)."""
        value = self.dict(key, default)
        return None if value is None else Fields(value, self.source, self.error, self.name(key))

    def list(self, key: str, default: Any = MISSING, item: Callable[[Any], bool] | None = None,
             want: str = "a list", min_len: int = 0) -> Any:
        return self.check(key, lambda v: isinstance(v, list) and len(v) >= min_len
                          and (item is None or all(item(x) for x in v)), want, default)

    def objects(self, key: str, default: Any = MISSING) -> Iterator["Fields"]:
        """The entries of a list of objects, each read field by field (``key[3].path`` in errors)."""
        for i, value in enumerate(self.list(key, default, want="a list of objects") or []):
            yield Fields(value, self.source, self.error, f"{self.name(key)}[{i}]")


def in_range(value: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def range_text(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" >= {lo}"
    if lo is None:
        return f" <= {hi}"
    return f" in {lo}..{hi}"


def each(items: Any, source: str | Path, error: type[Exception] = InputError,
         what: str = "the file") -> Iterator[Fields]:
    """The entries of a JSON list of objects (a file such as ``items.json``), each read field by field."""
    if not isinstance(items, list):
        raise error(f"{source}: {what} must be a JSON list, got {show(items)}")
    for i, value in enumerate(items):
        yield Fields(value, source, error, f"entry {i}")
