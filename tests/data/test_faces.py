"""Face detection: the bundled Haar cascade on synthetic and real faces, boxes, margins, pluggable detectors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from expclip.data.faces import (
    Box, CallableDetector, FaceDetectorUnavailable, HaarFaceDetector, find_faces, get_face_detector,
)
from expclip.data.synthetic import draw_face


def haar_or_skip() -> HaarFaceDetector:
    try:
        return HaarFaceDetector()
    except FaceDetectorUnavailable as e:
        pytest.skip(f"no offline face detector here: {e}")


def two_faces() -> tuple[Image.Image, list[tuple[int, int, int]]]:
    """Two drawn faces on a grey canvas; (left, top, size) of each pasted face. Seeds the cascade is known to find."""
    canvas = Image.new("RGB", (320, 160), (200, 200, 200))
    placed = [(20, 30, 96), (200, 40, 80)]
    for (x, y, s), (expr, seed) in zip(placed, [("happiness", 3), ("anger", 2)]):
        canvas.paste(draw_face(expr, s, seed=seed), (x, y))
    return canvas, placed


def test_haar_finds_each_drawn_face_largest_first():
    det = haar_or_skip()
    image, placed = two_faces()
    raw = det.detect(image)
    assert len(raw) == 2
    boxes = find_faces(image, det, margin=0.0)
    assert boxes[0].area >= boxes[1].area
    for box, (x, y, s) in zip(boxes, placed):  # largest first = the 96-px face, then the 80-px one
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        assert x < cx < x + s and y < cy < y + s, (box, (x, y, s))
        assert 0.4 * s < box.w < 1.3 * s


def test_haar_finds_the_real_face_in_matplotlibs_sample_photo():
    det = haar_or_skip()
    from matplotlib import cbook

    try:
        path = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    except (OSError, ValueError) as e:
        pytest.skip(f"matplotlib's sample photo is not installed: {e}")
    image = Image.open(path).convert("RGB")
    boxes = det.detect(image)
    assert len(boxes) == 1
    b = boxes[0]
    # Her face is in the upper middle of the 512x600 portrait.
    assert 150 < b.x + b.w / 2 < 370 and 120 < b.y + b.h / 2 < 330 and 120 < b.w < 330


def test_haar_finds_nothing_in_flat_noise_or_tiny_images():
    det = haar_or_skip()
    rng = np.random.default_rng(0)
    assert det.detect(Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))) == []
    assert det.detect(Image.new("RGB", (200, 200), (128, 128, 128))) == []
    assert det.detect(Image.new("RGB", (10, 10))) == []


def test_large_images_are_searched_downscaled_and_boxes_mapped_back():
    det = haar_or_skip()
    image, placed = two_faces()
    big = image.resize((image.width * 8, image.height * 8))  # 2560 px wide > max_side 1280
    boxes = find_faces(big, det, margin=0.0)
    assert len(boxes) == 2
    x, y, s = placed[0]
    assert 8 * x < boxes[0].x + boxes[0].w / 2 < 8 * (x + s)


def test_margin_grows_boxes_and_clips_them_to_the_image():
    assert Box(10, 10, 20, 20).expand(0.5, 100, 100) == Box(0, 0, 40, 40)
    assert Box(80, 80, 20, 20).expand(0.25, 100, 100) == Box(75, 75, 25, 25)
    det = CallableDetector(lambda im: [(-5, -5, 30, 30), (50, 50, 10, 10), (200, 200, 5, 5)])
    boxes = find_faces(Image.new("RGB", (100, 100)), det, margin=0.2)
    assert boxes == [Box(0, 0, 30, 30), Box(48, 48, 14, 14)]  # clipped first, off-image box dropped, largest first
    assert find_faces(Image.new("RGB", (100, 100)), det, margin=0.2, max_faces=1) == boxes[:1]


def test_detectors_are_pluggable():
    class Mine:
        def detect(self, image):
            return [Box(1, 2, 3, 4)]

    mine = Mine()
    assert get_face_detector(mine) is mine
    assert get_face_detector("none") is None and get_face_detector(None) is None
    assert get_face_detector(lambda im: [(1, 2, 3, 4, 0.9)]).detect(Image.new("RGB", (8, 8))) == [Box(1, 2, 3, 4, 0.9)]
    with pytest.raises(ValueError, match="unknown faces option"):
        get_face_detector("mtcnn")


def test_missing_opencv_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    with pytest.raises(FaceDetectorUnavailable, match=r"opencv-python-headless<5.*faces='none'"):
        HaarFaceDetector()
