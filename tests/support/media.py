"""Test media: images, frame folders and videos whose pixels say which frame they are, clips of drawn faces, and the
real photos of ``faces/`` (:data:`REAL_FACES`)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

from expclip.data.synthetic import draw_face
from expclip.labels import classes_for

FPS = 10  # the frame rate of write_face_video
REAL_FACES = Path(__file__).resolve().parent / "faces"  # real photos, public domain / CC0 / MIT (its SOURCE.md)
EXPRS = classes_for(7)


def image(path: Path, color=(128, 64, 32), size=(16, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, quality=95)
    return path


def frame_color(i: int, blue: int = 128) -> tuple[int, int, int]:
    """Frame i of a clip is flat with this colour, so a decoded frame tells its index (see frame_index)."""
    return ((i % 25) * 10, (i // 25) * 30, blue)


def frame_index(img) -> int:
    """The index of a frame drawn with :func:`frame_color`."""
    r, g = np.asarray(img)[10, 10, :2].astype(float)
    return int(round(r / 10)) + 25 * int(round(g / 30))


def frame_folder(folder: Path, n: int, stem: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):  # names sort in frame order, as the datasets' do
        Image.new("RGB", (16, 16), frame_color(i)).save(folder / f"{stem}{i + 1:05d}.png")
    return folder


def write_video(path: Path, n: int, fps: int = 25, size: int = 48, codec: str = "mpeg4", blue: int = 0,
                bit_rate: int = 20_000_000) -> Path:
    """Frame i is flat with :func:`frame_color` (red (i % 25) * 10, green (i // 25) * 30), so a decoded frame tells
    its index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c = av.open(str(path), "w")
    s = c.add_stream(codec, rate=fps)
    s.width = s.height = size
    s.pix_fmt = "yuv420p"
    s.gop_size = 12
    s.bit_rate = bit_rate
    for i in range(n):
        rgb = np.zeros((size, size, 3), np.uint8)
        rgb[...] = frame_color(i, blue)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for p in s.encode(frame):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def video(path: Path, n: int, fps: int = 25, size: int = 32) -> Path:
    """A dataset's clip: the frames of :func:`frame_folder` (blue 128) as a video file."""
    return write_video(path, n, fps, size, blue=128, bit_rate=10_000_000)


def write_face_video(path, n: int = 40, face_until: int = 30, size=(128, 96)):
    """A clip whose first ``face_until`` frames show a face (drifting right), the rest a blank background."""
    c = av.open(str(path), "w")
    s = c.add_stream("mpeg4", rate=FPS)
    s.width, s.height = size
    s.pix_fmt = "yuv420p"
    s.bit_rate = 8_000_000
    for i in range(n):
        canvas = Image.new("RGB", size, (200, 200, 200))
        if i < face_until:
            canvas.paste(draw_face("happiness" if i < n // 2 else "surprise", 64, seed=3), (10 + i, 16))
        for p in s.encode(av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def write_frames(folder, n: int, start: int = 1, fmt: str = "f{}.png", size: int = 40):
    """``n`` distinct frames named f1.png ... fn.png (not zero-padded: name order is not frame order)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(start, start + n):
        draw_face(EXPRS[i % len(EXPRS)], size, seed=i).save(folder / fmt.format(i))
        files.append(folder / fmt.format(i))
    return files  # in frame order
