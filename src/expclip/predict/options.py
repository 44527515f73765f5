"""How ``predict`` turns inputs into crops (:class:`PredictOptions`) and the checks of its options, made before any
model loads (the CLI calls them first). No torch: only the option values are looked at."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InputError
from .table import NO_FACE_MODES

if TYPE_CHECKING:
    from ..data.faces.base import FaceDetector


def check_frame_folder_options(frame_folders: bool, video_fps: float | None) -> None:
    """Refuse sampling by rate for frame folders: their frames carry no time (ValueError saying what to use)."""
    if frame_folders and video_fps is not None:
        raise InputError("frame folders have no frame rate, so video_fps (--video-fps) cannot sample them: use "
                         "num_frames (--frames) instead")


def check_max_faces(max_faces: int | None) -> None:
    """Refuse a face limit below 1 (0 would silently mean no limit, -1 drop the largest face)."""
    if max_faces is not None and (isinstance(max_faces, bool) or not isinstance(max_faces, int) or max_faces < 1):
        raise InputError(f"max_faces (--max-faces) must be an integer >= 1 (or None: every face), got {max_faces!r}")


def check_video_fps(video_fps: float | None) -> None:
    if video_fps is not None and not (video_fps > 0 and math.isfinite(video_fps)):
        raise InputError(f"video_fps (--video-fps) must be a finite number > 0, got {video_fps}")


@dataclass(frozen=True)
class PredictOptions:
    """How inputs become crops. ``no_face``: "whole" scores the whole image/frame when no face is found
    (row flagged face_detected=False), "skip" writes the row unscored (label empty)."""

    detector: FaceDetector | None = None  # None: no detection, every image is one face crop
    margin: float = 0.2  # grow face boxes by this fraction of their size on each side
    max_faces: int | None = None  # keep at most this many faces per image (largest first)
    no_face: str = "whole"
    num_frames: int = 16  # frames sampled per video (the paper's 16), unless video_fps is set
    video_fps: float | None = None  # sample this many frames per second instead (for timelines)
    batch_size: int = 64
    num_workers: int = 0  # threads decoding and detecting images ahead of the model
    strict: bool = False  # raise on an unreadable input instead of recording an error row
    keep_images: bool = False  # hand decoded images to the caller (for annotation)
    min_face: int = 24  # drop detected faces under this many pixels on the shorter side of their box
    face_threshold: float | None = None  # drop faces scoring below this (None: the detector's own default)

    def __post_init__(self) -> None:
        if self.no_face not in NO_FACE_MODES:
            raise InputError(f"no_face must be one of {NO_FACE_MODES}, got {self.no_face!r}")
        if not math.isfinite(self.margin) or self.margin < 0 or self.batch_size < 1 or self.num_frames < 1:
            raise InputError(f"margin must be finite and >= 0 (got {self.margin}), batch_size and num_frames >= 1")
        if self.min_face < 0:
            raise InputError(f"min_face is a size in pixels, >= 0; got {self.min_face}")
        if self.face_threshold is not None and not self.face_threshold >= 0:  # also refuses NaN
            raise InputError(f"face_threshold is a detector score, >= 0; got {self.face_threshold}")
        check_video_fps(self.video_fps)
        check_max_faces(self.max_faces)
