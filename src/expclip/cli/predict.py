"""``expclip predict``: expression labels for people's own photos and videos."""

from __future__ import annotations

import logging
import os
import sys

from ..errors import InputError
from .options import EPILOG, NONNEG_FLOAT, NONNEG_INT, POSITIVE_FLOAT, POSITIVE_INT, SCORE, _add_runtime, _device

log = logging.getLogger("expclip")


def cmd_predict(args) -> int:
    if args.stream is not None:
        return _cmd_stream(args)
    if not args.paths:
        raise InputError("expclip predict needs images, videos or folders to label, or --stream SOURCE (a camera "
                         "index, a URL, - for stdin)")
    if args.window is not None or args.stride is not None:
        raise InputError("--window and --stride are for --stream; to slide windows over a video file, stream it: "
                         "--stream talk.mp4 --window 2s")
    from tqdm.auto import tqdm

    from ..predict.options import check_frame_folder_options
    from ..predict.run import format_row, predict_to_file

    check_frame_folder_options(args.frame_folders, args.video_fps)  # before any model is loaded
    if args.annotate:
        from ..files import writable_dir

        writable_dir(args.annotate, "--annotate")
    device, faces = _preflight(args, args.resume)
    model = _model(args, device)
    try:
        s = predict_to_file(model, args.paths, args.out, args.labels, args.template or args.prompts,
                            resume=args.resume, overwrite=args.overwrite, frame_folders=args.frame_folders,
                            annotate_dir=args.annotate,
                            progress=not args.no_progress,
                            on_rows=None if args.out else lambda rows: [tqdm.write(format_row(r)) for r in rows],
                            faces=faces, margin=args.margin, no_face=args.no_face, max_faces=args.max_faces,
                            min_face=args.min_face, face_threshold=args.face_threshold,
                            num_frames=args.frames, video_fps=args.video_fps, batch_size=args.batch_size,
                            num_workers=min(4, os.cpu_count() or 1) if args.num_workers is None else args.num_workers,
                            strict=args.strict)
    except KeyboardInterrupt:
        if not args.out:
            raise
        print(f"\ninterrupted: the rows written so far are in {args.out}; add --resume to the same command to "
              "continue", file=sys.stderr)
        return 130
    print(f"{model.name} ({model.backbone.name}): {s}")
    return 0


def _preflight(args, resume: bool | None) -> tuple:
    """(device, face detector), with what both predict paths refuse before any model loads: face and sampling
    options, an --out that cannot be written (``resume`` None: a stream, which has no --resume), a GPU that is not
    there, a detector that is not installed (named with its pip install)."""
    from ..data.faces import get_face_detector
    from ..predict.options import check_max_faces, check_video_fps
    from ..predict.rowfile import check_out

    check_max_faces(args.max_faces)
    check_video_fps(args.video_fps)
    if args.out:
        check_out(args.out, resume, args.overwrite)
    return _device(args), get_face_detector(args.faces, args.face_threshold)


def _model(args, device):
    from ..api import ExpCLIP
    from ..models.names import DEFAULT_BACKBONE

    return ExpCLIP.from_pretrained(args.head or args.backbone or DEFAULT_BACKBONE, device,
                                   backbone=args.backbone if args.head else None, revision=args.revision,
                                   preprocessing=args.preprocessing)


def _cmd_stream(args) -> int:
    """--stream: everything that can be refused is refused before the model loads, the source opened first."""
    from ..data.sources import open_source
    from ..predict.run import RunSummary, format_row
    from ..predict.stream import check_window, predict_stream_to_file
    from ..predict.windows import window_spans

    if args.paths:
        raise InputError(f"--stream {args.stream} reads one source: drop the paths ({' '.join(args.paths)}) or run "
                         "them without --stream")
    for flag, given in (("--resume", args.resume), ("--frame-folders", args.frame_folders),
                        ("--annotate", args.annotate)):
        if given:
            raise InputError(f"{flag} does not go with --stream (a live source cannot be replayed or drawn "
                             "afterwards); the rows are written to --out as each window is decided")
    window, stride = window_spans(args.window, args.stride)
    device, faces = _preflight(args, None)  # a stream cannot be resumed: an existing --out offers --overwrite
    source = open_source(args.stream, args.stream_format)
    try:
        check_window(source, window, args.video_fps)
    except BaseException:
        source.close()
        raise
    log.info("reading %s: windows of %s every %s", source.spec.name, window.describe(), stride.describe())
    model = _model(args, device)
    written = RunSummary()  # what reached --out (or the screen) so far, for the message when interrupted

    def on_rows(rows):
        written.count(rows)
        if not args.out:
            for r in rows:
                print(format_row(r), flush=True)

    try:
        s = predict_stream_to_file(model, source, args.out, args.labels, args.template or args.prompts, window=window,
                                   stride=stride, overwrite=args.overwrite, on_rows=on_rows, faces=faces,
                                   margin=args.margin, no_face=args.no_face, max_faces=args.max_faces,
                                   min_face=args.min_face, face_threshold=args.face_threshold,
                                   video_fps=args.video_fps)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (the CLI raises a subclass of it for that)
        term = type(e) is not KeyboardInterrupt
        where = f" to {args.out}" if args.out else ""
        print(f"\n{'terminated (SIGTERM)' if term else 'interrupted'}: {written.rows} row(s), {written.windows} "
              f"window row(s), written{where}; every row decided so far is complete", file=sys.stderr)
        return 143 if term else 130
    print(f"{model.name} ({model.backbone.name}): {s}")
    return 0


def add_parsers(sub) -> None:
    from ..data.faces.names import FACE_DETECTORS
    from ..data.images import PREPROCESSING_MODES
    from ..models.names import DEFAULT_BACKBONE
    from ..predict.table import NO_FACE_MODES

    s = sub.add_parser("predict", help="expression labels for your photos, folders and videos (faces found for you)",
                       description="Detect faces and score them zero-shot with CLIP or an Exp-CLIP head, with the "
                       "paper's classes or your own words. Writes one row per face (and per sampled video frame, plus "
                       "a clip-level row per video) as it goes; rerun with --resume after an interruption.",
                       epilog="Examples: expclip predict photos/ --head runs/expclip-L14/seed1 --out results.csv; "
                       "expclip predict talk.mp4 --labels happy,bored,focused --video-fps 2 --annotate viz/; "
                       "expclip predict --stream 0 --window 2s --stride 1s --out live.csv. " + EPILOG)
    s.add_argument("paths", nargs="*", help="image or video files, or folders (searched recursively; with "
                   "--frame-folders, a folder of frames is a video); none with --stream")
    s.add_argument("--head", default=None, help="an Exp-CLIP head directory (its backbone and preprocessing are "
                   "used), or a training run of seed*/ heads (its first seed is used, and said so)")
    s.add_argument("--backbone", default=None,
                   help=f"CLIP model for plain-CLIP zero-shot without --head (default {DEFAULT_BACKBONE}); "
                        "with --head, a replacement for the recorded backbone (e.g. a local copy)")
    s.add_argument("--revision", default=None, help="hub revision of the backbone")
    s.add_argument("--labels", default=None,
                   help="7, 8 or 11 (the paper's classes; default 7), comma-separated words (happy,bored,focused), "
                        "or a JSON/YAML label file with labels, templates or per-class descriptions")
    s.add_argument("--prompts", default="ensemble_10",
                   help="the paper's prompt set used for every class (class_name, an_expression_of, "
                        "a_photo_of_a_face, ensemble_5, ensemble_10; default ensemble_10)")
    s.add_argument("--template", action="append", default=None,
                   help="your own prompt template with {} for the label, e.g. 'a photo of a {} face.' (repeatable; "
                        "replaces --prompts)")
    s.add_argument("--out", default=None, help="results file, .csv or .jsonl (default: print one line per row)")
    s.add_argument("--resume", action="store_true", help="continue --out: skip inputs already written, redo cut ones")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    s.add_argument("--annotate", default=None, metavar="DIR",
                   help="write images with boxes and labels, and a probability timeline PNG per video, into DIR")
    s.add_argument("--faces", choices=list(FACE_DETECTORS), default="detect",
                   help="detect (default): YuNet, a CNN detector, when installed (pip install 'expclip[faces]'), "
                        "else OpenCV's Haar cascade with a note; yunet / haar: that detector (an error naming the "
                        "pip install when it is missing); none: inputs are already face crops")
    s.add_argument("--min-face", type=NONNEG_INT, default=24, metavar="PX",
                   help="drop faces whose detected box is under PX pixels on its shorter side (24)")
    s.add_argument("--face-threshold", type=SCORE, default=None, metavar="SCORE",
                   help="drop faces whose detector score (the face_score column, 0..1) is under SCORE (default: "
                        "YuNet's 0.75; Haar gives no score)")
    s.add_argument("--margin", type=NONNEG_FLOAT, default=0.2, help="grow face boxes by this fraction per side (0.2)")
    s.add_argument("--max-faces", type=int, default=None, help="keep at most N faces per image, largest first")
    s.add_argument("--no-face", choices=NO_FACE_MODES, default="whole",
                   help="when no face is found: score the whole image (default) or leave the row unscored; the row "
                        "says face_detected=False either way")
    s.add_argument("--frames", type=POSITIVE_INT, default=16,
                   help="frames sampled per video, spread as the paper's (16)")
    s.add_argument("--video-fps", type=POSITIVE_FLOAT, default=None,
                   help="instead sample this many frames per second: the frame on screen every 1/FPS s, by the "
                        "container's timestamps (video files and --stream; not frame folders)")
    s.add_argument("--frame-folders", action="store_true",
                   help="read folders of extracted frames as videos (DFEW/FERV39k/MAFW/AFEW style, one folder per "
                        "clip): every folder that directly holds images is one video of those images in natural "
                        "order (frame2 before frame10), sampled like a video file (--frames) with frame rows and a "
                        "clip row; its subfolders are read on their own, a folder with no media and no subfolders "
                        "gets a clip row with an error, and an unreadable frame a frame row with an error. Frames "
                        "have no time: no timestamps and no --video-fps")
    live = s.add_argument_group("live sources", "score a camera, network stream or piped video as it plays, in sliding "
                                "windows; one row per face track (and one over each frame's largest face) per window, "
                                "written as soon as the window is complete, plus the frame rows. Ctrl-C ends it with "
                                "every row so far written (exit code 130)")
    live.add_argument("--stream", default=None, metavar="SOURCE",
                      help="a camera index (0: /dev/video0 on Linux, AVFoundation on macOS), a URL (rtsp://, "
                           "http(s)://, udp://, srt:// ...), - for a video piped on stdin (MPEG-TS, Matroska or NUT), "
                           "or a video file played as a stream")
    live.add_argument("--window", default=None, metavar="N|Ns",
                      help="frames pooled per window row: a number of sampled frames (16, the default) or seconds of "
                           "stream time (2s, 500ms); longer than a file source is refused")
    live.add_argument("--stride", default=None, metavar="N|Ns",
                      help="a window row every this many frames or seconds, in --window's unit (default: half the "
                           "window)")
    live.add_argument("--stream-format", default=None, metavar="FMT",
                      help="FFmpeg's name for the source's container or device when it cannot be probed (mpegts, "
                           "matroska, v4l2, avfoundation, dshow ...)")
    s.add_argument("--preprocessing", choices=PREPROCESSING_MODES, default=None,
                   help="default: the head's own; reference (the paper's) for plain CLIP")
    _add_runtime(s, workers_help="threads decoding photos and finding their faces ahead of the model (video "
                 "frames are read in order as they are scored); default: cores, at most 4; 0: none", datasets=False)
    s.set_defaults(fn=cmd_predict)
