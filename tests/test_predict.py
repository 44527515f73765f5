"""The end-user predictor: tiny models loaded from disk, predictions checked against an independent computation."""

from __future__ import annotations

import json
import subprocess
import sys

import av
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
from expclip.predict import PredictionTable
from expclip.prompts import paper_prompts
from expclip.zeroshot import zero_shot_logits

FPS = 10


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
    with pytest.raises(CheckpointError, match="pass one of them"):
        ExpCLIP.from_pretrained(tiny_head_dir.parent, device="cpu")
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


def write_face_video(path, n: int = 40, face_until: int = 30, size=(128, 96)):
    """A clip whose first ``face_until`` frames show a face (drifting right), the rest a blank background."""
    c = av.open(str(path), "w")
    s = c.add_stream("mpeg4", rate=FPS)
    s.width, s.height = size
    s.pix_fmt = "yuv420p"
    s.bit_rate = 8_000_000
    for i in range(n):
        canvas = Image.new("RGB", size, (200, 200, 200))
        if i < face_until:
            canvas.paste(draw_face("happiness" if i < n // 2 else "surprise", 64, seed=3), (10 + i, 16))
        for p in s.encode(av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


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
    frames, clip = [r for r in df if r["kind"] == "frame"], [r for r in df if r["kind"] == "clip"]
    indices = sample_frame_indices(40, 16)
    assert [r["frame"] for r in frames] == indices and len(clip) == 1 and df[-1] is clip[0]
    assert [r["timestamp"] for r in frames] == pytest.approx([i / FPS for i in indices])
    assert [r["face_detected"] for r in frames] == [i < 30 for i in indices]
    assert clip[0]["face_detected"] is True and clip[0]["frame"] is None and clip[0]["timestamp"] is None

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
    torch.testing.assert_close(probs_of(clip[0], labels), want, rtol=1e-4, atol=1e-6)


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
