"""Video frames with their presentation times (PyAV), read forward in bounded memory.

A frame's time is its presentation timestamp as the container gives it, in seconds from the first frame shown:
right for variable frame rates (every frame keeps its own time; never ``index / fps``) and after edit lists
(FFmpeg's demuxers flag the packets an edit list cuts as discarded: they are neither counted nor shown). AVI
stores decode times only, so its frames are timed by those (their "pts" are reordering artefacts there).

A frame's index is its position among the frames shown. :func:`scan_video` counts them by a pass over the
packets (no decoding; header counts are often off and include the frames an edit list cuts);
:func:`frames_at` decodes the frames at given indices, seeking between far-apart ones by the presentation time
the packets give each index; :func:`frames_every` decodes forward and keeps the frame shown at every 1/fps
seconds. Neither keeps more than a few frames: memory does not grow with a video's length. Only the frames
kept are converted to images.
"""

from __future__ import annotations

import heapq
import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Iterator

from PIL import Image

from .images import ImageDecodeError
from .video import VideoDecodeError, _open, _rate, _upright

log = logging.getLogger(__name__)

EPS = 1e-6  # seconds: times computed from different time bases agree to this
REORDER_DEPTH = 64  # packets in decode order are at most this far from presentation order (B-frame pyramids: 16)


@dataclass(frozen=True)
class TimedFrame:
    """A sampled frame: its index among the frames shown, its presentation time (s from the first frame shown;
    None where frames carry no time, as in a frame folder), and its image (or why it could not be read)."""

    index: int
    time: float | None
    image: Image.Image | ImageDecodeError
    wall_time: float | None = None  # time.time() when a live source delivered it


@dataclass(frozen=True)
class VideoScan:
    """What one pass over a video file's packets tells: the frames it shows and how its times are kept."""

    num_frames: int
    first_pts: int | None  # the smallest presentation time shown, in ``time_base`` units (None: none given)
    time_base: Fraction
    fps: float  # the average rate (for decoding-ahead decisions only; times come from the frames)
    format: str  # the demuxer's name ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", ...)
    all_pts: bool  # every shown packet has a presentation time (else frames are located by counting)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def _shown(packet) -> bool:
    return packet.size > 0 and not packet.is_discard


def _stamp(packet_or_frame, dts_first: bool) -> int | None:
    a, b = (packet_or_frame.dts, packet_or_frame.pts) if dts_first else (packet_or_frame.pts, packet_or_frame.dts)
    return a if a is not None else b


def _is_avi(container) -> bool:
    return container.format.name == "avi"


def scan_video(path: str | Path) -> VideoScan:
    """Count the frames a video file shows, by one pass over its packets (no decoding)."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        avi = _is_avi(container)
        n, first, all_pts = 0, None, not avi
        try:
            for p in container.demux(stream):
                if not _shown(p):
                    continue
                n += 1
                t = _stamp(p, avi)
                all_pts &= p.pts is not None
                if t is not None and (first is None or t < first):
                    first = t
        except Exception as e:  # any demuxing error means the same: the stream cannot be read through
            raise VideoDecodeError(path, f"unreadable stream ({type(e).__name__}: {e})") from e
        if n == 0:
            raise VideoDecodeError(path, "no frames")
        tb = stream.time_base or Fraction(1, 1000)
        return VideoScan(n, first, tb, _rate(stream), container.format.name, all_pts)
    finally:
        container.close()


def presentation_pts(path: str | Path, indices: Iterable[int]) -> dict[int, int]:
    """The presentation time (stream ``time_base`` units) of the frames shown at ``indices``, from one pass over
    the packets: packets come in decode order, within :data:`REORDER_DEPTH` of presentation order, so a small
    heap gives them in presentation order. Raises ValueError when the stream reorders further than that."""
    wanted, got = set(indices), {}
    container = _open(Path(path))
    try:
        stream = container.streams.video[0]
        heap: list[int] = []
        k, last = 0, None

        def pop() -> None:
            nonlocal k, last
            t = heapq.heappop(heap)
            if last is not None and t < last:
                raise ValueError(f"{path}: packets reordered beyond {REORDER_DEPTH}")
            if k in wanted:
                got[k] = t
            k, last = k + 1, t

        for p in container.demux(stream):
            if _shown(p) and p.pts is not None:
                heapq.heappush(heap, p.pts)
                if len(heap) > REORDER_DEPTH:
                    pop()
        while heap:
            pop()
    finally:
        container.close()
    return got


def frame_image(frame: Any) -> Image.Image:
    """A decoded PyAV frame as an RGB image, upright (its display rotation applied, as a phone's video is shown)."""
    return _upright(frame)


class _Timer:
    """Presentation times in ``time_base`` units for frames in the order a decoder returns them (presentation
    order): their pts; in AVI (no presentation times: its "pts" are reordering artefacts) their decode times. A
    frame without one, or (AVI) not after the last, comes one frame after the last."""

    def __init__(self, stream, avi: bool):
        self.avi = avi
        self.step = max(1, round(1 / (_rate(stream) * float(stream.time_base or Fraction(1, 1000)))))
        self.last: int | None = None

    def __call__(self, frame) -> int:
        t = frame.dts if self.avi else (frame.pts if frame.pts is not None else frame.dts)
        if self.last is not None and (t is None or (self.avi and t <= self.last)):
            t = self.last + self.step
        t = 0 if t is None else t
        self.last = t
        return t


def decoded(path: str | Path, container=None) -> Iterator[tuple[int, float, Any]]:
    """Every frame shown, in order, as (index, seconds from the first frame shown, PyAV frame), decoding forward.

    ``container``: an already opened one (it is closed at the end); by default ``path`` is opened.
    """
    container = container if container is not None else _open(Path(path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = float(stream.time_base or Fraction(1, 1000))
        timer = _Timer(stream, _is_avi(container))
        first = None
        for i, frame in enumerate(container.decode(stream)):
            t = timer(frame)
            first = t if first is None else first
            yield i, (t - first) * tb, frame
    finally:
        container.close()


def frames_every(path: str | Path, fps: float) -> Iterator[TimedFrame]:
    """The frame shown at every 1/``fps`` seconds (0, 1/fps, 2/fps ... while the video lasts), each once.

    A frame is shown from its presentation time until the next frame's, so the frame kept for time t is the last
    one whose time is <= t (the same frames as ``int(k * rate / fps)`` on a constant-rate video).
    """
    try:
        yield from every(decoded(path), fps)
    except VideoDecodeError:
        raise
    except Exception as e:  # FFmpeg and PyAV raise many types on damaged streams; one bad clip must not end the run
        raise VideoDecodeError(path, f"decoding failed ({type(e).__name__}: {e})") from e


def every(frames: Iterable[tuple[int, float, Any]], fps: float, last_duration: float | None = None,
          wall=None) -> Iterator[TimedFrame]:
    """Keep, from (index, time, frame) in presentation order, the frame shown at each k / ``fps`` seconds.

    The last frame is shown for its own duration (the frame's, else the gap before it, else 1/fps).
    ``wall``: a callable giving the wall-clock time of a kept frame (live sources).
    """
    k, prev, gap = 0, None, None
    for index, t, frame in frames:
        if prev is not None:
            gap = t - prev[1]
            if k / fps < t - EPS:  # the previous frame was on screen at k / fps
                yield TimedFrame(prev[0], prev[1], frame_image(prev[2]), wall() if wall else None)
                k = max(k + 1, math.ceil((t - EPS) * fps))  # the first time at or after this frame's (no 10^12 steps)
                while k / fps < t - EPS:  # rounding of the product above
                    k += 1
        prev = (index, t, frame)
    if prev is not None:
        dur = _frame_duration(prev[2])
        dur = dur if dur is not None else (last_duration or gap or 1 / fps)
        if k / fps < prev[1] + dur - EPS:
            yield TimedFrame(prev[0], prev[1], frame_image(prev[2]), wall() if wall else None)


def _frame_duration(frame) -> float | None:
    d, tb = getattr(frame, "duration", None), frame.time_base
    return float(d * tb) if d and tb else None


def frames_at(path: str | Path, indices: list[int], scan: VideoScan | None = None) -> Iterator[TimedFrame]:
    """The frames shown at ``indices`` (sorted, distinct; < the scan's num_frames), in order.

    Frames close together are decoded forward; far apart ones (more than about a second of frames) are reached
    by seeking to the presentation time the packets give their index (:func:`presentation_pts`). Where times
    cannot locate frames (AVI, packets without pts) the video is decoded forward, counting frames. When the
    stream ends early (a damaged file) the last decoded frame stands in for the rest.
    """
    path = Path(path)
    scan = scan or scan_video(path)
    if not indices:
        return
    gap = max(24, int(scan.fps))
    sparse = (indices[-1] - indices[0]) / len(indices) > gap
    try:
        if sparse and scan.all_pts and scan.first_pts is not None:
            try:
                targets = presentation_pts(path, indices)
            except ValueError as e:
                log.info("%s; decoding forward", e)
            else:
                yield from _seek_frames(path, indices, targets, scan, gap)
                return
        yield from _counted_frames(path, indices)
    except VideoDecodeError:
        raise
    except Exception as e:  # FFmpeg and PyAV raise many types on damaged streams; one bad clip must not end the run
        raise VideoDecodeError(path, f"decoding failed ({type(e).__name__}: {e})") from e


def _counted_frames(path: Path, indices: list[int]) -> Iterator[TimedFrame]:
    todo = iter(indices)
    want = next(todo, None)
    last = None
    for i, t, frame in decoded(path):
        last = (t, frame)
        while want is not None and i == want:
            yield TimedFrame(want, t, frame_image(frame))
            want = next(todo, None)
        if want is None:
            return
    if last is None:
        raise VideoDecodeError(path, "no decodable frames")
    image = frame_image(last[1])
    while want is not None:  # the stream ended before its packets said: the last frame stands in
        yield TimedFrame(want, last[0], image)
        want = next(todo, None)


def _seek_frames(path: Path, indices: list[int], targets: dict[int, int], scan: VideoScan,
                 gap: int) -> Iterator[TimedFrame]:
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = float(stream.time_base)
        far = gap / scan.fps / tb  # beyond this many time-base units ahead, a seek beats decoding forward
        decoder, pos, last = None, None, None
        for index in indices:
            target = targets.get(index)
            if target is None:  # past the packets' end: the last frame stands in
                if last is None:
                    raise VideoDecodeError(path, "no decodable frames")
                yield TimedFrame(index, (last.pts - scan.first_pts) * tb, frame_image(last))
                continue
            if decoder is None or pos is None or target - pos > far or target < pos:
                container.seek(target, stream=stream, backward=True)
                decoder = container.decode(stream)
            for frame in decoder:
                if frame.pts is None:
                    continue
                pos, last = frame.pts, frame
                if frame.pts >= target:
                    break
            if last is None:
                raise VideoDecodeError(path, "no decodable frames")
            yield TimedFrame(index, (last.pts - scan.first_pts) * tb, frame_image(last))
    finally:
        container.close()
