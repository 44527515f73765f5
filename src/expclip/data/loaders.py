"""Picklable ``load(i)`` callables for DataLoader workers: face-box crops, in-memory decoders, and video clips.

A video clip is planned in the main process (:func:`plan_clips`: count its frames, choose the sampled indices,
note what is odd about it) and decoded in the workers (:class:`ClipLoader`) as the sampled frames only.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from PIL import Image

from .datasets import ItemList
from .images import ImageDecodeError, Preprocess, load_image
from .video import (
    VideoDecodeError, is_video_file, list_frames, read_frame_folder, read_video_frames, sample_frame_indices,
    video_info,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageLoader:
    """Picklable ``load(i)``: decode ``root/paths[i]`` and preprocess it -> (3,H,W)."""

    root: str
    paths: tuple[str, ...]
    preprocess: Preprocess

    def __call__(self, i: int) -> torch.Tensor:
        return self.preprocess(load_image(Path(self.root) / self.paths[i]))


def crop_box(img: Image.Image, box: list[int], path: str | Path) -> Image.Image:
    """Crop to the face box [x, y, w, h], clipped to the image (AffectNet's boxes can overhang it)."""
    x, y, w, h = box
    left, top = max(0, x), max(0, y)
    right, bottom = min(img.width, x + w), min(img.height, y + h)
    if right <= left or bottom <= top:
        raise ImageDecodeError(path, f"face box {box} lies outside the {img.width}x{img.height} image")
    return img.crop((left, top, right, bottom))


@dataclass(frozen=True)
class ItemImageLoader:
    """``load(i)`` -> (3,H,W): item i decoded by ``decoder`` (or from ``root/path``), cropped to its "box" if any."""

    root: str
    items: tuple[dict, ...]
    preprocess: Preprocess
    decoder: object | None = None

    def __call__(self, i: int) -> torch.Tensor:
        it = self.items[i]
        path = Path(self.root) / it["path"]
        img = self.decoder(Path(self.root), it) if self.decoder is not None else load_image(path)
        if it.get("box") is not None:
            img = crop_box(img, it["box"], path)
        return self.preprocess(img)


def image_loader(data: ItemList, preprocess: Preprocess) -> Callable[[int], torch.Tensor]:
    """The loader of an image ItemList: plain files, or crops / in-memory decoding where its items need it."""
    if data.decoder is None and not any("box" in it for it in data.items):
        return ImageLoader(str(data.root), tuple(it["path"] for it in data.items), preprocess)
    keep = ("path", "box", "row")
    return ItemImageLoader(str(data.root), tuple({k: it[k] for k in keep if k in it} for it in data.items),
                           preprocess, data.decoder)


# ------------------------------------------------------------------------------------------------------ clips
def count_frames(path: Path) -> int:
    """Frames of a clip: image files in a frame folder, or the video's frame count (header or packets)."""
    if is_video_file(path):
        return video_info(path).num_frames
    if path.is_dir():
        n = len(list_frames(path))
        if n == 0:
            raise VideoDecodeError(path, "no frames (no image files in the folder)")
        return n
    raise VideoDecodeError(path, "clip not found (neither a frame folder nor a video file)")


def plan_clip(root: Path, item: dict, num_segments: int, rule: str) -> dict:
    """The item with "frames" (the sampled indices) and "frames_found", or "error" when it cannot be read.

    A list file's "num_frames" is trusted (the reference's rule) unless the clip has fewer frames than it says;
    then the real count is used and the item is marked "frames_listed" so that the store reports it.
    """
    out = dict(item)
    path = root / item["path"]
    try:
        if is_video_file(path):  # the frames the stream holds, and what its header claimed when that differs
            info = video_info(path)
            found = info.num_frames
            if info.header_frames is not None:
                out["frames_header"] = info.header_frames
        else:
            found = count_frames(path)
    except VideoDecodeError as e:
        out["error"] = e.reason
        return out
    except OSError as e:
        out["error"] = f"unreadable ({e.strerror or e})"
        return out
    listed = item.get("num_frames")
    n = found
    if listed is not None and listed <= found:
        n = listed
    elif listed is not None:
        out["frames_listed"] = listed
    out["frames_found"], out["frames_used"] = found, n
    out["frames"] = sample_frame_indices(n, num_segments, rule)
    return out


def plan_clips(data: ItemList, num_segments: int = 16, rule: str = "reference",
               threads: int = 8) -> tuple[list[dict], dict]:
    """Plan every clip of ``data`` (threads: listing folders and reading headers is I/O) -> (items, report).

    The report counts clips of at most ``num_segments`` frames (where ``rule`` matters), clips whose list count exceeds
    their real frames, and unreadable clips; each is also logged.
    """
    with ThreadPoolExecutor(max(1, threads)) as ex:
        items = list(ex.map(lambda it: plan_clip(Path(data.root), it, num_segments, rule), data.items))
    # The short-clip rule applies up to num_segments frames inclusive (the reference samples only when n > T).
    short = [it["path"] for it in items if it.get("frames_used", num_segments + 1) <= num_segments]
    adjusted = [{"path": it["path"], "listed": it["frames_listed"], "found": it["frames_found"]}
                for it in items if "frames_listed" in it]
    errors = [{"path": it["path"], "reason": it["error"]} for it in items if "error" in it]
    header = [{"path": it["path"], "header": it["frames_header"], "found": it["frames_found"]}
              for it in items if "frames_header" in it]
    report = {"clips": len(items), "num_segments": num_segments, "rule": rule, "short_clips": len(short),
              "frame_count_above_found": len(adjusted), "unreadable": len(errors),
              "examples": {"short": short[:20], "frame_count_above_found": adjusted[:20], "unreadable": errors[:20]}}
    if header:  # only when it happened: stores without such clips keep their meta.json as before
        report["header_count_wrong"] = len(header)
        report["examples"]["header_count_wrong"] = header[:20]
    if short:
        log.info("%s: %d of %d clips have at most %d frames (sampled by the %r rule)", data.name, len(short),
                 len(items), num_segments, rule)
    if adjusted:
        log.warning("%s: %d clips have fewer frames than their list says (sampled from the real count), e.g. %s",
                    data.name, len(adjusted), adjusted[0])
    if errors:
        log.warning("%s: %d clips cannot be read, e.g. %s", data.name, len(errors), errors[0]["reason"])
    return items, report


@dataclass(frozen=True)
class ClipLoader:
    """``load(i)`` -> (T,3,H,W): the planned frames of clip i (frame folder or video file), preprocessed."""

    root: str
    paths: tuple[str, ...]
    frames: tuple[tuple[int, ...] | str, ...]  # sampled indices, or why the clip cannot be read
    preprocess: Preprocess

    @classmethod
    def from_plan(cls, root: str | Path, items: list[dict], preprocess: Preprocess) -> "ClipLoader":
        return cls(str(root), tuple(it["path"] for it in items),
                   tuple(it["error"] if "error" in it else tuple(it["frames"]) for it in items), preprocess)

    def __call__(self, i: int) -> torch.Tensor:
        path, plan = Path(self.root) / self.paths[i], self.frames[i]
        if isinstance(plan, str):
            raise VideoDecodeError(path, plan)
        reader = read_video_frames if is_video_file(path) else read_frame_folder
        unique = sorted(set(plan))  # the short-clip rules repeat frames: decode and preprocess each once
        tensors = dict(zip(unique, (self.preprocess(f) for f in reader(path, unique))))
        return torch.stack([tensors[k] for k in plan])
