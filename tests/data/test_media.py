"""Video frames with their container times: every codec and container PyAV writes here, variable frame rates,
edit lists and start offsets, seeking vs decoding forward (expclip.data.media)."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from expclip.data import media
from expclip.data.media import frames_at, frames_every, scan_video
from expclip.data.video import VideoDecodeError, sample_frame_indices

from support.media import as_webm, frame_code, write_avi, write_coded_video

FPS = 25


def container_times(path):
    """Independently: every decoded frame's PyAV ``frame.time`` minus the first one's (s), in decoding order."""
    with av.open(str(path)) as c:
        times = [float(f.time) for f in c.decode(c.streams.video[0])]
    return [t - times[0] for t in times]


def clip(tmp_path, codec, ext, n):
    """H.264/HEVC in WebM the way browsers write it (DocType rewritten), HEVC in AVI by hand (FFmpeg's muxers
    refuse both); everything else through PyAV's own muxers."""
    if ext == "webm" and codec in ("libx264", "libx265"):
        return as_webm(write_coded_video(tmp_path / f"{codec}.mkv", n, codec, FPS), tmp_path / f"{codec}.webm")
    if ext == "avi" and codec == "libx265":
        return write_avi(tmp_path / "hevc.avi", codec, n, FPS)
    return write_coded_video(tmp_path / f"{codec}.{ext}", n, codec, FPS)


CASES = [(c, e) for c in ("libx264", "libx265") for e in ("mp4", "mov", "mkv", "webm", "avi")] + [
    ("libvpx-vp9", "webm"), ("libsvtav1", "mkv"), ("mpeg4", "avi"), ("mjpeg", "avi")]


@pytest.mark.parametrize("codec,ext", CASES)
def test_h264_and_hevc_in_every_container_decode_with_their_times(tmp_path, codec, ext):
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV here has no {codec} encoder")
    path = clip(tmp_path, codec, ext, 30)
    with av.open(str(path)) as c:
        decoder = c.streams.video[0].codec_context.name
    assert decoder == {"libx264": "h264", "libx265": "hevc", "libvpx-vp9": "vp9", "libsvtav1": "libdav1d"}.get(
        codec, codec)
    scan = scan_video(path)
    assert scan.num_frames == 30
    indices = [0, 3, 11, 12, 29]
    got = list(frames_at(path, indices, scan))
    assert [f.index for f in got] == indices and [frame_code(f.image) for f in got] == indices
    assert [f.time for f in got] == pytest.approx([i / FPS for i in indices], abs=1e-6)
    kept = list(frames_every(path, 10))  # 25 fps at 10 a second: frames int(k * 2.5)
    assert [f.index for f in kept] == [int(k * 2.5) for k in range(12)]
    assert [frame_code(f.image) for f in kept] == [f.index for f in kept]


@pytest.mark.parametrize("codec,ext", [("libx264", "mp4"), ("libx265", "mkv"), ("libx264", "avi")])
def test_far_apart_frames_are_reached_by_seeking_to_their_presentation_time(tmp_path, codec, ext, monkeypatch):
    path = write_coded_video(tmp_path / f"long.{ext}", 800, codec, FPS, options={"g": "25"})
    indices = sample_frame_indices(800, 16)
    seen = []
    real = media.presentation_pts
    monkeypatch.setattr(media, "presentation_pts", lambda p, i: seen.append(p) or real(p, i))
    got = list(frames_at(path, indices))
    assert [frame_code(f.image) for f in got] == indices
    assert [f.time for f in got] == pytest.approx([i / FPS for i in indices], abs=1e-6)
    assert bool(seen) == (ext != "avi")  # AVI keeps decode times only: decoded forward, frames counted


@pytest.mark.parametrize("ext", ["mp4", "mkv", "mov"])
def test_variable_frame_rate_times_are_the_containers_not_index_over_fps(tmp_path, ext):
    tb = Fraction(1, 1000)
    pts = [0, 40, 80, 200, 240, 600, 633, 666, 700, 1500, 1540, 1580, 2000, 2010]
    path = write_coded_video(tmp_path / f"vfr.{ext}", len(pts), "libx264", pts=pts, time_base=tb)
    want = container_times(path)
    assert want == pytest.approx([p / 1000 for p in pts], abs=1e-6)
    scan = scan_video(path)
    got = list(frames_at(path, list(range(len(pts))), scan))
    assert [f.time for f in got] == pytest.approx(want, abs=1e-6)
    assert [f.time for f in got] != pytest.approx([i / scan.fps for i in range(len(pts))], abs=1e-3)
    # The frame on screen at every 0.25 s, each once: the last one shown at or before it (frame 4 from 0.24 s to
    # 0.6 s stands for 0.25 and 0.5; frame 8 from 0.7 s to 1.5 s for 0.75, 1 and 1.25).
    kept = list(frames_every(path, 4))
    assert [(f.index, frame_code(f.image)) for f in kept] == [(i, i) for i in (0, 4, 8, 9, 11, 12)]


def test_edit_list_cut_frames_are_neither_counted_nor_shown(tmp_path):
    """Frames before the edit list's start (pts < 0 here) are flagged discarded: the header still counts them."""
    tb = Fraction(1, 1000)
    path = write_coded_video(tmp_path / "cut.mp4", 20, "libx264", pts=[100 * i - 500 for i in range(20)],
                             time_base=tb)
    with av.open(str(path)) as c:
        assert c.streams.video[0].frames == 20  # the header's count includes the cut frames
    scan = scan_video(path)
    assert scan.num_frames == 15
    got = list(frames_at(path, [0, 7, 14], scan))
    assert [frame_code(f.image) for f in got] == [5, 12, 19]
    assert [f.time for f in got] == pytest.approx([0.0, 0.7, 1.4], abs=1e-6)
    assert [f.time for f in got] == pytest.approx([container_times(path)[i] for i in (0, 7, 14)], abs=1e-6)


def test_a_start_offset_is_time_zero_and_avi_b_frames_are_timed_by_decode_order(tmp_path):
    tb = Fraction(1, 1000)
    late = write_coded_video(tmp_path / "late.mp4", 10, "libx264", pts=[1000 + 100 * i for i in range(10)],
                             time_base=tb)
    assert [f.time for f in frames_every(late, 10)] == pytest.approx([i / 10 for i in range(10)], abs=1e-6)
    avi = write_coded_video(tmp_path / "b.avi", 30, "libx264", FPS)  # B-frames: AVI's "pts" come out shuffled
    with av.open(str(avi)) as c:
        raw = [f.pts for f in c.decode(c.streams.video[0])]
    assert raw != sorted(raw)
    got = list(frames_at(avi, list(range(30))))
    assert [frame_code(f.image) for f in got] == list(range(30))
    assert [f.time for f in got] == pytest.approx([i / FPS for i in range(30)], abs=1e-6)


def test_a_rate_above_the_frame_rate_keeps_each_frame_once_and_bad_files_are_decode_errors(tmp_path):
    path = write_coded_video(tmp_path / "c.mp4", 8, "libx264", 10)
    assert [f.index for f in frames_every(path, 1000)] == list(range(8))
    (tmp_path / "junk.mp4").write_bytes(b"\x00junk" * 50)
    with pytest.raises(VideoDecodeError, match="cannot open"):
        scan_video(tmp_path / "junk.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty"):
        scan_video(tmp_path / "empty.mp4")


def test_frames_come_out_upright_as_a_phone_shows_them(tmp_path):
    from support.integrity import rotated_mp4

    path = rotated_mp4(tmp_path / "phone.mp4", -90, size=(48, 32))  # stored landscape, shown portrait
    assert [f.image.size for f in frames_at(path, [0, 3])] == [(32, 48)] * 2
    assert {f.image.size for f in frames_every(path, 100)} == {(32, 48)}
