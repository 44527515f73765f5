"""The end-user predictor's engine: inputs (paths, folders, PIL images, arrays, videos) -> faces -> scored rows.

It knows nothing of models: it is given ``encode`` (preprocessed crops (N,3,H,W) -> CLIP features (N,D)) and
``score`` (features (N,D), or (N,T,D) for a clip -> logits (N,C), the paper's rule). :class:`expclip.ExpCLIP`
wires both. Rows come out as they are computed, input by input, so that callers can stream them to disk.

One row per face (largest first) of each image or sampled video frame, plus clip-level rows per video whose
logits come from the paper's video rule (head on each frame's face, frames averaged, then normalized): one per
face track (the same person across frames, :class:`~expclip.data.faces.FaceTracker`), then one over each frame's
largest face, always last. A video is a video file (frames and their container times from
:mod:`expclip.data.media`) or a frame folder (:func:`expclip.data.video.open_clip`); both are sampled alike, read
forward and scored batch by batch with running sums, so memory does not grow with a video's length. A live
source is scored frame by frame into sliding windows (:meth:`Predictor.stream`, :mod:`.windows`).
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch
from PIL import Image

from ..data.faces import Box, FaceTracker, find_faces, whole_image_box
from ..data.images import ImageDecodeError
from ..data.inputs import InputItem, load_item_image
from ..data.media import TimedFrame, frames_at, frames_every, scan_video
from ..data.video import VideoDecodeError, open_clip, sample_frame_indices
from ..errors import InputError
from .options import PredictOptions
from .table import prob_column
from .windows import Decided, SlidingWindows, wall_clock

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ rows
@dataclass
class Chunk:
    """Rows of one input, in order; ``done`` on its last chunk (a video gives one chunk per frame batch)."""

    item: InputItem
    rows: list[dict]
    done: bool
    image: Image.Image | None = None


@dataclass
class _Crop:
    row: dict
    pixels: torch.Tensor | None  # (3,H,W) preprocessed, None when not scored
    features: torch.Tensor | None = None  # (D,) after encoding


@dataclass
class _Prepared:
    item: InputItem
    crops: list[_Crop] = field(default_factory=list)
    image: Image.Image | None = None


def _row(item: InputItem, kind: str, frame: int | None = None, timestamp: float | None = None, face: int | None = None,
         num_faces: int | None = None, detected: bool | None = None, box: Box | None = None,
         error: str | None = None) -> dict:
    return {"input": item.name, "kind": kind, "frame": frame, "timestamp": timestamp, "face": face, "track": None,
            "num_faces": num_faces, "face_detected": detected,
            "box_x": box.x if box else None, "box_y": box.y if box else None,
            "box_w": box.w if box else None, "box_h": box.h if box else None,
            "face_score": box.score if box else None, "label": None, "score": None, "error": error}


def _crops(image: Image.Image, item: InputItem, kind: str, opts: PredictOptions, preprocess: Callable,
           frame: int | None = None, timestamp: float | None = None) -> list[_Crop]:
    """The face crops of one image or frame (largest first), or its fallback crop when none is found."""
    if opts.detector is None:
        box = whole_image_box(image)
        return [_Crop(_row(item, kind, frame, timestamp, 0, 1, None, box), preprocess(image))]
    boxes = find_faces(image, opts.detector, opts.margin, opts.max_faces, opts.min_face, opts.face_threshold)
    if boxes:
        return [_Crop(_row(item, kind, frame, timestamp, k, len(boxes), True, b), preprocess(b.crop(image)))
                for k, b in enumerate(boxes)]
    box = whole_image_box(image)
    pixels = preprocess(image) if opts.no_face == "whole" else None
    return [_Crop(_row(item, kind, frame, timestamp, 0, 0, False, box), pixels)]


NON_FINITE = "non-finite (NaN/Inf) scores from the model"


def _fill(crops: list[_Crop], labels: Sequence[str], logits: torch.Tensor) -> None:
    """Write label, score and probabilities (softmax over the averaged logits) into the crops' rows; a row whose
    scores are not finite is an error row without a label (as extraction records NaN features)."""
    finite = torch.isfinite(logits).all(dim=-1).cpu().tolist()
    probs = torch.softmax(logits.float(), dim=-1).cpu().tolist()
    for crop, p, ok in zip(crops, probs, finite):
        if not ok:
            crop.row["error"] = NON_FINITE
            continue
        best = max(range(len(p)), key=p.__getitem__)
        crop.row["label"], crop.row["score"] = labels[best], p[best]
        crop.row.update({prob_column(c): v for c, v in zip(labels, p)})


def _blank_probs(rows: Iterable[dict], labels: Sequence[str]) -> None:
    for r in rows:
        for c in labels:
            r.setdefault(prob_column(c), None)


# ------------------------------------------------------------------------------------------------ engine
class Predictor:
    """Turns input items into scored rows, batching crops across images.

    Args:
        encode: (N,3,H,W) preprocessed crops -> (N,D) features.
        score: (N,D) features or (N,T,D) frame features of N clips -> (N,C) logits.
        preprocess: PIL RGB image -> (3,H,W) tensor.
        labels: the C class names, in the order of ``score``'s columns.
        project: (N,D) frame features -> (N,E) head outputs before normalization (what a clip's frames average).
        classify: (N,E) means of ``project`` over clips -> (N,C) logits. Without these two, clips average the
            features and ``score`` the mean: the same for the paper's linear head and plain CLIP only.
    """

    def __init__(self, encode: Callable[[torch.Tensor], torch.Tensor], score: Callable[[torch.Tensor], torch.Tensor],
                 preprocess: Callable[[Image.Image], torch.Tensor], labels: Sequence[str], opts: PredictOptions,
                 project: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 classify: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.encode, self.score, self.preprocess = encode, score, preprocess
        self.labels, self.opts = list(labels), opts
        self.project = project or (lambda f: f.float())
        self.classify = classify or score

    def run(self, items: Sequence[InputItem]) -> Iterator[Chunk]:
        """Chunks of rows in input order: each image's rows in one chunk, each video's in several."""
        pending: list[_Prepared] = []
        for prep in self._prefetch(items):
            if prep.item.kind == "video":
                yield from self._flush(pending)
                yield from self._video(prep.item)
                continue
            pending.append(prep)
            if sum(c.pixels is not None for p in pending for c in p.crops) >= self.opts.batch_size:
                yield from self._flush(pending)
        yield from self._flush(pending)

    def _prefetch(self, items: Sequence[InputItem]) -> Iterator[_Prepared]:
        """Images decoded and searched for faces ahead of the model, in threads when num_workers > 0."""
        def prep(item: InputItem) -> _Prepared:
            return _Prepared(item) if item.kind == "video" else self._prepare_image(item)

        if self.opts.num_workers <= 0:
            yield from map(prep, items)
            return
        with ThreadPoolExecutor(self.opts.num_workers, thread_name_prefix="expclip-decode") as ex:
            it = iter(items)
            window = deque(ex.submit(prep, x) for _, x in zip(range(4 * self.opts.num_workers), it))
            while window:
                fut = window.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    window.append(ex.submit(prep, nxt))
                yield fut.result()

    def _prepare_image(self, item: InputItem) -> _Prepared:
        try:
            image = load_item_image(item)
        except ImageDecodeError as e:
            if self.opts.strict:
                raise
            log.warning("skipped %s", e)
            return _Prepared(item, [_Crop(_row(item, "image", error=e.reason), None)])
        crops = _crops(image, item, "image", self.opts, self.preprocess)
        return _Prepared(item, crops, image if self.opts.keep_images else None)

    def _encode(self, crops: list[_Crop]) -> None:
        """Fill ``features`` of the crops that have pixels, ``batch_size`` at a time, and score them."""
        todo = [c for c in crops if c.pixels is not None]
        bs = self.opts.batch_size
        for i in range(0, len(todo), bs):
            part = todo[i : i + bs]
            feats = self.encode(torch.stack([c.pixels for c in part]))
            _fill(part, self.labels, self.score(feats))
            for c, f in zip(part, feats):
                c.features, c.pixels = f, None

    def _flush(self, pending: list[_Prepared]) -> Iterator[Chunk]:
        self._encode([c for p in pending for c in p.crops])
        for p in pending:
            rows = [c.row for c in p.crops]
            _blank_probs(rows, self.labels)
            yield Chunk(p.item, rows, True, p.image)
        pending.clear()

    def frame_indices(self, num_frames: int) -> list[int]:
        """Sampled frames of a clip of ``num_frames`` (the paper's rule for ``num_frames`` of the options: clips
        with fewer frames give all of theirs, then the last repeated)."""
        return sample_frame_indices(num_frames, self.opts.num_frames, rule="edge")

    def _sampled(self, item: InputItem) -> tuple[Iterator[TimedFrame], Counter, int]:
        """The sampled frames of a video in order (each once), how often the sampler takes each (a clip shorter
        than ``num_frames`` repeats its last), and how many distinct frames that is (0: not known ahead)."""
        path = Path(item.source)
        if path.is_dir() and self.opts.video_fps is not None:
            raise InputError("video_fps needs a frame rate, which a frame folder does not have; use num_frames")
        if self.opts.video_fps is not None:
            return frames_every(path, self.opts.video_fps), Counter(), 0
        if path.is_dir():
            clip = open_clip(path, frame_order="natural")
            total = clip.num_frames
        else:
            scan = scan_video(path)
            total = scan.num_frames
        indices = self.frame_indices(total)
        if total < len(indices):
            log.info("%s: %d frames, fewer than the %d asked: each is used, the last one repeated", item.name, total,
                     len(indices))
        unique = sorted(set(indices))
        if path.is_dir():
            frames = (TimedFrame(i, None, clip.read([i])[0]) for i in unique)
        else:
            frames = frames_at(path, unique, scan)
        return frames, Counter(indices), len(unique)

    def _score_frames(self, item: InputItem, frames: list[TimedFrame], tracker: FaceTracker | None,
                      unreadable: list[int]) -> list[tuple[TimedFrame, list[_Crop], dict[int | None, torch.Tensor]]]:
        """Crops, features, scores and track ids of consecutive frames, and for each frame the head outputs that
        stand for it in pooled rows: key None its largest face (or its whole-image crop when none was found), key
        k the face of track k."""
        per_frame = []
        for f in frames:
            if isinstance(f.image, ImageDecodeError):  # an unreadable image of a frame folder: a row says why
                if self.opts.strict:
                    raise f.image
                unreadable.append(f.index)
                per_frame.append((f, [_Crop(_row(item, "frame", f.index, f.time, error=f.image.reason), None)]))
                continue
            per_frame.append((f, _crops(f.image, item, "frame", self.opts, self.preprocess, f.index, f.time)))
        self._encode([c for _, fc in per_frame for c in fc])
        scored = [c for _, fc in per_frame for c in fc if c.features is not None]
        emb = dict(zip(map(id, scored), self.project(torch.stack([c.features for c in scored])))) if scored else {}
        out = []
        for f, fc in per_frame:
            faces = [c for c in fc if c.row["face_detected"] and c.features is not None]
            if tracker is not None:
                ids = tracker.update([(c.row["box_x"], c.row["box_y"], c.row["box_w"], c.row["box_h"]) for c in faces],
                                     torch.stack([c.features for c in faces]).cpu().numpy() if faces else None)
                for c, k in zip(faces, ids):
                    c.row["track"] = k
            keyed: dict[int | None, torch.Tensor] = {}
            for c in fc:
                if c.features is not None and c.row["face"] == 0:
                    keyed[None] = emb[id(c)]
                if c.row["track"] is not None:
                    keyed[c.row["track"]] = emb[id(c)]
            out.append((f, fc, keyed))
        return out

    def _video(self, item: InputItem) -> Iterator[Chunk]:
        pools: dict[int | None, list] = {}  # key (None: largest face; k: track k) -> [sum of head outputs, weight]
        any_face, unreadable, count = False, [], 0
        tracker = FaceTracker() if self.opts.detector is not None else None
        try:
            frames, weights, count = self._sampled(item)
            for part in _batches(frames, max(1, self.opts.batch_size)):
                rows = []
                for f, fc, keyed in self._score_frames(item, part, tracker, unreadable):
                    any_face |= bool(fc[0].row["face_detected"])
                    w = weights.get(f.index, 1)
                    for key, e in keyed.items():
                        pool = pools.setdefault(key, [torch.zeros_like(e), 0])
                        pool[0] += w * e
                        pool[1] += w
                    rows += [c.row for c in fc]
                part.clear()  # its decoded frames, now: else they live on while the next batch is decoded
                _blank_probs(rows, self.labels)
                yield Chunk(item, rows, False)
        except VideoDecodeError as e:
            if self.opts.strict:
                raise
            log.warning("skipped %s", e)
            yield Chunk(item, [self._pooled_row(item, "clip", None, None, 0, error=e.reason)], True)
            return
        error = None
        if unreadable:
            log.warning("%s: %d of %d sampled frames unreadable (frames %s): the clip row pools the others",
                        item.name, len(unreadable), count, unreadable[:10])
            if len(unreadable) == count:
                error = f"none of the {count} sampled frames could be read"
        detected = any_face if self.opts.detector is not None else None
        rows = [self._pooled_row(item, "clip", k, *pools[k], detected=True) for k in sorted(k for k in pools if k is
                                                                                                 not None)]
        rows.append(self._pooled_row(item, "clip", None, *pools.get(None, (None, 0)), detected=detected,
                                     error=error))
        yield Chunk(item, rows, True)

    def _pooled_row(self, item: InputItem, kind: str, track: int | None, total: torch.Tensor | None, weight: float,
                    detected: bool | None = None, error: str | None = None) -> dict:
        """A clip or window row: the paper's rule on the mean of ``weight`` frames' head outputs (sum ``total``)."""
        crop = _Crop(_row(item, kind, detected=detected, error=error), None)
        crop.row["track"] = track
        if total is not None and weight and error is None:
            _fill([crop], self.labels, self.classify((total / weight).unsqueeze(0)))
        _blank_probs([crop.row], self.labels)
        return crop.row

    # -------------------------------------------------------------------------------------------- live sources
    def stream(self, item: InputItem, frames: Iterable[TimedFrame], windows: SlidingWindows) -> Iterator[Chunk]:
        """Rows of a live source as it plays: each frame's rows as soon as it is scored, then a ``window`` row per
        track (and one over each frame's largest face) whenever a window is complete; at the end of the source
        the last, partial window. Memory: the frames of one window."""
        tracker = FaceTracker() if self.opts.detector is not None else None
        unreadable: list[int] = []
        for f in frames:
            rows = []
            for _, fc, keyed in self._score_frames(item, [f], tracker, unreadable):
                for c in fc:
                    c.row["wall_time"] = wall_clock(f.wall_time)
                rows += [c.row for c in fc]
                detected = bool(fc[0].row["face_detected"]) if self.opts.detector is not None else None
                decided = windows.add(f.index, f.time, keyed, detected)
            _blank_probs(rows, self.labels)
            yield Chunk(item, rows + self._window_rows(item, decided), False)
        yield Chunk(item, self._window_rows(item, windows.finish()), True)

    def _window_rows(self, item: InputItem, decided: list[Decided]) -> list[dict]:
        rows = []
        for w in decided:
            for key in sorted(k for k in w.sums if k is not None) + ([None] if None in w.sums else []):
                total, n = w.sums[key]
                row = self._pooled_row(item, "window", key, total, n, True if key is not None else w.detected)
                row.update(frame=w.last_index, timestamp=w.end, window_start=w.start, window_frames=w.frames,
                           wall_time=wall_clock())
                rows.append(row)
        return rows


def _batches(frames: Iterable[TimedFrame], size: int) -> Iterator[list[TimedFrame]]:
    part: list[TimedFrame] = []
    for f in frames:
        part.append(f)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part
