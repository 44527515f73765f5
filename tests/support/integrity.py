"""Inputs for the integrity tests (issue 14) and the zoo entries they add: small files that lie about themselves.

- :func:`float_tiff` / :func:`nan_tiff`: 32-bit float TIFFs (values in 0..1; every pixel NaN).
- :func:`lying_avi`: a real 40-frame AVI whose headers claim ``frames`` frames (2**31 - 1 by default).
- :func:`rotated_mp4`: an MP4 whose display matrix says "rotate by ``degrees`` to show it" (phones write these).
- :func:`fifo`: a named pipe with a media name (opening it for reading blocks until a writer comes).
- :func:`deadline`: raise :class:`Hung` in the main thread after some seconds (a hang fails the test, not CI).
- :class:`MeanColour`: a stand-in image encoder for the extraction functions: a crop's feature is its mean colour.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .media import write_video


def float_tiff(path: Path, value: float = 0.5, size: tuple[int, int] = (12, 10)) -> Path:
    """A mode "F" TIFF whose pixels are ``value`` (0..1, as scientific and HDR tools write them)."""
    Image.fromarray(np.full(size[::-1], value, np.float32), "F").save(path)
    return path


def nan_tiff(path: Path, size: tuple[int, int] = (12, 10)) -> Path:
    Image.fromarray(np.full(size[::-1], np.nan, np.float32), "F").save(path)
    return path


def lying_avi(path: Path, frames: int = 2**31 - 1, n: int = 40, size: int = 32) -> Path:
    """An AVI of ``n`` real frames (frame i has red (i % 25) * 10) whose main and stream headers claim ``frames``."""
    data = bytearray(write_video(path, n, size=size).read_bytes())
    avih, strh = data.index(b"avih"), data.index(b"strh")
    data[avih + 24 : avih + 28] = struct.pack("<I", frames)  # AVIMAINHEADER.dwTotalFrames
    data[strh + 40 : strh + 44] = struct.pack("<I", frames)  # AVISTREAMHEADER.dwLength
    path.write_bytes(bytes(data))
    return path


def rotated_mp4(path: Path, degrees: int = -90, n: int = 6, size: tuple[int, int] = (48, 32)) -> Path:
    """An MP4 of ``n`` frames of ``size`` (w, h), the left half red and the right half blue, whose display matrix
    rotates it by ``degrees`` counter-clockwise (-90: a phone held upright; shown 32 wide and 48 high, red on top)."""
    import av

    w, h = size
    c = av.open(str(path), "w")
    s = c.add_stream("mpeg4", rate=10)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    s.set_display_rotation(degrees)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2, 0] = 255
    rgb[:, w // 2 :, 2] = 255
    for _ in range(n):
        for p in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


class Hung(BaseException):
    """Raised by :func:`deadline`; a BaseException, so that no ``except Exception`` (an item error) swallows it."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise :class:`Hung` in the main thread if the block takes longer than ``seconds``, and again every second
    after (a pure-Python loop and a blocking open() of a FIFO are both interrupted)."""
    def expire(signum, frame):
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class MeanColour:
    """What extraction needs of a backbone; the "feature" of an image is its mean colour (so a test can tell
    which pixels were encoded)."""

    embed_dim, logit_scale, amp_dtype, device = 3, 100.0, None, torch.device("cpu")

    def __init__(self, size: int = 16):
        self.size = size

    def preprocess(self, mode: str = "reference"):
        from expclip.data.images import Preprocess

        return Preprocess("reference", self.size, self.size)

    def identity(self) -> dict:
        return {"id": "mean-colour", "revision": "test"}

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return torch.ones(len(texts), 3)
