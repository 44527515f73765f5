"""Predictions on a live source (``expclip predict --stream``): frame rows as frames are scored, a row per face
track (and one over each frame's largest face) per sliding window as soon as the window is complete, written and
flushed as they come. Ctrl-C ends it: every row decided so far is in the file, complete.

What is checked before any model loads: the window and stride (:func:`~.windows.window_spans`), that the source
opens (:func:`expclip.data.sources.open_source`), and for a file that the window is not longer than it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable

from ..data.sources import OpenSource
from ..errors import InputError
from ..prompts import DEFAULT_PROMPTS
from .rowfile import RowWriter
from .run import RunSummary
from .table import result_columns
from .windows import Span

log = logging.getLogger(__name__)


def check_window(source: OpenSource, window: Span, video_fps: float | None = None) -> None:
    """Refuse a window longer than a finite source (a file), naming both; a live source has no length."""
    if source.num_frames is None or source.duration is None:
        return
    frames = source.num_frames if video_fps is None else min(source.num_frames, math.ceil(source.duration * video_fps))
    longer = window.value > (frames if window.unit == "frames" else source.duration)
    if longer:
        sampled = f"{frames} sampled frames" if video_fps else f"{frames} frames"
        raise InputError(f"--window {window} is longer than {source.spec.name} ({sampled}, {source.duration:.2f} s): "
                         "give a shorter --window")


def predict_stream_to_file(model: Any, source: Any, out: str | Path | None = None, labels: Any = None,
                           prompts: Any = DEFAULT_PROMPTS, *, window: Any = None, stride: Any = None,
                           overwrite: bool = False, on_rows: Callable[[list[dict]], None] | None = None,
                           **predict_kwargs: Any) -> RunSummary:
    """Run ``model.predict_stream`` on ``source`` and write its rows to ``out`` (.csv or .jsonl) as they come.

    Args:
        model: an :class:`expclip.ExpCLIP`.
        source: a ``--stream`` argument or an :class:`~expclip.data.sources.OpenSource`.
        window, stride: frames (16) or seconds ("2s"); see :mod:`.windows`.
        on_rows: called with each batch of rows (the CLI prints them).
        predict_kwargs: passed to ``predict_stream`` (faces, margin, video_fps, device, ...).
    """
    lp = model.label_prompts(labels, prompts)
    writer = RowWriter(out, result_columns(lp.labels, stream=True), False, overwrite) if out else None
    summary = RunSummary(inputs=1, out=Path(out) if out else None)
    try:
        for chunk in model.predict_stream(source, lp, window=window, stride=stride, **predict_kwargs):
            if writer:
                writer.write(chunk.rows)
            if on_rows:
                on_rows(chunk.rows)
            summary.count(chunk.rows)
    finally:
        if writer:
            writer.close()
    return summary
