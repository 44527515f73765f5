"""The ``faces=`` names, with no import of numpy, PIL or OpenCV (``expclip predict --help`` shows them)."""

FACE_DETECTORS = ("detect", "yunet", "haar", "none")  # "detect": YuNet when installed, else Haar
