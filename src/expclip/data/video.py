"""Video clips: the frame-sampling rules and readers for frame folders and video files (PyAV).

A clip is read as the frames at :func:`sample_frame_indices`; only those frames are decoded and kept, and video
files are sought to near each frame instead of decoded from the start.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

from ..errors import InputError
from .images import IMAGE_EXTENSIONS, ImageDecodeError, load_image

if TYPE_CHECKING:  # PIL is only handed through here: the sampling rules cost no import
    from PIL import Image

log = logging.getLogger(__name__)

SAMPLING_RULES = ("reference", "edge")
FRAME_ORDERS = ("name", "natural")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


class VideoDecodeError(ImageDecodeError):
    """A clip could not be read (no frames, bad codec, unreadable file); ``str()`` names the file and reason."""


def sample_frame_indices(num_frames: int, num_segments: int = 16, rule: str = "reference") -> list[int]:
    """The frames a clip of ``num_frames`` contributes, ``num_segments`` of them.

    rule "reference" (the paper's test sampler): if num_frames > num_segments, tick = num_frames / num_segments and
    frame k = int(tick/2 + tick*k); otherwise frame 0 repeated (an artefact of the reference, kept for fidelity).
    rule "edge": the same for long clips; a clip of num_frames <= num_segments gives all its frames, then the last
    one repeated.
    """
    if rule not in SAMPLING_RULES:
        raise InputError(f"unknown sampling rule {rule!r}; choose one of {SAMPLING_RULES}")
    if num_frames < 1:
        raise InputError(f"a clip needs at least one frame, got {num_frames}")
    if num_segments < 1:
        raise InputError(f"num_segments must be >= 1, got {num_segments}")
    if num_frames > num_segments:
        tick = num_frames / num_segments
        return [int(tick / 2.0 + tick * k) for k in range(num_segments)]
    if rule == "reference":
        return [0] * num_segments
    return list(range(num_frames)) + [num_frames - 1] * (num_segments - num_frames)


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def natural_key(name: str) -> tuple:
    """Sort key that compares runs of digits as numbers: "frame2.jpg" < "frame10.jpg" (then by the exact name)."""
    parts = re.split(r"(\d+)", name.casefold())  # even positions text, odd positions digits: types never mix
    return tuple(int(t) if i % 2 else t for i, t in enumerate(parts)), name


def list_frames(folder: str | Path, order: str = "name") -> list[Path]:
    """The image files of a frame folder in frame order.

    order "name": sorted by file name (the reference's rule, used by the benchmark readers; the same as "natural"
    for zero-padded names such as DFEW's 00001.jpg); "natural": numbers in names compared as numbers, so that
    frame 2 comes before frame 10 (``expclip predict --frame-folders``).
    """
    if order not in FRAME_ORDERS:
        raise InputError(f"unknown frame order {order!r}; choose one of {FRAME_ORDERS}")
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoDecodeError(folder, "frame folder not found")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
             and not p.name.startswith(".")]
    return sorted(files, key=(lambda p: natural_key(p.name)) if order == "natural" else None)


def read_frame_folder(folder: str | Path, indices: list[int]) -> list[Image.Image]:
    """Decode the frames at ``indices`` of the sorted frame list of ``folder``."""
    frames = list_frames(folder)
    if not frames:
        raise VideoDecodeError(folder, "no frames (no image files in the folder)")
    if max(indices) >= len(frames):
        raise VideoDecodeError(folder, f"frame {max(indices)} asked but the folder has {len(frames)} frames")
    cache: dict[int, Image.Image] = {}
    out = []
    for i in indices:
        if i not in cache:
            cache[i] = load_image(frames[i])
        out.append(cache[i])
    return out


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    duration: float  # seconds
    header_frames: int | None = None  # what the header claimed, when the stream holds another number of frames


# A header claiming more frames than a file of this many bytes per frame could hold is checked by counting the
# stream's packets (real frames take hundreds of bytes and more; an AVI header can say 2**31 - 1 for 40 frames).
MIN_FRAME_BYTES = 64


def _open(path: Path):
    """An open PyAV container of a regular, non-empty file with a video stream, or a VideoDecodeError."""
    import av
    import stat

    try:  # a FIFO would block the demuxer forever, a device never end
        st = path.stat()
    except OSError as e:
        raise VideoDecodeError(path, f"cannot open ({e.strerror or e})") from e
    if not stat.S_ISREG(st.st_mode):
        raise VideoDecodeError(path, "not a regular file (a FIFO, socket or device): skipped")
    if st.st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except Exception as e:  # FFmpegError, OSError, UnicodeDecodeError, ...: the file is not a readable video
        raise VideoDecodeError(path, f"cannot open video ({type(e).__name__}: {e})") from e
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "no video stream")
    return container


def _rate(stream) -> float:
    """Frames per second of a video stream: its average rate, else FFmpeg's guess, else 25 (no rate known)."""
    return float(stream.average_rate or stream.guessed_rate or 0) or 25.0


def video_info(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and duration; counts packets (no decoding) when the header has no count."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = _rate(stream)
        n = header = int(stream.frames or 0)
        if n <= 0 or n * MIN_FRAME_BYTES > path.stat().st_size:  # no count, or more than the file holds: count
            try:
                n = sum(1 for p in container.demux(stream) if p.size > 0)
            except Exception as e:  # any demuxing error means the same: the stream cannot be counted
                raise VideoDecodeError(path, f"unreadable stream ({type(e).__name__}: {e})") from e
        if n <= 0:
            raise VideoDecodeError(path, "no frames")
        if 0 < header != n:
            log.warning("%s: its header claims %d frames, its stream holds %d: those are used", path, header, n)
        return VideoInfo(n, fps, n / fps, header if 0 < header != n else None)
    finally:
        container.close()


def _upright(frame) -> Image.Image:
    """A decoded frame as it is shown: the rotation of its display matrix applied (phones store portrait video as
    landscape frames plus "rotate by -90"; ``frame.rotation`` is counter-clockwise degrees, as PIL's)."""
    from PIL import Image

    img = frame.to_image().convert("RGB")
    turn = round(getattr(frame, "rotation", 0) or 0) % 360
    exact = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
    if turn in exact:
        return img.transpose(exact[turn])
    return img.rotate(turn, expand=True) if turn else img


def read_video_frames(path: str | Path, indices: list[int], info: VideoInfo | None = None) -> list[Image.Image]:
    """Decode only the frames at ``indices`` of a video file, seeking ahead where the gap is large.

    Frames are located by presentation time. When the stream ends before a requested index (header frame counts
    are often a little off) the last decoded frame stands in; a stream with no decodable frame is an error.
    """
    path = Path(path)
    info = info or video_info(path)
    container = _open(path)
    got: dict[int, Image.Image] = {}
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = float(stream.time_base) if stream.time_base else 1.0 / info.fps
        start = stream.start_time or 0
        gap = max(24, int(info.fps))  # decoding up to a second of frames beats a seek
        decoder, pos, last, ended = None, -1, None, False
        for target in sorted(set(indices)):
            if target <= pos and last is not None:
                got[target] = got.get(target) or _upright(last)
                continue
            if decoder is None or target - pos > gap:
                if target > 0:
                    container.seek(int(start + (target / info.fps) / tb), stream=stream, backward=True)
                decoder = container.decode(stream)
            for frame in decoder:
                pos = round((frame.pts - start) * tb * info.fps) if frame.pts is not None else pos + 1
                last = frame
                if pos >= target:
                    break
            else:
                ended = True
            if last is None:
                raise VideoDecodeError(path, "no decodable frames")
            got[target] = _upright(last)
            if ended:
                break
        for target in indices:  # past the end: the last frame stands in
            if target not in got:
                got[target] = _upright(last)
    except VideoDecodeError:
        raise
    except Exception as e:  # FFmpeg and PyAV raise many types on damaged streams; one bad clip must not end the run
        raise VideoDecodeError(path, f"decoding failed ({type(e).__name__}: {e})") from e
    finally:
        container.close()
    return [got[i] for i in indices]


Frame = Union["Image.Image", ImageDecodeError]  # a decoded frame, or why that one frame could not be read


@dataclass(frozen=True)
class Clip:
    """A video file or a frame folder, opened to read sampled frames.

    ``fps`` is None for a frame folder (its frames carry no time); ``frames`` lists a frame folder's image files
    in frame order (empty for a video file).
    """

    path: Path
    num_frames: int
    fps: float | None
    info: VideoInfo | None = None
    frames: tuple[Path, ...] = ()

    def read(self, indices: list[int]) -> list[Frame]:
        """The frames at ``indices``. A frame folder's unreadable image comes back as its ImageDecodeError in its
        place (the other frames are still read); a video file that cannot be decoded raises VideoDecodeError."""
        if self.info is not None:
            return list(read_video_frames(self.path, indices, self.info))
        out: dict[int, Frame] = {}
        for i in indices:
            if i not in out:
                try:
                    out[i] = load_image(self.frames[i])
                except ImageDecodeError as e:
                    out[i] = e
        return [out[i] for i in indices]


def open_clip(path: str | Path, frame_order: str = "natural") -> Clip:
    """Open a video file (frame count and rate from :func:`video_info`) or a frame folder (its image files in
    ``frame_order``, see :func:`list_frames`). Raises VideoDecodeError when it has no frames or cannot be read."""
    path = Path(path)
    if path.is_dir():
        frames = list_frames(path, frame_order)
        if not frames:
            raise VideoDecodeError(path, "no frames (no image files in the folder)")
        return Clip(path, len(frames), None, None, tuple(frames))
    info = video_info(path)
    return Clip(path, info.num_frames, info.fps, info)


def timestamps(indices: list[int], fps: float) -> list[float]:
    """Seconds from the start of the clip for each frame index."""
    return [i / fps if fps > 0 and math.isfinite(fps) else float("nan") for i in indices]
