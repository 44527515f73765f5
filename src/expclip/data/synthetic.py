"""Synthetic cartoon faces whose mouth, eyes and brows depend on the expression, for the demo and the tests.

They are drawn procedurally (no data downloads): background, skin tone, position and size vary at random, the
expression changes the features. Real models were never meant to see them; they exercise the pipeline.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

from ..errors import InputError
from ..labels import CLASS_ORDER


def draw_face(expression: str, size: int = 64, seed: int | None = None) -> Image.Image:
    """One RGB face of ``expression`` (a canonical class name); ``seed`` fixes the nuisance factors."""
    if expression not in CLASS_ORDER:
        raise InputError(f"unknown expression {expression!r}")
    rng = random.Random(seed)
    bg = tuple(rng.randint(0, 255) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    s = size / 64.0
    cx, cy = size / 2 + rng.uniform(-4, 4) * s, size / 2 + rng.uniform(-4, 4) * s
    rx, ry = rng.uniform(20, 25) * s, rng.uniform(24, 29) * s
    skin = (rng.randint(150, 255), rng.randint(110, 200), rng.randint(80, 170))
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=skin, outline=(40, 30, 20))
    ink = (20, 15, 10)
    ex, ey = 8 * s, cy - 6 * s
    eye_r = {"surprise": 4.0, "fear": 4.0, "happiness": 1.5, "contempt": 2.0, "anger": 2.0}.get(expression, 2.5) * s
    for sign in (-1, 1):
        d.ellipse([cx + sign * ex - eye_r, ey - eye_r, cx + sign * ex + eye_r, ey + eye_r], fill=ink)
    # Eyebrows: inner end lower for anger, higher for sadness/fear/anxiety, raised for surprise.
    tilt = {"anger": 3.5, "sadness": -3.0, "fear": -2.5, "anxiety": -2.0, "helplessness": -2.5,
            "disgust": 2.0, "surprise": 0.0}.get(expression, 0.5) * s
    lift = (4.0 if expression == "surprise" else 0.0) * s
    for sign in (-1, 1):
        outer = (cx + sign * (ex + 5 * s), ey - 6 * s - lift)
        inner = (cx + sign * (ex - 4 * s), ey - 6 * s - lift + tilt)
        d.line([outer, inner], fill=ink, width=max(1, int(1.5 * s)))
    my, mw = cy + 11 * s, 9 * s
    w = max(1, int(2 * s))
    if expression == "happiness":
        d.arc([cx - mw, my - 7 * s, cx + mw, my + 5 * s], 10, 170, fill=ink, width=w)
    elif expression in ("sadness", "disappointment", "helplessness"):
        d.arc([cx - mw, my, cx + mw, my + 10 * s], 190, 350, fill=ink, width=w)
    elif expression == "surprise":
        d.ellipse([cx - 4 * s, my - 4 * s, cx + 4 * s, my + 5 * s], outline=ink, width=w)
    elif expression == "fear":
        d.rectangle([cx - mw, my - 3 * s, cx + mw, my + 3 * s], outline=ink, width=w)
    elif expression == "disgust":
        d.line([(cx - mw, my + 2 * s), (cx - 3 * s, my - 2 * s), (cx + 3 * s, my + 2 * s), (cx + mw, my - 2 * s)],
               fill=ink, width=w)
    elif expression == "contempt":
        d.line([(cx - mw, my), (cx + 2 * s, my)], fill=ink, width=w)
        d.arc([cx, my - 6 * s, cx + mw + 2 * s, my + 2 * s], 20, 120, fill=ink, width=w)
    elif expression == "anger":
        d.line([(cx - mw, my), (cx + mw, my)], fill=ink, width=w + 1)
    else:  # neutral, anxiety
        d.line([(cx - mw * 0.8, my), (cx + mw * 0.8, my)], fill=ink, width=w)
    return img


def write_face_folder(root: str | Path, classes: list[str], per_class: int, size: int = 64, seed: int = 0,
                      labelled: bool = True, ext: str = ".png") -> Path:
    """Write ``per_class`` faces per class: ``root/<class>/<i>.png`` (labelled) or ``root/<i>.png``."""
    root = Path(root)
    n = 0
    for ci, c in enumerate(classes):
        folder = root / c if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = draw_face(c, size, seed=seed * 1_000_003 + ci * 10_007 + i)
            img.save(folder / (f"{i:05d}{ext}" if labelled else f"{n:06d}{ext}"))
            n += 1
    return root
