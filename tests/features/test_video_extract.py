"""Video clips into the store: planning (frame counts, short clips, bad clips), decoding, (N,T,D) features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from expclip.data.datasets import ItemList
from expclip.data.images import Preprocess, load_image
from expclip.data.loaders import ClipLoader, plan_clips
from expclip.features.extract import extract_videos
from expclip.features.service import find_image_store
from expclip.features.store import FeatureStore, StoreError

from support import media
from support import native as nf


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A video ItemList with one clip of every kind the planner must handle."""
    root = tmp_path_factory.mktemp("clips")
    media.frame_folder(root / "long", 40)
    media.frame_folder(root / "short", 5)
    media.frame_folder(root / "overcounted", 20)
    (root / "empty").mkdir()
    media.video(root / "movie.mp4", 50)
    (root / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    items = [
        {"path": "long", "label": 0, "num_frames": 30},  # the list's count is trusted (<= the 40 found)
        {"path": "short", "label": 1},
        {"path": "overcounted", "label": 2, "num_frames": 33},  # the list says more than the folder has
        {"path": "empty", "label": 0},
        {"path": "movie.mp4", "label": 1},
        {"path": "broken.mp4", "label": 2},
        {"path": "missing", "label": 0},
    ]
    return ItemList("toy-clips", root, items, nf.CANON[:3], "video")


def test_plan_trusts_the_list_count_and_reports_odd_clips(clips):
    items, report = plan_clips(clips, 16, "reference")
    by = {it["path"]: it for it in items}
    assert by["long"]["frames"] == sample(30) and by["long"]["frames_found"] == 40
    assert by["short"]["frames"] == [0] * 16
    assert by["overcounted"]["frames"] == sample(20) and by["overcounted"]["frames_listed"] == 33
    assert by["movie.mp4"]["frames"] == sample(50)
    assert {p for p in by if "error" in by[p]} == {"empty", "broken.mp4", "missing"}
    assert "no frames" in by["empty"]["error"] and "not found" in by["missing"]["error"]
    assert report["short_clips"] == 1 and report["frame_count_above_found"] == 1 and report["unreadable"] == 3
    edge, _ = plan_clips(clips, 16, "edge")
    assert next(it for it in edge if it["path"] == "short")["frames"] == [0, 1, 2, 3, 4] + [4] * 11


def sample(n):
    return [int(n / 32 + n / 16 * k) for k in range(16)]


def test_clip_loader_decodes_the_planned_frames(clips):
    items, _ = plan_clips(clips, 16, "edge")
    load = ClipLoader.from_plan(clips.root, items, Preprocess("reference", 8, 8))
    for i, it in enumerate(items):
        if "error" in it:
            continue
        x = load(i)
        assert x.shape == (16, 3, 8, 8)
        got = [round(float(f[0].mean()) * 255 / 10) + 25 * round(float(f[1].mean()) * 255 / 30) for f in x]
        assert got == it["frames"], it["path"]


def test_extract_videos_stores_per_frame_features(backbone, clips, tmp_path):
    store = extract_videos(backbone, clips, tmp_path, num_workers=0, progress=False, batch_size=32)
    feats = store.features()
    assert feats.shape == (7, 16, backbone.embed_dim) and store.key["sampling"] == {"rule": "reference",
                                                                                     "num_segments": 16}
    assert {f["path"] for f in store.failures} == {"empty", "broken.mp4", "missing"}
    assert store.meta["clips"]["short_clips"] == 1 and store.meta["clips"]["frame_count_above_found"] == 1
    # Faithfulness: the stored frames are CLIP of exactly the sampled frames, frame by frame.
    pre = backbone.preprocess("reference")
    frames = sorted((clips.root / "long").iterdir())
    want = backbone.encode_image(torch.stack([pre(load_image(frames[i])) for i in sample(30)]))
    assert np.allclose(feats[0], want.numpy(), atol=1e-5)
    # The store is found by key without a model, and a second run computes nothing.
    found = find_image_store(tmp_path, str(backbone.resolved.path), clips)
    assert found.path == store.path
    again = extract_videos(backbone, clips, tmp_path, num_workers=0, progress=False)
    assert again.path == store.path and json.loads((store.path / "meta.json").read_text())["complete"]
    # Another sampling rule is another store; only the short clip's frames differ.
    edge = extract_videos(backbone, clips, tmp_path, sampling="edge", num_workers=0, progress=False)
    assert edge.path != store.path
    fe, fr = edge.features(), store.features()
    assert np.allclose(fe[0], fr[0]) and not np.allclose(fe[1], fr[1])
    assert np.allclose(fr[1], fr[1][:1])  # the reference rule: frame 0 sixteen times
    with pytest.raises(StoreError, match="no complete video store"):
        find_image_store(tmp_path, str(backbone.resolved.path), clips, sampling="edge", num_segments=8)


def test_video_datasets_extract_from_native_folders(backbone, tmp_path):
    nf.mafw(tmp_path / "MAFW", media="clips")
    from expclip.data.registry import load_dataset

    [fold1] = load_dataset("MAFW", tmp_path / "MAFW", folds=[1])
    store = extract_videos(backbone, fold1, tmp_path / "store", num_workers=0, progress=False)
    assert isinstance(store, FeatureStore) and not store.failures and store.features().shape[:2] == (3, 16)
