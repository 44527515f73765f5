"""Pictures of predictions: images with face boxes and labels drawn (PIL), and video timelines (matplotlib, Agg)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from .table import prob_column

log = logging.getLogger(__name__)

COLORS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
          (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # scalable when Pillow has FreeType
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _caption(row: dict) -> str:
    if not row.get("label"):
        return "no face" if row.get("face_detected") is False else "not scored"
    text = f"{row['label']} {float(row['score']):.0%}"
    return f"no face: {text}" if row.get("face_detected") is False else text


def annotate_image(image: Image.Image, rows: Sequence[dict], labels: Sequence[str]) -> Image.Image:
    """A copy of ``image`` with each row's box and "label score" drawn; whole-image rows get a caption only.

    ``rows``: prediction rows of this image (``kind`` "image" or one frame's rows), with box_x/y/w/h.
    """
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    size = max(12, round(min(out.size) / 28))
    font = _font(size)
    width = max(2, round(min(out.size) / 200))
    for row in rows:
        if row.get("error"):
            continue
        label = row.get("label")
        color = COLORS[list(labels).index(label) % len(COLORS)] if label in labels else (128, 128, 128)
        text = _caption(row)
        if row.get("face_detected"):
            x, y, w, h = (int(float(row[k])) for k in ("box_x", "box_y", "box_w", "box_h"))
            draw.rectangle([x, y, x + w - 1, y + h - 1], outline=color, width=width)
            tx, ty = x, max(0, y - size - 2 * width)
        else:
            tx, ty = width, width
        fsize, ffont = size, font
        while fsize > 8 and draw.textlength(text, font=ffont) > out.width - 2 * width:  # keep captions inside
            fsize -= 2
            ffont = _font(fsize)
        left, top, right, bottom = draw.textbbox((tx, ty), text, font=ffont)
        draw.rectangle([left - 2, top - 2, right + 2, bottom + 2], fill=color)
        ink = (0, 0, 0) if 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2] > 150 else (255, 255, 255)
        draw.text((tx, ty), text, fill=ink, font=ffont)
    return out


def _track_of(row: dict) -> int | None:
    """A row's track id, from an engine row (int or None) or a results file (text)."""
    t = row.get("track")
    return None if t in (None, "", "None") else int(float(t))


def plot_timeline(rows: Sequence[dict], labels: Sequence[str], path: str | Path, title: str = "",
                  track: int | None = None) -> Path:
    """PNG of each label's probability over time for a video's largest face per sampled frame, or (``track``) for
    the faces of one face track.

    Frames where no face was found are shaded; the clip-level label (of that track) goes in the title. Frames
    without timestamps (a frame folder has no frame rate) are placed by frame number instead.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if track is None:
        frames = [r for r in rows if r.get("kind") == "frame" and str(r.get("face")) in ("0", "0.0")]
    else:
        frames = [r for r in rows if r.get("kind") == "frame" and _track_of(r) == track]
    timed = bool(frames) and all(r.get("timestamp") not in (None, "") for r in frames)
    when = "timestamp" if timed else "frame"
    frames = sorted((r for r in frames if r.get(when) not in (None, "")), key=lambda r: float(r[when]))
    clip = next((r for r in rows if r.get("kind") == "clip" and _track_of(r) == track), None)
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    t = [float(r[when]) for r in frames]
    for i, c in enumerate(labels):
        ys = [float(r[prob_column(c)]) if r.get(prob_column(c)) not in (None, "") else float("nan") for r in frames]
        ax.plot(t, ys, marker="o", markersize=3, label=c, color=[v / 255 for v in COLORS[i % len(COLORS)]])
    half = (t[-1] - t[0]) / (2 * (len(t) - 1)) if len(t) > 1 else 0.5
    shaded = False
    for r, x in zip(frames, t):
        if str(r.get("face_detected")) == "False":
            ax.axvspan(x - half, x + half, color="0.88", zorder=0, lw=0, label=None if shaded else "no face found")
            shaded = True
    ax.set_xlabel("time (s)" if timed else "frame")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if clip is not None and clip.get("label"):
        title = f"{title}\nclip: {clip['label']} ({float(clip['score']):.0%})" if title else f"clip: {clip['label']}"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
