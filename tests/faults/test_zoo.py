"""Fault injection, bad input: every file of the corrupt-file zoo is decoded or recorded as a failure with its
reason, the run goes on, --strict stops at the first one, and the summaries say how many items were used. Clips go
through the package's own planner, clip loader and `extract_videos`, as a list-file dataset would."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import torch

from expclip.cli import main
from expclip.data.datasets import ItemList
from expclip.data.images import ImageDecodeError, Preprocess, load_image, resize_and_crop
from expclip.features.extract import extract_videos
from expclip.features.extraction import ExtractionFailure

from support.zoo import EITHER, write_image_zoo, write_video_zoo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo") / "images"
    return root, write_image_zoo(root)


def test_every_zoo_image_is_decoded_or_refused_with_its_reason(zoo):
    root, cases = zoo
    clip_mode = Preprocess("clip", 32, 32, crop=True, mean=(0.5,) * 3, std=(0.5,) * 3)
    for case in cases:
        if case.reason is not None:
            t0 = time.perf_counter()
            with pytest.raises(ImageDecodeError) as e:
                load_image(root / case.name)
            assert case.name in str(e.value) and case.reason in str(e.value), (case, str(e.value))
            assert time.perf_counter() - t0 < 2, f"{case.name}: refusing it took too long"
            continue
        img = load_image(root / case.name)
        assert img.mode == "RGB" and img.size == case.size, (case, img.mode, img.size)
        for pre in (Preprocess("reference", 32, 32), clip_mode):
            t = pre(img)
            assert t.shape == (3, 32, 32) and torch.isfinite(t).all(), case
    px = {n: load_image(root / n).getpixel((0, 0)) for n in ("gray16.png", "rgba.png", "palette_transparent.png")}
    assert px["gray16.png"] == (127, 127, 127)  # 16-bit scaled to 8-bit, not clipped to white
    assert px["rgba.png"] == px["palette_transparent.png"] == (255, 255, 255)  # transparency on white
    # A 1x6000 sliver is not resized whole for CLIP's crop (224 x 1,344,000 pixels): only its crop window is.
    from unittest import mock

    from PIL import Image

    sliver, sizes, real = load_image(root / "sliver.png"), [], Image.Image.resize
    with mock.patch.object(Image.Image, "resize", lambda im, size, *a, **k: sizes.append(size) or real(im, size, *a,
                                                                                                        **k)):
        assert resize_and_crop(sliver, 224, 224).size == (224, 224)
    assert max(w * h for w, h in sizes) <= 224 * 224


def test_the_zoo_through_extract_is_counted_and_the_run_goes_on(zoo, tiny_clip_dir, tmp_path, capsys):
    root, cases = zoo
    bad = {c.name: c.reason for c in cases if c.reason}
    common = ["--backbone", str(tiny_clip_dir), "--num-workers", "0", "--no-progress", "--batch-size", "4"]
    assert main(["extract", "--data", str(root), "--store", str(tmp_path / "s"), *common]) == 0
    out = capsys.readouterr().out
    assert f"CLIP: {len(cases) - len(bad)} of {len(cases)} items" in out and f"({len(bad)} skipped" in out
    meta = json.loads(next((tmp_path / "s").glob("image-*/meta.json")).read_text())
    reasons = {f["path"]: f["reason"] for f in meta["failures"]}
    assert set(reasons) == set(bad) and meta["n_valid"] == len(cases) - len(bad)
    assert all(bad[name] in reason for name, reason in reasons.items()), reasons
    feats = np.load(next((tmp_path / "s").glob("image-*/features.npy")))
    assert np.isfinite(feats).all() and (np.abs(feats).sum(1) > 0).sum() == len(cases) - len(bad)

    # --strict: the first bad file (in item order) ends the run, named, as a one-line error.
    assert main(["extract", "--data", str(root), "--store", str(tmp_path / "strict"), "--strict", *common]) == 2
    err = capsys.readouterr().err
    first = sorted(bad)[0]
    assert err.startswith("error: ") and first in err and bad[first] in err and "Traceback" not in err
    assert not list((tmp_path / "strict").glob("*/features.npy"))
    # --strict on the complete store of the first run refuses it too, instead of silently using it.
    assert main(["extract", "--data", str(root), "--store", str(tmp_path / "s"), "--strict", *common]) == 2
    assert first in capsys.readouterr().err


def test_eval_results_say_how_many_items_were_scored(zoo, face_test, tiny_clip_dir, tmp_path, capsys):
    root, cases = zoo
    data = tmp_path / "data"
    shutil.copytree(face_test, data)
    for c in cases[:6]:  # ok, png_named (decodable); truncated x2, corrupt, empty (not)
        shutil.copy(root / c.name, data / "Happy" / f"zoo_{c.name}")
    n_bad = sum(c.reason is not None for c in cases[:6])
    args = ["eval", "--data", str(data), "--backbone", str(tiny_clip_dir), "--prompts", "class_name",
            "--store", str(tmp_path / "s"), "--num-workers", "0", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "res")]) == 0
    out = capsys.readouterr().out
    n = 42 + 6
    assert f"scored {n - n_bad} of {n} items ({n_bad} unreadable" in out
    cell = json.loads(next((tmp_path / "res" / "cells").glob("*.json")).read_text())
    assert (cell["num_items"], cell["num_failed"], cell["num_samples"]) == (n, n_bad, n - n_bad)
    assert sum(map(sum, cell["confusion_matrix"])) == n - n_bad
    assert f"{n_bad} could not be read" in (tmp_path / "res" / "results.md").read_text()
    row = (tmp_path / "res" / "results.csv").read_text().splitlines()
    assert row[0].endswith("num_samples,num_failed") and row[1].endswith(f",{n - n_bad},{n_bad}")
    assert main([*args, "--out", str(tmp_path / "res2"), "--strict"]) == 2  # the store exists: strict refuses it
    assert "zoo_" in capsys.readouterr().err and not (tmp_path / "res2").exists()


class ColourMean:
    """A stand-in backbone for :func:`extract_videos` whose "feature" of a frame is its mean colour, so that the
    test can tell which frames the real planner and clip loader decoded."""

    embed_dim, logit_scale, amp_dtype, device = 3, 100.0, None, torch.device("cpu")

    def preprocess(self, mode: str) -> Preprocess:
        return Preprocess("reference", 16, 16)

    def identity(self) -> dict:
        return {"id": "colour-mean", "revision": "test"}

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


@pytest.fixture(scope="module")
def clip_zoo(tmp_path_factory):
    """The clip zoo as a video dataset: each clip with the frame count its list line claims."""
    root = tmp_path_factory.mktemp("clipzoo") / "clips"
    cases = write_video_zoo(root)
    (root.parent / "zoo.txt").write_text("".join(f"{c.name} {c.num_frames} 0\n" for c in cases))
    items = [{"path": c.name, "label": 0, "num_frames": c.num_frames} for c in cases]
    return root, cases, ItemList("zoo", root, items, ["happiness"], "video")


def test_every_zoo_clip_is_decoded_or_recorded_and_the_run_goes_on(clip_zoo, tmp_path):
    _, cases, data = clip_zoo
    store = extract_videos(ColourMean(), data, tmp_path / "s", num_workers=0, progress=False, batch_size=48)
    reasons = {f["path"]: f["reason"] for f in store.failures}
    want = {c.name: c.reason for c in cases if c.reason and c.reason != EITHER}
    assert set(want) <= set(reasons) <= set(want) | {c.name for c in cases if c.reason == EITHER}, reasons
    assert all(p in r for p, r in reasons.items()) and all(want[p] in reasons[p] for p in want), reasons
    feats, valid = store.features(), store.valid()
    assert valid.sum() == len(cases) - len(reasons) and np.isfinite(feats).all()
    red = {c.name: feats[i, :, 0] * 255 for i, c in enumerate(cases) if valid[i]}
    frames = [int(1.25 + 2.5 * k) for k in range(16)]  # PROTOCOL.md's rule for 40 frames
    assert np.allclose(red["good.avi"], [(i % 25) * 10 for i in frames], atol=4)
    short = red["truncated.avi"]  # the stream ends early: its last decoded frame fills the rest
    assert np.allclose(short[:9], red["good.avi"][:9], atol=1) and np.all(short[9:] == short[-1])
    assert np.allclose(red["frames_ok"], [int(0.625 + 1.25 * k) * 10 for k in range(16)], atol=2)  # 20 frames
    # The list claims 40 frames, the folder has 5: sampled from the 5 found (the reference rule repeats frame 0),
    # and reported.
    assert np.allclose(red["frames_short"], 0, atol=2)
    report = store.meta["clips"]
    assert report["frame_count_above_found"] == 1 and report["short_clips"] == 1
    assert report["examples"]["header_count_wrong"] == [{"path": "lying.avi", "header": 2**31 - 1, "found": 40}]
    assert np.allclose(red["lying.avi"], red["good.avi"], atol=4)  # the real frames, not the last one 16 times
    assert report["examples"]["frame_count_above_found"] == [{"path": "frames_short", "listed": 40, "found": 5}]
    with pytest.raises(ExtractionFailure, match="bad_codec.avi"):
        extract_videos(ColourMean(), data, tmp_path / "strict", num_workers=0, progress=False, batch_size=48,
                       strict=True)


def test_the_clip_zoo_through_expclip_extract_is_counted_and_strict_stops(clip_zoo, tiny_clip_dir, tmp_path, capsys):
    root, cases, _ = clip_zoo
    args = ["extract", "--dataset", "list", "--root", str(root), "--option", f"list_path={root.parent / 'zoo.txt'}",
            "--backbone", str(tiny_clip_dir), "--num-workers", "0", "--no-progress", "--device", "cpu"]
    assert main([*args, "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    meta = json.loads(next((tmp_path / "s").glob("video-*/meta.json")).read_text())
    bad = len(meta["failures"])
    assert bad >= sum(c.reason not in (None, EITHER) for c in cases)
    assert f"CLIP: {len(cases) - bad} of {len(cases)} items" in out and f"({bad} skipped" in out, out
    assert "1 clip(s) have fewer frames than listed" in out, out
    assert main([*args, "--store", str(tmp_path / "strict"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad_codec.avi" in err and "Decoder not found" in err, err
    assert "Traceback" not in err and not list((tmp_path / "strict").glob("*/features.npy"))
