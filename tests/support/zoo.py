"""The broken-file zoo: every kind of bad (and awkward but valid) image and video, each with the outcome the package
owes it (decoded, or a failure whose reason says why).

:func:`write_image_zoo` / :func:`write_video_zoo` write it into a folder and return the expected outcomes.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .integrity import lying_avi, rotated_mp4
from .media import write_video


# ------------------------------------------------------------------------------------------------ the zoo
@dataclass(frozen=True)
class Case:
    """One zoo file and what the package owes it: ``reason`` None = decoded, else a failure mentioning it."""

    name: str
    reason: str | None = None
    size: tuple[int, int] | None = None  # (w, h) after decoding, when it matters


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A real, valid 1-bit PNG of width x height black pixels in a few tens of KB (a decompression bomb).

    Built row by row, so neither side ever holds the 50 MB of raw rows.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    comp, row, parts = zlib.compressobj(9), b"\0" * (1 + (width + 7) // 8), []
    for _ in range(height):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    chunks = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts)) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write_image_zoo(root: str | Path) -> list[Case]:
    """Write the image zoo into ``root``; returns each file's expected outcome."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    jpg, png = _encoded(rgb, "JPEG", quality=90), _encoded(rgb, "PNG")
    corrupt_png = bytearray(png)
    idat = png.index(b"IDAT")
    corrupt_png[idat + 10 : idat + 30] = b"\xff" * 20  # damaged compressed data (and a wrong CRC)
    rot = Image.new("RGB", (20, 10), (200, 30, 30))
    exif = rot.getexif()
    exif[0x0112] = 6  # "rotate 90° to display"
    files: dict[str, bytes] = {
        "ok.jpg": jpg,
        "png_named.jpg": png,  # a PNG with a JPEG name: decoded by content
        "truncated.jpg": jpg[: len(jpg) // 2],
        "truncated.png": png[: len(png) // 2],
        "corrupt.png": bytes(corrupt_png),
        "empty.jpg": b"",
        "text.jpg": b"this is not an image\n",
        "html.png": b"<html><body>404 Not Found</body></html>",
        "postscript.jpg": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",  # never Ghostscript
        "cmyk.jpg": _encoded(Image.new("CMYK", (12, 10), (0, 255, 255, 0)), "JPEG"),
        "gray16.png": _encoded(Image.fromarray(np.full((10, 12), 32768, np.uint16)), "PNG"),
        "palette.gif": _encoded(rgb.convert("P", palette=Image.ADAPTIVE), "GIF"),
        "palette_transparent.png": _encoded(Image.new("P", (12, 10), 0), "PNG", transparency=0),
        "rgba.png": _encoded(Image.new("RGBA", (12, 10), (255, 0, 0, 0)), "PNG"),
        "gray.png": _encoded(Image.new("L", (12, 10), 90), "PNG"),
        "gray_alpha.png": _encoded(Image.new("LA", (12, 10), (90, 255)), "PNG"),
        "one_pixel.png": _encoded(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"),
        "sliver.png": _encoded(Image.new("RGB", (1, 6000), (10, 20, 30)), "PNG"),
        "bomb.png": bomb_png(),
        "exif_rotated.jpg": _encoded(rot, "JPEG", exif=exif),
        "float.tif": _encoded(Image.fromarray(np.full((10, 12), 0.5, np.float32), "F"), "TIFF"),  # 0..1 floats
        "nan.tif": _encoded(Image.fromarray(np.full((10, 12), np.nan, np.float32), "F"), "TIFF"),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    bad = "corrupt or truncated"
    return [
        Case("ok.jpg", size=(32, 24)), Case("png_named.jpg", size=(32, 24)),
        Case("truncated.jpg", "truncated"), Case("truncated.png", bad), Case("corrupt.png", bad),
        Case("empty.jpg", "empty file"), Case("text.jpg", "not a recognised image"),
        Case("html.png", "not a recognised image"), Case("postscript.jpg", "not a recognised image"),
        Case("cmyk.jpg", size=(12, 10)), Case("gray16.png", size=(12, 10)), Case("palette.gif", size=(32, 24)),
        Case("palette_transparent.png", size=(12, 10)), Case("rgba.png", size=(12, 10)),
        Case("gray.png", size=(12, 10)), Case("gray_alpha.png", size=(12, 10)), Case("one_pixel.png", size=(1, 1)),
        Case("sliver.png", size=(1, 6000)), Case("bomb.png", "decompression bomb"),
        Case("exif_rotated.jpg", size=(10, 20)), Case("float.tif", size=(12, 10)),
        Case("nan.tif", "no finite pixel"),
    ]


EITHER = "decoded or refused"  # a damaged stream that the decoder may conceal: any outcome but a crash


@dataclass(frozen=True)
class ClipCase:
    """One zoo clip: a video file or a frame folder, the frame count its list line claims, the expected outcome."""

    name: str
    num_frames: int
    reason: str | None = None


def write_video_zoo(root: str | Path) -> list[ClipCase]:
    """Write video files and frame folders into ``root``; returns each clip's expected outcome."""
    import av

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    good = write_video(root / "good.avi", 40, size=32).read_bytes()
    bad_codec = good.replace(b"FMP4", b"ZZZZ")  # the container is fine, no decoder knows the codec
    assert bad_codec != good
    movi = good.index(b"movi")  # the frame data follows
    corrupt = bytearray(good)
    first = good.index(b"00dc", movi) + 8
    corrupt[first : first + 200] = np.random.default_rng(1).integers(0, 256, 200, dtype=np.uint8).tobytes()
    (root / "bad_codec.avi").write_bytes(bad_codec)
    (root / "corrupt_packets.avi").write_bytes(bytes(corrupt))
    # Half the frame data gone, the header still claims 40 frames: the last frame read stands in for the rest.
    (root / "truncated.avi").write_bytes(good[: movi + (len(good) - movi) // 2])
    write_video(root / "good.mp4", 40, size=32)
    (root / "no_index.mp4").write_bytes((root / "good.mp4").read_bytes()[:1500])  # cut before the mp4 index
    (root / "empty.mp4").write_bytes(b"")
    (root / "garbage.mp4").write_bytes(b"\x00garbage" * 200)
    c = av.open(str(root / "no_frames.avi"), "w")
    s = c.add_stream("mpeg4", rate=25)
    s.width = s.height = 32
    s.pix_fmt = "yuv420p"
    c.start_encoding()
    c.close()
    c = av.open(str(root / "audio_only.mp4"), "w")
    a = c.add_stream("aac", rate=8000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    frame.sample_rate = 8000
    for p in [*a.encode(frame), *a.encode()]:
        c.mux(p)
    c.close()
    for name, n in (("frames_ok", 20), ("frames_short", 5), ("frames_bad_frame", 20)):
        (root / name).mkdir()
        for i in range(n):
            Image.new("RGB", (16, 16), (i * 10, 0, 0)).save(root / name / f"{i:05d}.jpg")
    (root / "frames_bad_frame" / "00010.jpg").write_bytes(b"broken")
    (root / "frames_empty").mkdir()
    lying_avi(root / "lying.avi", 2**31 - 1, n=40)  # its headers claim 2**31 - 1 frames
    rotated_mp4(root / "rotated.mp4", -90, n=20)  # a phone's portrait clip
    return [
        ClipCase("good.avi", 40), ClipCase("good.mp4", 40), ClipCase("truncated.avi", 40),
        ClipCase("bad_codec.avi", 40, "Decoder not found"), ClipCase("corrupt_packets.avi", 40, EITHER),
        ClipCase("no_index.mp4", 40, "no video stream"), ClipCase("empty.mp4", 40, "empty file"),
        ClipCase("garbage.mp4", 40, "cannot open video"), ClipCase("no_frames.avi", 40, "no frames"),
        ClipCase("audio_only.mp4", 40, "no video stream"), ClipCase("frames_ok", 20),
        ClipCase("frames_short", 40),  # the list claims 40: sampled from the 5 found, and reported
        ClipCase("frames_bad_frame", 20, "00010.jpg"),
        ClipCase("frames_empty", 16, "no frames"), ClipCase("lying.avi", 40), ClipCase("rotated.mp4", 20),
    ]
