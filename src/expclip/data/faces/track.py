"""Face tracks: the same person's faces across the sampled frames of a video, by where they are and how they look.

Each frame's faces are matched to the live tracks by one assignment (Hungarian, :func:`assign`) maximizing an
affinity: how well the face sits where the track is expected (its last box moved on by its last velocity): their
overlap (IoU), or for sparsely sampled frames, where a face moves further than its width, the nearness of their
centres relative to the face's size; plus the cosine similarity of their image features (the CLIP features the
predictor computes anyway, so no second model runs). A pair is allowed when it sits close enough (``min_overlap``)
or looks alike enough (``min_similarity``: CLIP features of different faces are also alike, so this is strict and
only re-finds a face that moved far between sampled frames). A face left over starts a new track; a track not seen
for more than ``max_gap`` sampled frames ends, so a face the detector misses for a few frames keeps its id. Ids
count from 0 in order of first appearance. Memory: the live tracks only (a box, a velocity, a mean feature each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .base import Box


@dataclass
class Track:
    id: int
    box: np.ndarray  # x, y, w, h of its last face
    velocity: np.ndarray  # change of the box centre per sampled frame
    appearance: np.ndarray | None  # mean of its faces' normalized features (D,)
    last: int  # the frame (count of frames given to the tracker) it was last seen in
    seen: int  # faces so far


def _xywh(b: Box | Sequence[float]) -> np.ndarray:
    return np.array([b.x, b.y, b.w, b.h] if isinstance(b, Box) else list(b)[:4], dtype=float)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def nearness(a: np.ndarray, b: np.ndarray) -> float:
    """1 for boxes of one size at one place, falling to 0 as their centres move two face sizes apart; scaled down
    by the ratio of their sizes (a face does not double in size between frames)."""
    sa, sb = np.sqrt(max(a[2] * a[3], 1e-9)), np.sqrt(max(b[2] * b[3], 1e-9))
    d = float(np.linalg.norm(a[:2] + a[2:] / 2 - b[:2] - b[2:] / 2))
    return max(0.0, 1 - d / (sa + sb)) * min(sa, sb) / max(sa, sb)


def _unit(x: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(x))
    return x / n if n > 0 else x


class FaceTracker:
    """Assigns a track id to each face of each frame, frame by frame in order.

    Args:
        max_gap: a track survives this many sampled frames without a face of its own.
        min_overlap: how well a face must sit where the track is expected (IoU or :func:`nearness`) to match.
        min_similarity: cosine similarity of features that allows a match without overlap.

    >>> t = FaceTracker()
    >>> t.update([(10, 10, 40, 40), (100, 10, 40, 40)]), t.update([]), t.update([(104, 12, 40, 40)])
    ([0, 1], [], [1])
    """

    def __init__(self, max_gap: int = 4, min_overlap: float = 0.3, min_similarity: float = 0.9):
        self.max_gap, self.min_overlap, self.min_similarity = max_gap, min_overlap, min_similarity
        self.tracks: list[Track] = []  # live ones
        self.frame = -1
        self.next_id = 0

    def _expected(self, t: Track) -> np.ndarray:
        gap = self.frame - t.last
        return t.box + np.array([*(t.velocity * gap), 0.0, 0.0])

    def _fit(self, t: Track, box: np.ndarray, expected: np.ndarray | None = None) -> float:
        expected = self._expected(t) if expected is None else expected
        return max(iou(expected, box), iou(t.box, box), nearness(expected, box))

    def update(self, boxes: Sequence[Box | Sequence[float]], features: np.ndarray | None = None) -> list[int]:
        """Track ids of this frame's faces, in the order given.

        Args:
            boxes: the faces of the next frame (x, y, w, h).
            features: (N,D) image features of those faces, or None (geometry only).
        """
        self.frame += 1
        self.tracks = [t for t in self.tracks if self.frame - t.last <= self.max_gap + 1]
        dets = [_xywh(b) for b in boxes]
        feats = [None] * len(dets) if features is None else [_unit(np.asarray(f, dtype=float)) for f in features]
        pairs = self._assign(dets, feats)
        ids = []
        for j, (box, feat) in enumerate(zip(dets, feats)):
            t = pairs.get(j)
            if t is None:
                t = Track(self.next_id, box, np.zeros(2), feat, self.frame, 0)
                self.next_id += 1
                self.tracks.append(t)
            else:
                gap = self.frame - t.last
                moved = (box[:2] + box[2:] / 2 - t.box[:2] - t.box[2:] / 2) / gap
                if self._fit(t, box) < self.min_overlap:
                    t.velocity = np.zeros(2)  # re-found by its look after a jump: no motion to extrapolate
                else:
                    t.velocity = moved if t.seen == 1 else 0.5 * (t.velocity + moved)
                t.box, t.last = box, self.frame
                if feat is not None:
                    t.appearance = feat if t.appearance is None else t.appearance * t.seen / (t.seen + 1) + feat / (
                        t.seen + 1)
            t.seen += 1
            ids.append(t.id)
        return ids

    def _assign(self, dets: list[np.ndarray], feats: list[np.ndarray | None]) -> dict[int, Track]:
        if not dets or not self.tracks:
            return {}
        n, m = len(self.tracks), len(dets)
        score = np.full((n, m), -np.inf)
        for i, t in enumerate(self.tracks):
            expected = self._expected(t)
            for j, (box, feat) in enumerate(zip(dets, feats)):
                overlap = self._fit(t, box, expected)
                sim = float(_unit(t.appearance) @ feat) if feat is not None and t.appearance is not None else None
                if overlap >= self.min_overlap or (sim is not None and sim >= self.min_similarity):
                    score[i, j] = overlap + (max(sim, 0.0) if sim is not None else 0.0)
        pairs = assign(np.where(np.isfinite(score), -score, 1e9))
        return {j: self.tracks[i] for i, j in pairs.items() if np.isfinite(score[i, j])}


def assign(cost: np.ndarray) -> dict[int, int]:
    """The assignment of rows to columns with the least total cost (each row and column used at most once;
    min(rows, cols) pairs): the Hungarian method with potentials, O(n² m). Here rather than scipy's
    ``linear_sum_assignment``, whose import alone costs a predicting process ~36 MB; a frame has few faces."""
    cost = np.asarray(cost, dtype=float)
    if cost.size == 0:
        return {}
    if cost.shape[0] > cost.shape[1]:
        return {i: j for j, i in assign(cost.T).items()}
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    p, way = np.zeros(m + 1, dtype=int), np.zeros(m + 1, dtype=int)  # p[j]: the row (1-based) in column j
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv, used = np.full(m + 1, np.inf), np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], np.inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            u[p[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:  # flip the augmenting path
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    return {int(p[j]) - 1: j - 1 for j in range(1, m + 1) if p[j]}
