"""The end-user predictor: tiny models loaded from disk, predictions checked against an independent computation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from expclip import ExpCLIP
from expclip.checkpoint import CheckpointError, save_head
from expclip.data.faces import Box
from expclip.data.images import ImageDecodeError
from expclip.data.synthetic import draw_face
from expclip.data.video import read_video_frames, sample_frame_indices
from expclip.labels import classes_for
from expclip.models.heads import build_head
from expclip.models.hub import ModelNotAvailableError
from expclip.predict.table import PredictionTable
from expclip.prompts import paper_prompts
from expclip.zeroshot import zero_shot_logits

from support.media import FPS, write_face_video, write_frames


class FixedDetector:
    """Boxes by image size, so tests know exactly which crops are scored."""

    def __init__(self, by_size: dict[tuple[int, int], list[Box]]):
        self.by_size = by_size

    def detect(self, image):
        return list(self.by_size.get(image.size, []))


@pytest.fixture(scope="module")
def model(tiny_head_dir):
    return ExpCLIP.from_pretrained(tiny_head_dir, device="cpu")


def expected_probs(model, images, prompts):
    """Independent: preprocess -> encode -> zeroshot.zero_shot_logits with (C,P,D) prompt features -> softmax."""
    bb = model.backbone
    pre = bb.preprocess(model.preprocessing)
    feats = bb.encode_image(torch.stack([pre(im) for im in images]))
    text = [bb.encode_text(p) for p in prompts]
    pf = torch.stack(text) if len({len(p) for p in prompts}) == 1 else text
    return torch.softmax(zero_shot_logits(feats, pf, model.head, bb.logit_scale), dim=-1)


def probs_of(row, labels):
    return torch.tensor([row[f"p_{c}"] for c in labels])


def test_loading_a_head_takes_backbone_and_preprocessing_from_its_config(model, tiny_head_dir, tiny_clip_dir,
                                                                          tmp_path):
    assert model.head is not None and model.preprocessing == "clip" and model.name == "Exp-CLIP tiny"
    assert model.preprocess.mean is not None  # the clip mode normalizes; the reference mode would not
    plain = ExpCLIP.from_pretrained(tiny_clip_dir, device="cpu")
    assert plain.head is None and plain.preprocessing == "reference" and plain.name == "CLIP"
    assert ExpCLIP.from_pretrained(tiny_head_dir.parent, device="cpu").name == "Exp-CLIP tiny"  # a run: seed1
    wrong = save_head(tmp_path / "wrong", build_head("linear", 7, 4),
                      {"head": {"type": "linear", "in_dim": 7, "out_dim": 4},
                       "backbone": {"id": str(tiny_clip_dir), "revision": None},
                       "preprocessing": {"mode": "reference"}})
    with pytest.raises(CheckpointError, match="expects 7-d features"):
        ExpCLIP.from_pretrained(wrong, device="cpu")
    cfg = json.loads((tiny_head_dir / "config.json").read_text())
    head = build_head("linear", cfg["head"]["in_dim"], cfg["head"]["out_dim"])
    moved = save_head(tmp_path / "moved", head, {**cfg, "backbone": {"id": str(tmp_path / "gone"), "revision": None}})
    with pytest.raises(ModelNotAvailableError, match="--backbone"):
        ExpCLIP.from_pretrained(moved, device="cpu")
    assert ExpCLIP.from_pretrained(moved, device="cpu", backbone=str(tiny_clip_dir)).preprocessing == "clip"


def test_import_expclip_stays_light():
    code = "import sys, expclip; assert 'torch' not in sys.modules, 'torch imported'; print(expclip.ExpCLIP.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ExpCLIP"


def test_rows_equal_an_independent_computation_on_the_same_crops(model):
    image = Image.new("RGB", (120, 90), (90, 120, 150))
    image.paste(draw_face("happiness", 60, seed=1), (5, 5))
    image.paste(draw_face("anger", 40, seed=2), (75, 40))
    det = FixedDetector({(120, 90): [Box(75, 40, 40, 40), Box(10, 10, 50, 50)]})
    labels = classes_for(7)
    rows = model.predict(image, faces=det, margin=0.1, as_frame=False)
    assert isinstance(rows, PredictionTable) and len(rows) == 2
    assert [r["face"] for r in rows] == [0, 1] and all(r["num_faces"] == 2 and r["face_detected"] for r in rows)
    boxes = [Box(5, 5, 60, 60), Box(71, 36, 48, 48)]  # margin 0.1 each side, largest first
    assert [(r["box_x"], r["box_y"], r["box_w"], r["box_h"]) for r in rows] == [(b.x, b.y, b.w, b.h) for b in boxes]
    want = expected_probs(model, [b.crop(image) for b in boxes], paper_prompts("ensemble_10", labels))
    got = torch.stack([probs_of(r, labels) for r in rows])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert [r["label"] for r in rows] == [labels[i] for i in want.argmax(1)]
    assert [r["score"] for r in rows] == pytest.approx(want.max(1).values.tolist(), rel=1e-4)


def test_custom_words_templates_and_descriptions_use_the_paper_rule(model, tmp_path):
    image = draw_face("sadness", 64, seed=4)
    spec = tmp_path / "labels.json"
    spec.write_text(json.dumps({"labels": {"glad": ["a smiling face.", "a happy person."], "gloomy": "a sad face.",
                                           "bored": ["a yawning face.", "a bored look.", "a tired person."]}}))
    cases = [
        (["happy", "bored", "happiness"], "ensemble_5",
         [[t.replace("happiness", w) for t in paper_prompts("ensemble_5", ["happiness"])[0]]
          for w in ("happy", "bored")] + paper_prompts("ensemble_5", ["happiness"])),
        ("happy, bored", ["a photo of a {} face.", "{} person"],
         [["a photo of a happy face.", "happy person"], ["a photo of a bored face.", "bored person"]]),
        (str(spec), "ensemble_10", [["a smiling face.", "a happy person."], ["a sad face."],
                                    ["a yawning face.", "a bored look.", "a tired person."]]),
    ]
    for labels, prompts, strings in cases:
        lp = model.label_prompts(labels, prompts)
        assert lp.prompts == strings
        table = model.predict({"me": image}, labels=labels, prompts=prompts, faces="none", as_frame=False)
        assert [c for c in table.columns if c.startswith("p_")] == [f"p_{c}" for c in lp.labels]
        torch.testing.assert_close(probs_of(table[0], lp.labels), expected_probs(model, [image], strings)[0],
                                   rtol=1e-4, atol=1e-6)
        assert table[0]["input"] == "me" and table[0]["face_detected"] is None
    assert model.label_prompts(8).labels == classes_for(8) and model.label_prompts("11").labels == classes_for(11)
    with pytest.raises(ValueError, match="unique|more than once"):
        model.label_prompts(["happy", "happy"])
    with pytest.raises(ValueError, match="unknown prompt set"):
        model.label_prompts(["happy"], "ensemble_7")
    pytest.importorskip("yaml")
    (tmp_path / "labels.yaml").write_text("labels: [calm, tense]\ntemplates: ['a {} face.']\n")
    assert model.label_prompts(tmp_path / "labels.yaml").prompts == [["a calm face."], ["a tense face."]]


def test_no_face_is_a_flagged_row_never_an_exception(model):
    blank = Image.new("RGB", (64, 48), (128, 128, 128))
    det = FixedDetector({})
    whole = model.predict(blank, faces=det, as_frame=False)[0]
    assert whole["face_detected"] is False and whole["num_faces"] == 0 and whole["error"] is None
    assert (whole["box_x"], whole["box_y"], whole["box_w"], whole["box_h"]) == (0, 0, 64, 48)
    labels = classes_for(7)
    torch.testing.assert_close(probs_of(whole, labels), expected_probs(model, [blank], paper_prompts(
        "ensemble_10", labels))[0], rtol=1e-4, atol=1e-6)
    skipped = model.predict(blank, faces=det, no_face="skip", as_frame=False)[0]
    assert skipped["face_detected"] is False and skipped["label"] is None and skipped["p_happiness"] is None


def test_inputs_of_every_kind_and_unreadable_files(model, tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    draw_face("fear", 40, seed=1).save(root / "a.png")
    draw_face("fear", 40, seed=2).save(root / "sub" / "b.jpg")
    (root / "notes.txt").write_text("not an image")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    arr = np.asarray(draw_face("anger", 40, seed=3))
    inputs = [root, Image.fromarray(arr), arr, arr.astype(np.float32) / 255, np.stack([arr, arr])]
    df = model.predict(inputs, faces="none")
    assert list(df["input"]) == [str(root / "a.png"), str(root / "broken.jpg"), str(root / "sub" / "b.jpg"),
                                 "<image 1>", "<array 2>", "<array 3>", "<array 4[0]>", "<array 4[1]>"]
    assert df["error"].notna().tolist() == [False, True, False, False, False, False, False, False]
    assert df.loc[1, "error"] == "not a recognised image format" and df["label"].isna().tolist()[1]
    same = df[df["input"].str.startswith("<")][[f"p_{c}" for c in classes_for(7)]].to_numpy(dtype=float)
    np.testing.assert_allclose(same, np.repeat(same[:1], len(same), axis=0), rtol=1e-4, atol=1e-6)
    assert str(df["face"].dtype) == "Int64" and str(df["face_detected"].dtype) == "boolean"
    threaded = model.predict(inputs, faces="none", num_workers=2, batch_size=3)  # prefetch threads keep the order
    assert threaded["input"].tolist() == df["input"].tolist()
    np.testing.assert_allclose(threaded["score"].to_numpy(dtype=float), df["score"].to_numpy(dtype=float), rtol=1e-4)
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        model.predict(root / "broken.jpg", faces="none", strict=True)
    with pytest.raises(FileNotFoundError, match="nowhere.jpg"):
        model.predict(tmp_path / "nowhere.jpg")
    with pytest.raises(TypeError, match="expected a path"):
        model.predict([42])


class ShapeDetector:
    """Finds the drawn face of :func:`write_face_video` by its non-grey pixels (independent of OpenCV)."""

    def detect(self, image):
        a = np.asarray(image).astype(int)
        mask = np.abs(a - 200).sum(-1) > 60
        if mask.sum() < 100:
            return []
        ys, xs = np.nonzero(mask)
        return [Box(int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))]


def test_video_rows_timestamps_and_the_pooled_clip_row(model, tmp_path):
    path = write_face_video(tmp_path / "talk.mp4", n=40, face_until=30)
    det = ShapeDetector()
    df = model.predict(path, faces=det, as_frame=False)
    frames, clips = [r for r in df if r["kind"] == "frame"], [r for r in df if r["kind"] == "clip"]
    indices = sample_frame_indices(40, 16)
    assert [r["frame"] for r in frames] == indices and len(clips) == 2 and df[-1] is clips[-1]
    assert [r["timestamp"] for r in frames] == pytest.approx([i / FPS for i in indices])
    assert [r["face_detected"] for r in frames] == [i < 30 for i in indices]
    assert [r["track"] for r in frames] == [0 if i < 30 else None for i in indices]  # one face: one track
    track, clip = clips
    assert track["track"] == 0 and clip["track"] is None  # the track's clip row, then the largest face's, last
    assert clip["face_detected"] is True and clip["frame"] is None and clip["timestamp"] is None

    # Independently: the same frames, the same crops, then the paper's video rule through zero_shot_logits.
    labels = classes_for(7)
    images = read_video_frames(path, indices)
    crops = []
    for im in images:
        found = det.detect(im)
        crops.append(found[0].expand(0.2, *im.size).crop(im) if found else im)
    prompts = paper_prompts("ensemble_10", labels)
    torch.testing.assert_close(torch.stack([probs_of(r, labels) for r in frames]),
                               expected_probs(model, crops, prompts), rtol=1e-4, atol=1e-6)
    bb = model.backbone
    feats = bb.encode_image(torch.stack([model.preprocess(c) for c in crops]))
    pf = torch.stack([bb.encode_text(p) for p in prompts])
    want = torch.softmax(zero_shot_logits(feats.unsqueeze(0), pf, model.head, bb.logit_scale), dim=-1)[0]
    torch.testing.assert_close(probs_of(clip, labels), want, rtol=1e-4, atol=1e-6)
    seen = [k for k, i in enumerate(indices) if i < 30]  # the track: only the frames its face is in
    want = torch.softmax(zero_shot_logits(feats[seen].unsqueeze(0), pf, model.head, bb.logit_scale), dim=-1)[0]
    torch.testing.assert_close(probs_of(track, labels), want, rtol=1e-4, atol=1e-6)


def test_video_sampling_by_rate_and_short_clips(model, tmp_path):
    path = write_face_video(tmp_path / "short.mp4", n=12, face_until=12)
    rows = model.predict(path, faces="none", video_fps=4, as_frame=False)
    frames = [r for r in rows if r["kind"] == "frame"]
    assert [r["frame"] for r in frames] == [0, 2, 5, 7, 10]  # every 2.5 frames at 10 fps
    assert [r["timestamp"] for r in frames] == pytest.approx([0.0, 0.2, 0.5, 0.7, 1.0])
    rows = model.predict(path, faces="none", num_frames=16, as_frame=False)  # fewer frames than 16: all of them
    assert [r["frame"] for r in rows if r["kind"] == "frame"] == list(range(12))
    (tmp_path / "junk.mp4").write_bytes(b"\x00junk" * 50)
    bad = model.predict(tmp_path / "junk.mp4", as_frame=False, faces="none")
    assert len(bad) == 1 and bad[0]["kind"] == "clip" and "cannot open" in bad[0]["error"]


# ------------------------------------------------------------------------------------------------ frame folders
EXPRS = classes_for(7)


def clip_probs_by_hand(model, images, prompts):
    """Independent: head on each frame, frames averaged, normalized; each prompt projected and normalized; κ·dot
    averaged over each class's prompts (zeroshot.py's documented rule, written out without it); softmax."""
    bb = model.backbone
    feats = bb.encode_image(torch.stack([model.preprocess(im) for im in images]))
    with torch.no_grad():
        z = torch.nn.functional.normalize(model.head(feats).mean(0), dim=-1)
        logits = []
        for class_prompts in prompts:
            w = torch.nn.functional.normalize(model.head(bb.encode_text(class_prompts)), dim=-1)
            logits.append((bb.logit_scale * w @ z).mean())
    return torch.softmax(torch.stack(logits), dim=-1)


def test_frame_folder_is_one_video_in_natural_order_scored_by_the_paper_rule(model, tmp_path):
    files = write_frames(tmp_path / "clip", 40)  # f1.png ... f40.png
    rows = model.predict(tmp_path / "clip", faces="none", frame_folders=True, as_frame=False)
    frames, clip = [r for r in rows if r["kind"] == "frame"], [r for r in rows if r["kind"] == "clip"]
    tick = 40 / 16
    indices = [int(tick / 2 + tick * k) for k in range(16)]  # PROTOCOL.md's formula
    assert [r["frame"] for r in frames] == indices and len(clip) == 1 and rows[-1] is clip[0]
    assert {r["input"] for r in rows} == {str(tmp_path / "clip")} and clip[0]["error"] is None
    assert all(r["timestamp"] is None for r in rows)  # frames carry no time

    labels, prompts = EXPRS, paper_prompts("ensemble_10", EXPRS)
    natural = [Image.open(files[i]).convert("RGB") for i in indices]
    torch.testing.assert_close(torch.stack([probs_of(r, labels) for r in frames]),
                               expected_probs(model, natural, prompts), rtol=1e-4, atol=1e-6)
    want = clip_probs_by_hand(model, natural, prompts)
    torch.testing.assert_close(probs_of(clip[0], labels), want, rtol=1e-4, atol=1e-6)
    # Name order (f1, f10, f11, ..., f2, ...) samples other frames and gives another clip score: the test can tell.
    by_name = sorted(files, key=lambda p: p.name)
    assert {by_name[i] for i in indices} != {files[i] for i in indices}
    lexical = clip_probs_by_hand(model, [Image.open(by_name[i]).convert("RGB") for i in indices], prompts)
    assert not torch.allclose(lexical, want, rtol=1e-3, atol=1e-5)


def test_frame_folders_found_by_the_documented_rule(tmp_path):
    from expclip.data.inputs import expand_inputs

    root = tmp_path / "data"
    write_frames(root / "clip10", 2)
    write_frames(root / "clip2", 2)
    write_frames(root / "mixed", 2)  # frames and a subfolder of frames: two clips
    write_frames(root / "mixed" / "inner", 2)
    (root / "nested" / "empty").mkdir(parents=True)  # no media, no subfolders: a clip with no frames
    write_frames(root / "nested" / ".hidden", 2)
    (root / "videos").mkdir()
    write_face_video(root / "videos" / "v.mp4", n=4)
    items = expand_inputs(root, frame_folders=True)
    assert [(it.name, it.kind, it.rel) for it in items] == [
        (str(root / "clip2"), "video", "data/clip2"), (str(root / "clip10"), "video", "data/clip10"),
        (str(root / "mixed"), "video", "data/mixed"), (str(root / "mixed" / "inner"), "video", "data/mixed/inner"),
        (str(root / "nested" / "empty"), "video", "data/nested/empty"),
        (str(root / "videos" / "v.mp4"), "video", "data/videos/v.mp4")]
    one = expand_inputs(root / "clip2", frame_folders=True)
    assert [(it.name, it.kind, it.rel) for it in one] == [(str(root / "clip2"), "video", "clip2")]
    named = expand_inputs({"talk": root / "clip2", "pic": root / "clip2" / "f1.png"}, frame_folders=True)
    assert [(it.name, it.kind) for it in named] == [("talk", "video"), ("pic", "image")]
    # The flag off: today's behaviour, every image on its own.
    off = expand_inputs(root)
    assert all(it.kind == "image" for it in off if not it.name.endswith(".mp4")) and len(off) == 9
    assert [it.kind for it in expand_inputs({"x": root / "clip2"})] == ["image"]


def test_frame_folder_flag_off_keeps_one_row_per_image(model, tmp_path):
    write_frames(tmp_path / "clip", 5)
    rows = model.predict(tmp_path / "clip", faces="none", as_frame=False)
    assert [r["kind"] for r in rows] == ["image"] * 5
    assert [r["input"] for r in rows] == sorted(str(tmp_path / "clip" / f"f{i}.png") for i in range(1, 6))


def test_bad_frame_folders_are_rows_never_exceptions(model, tmp_path):
    labels, prompts = EXPRS, paper_prompts("ensemble_10", EXPRS)
    (tmp_path / "empty").mkdir()
    short = write_frames(tmp_path / "short", 3)
    good = write_frames(tmp_path / "damaged", 5)
    (tmp_path / "damaged" / "f3.png").write_bytes(b"\x89PNG truncated")
    (tmp_path / "dead").mkdir()
    for i in (1, 2):
        (tmp_path / "dead" / f"{i}.jpg").write_bytes(b"")
    rows = model.predict([tmp_path / n for n in ("empty", "short", "damaged", "dead")], faces="none",
                         frame_folders=True, as_frame=False)
    by = {n: [r for r in rows if r["input"] == str(tmp_path / n)] for n in ("empty", "short", "damaged", "dead")}

    assert len(by["empty"]) == 1 and by["empty"][0]["kind"] == "clip" and by["empty"][0]["label"] is None
    assert by["empty"][0]["error"] == "no frames (no image files in the folder)"

    # 3 frames when 16 are asked: all three, the last one repeated (the "edge" rule of video files).
    assert [r["frame"] for r in by["short"] if r["kind"] == "frame"] == [0, 1, 2]
    images = [Image.open(f).convert("RGB") for f in short]
    torch.testing.assert_close(probs_of(by["short"][-1], labels),
                               clip_probs_by_hand(model, images + [images[-1]] * 13, prompts), rtol=1e-4, atol=1e-6)

    # One unreadable frame: its row says why, the clip pools the four others.
    frames = [r for r in by["damaged"] if r["kind"] == "frame"]
    assert [r["frame"] for r in frames] == [0, 1, 2, 3, 4] and [bool(r["error"]) for r in frames] == [0, 0, 1, 0, 0]
    assert frames[2]["label"] is None and by["damaged"][-1]["error"] is None
    ok = [Image.open(good[i]).convert("RGB") for i in (0, 1, 3, 4)]
    torch.testing.assert_close(probs_of(by["damaged"][-1], labels),
                               clip_probs_by_hand(model, ok + [ok[-1]] * 11, prompts), rtol=1e-4, atol=1e-6)

    clip = by["dead"][-1]
    assert clip["kind"] == "clip" and clip["label"] is None and "none of the 2 sampled frames" in clip["error"]
    assert all(r["error"] for r in by["dead"])

    with pytest.raises(ImageDecodeError, match="f3.png"):
        model.predict(tmp_path / "damaged", faces="none", frame_folders=True, strict=True)
    with pytest.raises(ValueError, match="frame rate"):
        model.predict(tmp_path / "short", frame_folders=True, video_fps=2)
