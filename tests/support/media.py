"""Test media: images, frame folders and videos whose pixels say which frame they are, clips of drawn faces, and the
real photos of ``faces/`` (:data:`REAL_FACES`)."""

from __future__ import annotations

import struct
from fractions import Fraction
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


BITS = 16  # write_coded_video: a frame's index in 16 blocks of 8×8 pixels (black 0, white 1), 2 rows of 8


def coded_frame(i: int, width: int = 64, height: int = 64) -> np.ndarray:
    """An RGB frame whose first two rows of 8×8 blocks spell ``i`` in binary (see :func:`frame_code`)."""
    rgb = np.full((height, width, 3), 128, np.uint8)
    for b in range(BITS):
        y, x = 8 * (b // 8), 8 * (b % 8)
        rgb[y : y + 8, x : x + 8] = 255 if (i >> b) & 1 else 0
    return rgb


def frame_code(img) -> int:
    """The index a frame of :func:`write_coded_video` spells (block centres, thresholded)."""
    a = np.asarray(img.convert("L"), dtype=float)
    cells = [a[8 * (b // 8) + 2 : 8 * (b // 8) + 6, 8 * (b % 8) + 2 : 8 * (b % 8) + 6] for b in range(BITS)]
    return sum(1 << b for b, cell in enumerate(cells) if cell.mean() > 128)


def write_coded_video(path: Path, n: int = 40, codec: str = "libx264", fps: int = 25, pts: list[int] | None = None,
                      time_base: Fraction | None = None, size: tuple[int, int] = (64, 64), fmt: str | None = None,
                      options: dict | None = None) -> Path:
    """A clip whose frame i spells i (:func:`frame_code`); ``pts`` (in ``time_base`` units) for a variable frame
    rate or a start offset. libx265 needs sizes that are multiples of 16 (its 48×48 frames corrupt the heap)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = av.open(str(path), "w", format=fmt)
    try:
        s = c.add_stream(codec, rate=fps, options=options or {})
        s.width, s.height = size
        s.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        s.bit_rate = 4_000_000
        if time_base is not None:
            s.codec_context.time_base = time_base
            s.time_base = time_base
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(coded_frame(i, *size), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    finally:
        c.close()
    return path


def _chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)


def write_avi(path: Path, codec: str = "libx265", n: int = 24, fps: int = 25, size: tuple[int, int] = (64, 64),
              fourcc: bytes = b"HEVC") -> Path:
    """An AVI of :func:`coded_frame` s written by hand (RIFF, one video stream, an idx1 index), for codecs FFmpeg's
    own AVI muxer refuses (HEVC: no AVI tag in its muxer, though its demuxer reads ``HEVC``/``H265`` files, which
    cameras and old tools do write). Packets are the encoder's Annex-B output (parameter sets in band)."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = size
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.bit_rate = 4_000_000
    packets = []
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(coded_frame(i, *size), format="rgb24")
        frame.pts = i
        packets += [(bytes(p), p.is_keyframe) for p in ctx.encode(frame.reformat(format="yuv420p"))]
    packets += [(bytes(p), p.is_keyframe) for p in ctx.encode(None)]
    w, h = size
    avih = struct.pack("<14I", 1_000_000 // fps, 0, 0, 0x10, len(packets), 0, 1, 1 << 20, w, h, 0, 0, 0, 0)
    strh = b"vids" + fourcc + struct.pack("<IHHIIIIIIiI4h", 0, 0, 0, 0, 1, fps, 0, len(packets), 1 << 20, -1, 0,
                                          0, 0, w, h)
    strf = struct.pack("<IiiHH4sIiiII", 40, w, h, 1, 24, fourcc, w * h * 3, 0, 0, 0, 0)
    hdrl = b"hdrl" + _chunk(b"avih", avih) + _chunk(b"LIST", b"strl" + _chunk(b"strh", strh) + _chunk(b"strf", strf))
    movi, index, offset = b"movi", b"", 4
    for data, key in packets:
        index += b"00dc" + struct.pack("<III", 0x10 if key else 0, offset, len(data))
        chunk = _chunk(b"00dc", data)
        movi += chunk
        offset += len(chunk)
    body = b"AVI " + _chunk(b"LIST", hdrl) + _chunk(b"LIST", movi) + _chunk(b"idx1", index)
    path = Path(path)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def as_webm(mkv: Path, path: Path) -> Path:
    """The Matroska file ``mkv`` as WebM: its EBML DocType "matroska" becomes "webm" (a Void element keeps every
    offset), as browsers' MediaRecorder writes H.264 in WebM. FFmpeg's WebM muxer itself takes VP8/VP9/AV1 only."""
    data = Path(mkv).read_bytes()
    old = b"\x42\x82\x88matroska"
    assert data.count(old) == 1, "no DocType 'matroska' in the file"
    Path(path).write_bytes(data.replace(old, b"\x42\x82\x84webm" + b"\xec\x82\x00\x00"))
    return Path(path)


def face_patch(name: str, box: tuple[int, int, int, int], width: int = 72) -> Image.Image:
    """The head around ``box`` in the real photo ``name`` of :data:`REAL_FACES`, grown by half and scaled to
    ``width`` pixels wide."""
    x, y, w, h = box
    photo = Image.open(REAL_FACES / name).convert("RGB")
    head = photo.crop((max(0, x - w // 2), max(0, y - h // 2), x + w + w // 2, y + h + h // 2))
    return head.resize((width, round(head.height * width / head.width)), Image.Resampling.LANCZOS)


def write_crossing_faces(path: Path, n: int = 12, blank: int | None = 5, fps: int = 4,
                         size: tuple[int, int] = (352, 240)) -> tuple[Path, list[dict]]:
    """Two real faces crossing paths: Eileen Collins (astronaut.jpg) walks right along the top, Barack Obama
    (obama.jpg) left along the bottom, swapping sides halfway; in frame ``blank`` Collins is covered up.

    Returns the clip (H.264, .mp4) and, per frame, where each face was pasted ({"collins": (x, y, w, h) or
    None, "obama": ...}) so that tests know who is where."""
    collins = face_patch("astronaut.jpg", (178, 63, 90, 114))
    obama = face_patch("obama.jpg", (193, 46, 126, 179))
    where = []
    c = av.open(str(path), "w")
    try:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height = size
        s.pix_fmt = "yuv420p"
        s.bit_rate = 4_000_000
        step = (size[0] - collins.width - 8) / (n - 1)
        for i in range(n):
            canvas = Image.new("RGB", size, (150, 160, 170))
            a = (4 + round(step * i), 2)
            b = (size[0] - obama.width - 4 - round(step * i), size[1] - obama.height - 2)
            canvas.paste(obama, b)
            if i != blank:
                canvas.paste(collins, a)
            where.append({"collins": None if i == blank else (*a, *collins.size), "obama": (*b, *obama.size)})
            for p in s.encode(av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    finally:
        c.close()
    return path, where


def encode_stream(out, frames, fps: int = 10, fmt: str = "mpegts", codec: str = "libx264", pace: float = 0.0,
                  stop=None) -> int:
    """Encode RGB frames (H×W×3 arrays, all one size) as a live stream into the file object ``out`` (a pipe, a
    socket file, BytesIO), one packet at a time as a camera or encoder would send them: ``pace`` seconds between
    frames, until ``frames`` runs out or the event ``stop`` is set. Returns how many frames were sent."""
    import time

    frames = iter(frames)
    first = next(frames)
    c = av.open(out, "w", format=fmt, container_options={"flush_packets": "1"})
    sent = 0
    try:
        s = c.add_stream(codec, rate=fps, options={"tune": "zerolatency"} if codec == "libx264" else {})
        s.height, s.width = first.shape[:2]
        s.pix_fmt = "yuv420p"
        s.bit_rate = 4_000_000
        for rgb in _chain(first, frames):
            if stop is not None and stop.is_set():
                break
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                c.mux(p)
            sent += 1
            if pace:
                time.sleep(pace)
        for p in s.encode():
            c.mux(p)
    finally:
        c.close()
    return sent


def _chain(first, rest):
    yield first
    yield from rest
