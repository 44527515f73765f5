"""OpenCV's frontal-face Haar cascade: the fallback detector, bundled with ``opencv-python-headless<5``."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from .base import Box, FaceDetectorUnavailable, import_cv2

HAAR_INSTALL_HINT = (
    "the Haar cascade is bundled with OpenCV 4: pip install 'opencv-python-headless<5' (or pip install "
    "'expclip[faces]'); or pass faces='none' (CLI: --faces none) for images that are already face crops"
)


def haar_cascade_path(name: str = "haarcascade_frontalface_default.xml") -> Path:
    """The cascade XML shipped with opencv-python(-headless) 4.x."""
    cv2 = import_cv2()
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder) / name if folder else None
    if path is None or not path.is_file() or not hasattr(cv2, "CascadeClassifier"):
        raise FaceDetectorUnavailable(
            f"OpenCV {cv2.__version__} has no bundled Haar cascade {name!r} (OpenCV 5 removed them); "
            f"{HAAR_INSTALL_HINT}"
        )
    return path


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (Viola–Jones), bundled with opencv-python-headless 4.x.

    Fast to load and offline, but frontal-only: profile, strongly tilted, occluded or very tight face crops are
    often missed, and textures (coins, foliage) can give false faces; it gives no score. Large images are
    downscaled to ``max_side`` for detection and boxes are mapped back.

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
            cv2 = import_cv2()
            clf = cv2.CascadeClassifier(str(self.path))
            if clf.empty():
                raise FaceDetectorUnavailable(f"OpenCV could not load the cascade {self.path}; {HAAR_INSTALL_HINT}")
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
