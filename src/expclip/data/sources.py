"""Live sources for ``expclip predict --stream``: a camera, a network stream, a video piped on stdin, or a file
played as if it were live; opened with PyAV, decoded forward in a thread into a short queue.

A source is named as on the command line: ``0`` (camera 0: ``/dev/video0`` on Linux, AVFoundation's device 0 on
macOS), ``rtsp://...`` / ``http(s)://...`` / ``udp://...`` / ``srt://...`` (anything FFmpeg's network protocols
open), ``-`` (stdin: a streamable container such as MPEG-TS, Matroska or NUT; ``format`` names it when probing
cannot), a device path, or a file. Frames come with their presentation time (seconds from the first frame, from
the stream's own timestamps) and the wall-clock time they were read. The decoding thread keeps the main thread
free, so Ctrl-C is seen at once even while a read blocks (a Python exception raised inside PyAV's read callback
would be turned into an end of file).
"""

from __future__ import annotations

import logging
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError, MissingError, UnavailableError
from .media import TimedFrame, decoded, every, frame_image, scan_video
from .video import VideoDecodeError

log = logging.getLogger(__name__)

URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)
OPEN_TIMEOUT, READ_TIMEOUT = 10.0, 30.0  # seconds: a network source that says nothing for this long is gone


@dataclass(frozen=True)
class SourceSpec:
    """What ``--stream`` names: ``kind`` camera / url / stdin / device / file, its ``target`` and the name rows
    carry in their input column (a URL without its password)."""

    kind: str
    target: Any
    name: str


def parse_source(text: str | int) -> SourceSpec:
    """Read a ``--stream`` argument (see the module docstring); a file that is not there is a MissingError."""
    t = str(text).strip()
    if not t:
        raise InputError("--stream needs a source: a camera index (0), a URL, - for stdin, or a video file")
    if t == "-":
        return SourceSpec("stdin", "-", "stdin")
    if t.isdigit():
        return SourceSpec("camera", int(t), f"camera {t}")
    if URL.match(t):
        return SourceSpec("url", t, re.sub(r"^([a-z][a-z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:***@", t, flags=re.I))
    p = Path(t)
    if t.startswith("/dev/"):
        return SourceSpec("device", t, t)
    if not p.exists():
        raise MissingError(f"--stream {t}: no such file; give a camera index (0), a URL, - for stdin, or a video file")
    return SourceSpec("file", p, t)


@dataclass
class OpenSource:
    """An opened source: its spec, the PyAV container, and (files) its frame count and duration."""

    spec: SourceSpec
    container: Any
    num_frames: int | None = None
    duration: float | None = None

    def close(self) -> None:
        self.container.close()


def _camera(index: int) -> tuple[str, str | None, dict]:
    if sys.platform.startswith("linux"):
        return f"/dev/video{index}", "v4l2", {}
    if sys.platform == "darwin":
        return str(index), "avfoundation", {"framerate": "30"}
    raise UnavailableError(f"--stream {index}: a camera by index works on Linux and macOS; on Windows name it, e.g. "
                           "--stream 'video=Integrated Camera' --stream-format dshow (ffmpeg -list_devices true -f "
                           "dshow -i dummy lists them)")


def open_source(source: str | int | SourceSpec, format: str | None = None,
                timeout: tuple[float, float] = (OPEN_TIMEOUT, READ_TIMEOUT)) -> OpenSource:
    """Open a source, or say in one line why it cannot be and what to check (UnavailableError / InputError)."""
    import av

    spec = source if isinstance(source, SourceSpec) else parse_source(source)
    target, fmt, options = spec.target, format, {}
    if spec.kind == "camera":
        target, fmt, options = _camera(spec.target)
        fmt = format or fmt
    elif spec.kind == "url" and str(target).lower().startswith("rtsp"):
        options = {"rtsp_transport": "tcp"}  # over UDP a lossy network tears frames; TCP waits instead
    elif spec.kind == "stdin":
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("--stream -: stdin is a terminal; pipe a video into it, e.g. "
                             "ffmpeg -i talk.mp4 -f mpegts - | expclip predict --stream -")
        target = sys.stdin.buffer
    try:
        container = av.open(target if spec.kind == "stdin" else str(target), format=fmt, options=options,
                            timeout=timeout)
    except Exception as e:  # FFmpeg's errors (not found, refused, 404, no such format, bad data...) all say why
        raise UnavailableError(f"cannot open stream {spec.name} ({_reason(e)}): {_hint(spec)}") from e
    if not container.streams.video:
        container.close()
        raise InputError(f"stream {spec.name} has no video")
    out = OpenSource(spec, container)
    if spec.kind == "file" and Path(spec.target).is_file():
        scan = scan_video(spec.target)
        out.num_frames, out.duration = scan.num_frames, scan.duration
    return out


def _reason(e: Exception) -> str:
    return str(e).split("; last error log")[0].strip() or type(e).__name__


def _hint(spec: SourceSpec) -> str:
    return {
        "camera": "check the index (ls /dev/video* on Linux), that no other program holds the camera and that you "
                  "may use it (the video group)",
        "url": "check the URL, that the server is up and reachable, and any user name and password",
        "stdin": "pipe a streamable container (MPEG-TS, Matroska, NUT; MP4 only when fragmented), or name it with "
                 "--stream-format (e.g. mpegts)",
        "device": "check the device path and --stream-format (v4l2, avfoundation, dshow ...)",
        "file": "check that it is a video file",
    }[spec.kind]


_END = object()


def source_frames(source: OpenSource, fps: float | None = None, queue_size: int = 8) -> Iterator[TimedFrame]:
    """The frames of an open source as they are decoded (all of them, or with ``fps`` the one on screen every
    1/fps seconds of stream time), each with its stream time and the wall-clock time it was read.

    A thread decodes ahead into a queue of ``queue_size`` frames (memory stays bounded; a slow consumer slows the
    reading, and a live source then drops or buffers as it does). Closing the generator (Ctrl-C) stops the thread
    and closes the source. A stream that breaks off raises VideoDecodeError with FFmpeg's reason.
    """
    q: queue.Queue = queue.Queue(maxsize=queue_size)
    stop = threading.Event()

    def put(x) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        frames = decoded(source.spec.name, container=source.container)
        try:
            if fps:
                kept = every(frames, fps, wall=time.time)
            else:
                kept = (TimedFrame(i, t, frame_image(f), time.time()) for i, t, f in frames)
            for f in kept:
                if not put(f):
                    return
            put(_END)
        except BaseException as e:  # handed to the reading side, which raises it
            put(e)
        finally:
            frames.close()
            source.container.close()

    thread = threading.Thread(target=work, name="expclip-stream", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = q.get(timeout=0.1)  # a short wait, so that Ctrl-C in the main thread is seen at once
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise VideoDecodeError(source.spec.name, f"the stream broke off ({_reason(item)})") from item
            yield item
    finally:
        stop.set()
        thread.join(timeout=2)
