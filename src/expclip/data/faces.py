"""Face detection and cropping for predictions on people's own photos and video frames.

A detector is anything with ``detect(image) -> list[Box]`` (:class:`FaceDetector`); plain callables returning
``(x, y, w, h)`` tuples work too. The default is OpenCV's Haar cascade, which ships inside the
``opencv-python-headless<5`` wheel (OpenCV 5 moved it out of the main package), so detection runs offline.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image

from ..errors import FaceDetectorUnavailable, InputError

log = logging.getLogger(__name__)

FACES_INSTALL_HINT = (
    "face detection uses the Haar cascade bundled with OpenCV 4: pip install 'opencv-python-headless<5' "
    "(or pip install 'expclip[faces]'); or pass faces='none' (CLI: --faces none) for images that are already face crops"
)


@dataclass(frozen=True)
class Box:
    """A face box in pixel coordinates of the image it was found in: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int
    score: float | None = None  # detector confidence where it gives one

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


def _import_cv2():
    try:
        import cv2  # type: ignore[import-not-found]
    except ImportError as e:
        raise FaceDetectorUnavailable(f"OpenCV is not installed; {FACES_INSTALL_HINT}") from e
    return cv2


def haar_cascade_path(name: str = "haarcascade_frontalface_default.xml") -> Path:
    """The cascade XML shipped with opencv-python(-headless) 4.x."""
    cv2 = _import_cv2()
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder) / name if folder else None
    if path is None or not path.is_file() or not hasattr(cv2, "CascadeClassifier"):
        raise FaceDetectorUnavailable(
            f"OpenCV {cv2.__version__} has no bundled Haar cascade {name!r} (OpenCV 5 removed them); "
            f"{FACES_INSTALL_HINT}"
        )
    return path


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (Viola–Jones), bundled with opencv-python-headless 4.x.

    Fast on CPU and offline, but frontal-only: profile, strongly tilted, occluded or very tight face crops are
    often missed (predictions then fall back as set by ``no_face``). Large images are downscaled to
    ``max_side`` for detection and boxes are mapped back.

    Args:
        min_face: smallest face to report, as a fraction of the image's short side (never below 24 px).
        min_neighbors: OpenCV's vote threshold; higher means fewer false detections and more misses.
    """

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_face: float = 0.05, max_side: int = 1280):
        self.path = haar_cascade_path(cascade)
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_face, self.max_side = min_face, max_side
        self._local = threading.local()  # a cascade object per thread: detectMultiScale is not thread-safe
        self._classifier()  # fail now, not in a worker, if the file does not load

    def _classifier(self):
        clf = getattr(self._local, "clf", None)
        if clf is None:
            cv2 = _import_cv2()
            clf = cv2.CascadeClassifier(str(self.path))
            if clf.empty():
                raise FaceDetectorUnavailable(f"OpenCV could not load the cascade {self.path}; {FACES_INSTALL_HINT}")
            self._local.clf = clf
        return clf

    def detect(self, image: Image.Image) -> list[Box]:
        w, h = image.size
        scale = min(1.0, self.max_side / max(w, h))
        small = image if scale == 1.0 else image.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                        Image.BILINEAR)
        gray = np.asarray(small.convert("L"))
        if min(gray.shape) < 24:  # below the cascade's window
            return []
        side = max(24, round(self.min_face * min(gray.shape)))
        found = self._classifier().detectMultiScale(gray, scaleFactor=self.scale_factor,
                                                    minNeighbors=self.min_neighbors, minSize=(side, side))
        return [Box(round(x / scale), round(y / scale), round(bw / scale), round(bh / scale))
                for x, y, bw, bh in (found if len(found) else [])]


def get_face_detector(faces: str | FaceDetector | Callable | None) -> FaceDetector | None:
    """``"detect"``/``"haar"`` -> :class:`HaarFaceDetector`; ``"none"``/None -> no detection (whole images);
    a :class:`FaceDetector` or a callable is used as given."""
    if faces is None or (isinstance(faces, str) and faces == "none"):
        return None
    if isinstance(faces, str):
        if faces in ("detect", "haar"):
            return HaarFaceDetector()
        raise InputError(f"unknown faces option {faces!r}; use 'detect', 'none' or a detector object")
    if isinstance(faces, FaceDetector):
        return faces
    if callable(faces):
        return CallableDetector(faces)
    raise TypeError(f"faces must be 'detect', 'none', a FaceDetector or a callable, not {type(faces).__name__}")


def find_faces(image: Image.Image, detector: FaceDetector, margin: float = 0.2,
               max_faces: int | None = None) -> list[Box]:
    """Detected faces, largest first, each grown by ``margin`` and clipped to the image.

    Boxes outside the image or empty after clipping are dropped.
    """
    boxes = []
    for b in detector.detect(image):
        x0, y0 = max(0, b.x), max(0, b.y)
        x1, y1 = min(image.width, b.x + b.w), min(image.height, b.y + b.h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            boxes.append(Box(x0, y0, x1 - x0, y1 - y0, b.score).expand(margin, image.width, image.height))
    boxes.sort(key=lambda b: (-b.area, b.x, b.y))
    return boxes[:max_faces] if max_faces else boxes
