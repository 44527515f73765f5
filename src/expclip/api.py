"""``ExpCLIP``: the Python entry point for expression labels on people's own photos, folders and videos.

    model = ExpCLIP.from_pretrained("runs/expclip-L14/seed1")        # a head: backbone + preprocessing from it
    model = ExpCLIP.from_pretrained("openai/clip-vit-base-patch16")  # a bare backbone: plain CLIP zero-shot
    table = model.predict(["me.jpg", "holiday/", "talk.mp4"], labels=["happy", "bored", "focused"])
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from .checkpoint import HeadConfig, is_head_dir, load_head, seed_dirs
from .data.faces import FaceDetector, get_face_detector
from .data.inputs import InputItem, expand_inputs
from .devices import check_visible, resolve_device
from .errors import CheckpointError, ModelNotAvailableError
from .models.backbone import DEFAULT_BACKBONE, Backbone
from .models.hub import model_name
from .predict.engine import Chunk, Predictor
from .predict.options import PredictOptions, check_frame_folder_options
from .predict.table import make_table, result_columns
from .predict.windows import SlidingWindows, window_spans
from .prompts import DEFAULT_PROMPTS, LabelPrompts, LabelsArg, resolve_label_prompts
from .zeroshot import Classifier, build_classifier, classify, classify_pooled, embed_images, project_frames

log = logging.getLogger(__name__)


class ExpCLIP:
    """A CLIP-family backbone, optionally with an Exp-CLIP projection head, ready to label faces.

    Scoring is the paper's rule (:mod:`expclip.zeroshot`): logits = κ · normalize(P f_img) · normalize(P f_prompt),
    averaged over each class's prompts; probabilities are the softmax of those logits.
    """

    def __init__(self, backbone: Backbone, head: nn.Module | None = None, preprocessing: str = "reference",
                 config: HeadConfig | None = None, name: str | None = None, amp: bool = True):
        self.backbone, self.head, self.preprocessing, self.amp = backbone, head, preprocessing, amp
        self.config = config  # the head's HeadConfig; None for plain CLIP
        self.name = name or ("Exp-CLIP" if head is not None else "CLIP")
        self.preprocess = backbone.preprocess(preprocessing)
        self._text_cache: dict[tuple, torch.Tensor | list[torch.Tensor]] = {}
        if head is not None:
            head.to(backbone.device)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_BACKBONE, device: str | torch.device | None = "auto",
                        *, backbone: str | None = None, revision: str | None = None, preprocessing: str | None = None,
                        amp: bool = True, local_files_only: bool | None = None) -> "ExpCLIP":
        """Load a head directory (its backbone id, revision and preprocessing come from its config.json) or a bare
        CLIP-family backbone (hub id or local directory) for plain CLIP zero-shot.

        Args:
            backbone: use this backbone instead of the one recorded in the head (e.g. a local copy of it).
            preprocessing: "reference" or "clip"; default: the head's, or "reference" for a bare backbone (the
                same as ``expclip eval``'s CLIP row).
            amp: bfloat16 autocast for CLIP on CUDA.
        """
        dev = check_visible(resolve_device(device))  # a GPU that is not there: a ValueError, not a traceback
        path = Path(name_or_path)
        if path.is_dir() and not is_head_dir(path) and (path / "head.safetensors").is_file():
            raise CheckpointError(f"{path}: has head.safetensors but no valid expclip config.json")
        if path.is_dir() and not (path / "config.json").is_file():
            seeds = [d for d in seed_dirs(path) if is_head_dir(d)]
            if seeds:  # a training run (as eval takes): its first seed, said so
                log.warning("%s is a training run of %d head(s) (%s): predicting with the first, %s; pass a seed "
                            "folder to choose another", path, len(seeds), ", ".join(d.name for d in seeds), seeds[0])
                path = seeds[0]
        if not is_head_dir(path):
            bb = Backbone.from_pretrained(name_or_path, revision, device=dev, amp=amp,
                                          local_files_only=local_files_only)
            return cls(bb, None, preprocessing or "reference", None, "CLIP", amp)
        head, cfg = load_head(path, "cpu")
        recorded = cfg.backbone
        if recorded is None and backbone is None:
            raise CheckpointError(f"{path / 'config.json'} records no backbone: pass backbone=... / --backbone")
        try:
            bb = Backbone.from_pretrained(backbone or recorded.id, revision or (recorded.hub_revision if recorded
                                          else None), device=dev, amp=amp, local_files_only=local_files_only)
        except ModelNotAvailableError as e:
            if backbone:
                raise
            raise ModelNotAvailableError(f"{e} (backbone recorded in {path / 'config.json'}; if you have it "
                                         "elsewhere, pass backbone=... / --backbone)") from e
        cfg.check_features(bb.embed_dim, bb.name, path)
        if backbone and recorded is not None and not recorded.matches(backbone):  # a moved copy is no news
            log.warning("backbone %s replaces %s, the one recorded in %s: predictions may differ", backbone,
                        recorded.id, path)
        elif recorded is not None and recorded.revision and bb.revision != recorded.revision:
            log.warning("%s: trained on backbone revision %s, loaded %s (%s): predictions may differ",
                        path, recorded.revision, bb.revision, bb.name)
        mode = cfg.preprocessing_mode
        if preprocessing and preprocessing != mode:
            log.warning("%s was trained with %r preprocessing; using %r as asked", path, mode, preprocessing)
        return cls(bb, head, preprocessing or mode, cfg, cfg.name or "Exp-CLIP", amp)

    def __repr__(self) -> str:
        head = "none (plain CLIP)" if self.config is None else (
            f"{self.config.head.type} {self.config.head.in_dim}->{self.config.head.out_dim}")
        return (f"ExpCLIP(name={self.name!r}, backbone={self.backbone.name!r} ({self.backbone.revision}), "
                f"head={head}, preprocessing={self.preprocessing!r}, device={self.device})")

    # -------------------------------------------------------------------------------------------- model parts
    def identity(self) -> dict:
        """What this model's scores depend on (a results file's run record): its name, the backbone's id and
        revision, the head's type, dims and a sha256 of its weights (None for plain CLIP), preprocessing, κ."""
        head = None
        if self.head is not None:
            h = hashlib.sha256()
            for k, v in sorted(self.head.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
            spec = self.config.head.to_dict() if self.config is not None else {}
            head = {**spec, "sha256": h.hexdigest()[:20]}
        backbone = {**self.backbone.identity(), "id": model_name(self.backbone.name)}  # ./clip and /abs/clip alike
        return {"name": self.name, "backbone": backbone, "head": head,
                "preprocessing": self.preprocess.describe(), "logit_scale": float(self.backbone.logit_scale)}

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    def to(self, device: str | torch.device | None) -> "ExpCLIP":
        """Move backbone and head (bfloat16 autocast on CUDA when it was asked at load time)."""
        dev = check_visible(resolve_device(device))  # a GPU that is not there: a ValueError, not a traceback
        if dev != self.backbone.device:
            self.backbone.model.to(dev)
            self.backbone.device = dev
            self.backbone.amp_dtype = torch.bfloat16 if (self.amp and dev.type == "cuda") else None
            if self.head is not None:
                self.head.to(dev)
        return self

    def label_prompts(self, labels: LabelsArg = None,
                      prompts: str | list[str] | None = DEFAULT_PROMPTS) -> LabelPrompts:
        """The classes and prompt strings that ``predict`` would score (see :mod:`expclip.prompts`)."""
        return resolve_label_prompts(labels, prompts)

    def classifier(self, label_prompts: LabelPrompts) -> Classifier:
        """Projected, normalized prompt embeddings of these classes (text features cached per prompt list)."""
        from .features.extract import prompt_features

        key = tuple(tuple(p) for p in label_prompts.prompts)
        if key not in self._text_cache:
            self._text_cache[key] = prompt_features(self.backbone, label_prompts.prompts)
        text = self._text_cache[key]
        # On the model's device, so that plain CLIP (no head to move them) also scores there.
        text = text.to(self.device) if isinstance(text, torch.Tensor) else [t.to(self.device) for t in text]
        return build_classifier(text, self.head, self.backbone.logit_scale)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) preprocessed crops -> (N,D) CLIP image features (float32, on the model's device)."""
        return self.backbone.encode_image(pixels)

    def logits(self, features: torch.Tensor, classifier: Classifier) -> torch.Tensor:
        """(N,D) image or (N,T,D) clip features -> (N,C) logits, the paper's rule."""
        return classify(embed_images(features, self.head), classifier)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(N,D) frame features -> (N,E) head outputs before normalization, the terms a clip's frames average."""
        return project_frames(features, self.head)

    # -------------------------------------------------------------------------------------------- prediction
    def predict_iter(self, inputs: Any, labels: LabelsArg = None, prompts: str | list[str] | None = DEFAULT_PROMPTS,
                     *, faces: str | FaceDetector | Callable | None = "detect", margin: float = 0.2,
                     no_face: str = "whole", max_faces: int | None = None, min_face: int = 24,
                     face_threshold: float | None = None, num_frames: int = 16,
                     video_fps: float | None = None, batch_size: int = 64, device: str | torch.device | None = None,
                     num_workers: int = 0, strict: bool = False, keep_images: bool = False,
                     skip: set[str] | None = None, frame_folders: bool = False) -> Iterator[Chunk]:
        """Like :meth:`predict`, but yields :class:`~expclip.predict.engine.Chunk` s of rows as they are computed.

        ``skip``: input names (the "input" column) to leave out, e.g. those already in a results file.
        """
        check_frame_folder_options(frame_folders, video_fps)
        if device is not None:
            self.to(device)
        lp = self.label_prompts(labels, prompts)
        clf = self.classifier(lp)
        opts = PredictOptions(get_face_detector(faces, face_threshold), margin, max_faces, no_face, num_frames,
                              video_fps, batch_size, num_workers, strict, keep_images, min_face=min_face,
                              face_threshold=face_threshold)
        items = [it for it in expand_inputs(inputs, frame_folders) if not skip or it.name not in skip]
        engine = Predictor(self.encode, lambda f: self.logits(f, clf), self.preprocess, lp.labels, opts,
                           project=self.project, classify=lambda z: classify_pooled(z, clf))
        return engine.run(items)

    def predict_stream(self, source: Any, labels: LabelsArg = None, prompts: str | list[str] | None = DEFAULT_PROMPTS,
                       *, window: str | int | None = None, stride: str | int | None = None,
                       faces: str | FaceDetector | Callable | None = "detect", margin: float = 0.2,
                       no_face: str = "whole", max_faces: int | None = None, min_face: int = 24,
                       face_threshold: float | None = None, video_fps: float | None = None,
                       device: str | torch.device | None = None, stream_format: str | None = None) -> Iterator[Chunk]:
        """Rows of a live source as it plays: frame rows as each frame is scored, and per sliding window a
        ``window`` row per face track plus one over each frame's largest face, as soon as the window is complete
        (the paper's video rule on the window's frames). Runs until the source ends (then a last, shorter window)
        or the caller stops iterating (Ctrl-C); memory holds one window.

        Args:
            source: a camera index (0), a URL (rtsp://, http(s)://, udp:// ...), "-" for a video piped on stdin, a
                video file, or an :class:`~expclip.data.sources.OpenSource`.
            window, stride: frames (16, "16") or seconds of stream time ("2s", "500ms"); default 16 frames, the
                stride half the window. A window longer than a file source is refused.
            video_fps: score the frame on screen every 1/video_fps seconds instead of every frame.
            stream_format: FFmpeg's name for the container or device (mpegts, v4l2, ...) when it cannot be probed.

        Rows have the :meth:`predict` columns plus ``window_start`` (s), ``window_frames`` and ``wall_time`` (ISO
        8601, when the frame was read or the window decided); a window row's ``frame`` and ``timestamp`` are its
        last frame's. Every time is the stream's own, in seconds from its first frame.
        """
        from .data.sources import OpenSource, open_source, source_frames
        from .predict.stream import check_window

        win, step = window_spans(window, stride)
        src = source if isinstance(source, OpenSource) else open_source(source, stream_format)
        check_window(src, win, video_fps)
        if device is not None:
            self.to(device)
        lp = self.label_prompts(labels, prompts)
        clf = self.classifier(lp)
        opts = PredictOptions(get_face_detector(faces, face_threshold), margin, max_faces, no_face, video_fps=video_fps,
                              batch_size=64, min_face=min_face, face_threshold=face_threshold)
        engine = Predictor(self.encode, lambda f: self.logits(f, clf), self.preprocess, lp.labels, opts,
                           project=self.project, classify=lambda z: classify_pooled(z, clf))
        item = InputItem(src.spec.name, src.spec.target, "stream", src.spec.name)
        return engine.stream(item, source_frames(src, video_fps), SlidingWindows(win, step))

    def predict(self, inputs: Any, labels: LabelsArg = None, prompts: str | list[str] | None = DEFAULT_PROMPTS, *,
                faces: str | FaceDetector | Callable | None = "detect", margin: float = 0.2, no_face: str = "whole",
                max_faces: int | None = None, min_face: int = 24, face_threshold: float | None = None,
                num_frames: int = 16, video_fps: float | None = None,
                batch_size: int = 64, device: str | torch.device | None = None, num_workers: int = 0,
                strict: bool = False, frame_folders: bool = False, as_frame: bool | None = None):
        """Expression probabilities for every face in ``inputs``.

        Args:
            inputs: image/video paths, folders (searched recursively), PIL images, numpy arrays (RGB, H×W×3 or
                N×H×W×3), a list of these, or a dict name -> image.
            labels: None (the paper's 7 classes), 7/8/11, a list of words, "happy,sad", a JSON/YAML label file,
                a dict label -> description(s), or a :class:`~expclip.prompts.LabelSpec`.
            prompts: one of the paper's prompt sets ("ensemble_10", ...) or a list of templates ("a photo of a {}
                face.").
            faces: "detect" (YuNet when the ``faces`` extra is installed, else OpenCV's Haar cascade with a logged
                note), "yunet", "haar", "none" (inputs are face crops), or your own detector: an object with
                ``detect(image) -> list[Box]`` or a callable ``image -> [(x, y, w, h[, score]), ...]``.
            margin: face boxes grow by this fraction of their size on each side before cropping.
            min_face: faces whose detected box is under this many pixels on its shorter side are dropped.
            face_threshold: faces whose detector score is under this are dropped (YuNet scores 0..1; default
                None: YuNet's own 0.75, and no filtering of other detectors' scores). Haar gives no scores.
            no_face: "whole" scores the whole image when no face is found; "skip" leaves the row unscored. Either
                way the row says face_detected=False.
            num_frames / video_fps: frames sampled per video: ``num_frames`` spread over the clip (the paper's
                rule) or ``video_fps`` frames per second (the frame on screen every 1/video_fps s).
            num_workers: threads decoding images and finding faces ahead of the model (0: none).
            strict: raise on an unreadable file instead of recording a row with ``error`` set.
            frame_folders: read folders of extracted frames (one folder per clip, DFEW/FERV39k/MAFW style) as
                videos: every folder that directly holds images is one video of those frames in natural order
                (frame2 before frame10), with frame and clip rows like a video file's (no timestamps; so not with
                ``video_fps``). A folder with no media and no subfolders is a clip row with an error, and an
                unreadable frame gets a frame row with an error while the clip pools the others.
            as_frame: pandas DataFrame (default when pandas is installed) or a list of dicts (False).

        Returns:
            One row per face (largest first) of each image and sampled video frame, plus "clip" rows per video:
            one per face track (the paper's video rule over that person's frames), then one over each frame's
            largest face, last. Columns: input, kind (image/frame/clip), frame, timestamp (s, the container's
            presentation time), face, track (a video's face track id), num_faces, face_detected, box_x/y/w/h,
            face_score (the detector's score, empty for Haar), label, score, p_<label> per label, error.
        """
        lp = self.label_prompts(labels, prompts)
        chunks = self.predict_iter(inputs, lp, faces=faces,
                                   margin=margin, no_face=no_face, max_faces=max_faces, min_face=min_face,
                                   face_threshold=face_threshold, num_frames=num_frames,
                                   video_fps=video_fps, batch_size=batch_size, device=device,
                                   num_workers=num_workers, strict=strict, frame_folders=frame_folders)
        rows = [r for chunk in chunks for r in chunk.rows]
        return make_table(rows, result_columns(lp.labels), as_frame)
