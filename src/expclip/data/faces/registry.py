"""The ``faces=`` option: names of the built-in detectors, the default choice, and plugged-in detectors."""

from __future__ import annotations

import logging
from typing import Callable

from ...errors import InputError
from .base import CallableDetector, FaceDetector, FaceDetectorUnavailable
from .names import FACE_DETECTORS
from .haar import HaarFaceDetector
from .yunet import YuNetFaceDetector

log = logging.getLogger(__name__)

_fell_back = False  # the Haar fallback is noted once per process, not once per call


def default_face_detector(threshold: float | None = None) -> FaceDetector:
    """YuNet when its model is installed (the ``faces`` extra), else OpenCV's Haar cascade with a logged note."""
    global _fell_back
    try:
        return YuNetFaceDetector(**({} if threshold is None else {"threshold": threshold}))
    except FaceDetectorUnavailable as e:
        haar = HaarFaceDetector()  # raises, saying what to install, when OpenCV itself is missing
        if not _fell_back:
            log.warning("face detection: YuNet is not available (%s); using OpenCV's Haar cascade instead (frontal "
                        "faces only, no scores). For YuNet: pip install 'expclip[faces]'", str(e).split(";")[0])
            _fell_back = True
        return haar


def get_face_detector(faces: str | FaceDetector | Callable | None,
                      threshold: float | None = None) -> FaceDetector | None:
    """The detector for a ``faces=`` option.

    Args:
        faces: "detect" (YuNet if installed, else Haar), "yunet", "haar", "none"/None (no detection: whole images),
            or a :class:`FaceDetector` or callable, used as given.
        threshold: the score threshold YuNet is built with (default its own, 0.75); unused by the others.
    """
    if faces is None or (isinstance(faces, str) and faces == "none"):
        return None
    if isinstance(faces, str):
        if faces == "detect":
            return default_face_detector(threshold)
        if faces == "yunet":
            return YuNetFaceDetector(**({} if threshold is None else {"threshold": threshold}))
        if faces == "haar":
            return HaarFaceDetector()
        raise InputError(f"unknown faces option {faces!r}; use one of {', '.join(map(repr, FACE_DETECTORS))} "
                         "or a detector object")
    if isinstance(faces, FaceDetector):
        return faces
    if callable(faces):
        return CallableDetector(faces)
    raise TypeError(f"faces must be one of {FACE_DETECTORS}, a FaceDetector or a callable, "
                    f"not {type(faces).__name__}")
