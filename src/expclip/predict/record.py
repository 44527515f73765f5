"""The run record of a results file (``<file>.run.json``): what made its rows — the model (name, backbone id and
revision, the head's weights), preprocessing, labels, prompts, and the options that change rows (faces, margin,
no-face rule, frame sampling) — so that ``--resume`` continues only the run that wrote it.

Options that change only speed (batch size, workers, device) are left out; ``--resume`` may change them.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from ..errors import RowFileError
from ..files import atomic_write_json

RECORD_FORMAT = "expclip-predict-run"
# predict_iter options that do not change what a row says (a probability may differ in its last digits with the
# batch size, as the README says).
SPEED_OPTIONS = frozenset({"batch_size", "num_workers", "device", "strict", "keep_images", "skip", "progress"})


def record_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".run.json")


def _describe(value: Any) -> Any:
    """A JSON value standing for an option: plain values as they are, an object (a detector) by its type."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in value.items()}
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def run_identity(model: Any, label_prompts: Any, options: dict) -> dict:
    """What the rows of a prediction run depend on: ``model.identity()``, the labels and prompts scored, and the
    options of ``model.predict_iter`` (its defaults filled in, speed-only ones left out)."""
    defaults = {}
    try:
        params = inspect.signature(model.predict_iter).parameters.values()
        defaults = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
    except (AttributeError, TypeError, ValueError):
        pass
    chosen = {k: _describe(v) for k, v in sorted({**defaults, **options}.items()) if k not in SPEED_OPTIONS}
    model_id = model.identity() if hasattr(model, "identity") else {"name": getattr(model, "name", None)}
    return json.loads(json.dumps({"model": model_id, "labels": list(label_prompts.labels),
                                  "prompts": [list(p) for p in label_prompts.prompts], "options": chosen}))


def write_record(path: Path, identity: dict) -> None:
    atomic_write_json(record_path(path), {"format": RECORD_FORMAT, "version": 1, **identity})


def _differences(want: Any, have: Any, key: str = "") -> list[str]:
    if isinstance(want, dict) and isinstance(have, dict):
        return [d for k in sorted(set(want) | set(have))
                for d in _differences(want.get(k), have.get(k), f"{key}.{k}" if key else k)]
    if want == have:
        return []
    short = lambda v: (s if len(s := json.dumps(v)) <= 60 else s[:57] + "...")  # noqa: E731
    return [f"{key}: this run {short(want)}, the file's {short(have)}"]


def check_record(path: Path, identity: dict) -> None:
    """Refuse to resume ``path`` unless its run record says the same run (naming what differs)."""
    rec = record_path(path)
    how = "use another --out, or --overwrite to start it again"
    if not rec.is_file():
        raise RowFileError(f"{path} has no run record ({rec.name}; written by an older expclip, or deleted), so "
                           f"--resume cannot tell which model, labels and prompts its rows come from: {how}")
    try:
        have = json.loads(rec.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RowFileError(f"{rec}: unreadable run record ({e}): {how}") from None
    if not isinstance(have, dict) or have.get("format") != RECORD_FORMAT:
        raise RowFileError(f"{rec}: not an expclip run record: {how}")
    have = {k: v for k, v in have.items() if k not in ("format", "version")}
    diffs = _differences(identity, have)
    if diffs:
        raise RowFileError(f"{path} was written by another run ({'; '.join(diffs[:4])}"
                           f"{f'; and {len(diffs) - 4} more' if len(diffs) > 4 else ''}): --resume would mix its rows "
                           f"with this run's; {how}")
