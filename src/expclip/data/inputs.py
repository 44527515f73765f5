"""What people hand the predictor: image and video paths, folders, PIL images, numpy arrays -> input items.

Paths are checked up front (a typo fails before any work); decoding happens later, item by item, so that one
unreadable file becomes a recorded row instead of an exception.

With ``frame_folders=True`` a folder of extracted frames (DFEW/FERV39k/MAFW/AFEW style: one folder per clip) is one
video input instead of many images; see :func:`find_clips` for the rule.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import MissingError
from .images import IMAGE_EXTENSIONS, ImageDecodeError, load_image, to_rgb
from .safe import DatasetError, walk_files
from .video import VIDEO_EXTENSIONS, natural_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputItem:
    """One thing to predict on: an image or a video (a video file or a frame folder), or an in-memory image."""

    name: str  # the "input" column: the path as found, or "<image 3>" / a dict key for in-memory images
    source: Any  # Path (a file, or a frame folder for a video), PIL.Image.Image or np.ndarray
    kind: str  # "image" or "video"
    rel: str  # a relative name for outputs derived from it (annotated images, timelines)


def list_media(root: Path) -> list[Path]:
    """Image and video files under ``root``, recursively, sorted, hidden files and folders skipped; a folder that
    cannot be read is an error naming it."""
    return walk_files(root, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)


def find_clips(root: Path) -> list[Path]:
    """The frame folders and video files under ``root`` (itself included), in path order, hidden ones skipped.

    The rule: every folder that directly holds image files is one clip made of those images (its subfolders are
    looked at on their own), and a folder with no media and no subfolders at all is an (empty) clip too, so that a
    clip whose frames are missing is reported rather than silently dropped. Folders holding only subfolders or only
    video files are just searched. So ``DFEW/clip_224x224/`` gives one clip per subfolder, and one clip folder
    given by itself is one clip.
    """
    found: list[Path] = []

    def fail(e: OSError) -> None:
        raise DatasetError(f"{e.filename}: cannot read this folder ({e.strerror or e})")

    for folder, dirs, files in os.walk(root, onerror=fail):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        names = [f for f in files if not f.startswith(".")]
        images = [f for f in names if Path(f).suffix.lower() in IMAGE_EXTENSIONS]
        videos = [here / f for f in names if Path(f).suffix.lower() in VIDEO_EXTENSIONS]
        if images or (not videos and not dirs):
            found.append(here)
            if images and dirs:
                log.info("%s holds frames and subfolders: its own %d images are one clip, each subfolder is read "
                         "on its own", here, len(images))
        found += videos
    return sorted(found, key=lambda p: [natural_key(part) for part in p.relative_to(root).parts])


def _path_item(path: Path, rel: str, name: str | None = None, frame_folders: bool = False) -> InputItem:
    """An item for a file (video by its extension, else image) or, with ``frame_folders``, a folder (a video)."""
    video = path.suffix.lower() in VIDEO_EXTENSIONS or (frame_folders and path.is_dir())
    return InputItem(name or str(path), path, "video" if video else "image", rel)


def _folder_items(p: Path, frame_folders: bool) -> list[InputItem]:
    """The inputs found in folder ``p``: its images and videos, or (``frame_folders``) its clips."""
    found = find_clips(p) if frame_folders else list_media(p)
    if not found:
        log.warning("%s: no images or videos in this folder", p)
    return [_path_item(f, (Path(p.name) / f.relative_to(p)).as_posix(), frame_folders=frame_folders) for f in found]


def expand_inputs(inputs: Any, frame_folders: bool = False) -> list[InputItem]:
    """Paths (files or folders, searched recursively for images and videos), PIL images, numpy arrays
    (H×W, H×W×3/4, or N×H×W×3 for N images), a list of these, or a dict name -> image.

    Args:
        frame_folders: read folders of extracted frames as videos, one per folder (:func:`find_clips`), their
            frames in natural order (2 before 10); a dict value that is a folder is then one clip.

    Raises:
        FileNotFoundError: a path that does not exist (before any work is done).
    """
    if isinstance(inputs, dict):
        return [_dict_item(str(k), v, frame_folders) for k, v in inputs.items()]
    if isinstance(inputs, (str, Path, Image.Image)) or (isinstance(inputs, np.ndarray) and inputs.ndim <= 3):
        inputs = [inputs]
    items: list[InputItem] = []
    for i, x in enumerate(inputs):
        if isinstance(x, InputItem):
            items.append(x)
        elif isinstance(x, (str, Path)):
            p = Path(x)
            if p.is_dir():
                items += _folder_items(p, frame_folders)
            elif p.is_file():
                items.append(_path_item(p, p.name))
            else:
                raise MissingError(f"input not found: {p}")
        elif isinstance(x, Image.Image):
            items.append(InputItem(f"<image {i}>", x, "image", f"image_{i}"))
        elif isinstance(x, np.ndarray) and x.ndim == 4:
            items += [InputItem(f"<array {i}[{j}]>", a, "image", f"array_{i}_{j}") for j, a in enumerate(x)]
        elif isinstance(x, np.ndarray):
            items.append(InputItem(f"<array {i}>", x, "image", f"array_{i}"))
        else:
            raise TypeError(f"input {i}: expected a path, a PIL image or a numpy array, not {type(x).__name__}")
    seen: set[str] = set()
    unique = [it for it in items if not (it.name in seen or seen.add(it.name))]
    if len(unique) < len(items):
        log.warning("%d input(s) given more than once: each is predicted once", len(items) - len(unique))
    return unique


def _dict_item(name: str, value: Any, frame_folders: bool) -> InputItem:
    if isinstance(value, (str, Path)):
        return _path_item(Path(value), _safe_rel(name), name, frame_folders)
    return InputItem(name, value, "image", _safe_rel(name))


def _safe_rel(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "image"


def array_to_image(a: np.ndarray, name: str = "array") -> Image.Image:
    """H×W or H×W×{1,3,4} RGB(A) array, uint8 or float in [0, 1] -> RGB PIL image (OpenCV BGR needs a[..., ::-1])."""
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)) or min(a.shape[:2]) < 1:
        raise ImageDecodeError(name, f"array of shape {a.shape} is not an H×W, H×W×3 or H×W×4 image")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            hi = 1.0 if np.nanmax(a) <= 1.0 else 255.0  # [0, 1] floats, else 0..255 floats
        elif np.issubdtype(a.dtype, np.integer):
            hi = 255.0 if a.max() <= 255 else float(np.iinfo(a.dtype).max)  # 16-bit images use their full range
        else:
            raise ImageDecodeError(name, f"array dtype {a.dtype} is not an image type")
        a = np.clip(np.nan_to_num(a.astype(np.float64) / hi * 255.0), 0, 255).round().astype(np.uint8)
    return to_rgb(Image.fromarray(np.ascontiguousarray(a)))


def load_item_image(item: InputItem) -> Image.Image:
    """Decode an image item to RGB. Raises ImageDecodeError naming it."""
    if isinstance(item.source, Image.Image):
        return to_rgb(item.source)
    if isinstance(item.source, np.ndarray):
        return array_to_image(item.source, item.name)
    return load_image(item.source)
