"""Face tracks (expclip.data.faces.track): ids stable across crossings and missed detections, tracks that end,
appearance that re-finds a face that moved far."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from expclip.data.faces import track
from expclip.data.faces.track import FaceTracker


def test_the_docstring_example_runs():
    assert doctest.testmod(track, raise_on_error=True).attempted > 0


def test_two_faces_crossing_paths_keep_their_ids_through_a_missed_detection():
    """A walks right, B walks left 12 px lower; they cross at frame 5, and A is missed at frames 3 and 4
    (its expected box moves on by its velocity meanwhile)."""
    tracker = FaceTracker()
    got = []
    for f in range(11):
        a, b = (20 * f, 10, 40, 40), (200 - 20 * f, 22, 40, 40)
        faces = [b] if f in (3, 4) else [b, a] if f % 2 else [a, b]  # any order
        ids = tracker.update(faces)
        got.append(dict(zip(["b"] if f in (3, 4) else ["b", "a"] if f % 2 else ["a", "b"], ids)))
    assert all(g.get("a", 0) == 0 and g["b"] == 1 for g in got), got


def test_a_track_ends_after_max_gap_missed_frames_and_ids_follow_first_appearance():
    tracker = FaceTracker(max_gap=2)
    assert tracker.update([(0, 0, 50, 50)]) == [0]
    assert tracker.update([]) == [] and tracker.update([]) == []
    assert tracker.update([(2, 2, 50, 50)]) == [0]  # missed for 2 frames: still track 0
    for _ in range(3):
        tracker.update([])
    assert tracker.update([(2, 2, 50, 50), (300, 0, 50, 50)]) == [1, 2]  # 3 missed: a new track


def test_features_refind_a_face_that_moved_far_and_keep_look_alikes_apart_when_they_do_not_overlap():
    rng = np.random.default_rng(0)
    alice, bob = rng.normal(size=32), rng.normal(size=32)
    tracker = FaceTracker()
    assert tracker.update([(0, 0, 40, 40), (200, 0, 40, 40)], np.stack([alice, bob])) == [0, 1]
    # Far from where either was: matched by look alone (cos >= 0.9), crossing over.
    moved = np.stack([bob + 0.1 * rng.normal(size=32), alice + 0.1 * rng.normal(size=32)])
    assert tracker.update([(20, 300, 40, 40), (400, 300, 40, 40)], moved) == [1, 0]
    stranger = rng.normal(size=32)
    assert tracker.update([(600, 600, 40, 40)], stranger[None]) == [2]
    # Overlap is enough with a dissimilar look (a face turning away changes its CLIP features).
    assert tracker.update([(22, 302, 40, 40)], rng.normal(size=(1, 32))) == [1]


def test_the_assignment_is_the_least_cost_one_as_scipy_finds_it():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(1)
    for n, m in [(1, 1), (2, 3), (3, 2), (4, 4), (6, 5), (1, 7), (8, 8)]:
        for _ in range(20):
            cost = rng.normal(size=(n, m)).round(1)  # ties too
            pairs = track.assign(cost)
            rows, cols = linear_sum_assignment(cost)
            assert len(pairs) == min(n, m) and len(set(pairs.values())) == len(pairs)
            assert sum(cost[i, j] for i, j in pairs.items()) == pytest.approx(cost[rows, cols].sum())
    assert track.assign(np.zeros((0, 3))) == {}
