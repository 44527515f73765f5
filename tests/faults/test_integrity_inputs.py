"""Integrity on bad input (issue 14): values that were silently wrong, inputs that hung or exhausted memory.

Each test is small and fast: a FIFO, a fake AVI header, a 40x30 image standing in for a 90-megapixel one (PIL's
bomb threshold lowered), a 600-word instruction standing in for 20,000 words.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from expclip.api import ExpCLIP
from expclip.cli import main
from expclip.data.datasets import ItemList
from expclip.data.formats.ferplus import read_vote_file
from expclip.data.formats.static import read_affectnet, read_rafdb
from expclip.data.images import ImageDecodeError, Preprocess, load_image, preprocess_for_model
from expclip.data.inputs import expand_inputs
from expclip.data.loaders import plan_clip
from expclip.data.media import frames_every, scan_video
from expclip.data.safe import AnnotationError
from expclip.data.video import read_video_frames, video_info
from expclip.errors import CheckpointError, ExpclipError, InputError
from expclip.features.extract import extract_images, extract_teacher, extract_videos
from expclip.labels import check_labels, load_label_spec
from expclip.models.teacher import resolve_instruction
from expclip.official import import_official
from expclip.predict.engine import Predictor
from expclip.predict.options import PredictOptions
from expclip.predict.rowfile import RowWriter
from expclip.predict.run import predict_to_file

from support.integrity import MeanColour, deadline, fifo, float_tiff, lying_avi, nan_tiff, rotated_mp4


@pytest.fixture(autouse=True)
def own_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPCLIP_CACHE_DIR", str(tmp_path / "hash-cache"))


# ------------------------------------------------------------------------------------------------ 5: bomb warning
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's warning; a thread's filter wins
def test_a_large_valid_image_decodes_while_another_thread_decodes(tmp_path, monkeypatch):
    """PIL warns (DecompressionBombWarning) between its pixel limit and twice it (90-179 MP by default); a warning
    filter switched on by one thread used to turn that warning into "corrupt" in another."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 40x30 image now stands for a 90-megapixel one
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    Image.new("RGB", (40, 30), (10, 20, 30)).save(big)
    Image.new("RGB", (10, 10)).save(small)
    holding, release = threading.Event(), threading.Event()
    real_load = ImageFile.ImageFile.load

    def load(self):  # the other thread stays inside its decode while this one opens the large image
        if threading.current_thread().name == "holder":
            holding.set()
            release.wait(10)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    filters = list(warnings.filters)
    holder = threading.Thread(target=load_image, args=(small,), name="holder")
    holder.start()
    try:
        assert holding.wait(10)
        img = load_image(big)  # PIL's own warning is fine; being refused for it is not
    finally:
        release.set()
        holder.join(10)
    assert img.size == (40, 30) and img.getpixel((0, 0)) == (10, 20, 30)
    assert warnings.filters == filters
    with pytest.raises(ImageDecodeError, match="decompression bomb"):  # our own limit still holds
        load_image(big, max_pixels=1000)


# ------------------------------------------------------------------------------------------------ 6, 7: predict rows
def _rows(predictor: Predictor, inputs) -> list[dict]:
    return [r for chunk in predictor.run(expand_inputs(inputs)) for r in chunk.rows]


def test_rows_whose_scores_are_not_finite_are_error_rows_without_a_label():
    def encode(x):  # NaN features for bright images (a model that overflowed)
        f = x.mean(dim=(2, 3))
        f[x.mean(dim=(1, 2, 3)) > 0.9] = float("nan")
        return f

    labels = ["happy", "sad"]
    pred = Predictor(encode, lambda f: (f if f.ndim == 2 else f.mean(1))[:, :2], Preprocess("reference", 8, 8), labels,
                     PredictOptions())
    rows = {r["input"]: r for r in _rows(pred, {"white": Image.new("RGB", (8, 8), "white"),
                                                 "dark": Image.new("RGB", (8, 8), (10, 40, 10))})}
    assert rows["dark"]["label"] == "sad" and rows["dark"]["error"] is None
    white = rows["white"]
    assert white["label"] is None and white["score"] is None and white["p_happy"] is None
    assert "non-finite" in white["error"]


def test_max_faces_below_one_is_refused_before_the_model_loads(tmp_path, capsys):
    for n in (0, -1):
        with pytest.raises(InputError, match="max_faces"):
            PredictOptions(max_faces=n)
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    for n in ("0", "-1"):
        assert main(["predict", str(tmp_path / "a.png"), "--max-faces", n, "--backbone", str(tmp_path / "none"),
                     "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert "--max-faces" in err and "none" not in err.replace("--max-faces", ""), err  # before the model


# ------------------------------------------------------------------------------------------------ 8: annotations
def test_an_affectnet_row_with_a_missing_column_is_named_not_read_shifted(tmp_path):
    lists, images = tmp_path / "Manually_Annotated_file_lists", tmp_path / "Manually_Annotated_Images"
    lists.mkdir()
    (images / "1").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (20, 20)).save(images / "1" / name)
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"
    good = '1/a.jpg,0,0,20,20,"1;2;3",3,0.5,0.5\n'
    (lists / "validation.csv").write_text(header + good + "1/b.jpg,0,0,20,20,3,1,0.5\n")  # landmarks missing
    with pytest.raises(AnnotationError, match=r"line 3: expected 9 columns, got 8"):
        read_affectnet(tmp_path, 7)
    (lists / "validation.csv").write_text(good + "1/b.jpg,0,0,20,20,3,1,0.5\n")  # no header: the 9 columns
    with pytest.raises(AnnotationError, match=r"line 2: expected 9 columns, got 8"):
        read_affectnet(tmp_path, 7)


def test_a_line_that_starts_with_a_byte_order_mark_is_read_not_dropped(tmp_path):
    (tmp_path / "EmoLabel").mkdir()
    (tmp_path / "Image" / "aligned").mkdir(parents=True)
    for i in (1, 2):
        Image.new("RGB", (8, 8)).save(tmp_path / "Image" / "aligned" / f"test_000{i}_aligned.jpg")
    # Two lists joined with `cat`: the second one's BOM starts a line in the middle of the file.
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_bytes(
        b"\xef\xbb\xbftest_0001.jpg 1\n\xef\xbb\xbftest_0002.jpg 4\n")
    assert [it["path"] for it in read_rafdb(tmp_path).items] == ["Image/aligned/test_0001_aligned.jpg",
                                                                 "Image/aligned/test_0002_aligned.jpg"]
    votes = tmp_path / "fer2013new.csv"
    head = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
    row = "PrivateTest,fer{:07d}.png,0,10,0,0,0,0,0,0,0,0\n"
    votes.write_bytes(("\ufeff" + head + row.format(1) + "\ufeff" + row.format(2)).encode())
    assert [name for name, _, _ in read_vote_file(votes, "PrivateTest").rows] == ["fer0000001.png", "fer0000002.png"]


# ------------------------------------------------------------------------------------------------ 9: names in CSV
@pytest.fixture(scope="module")
def clip_model(tiny_clip_dir):
    return ExpCLIP.from_pretrained(tiny_clip_dir, "cpu")


def test_input_names_are_written_losslessly_and_resume_keeps_them_apart(clip_model, tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    names = ["a b.png", "a\nb.png", "a\rb.png", "a\\nb.png", os.fsdecode(b"\xff\xfe.png")]
    for i, name in enumerate(names):
        Image.new("RGB", (12, 12), (i * 40, 0, 0)).save(os.fsencode(root / name))
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"rows.{fmt}"
        s = predict_to_file(clip_model, [root], out, faces="none", progress=False)
        assert s.rows == 5 and s.errors == 0
        data = out.read_bytes()
        data.decode("utf-8")  # the file is UTF-8 text, one row per line
        assert data.count(b"\n") == 5 + (fmt == "csv")
        if fmt == "csv":
            import csv

            from expclip.predict.rowfile import csv_unescape

            got = [csv_unescape(r[0]) for r in csv.reader(data.decode().splitlines()[1:])]
        else:
            got = [json.loads(line)["input"] for line in data.decode().splitlines()]
        assert sorted(got) == sorted(str(root / n) for n in names)
        again = predict_to_file(clip_model, [root], out, resume=True, faces="none", progress=False)
        assert again.already_done == 5 and again.rows == 0 and out.read_bytes() == data
    with RowWriter(tmp_path / "w.csv", ["input", "kind", "num_faces", "face", "error"]) as w:
        w.write([{"input": "x.png", "kind": "image", "num_faces": 1, "face": 0, "error": "line one\nline two"}])
    assert (tmp_path / "w.csv").read_bytes().count(b"\n") == 2


# ------------------------------------------------------------------------------------------------ 10: official heads
@pytest.mark.parametrize("shape", [(0, 16), (16, 0), (2**20 + 1, 1)])
def test_import_official_refuses_a_head_with_a_zero_or_absurd_dimension(shape, tmp_path):
    torch.save({"mlp.weight": torch.zeros(shape)}, tmp_path / "ExpCLIP_B32_model.pth")
    with pytest.raises(CheckpointError, match="dimension"):
        import_official(tmp_path / "ExpCLIP_B32_model.pth", tmp_path / "out", backbone=str(tmp_path / "bb"))
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ 11: pixels, frames
def test_float_tiffs_are_scaled_and_an_all_nan_one_is_refused(tmp_path):
    assert load_image(float_tiff(tmp_path / "half.tif", 0.5)).getpixel((0, 0)) == (127, 127, 127)  # as 16-bit: floor
    assert load_image(float_tiff(tmp_path / "one.tif", 1.0)).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(float_tiff(tmp_path / "wide.tif", 200.0)).getpixel((0, 0)) == (200, 200, 200)  # 0..255 floats
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value in cast" either
        with pytest.raises(ImageDecodeError, match="no finite pixel"):
            load_image(nan_tiff(tmp_path / "nan.tif"))


def test_video_rotation_metadata_is_applied(tmp_path):
    path = rotated_mp4(tmp_path / "phone.mp4", -90, size=(48, 32))
    frame = read_video_frames(path, [0, 3])[1]
    assert frame.size == (32, 48)  # shown upright: 90 degrees clockwise
    top, bottom = np.asarray(frame)[4, 16], np.asarray(frame)[44, 16]
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60, (top, bottom)
    assert read_video_frames(rotated_mp4(tmp_path / "flat.mp4", 0), [0])[0].size == (48, 32)


def test_a_header_claiming_two_billion_frames_is_checked_against_the_packets(tmp_path):
    path = lying_avi(tmp_path / "lies.avi", 2**31 - 1, n=40)
    with deadline(20):
        info = video_info(path)
        assert (info.num_frames, info.header_frames) == (40, 2**31 - 1)
        assert info.duration == pytest.approx(40 / 25)
        planned = plan_clip(tmp_path, {"path": "lies.avi"}, 16, "reference")
        assert planned["frames_found"] == 40 and planned["frames_header"] == 2**31 - 1
        assert max(planned["frames"]) < 40
        assert scan_video(path).num_frames == 40  # what predictions count: the packets, never the header
        kept = list(frames_every(path, 5.0))  # --video-fps 5 on the 25 fps clip
    assert [f.index for f in kept] == list(range(0, 40, 5)) and max(f.time for f in kept) < 1.6
    frames = read_video_frames(path, [0, 39])
    assert round(np.asarray(frames[1])[10, 10, 0] / 10) == 39 % 25  # the real last frame, not a stand-in


# ------------------------------------------------------------------------------------------------ 12: label files
@pytest.mark.parametrize("name,text,says", [
    ("l.json", '{"labels": {"happy": "a smile", "sad": "tears", "happy": "a grin"}}', "'happy'"),
    ("l.json", '{"labels": ["a", "b"], "labels": ["c"]}', "'labels'"),
    ("l.yaml", "labels:\n  happy: a smile\n  sad: tears\n  happy: a grin\n", "'happy'"),
    ("l.yaml", "labels: [a, b]\nlabels: [c]\n", "'labels'"),
])
def test_duplicate_keys_in_label_files_are_refused(name, text, says, tmp_path):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match="more than once") as e:
        load_label_spec(tmp_path / name)
    assert says in str(e.value) and str(tmp_path / name) in str(e.value)


# ------------------------------------------------------------------------------------------------ 13: hangs, memory
def test_a_fifo_in_a_dataset_is_skipped_with_its_reason_never_waited_on(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(root / "ok.png")
    fifo(root / "pipe.png")
    fifo(root / "pipe.mp4")
    images = ItemList("d", root, [{"path": "ok.png", "label": None}, {"path": "pipe.png", "label": None}])
    clips = ItemList("v", root, [{"path": "pipe.mp4", "label": 0}], ["happiness"], "video")
    with deadline(30):
        store = extract_images(MeanColour(), images, tmp_path / "s", num_workers=0, progress=False)
        vstore = extract_videos(MeanColour(), clips, tmp_path / "s", num_workers=0, progress=False)
        with pytest.raises(ImageDecodeError, match="not a regular file"):
            load_image(root / "pipe.png")
    assert store.valid().tolist() == [True, False]
    assert "not a regular file" in store.failures[0]["reason"]
    assert "not a regular file" in vstore.failures[0]["reason"]


def test_a_huge_video_fps_samples_each_frame_once_instead_of_looping(tmp_path):
    path = lying_avi(tmp_path / "c.avi", 30, n=30)
    with deadline(5):
        assert [f.index for f in frames_every(path, 1e12)] == list(range(30))
    for bad in (math.inf, math.nan, 0.0, -1.0):
        with pytest.raises(InputError, match="video_fps"):
            PredictOptions(video_fps=bad)


def test_a_preprocessing_size_past_the_limit_is_refused_before_allocating(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"crop_size": {"height": 30000, "width": 30000}, "size": {"shortest_edge": 224}, "do_center_crop": True}))
    # A model's own file out of range: refused by the processor config's schema (a ModelNotAvailableError, as every
    # damaged model file), naming the file, the field and the value.
    with pytest.raises(ExpclipError, match="crop_size.*30000") as e:
        preprocess_for_model(tmp_path, "clip", 224)
    assert str(tmp_path / "preprocessor_config.json") in str(e.value)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": {"shortest_edge": 10**6}}))
    with pytest.raises(ExpclipError, match="shortest_edge"):
        preprocess_for_model(tmp_path, "clip", 224)
    with pytest.raises(InputError, match="image_size"):
        preprocess_for_model(tmp_path, "reference", 30000)  # a config.json claiming 30000-pixel inputs
    with pytest.raises(InputError):
        Preprocess("reference", 0)


def test_an_instruction_past_the_teachers_context_is_refused_before_any_work(teacher, face_pool, tmp_path):
    with deadline(5), pytest.raises(InputError, match="--instruction") as e:
        resolve_instruction(" ".join(["describe"] * 20_000))
    assert "tokens" in str(e.value)
    many_tokens = " ".join(["qzxv"] * 300)  # 300 words, each cut into several pieces by the tokenizer
    resolve_instruction(many_tokens)
    from expclip.data.datasets import unlabelled_images

    with pytest.raises(InputError, match="tokens"):
        extract_teacher(teacher, unlabelled_images(face_pool), tmp_path / "s", many_tokens, num_workers=0,
                        progress=False)
    assert not (tmp_path / "s").exists()


def test_the_repeated_label_check_is_linear():
    labels = [f"label {i}" for i in range(30_000)]
    t0 = time.perf_counter()
    assert check_labels(labels) == labels
    assert time.perf_counter() - t0 < 2
    with pytest.raises(InputError, match="more than once"):
        check_labels(labels + ["label 7"])
