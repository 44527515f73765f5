"""Sliding windows over a stream of scored frames: ``--window`` / ``--stride`` as frames ("16") or seconds ("2s").

Window k holds the frames from k × stride to k × stride + window (counted in sampled frames, or in seconds of
stream time from the first frame); it is decided as soon as it is complete (its last frame has arrived, or a
frame past its end), and gives, for each key (None: each frame's largest face; k: face track k), the mean of
the head outputs of its frames: the paper's video rule on that window. At the end of a finite source the frames
after the last decided window make one last, shorter window. Only the frames of the windows still open are
kept.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

UNITS = ("frames", "s")


@dataclass(frozen=True)
class Span:
    """A window or stride: ``value`` sampled frames, or seconds of stream time."""

    value: float
    unit: str  # "frames" or "s"

    @classmethod
    def parse(cls, text: str | float, option: str = "--window") -> Span:
        """"16" (frames), "2s" / "2.5s" / "500ms" (time); refused, naming ``option``, when not a positive size."""
        t = str(text).strip().lower()
        m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|ms)?", t)
        if not m:
            raise InputError(f"{option} {text!r}: give a number of frames (16) or of seconds (2s, 500ms)")
        value, unit = float(m.group(1)), m.group(2)
        if unit is None:
            if value != int(value) or value < 1:
                raise InputError(f"{option} {text!r}: a number of frames is a whole number >= 1 (or say 2s)")
            return cls(int(value), "frames")
        value = value / 1000 if unit == "ms" else value
        if not (value > 0 and math.isfinite(value)):
            raise InputError(f"{option} {text!r}: a time must be > 0")
        return cls(value, "s")

    def __str__(self) -> str:
        return f"{int(self.value)}" if self.unit == "frames" else f"{self.value:g}s"

    def describe(self) -> str:
        return f"{int(self.value)} frames" if self.unit == "frames" else f"{self.value:g} s"


def window_spans(window: str | int | Span | None, stride: str | int | Span | None) -> tuple[Span, Span]:
    """The window (default 16 frames) and stride (default half the window, at least one frame), in one unit."""
    w = window if isinstance(window, Span) else Span.parse(16 if window is None else window, "--window")
    if stride is None:
        s = Span(max(1, int(w.value) // 2), "frames") if w.unit == "frames" else Span(w.value / 2, "s")
    else:
        s = stride if isinstance(stride, Span) else Span.parse(stride, "--stride")
    if s.unit != w.unit:
        raise InputError(f"--window {w} and --stride {s} must both be frames or both seconds")
    return w, s


def wall_clock(t: float | None = None) -> str:
    """Local wall-clock time, ISO 8601 with milliseconds and the UTC offset (now, or the epoch time ``t``)."""
    when = _dt.datetime.fromtimestamp(t) if t is not None else _dt.datetime.now()
    return when.astimezone().isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Decided:
    """A complete window: its first and last frames and their times, how many frames it holds, whether a face
    was found in any of them (None: no detection), and per key the (sum, count) of the head outputs."""

    first_index: int
    last_index: int
    start: float | None
    end: float | None
    frames: int
    detected: bool | None
    sums: dict[Any, tuple[Any, int]]


class SlidingWindows:
    """Windows of ``window`` every ``stride`` (:class:`Span` s of one unit) over frames given in order."""

    def __init__(self, window: Span, stride: Span):
        self.window, self.stride = window, stride
        self.frames: deque = deque()  # (seq, index, time, keyed, detected) of the windows still open
        self.k = 0  # the next window to decide
        self.seq = -1
        self.decided_to = -1  # seq of the last frame inside a decided window

    def _pos(self, seq: int, time: float | None) -> float:
        if self.window.unit == "frames":
            return seq
        if time is None:
            raise InputError("a window in seconds needs frame times, which this source does not give: use frames")
        return time

    def _bounds(self, k: int) -> tuple[float, float]:
        start = k * self.stride.value
        return start, start + self.window.value

    def add(self, index: int, time: float | None, keyed: dict, detected: bool | None) -> list[Decided]:
        """Take the next frame (``keyed``: key -> head output); returns the windows it completes."""
        self.seq += 1
        pos = self._pos(self.seq, time)
        out = []
        if self.window.unit == "s":  # a frame at or past a window's end completes it (and it is not part of it)
            while pos >= self._bounds(self.k)[1]:
                out += self._decide()
                if not self.frames:  # a gap in the stream: jump to the first window that can hold this frame
                    self.k = max(self.k, math.floor((pos - self.window.value) / self.stride.value) + 1)
        self.frames.append((self.seq, index, time, keyed, detected, pos))
        if self.window.unit == "frames":
            while pos >= self._bounds(self.k)[1] - 1:
                out += self._decide()
        return out

    def _decide(self) -> list[Decided]:
        start, end = self._bounds(self.k)
        inside = [f for f in self.frames if start <= f[5] < end]
        self.k += 1
        nxt = self._bounds(self.k)[0]
        while self.frames and self.frames[0][5] < nxt:
            self.frames.popleft()
        if not inside:
            return []
        self.decided_to = max(self.decided_to, inside[-1][0])
        sums: dict = {}
        for f in inside:
            for key, e in f[3].items():
                total, n = sums.get(key, (0, 0))
                sums[key] = (total + e, n + 1)
        flags = [f[4] for f in inside]
        detected = None if all(d is None for d in flags) else any(bool(d) for d in flags)
        return [Decided(inside[0][1], inside[-1][1], inside[0][2], inside[-1][2], len(inside), detected, sums)]

    def finish(self) -> list[Decided]:
        """At the end of the source: the window still open (the earliest undecided one, which holds every frame
        not yet in a decided window), when it has such frames. It is shorter than the others."""
        if not self.frames or self.frames[-1][0] <= self.decided_to:
            return []
        return self._decide()
