"""Frame sampling (PROTOCOL.md's rule) and the frame-folder / video-file readers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from expclip.data.images import ImageDecodeError
from expclip.data.video import (
    VideoDecodeError, list_frames, open_clip, read_frame_folder, read_video_frames, sample_frame_indices, timestamps,
    video_info,
)

from support.media import frame_index, write_video


@pytest.mark.parametrize("n", [17, 20, 47, 144, 1000])
def test_reference_rule_for_long_clips(n):
    tick = n / 16
    assert sample_frame_indices(n) == [int(tick / 2 + tick * k) for k in range(16)]
    assert sample_frame_indices(n, rule="edge") == sample_frame_indices(n)


@pytest.mark.parametrize("n", [1, 8, 16])
def test_short_clips_repeat_frame_zero_in_reference_and_pad_with_the_last_in_edge(n):
    assert sample_frame_indices(n) == [0] * 16  # the reference's artefact (16 frames included: > is strict)
    assert sample_frame_indices(n, rule="edge") == list(range(n)) + [n - 1] * (16 - n)


def test_sampling_refuses_nonsense():
    with pytest.raises(ValueError):
        sample_frame_indices(0)
    with pytest.raises(ValueError):
        sample_frame_indices(10, rule="middle")


def test_video_reader_decodes_the_requested_frames(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 200)
    info = video_info(path)
    assert info.num_frames == 200 and info.fps == pytest.approx(25)
    idx = sample_frame_indices(info.num_frames) + [0, 199, 3, 3]
    frames = read_video_frames(path, idx, info)
    assert [frame_index(f) for f in frames] == idx
    assert timestamps([0, 25, 50], info.fps) == [0.0, 1.0, 2.0]


def test_reading_past_the_end_gives_the_last_frame(tmp_path):
    path = write_video(tmp_path / "short.mp4", 10)
    frames = read_video_frames(path, [2, 9, 40])
    assert [frame_index(f) for f in frames] == [2, 9, 9]


def test_bad_videos_are_named_errors(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty.mp4: empty file"):
        video_info(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(VideoDecodeError, match="junk.mp4"):
        video_info(tmp_path / "junk.mp4")


def test_frame_folder_reader_uses_sorted_names(tmp_path):
    for i in (10, 2, 1):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(tmp_path / f"{i:03d}.jpg", quality=100)
    frames = read_frame_folder(tmp_path, [0, 2, 2])
    assert [round(np.asarray(f)[0, 0, 0] / 20) for f in frames] == [1, 10, 10]
    with pytest.raises(VideoDecodeError, match="has 3 frames"):
        read_frame_folder(tmp_path, [5])
    with pytest.raises(VideoDecodeError, match="not found"):
        read_frame_folder(tmp_path / "nope", [0])


def test_natural_frame_order_for_predict_and_name_order_for_the_benchmarks(tmp_path):
    names = ["frame10.jpg", "frame2.jpg", "frame1.jpg", "Frame3.jpg", "frame02.png", ".hidden1.jpg", "notes.txt"]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    assert [p.name for p in list_frames(tmp_path)] == ["Frame3.jpg", "frame02.png", "frame1.jpg", "frame10.jpg",
                                                       "frame2.jpg"]  # the reference's sorted(): unchanged
    assert [p.name for p in list_frames(tmp_path, "natural")] == ["frame1.jpg", "frame2.jpg", "frame02.png",
                                                                  "Frame3.jpg", "frame10.jpg"]
    with pytest.raises(ValueError, match="frame order"):
        list_frames(tmp_path, "date")


def test_open_clip_reads_frame_folders_frame_by_frame(tmp_path):
    for i in (1, 2, 10):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(tmp_path / f"{i}.png")
    (tmp_path / "3.png").write_bytes(b"not a png")
    clip = open_clip(tmp_path)
    assert (clip.num_frames, clip.fps) == (4, None)
    got = clip.read([0, 3, 2, 3])
    assert [round(np.asarray(f)[0, 0, 0] / 20) for f in (got[0], got[1], got[3])] == [1, 10, 10]
    assert isinstance(got[2], ImageDecodeError) and "3.png" in str(got[2])
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoDecodeError, match="no frames"):
        open_clip(tmp_path / "empty")
    video = open_clip(write_video(tmp_path / "v.mp4", 10))
    assert video.num_frames == 10 and video.fps > 0 and [frame_index(f) for f in video.read([2, 9])] == [2, 9]
