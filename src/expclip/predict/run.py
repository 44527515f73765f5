"""A prediction run over many inputs: rows streamed to a results file (resumable), annotated images, video
timelines and a progress bar. ``expclip predict`` is this function plus argument parsing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..data.inputs import expand_inputs
from ..prompts import DEFAULT_PROMPTS
from .annotate import annotate_image, plot_timeline
from .options import check_frame_folder_options
from .record import run_identity
from .rowfile import RowWriter, csv_escape
from .table import result_columns

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    inputs: int = 0  # inputs found
    already_done: int = 0  # skipped because the results file had them (resume)
    rows: int = 0  # rows written by this run
    errors: int = 0  # inputs that could not be read
    no_face: int = 0  # image/frame rows where no face was found
    windows: int = 0  # window rows (live sources)
    annotated: list[Path] = field(default_factory=list)  # annotated images and timelines written
    out: Path | None = None
    annotate_dir: Path | None = None

    def count(self, rows: list[dict]) -> None:
        """Add a chunk of written rows: every row, the image/frame rows without a face, error rows, window rows."""
        self.rows += len(rows)
        self.no_face += sum(r["face_detected"] is False and r["kind"] in ("image", "frame") for r in rows)
        self.errors += sum(bool(r["error"]) for r in rows)
        self.windows += sum(r["kind"] == "window" for r in rows)

    def __str__(self) -> str:
        done = f", {self.already_done} already in {self.out}" if self.already_done else ""
        parts = [f"{self.inputs} input(s){done}", f"{self.rows} row(s)" + (f" written to {self.out}" * bool(self.out))]
        parts += [f"{self.windows} window row(s)"] if self.windows else []
        parts += [f"{self.no_face} without a face"] if self.no_face else []
        parts += [f"{self.errors} unreadable"] if self.errors else []
        parts += [f"annotated: {len(self.annotated)} file(s) in {self.annotate_dir}"] if self.annotated else []
        return "; ".join(parts)


def format_row(r: dict) -> str:
    """One human-readable line for a row: "talk.mp4 frame 12 (0.48s) face 0 (track 1): happiness 0.83"."""
    when = f" ({r['timestamp']:.2f}s)" if isinstance(r["timestamp"], (int, float)) else ""  # frame folders: no time
    where = f" frame {r['frame']}{when}" if r["kind"] == "frame" else ""
    track = f"track {r['track']}" if r.get("track") is not None else ""
    if r["kind"] == "window":
        span = (f" {r['window_start']:.2f}-{r['timestamp']:.2f}s" if isinstance(r.get("window_start"), (int, float))
                and isinstance(r["timestamp"], (int, float)) else f" to frame {r['frame']}")
        who = f"window{span}" + (f", {track}" if track else "")
    elif r["kind"] == "clip":
        who = "clip" + (f", {track}" if track else "")
    else:
        who = (f"face {r['face']}" + (f" ({track})" if track else "") if r["face_detected"]
               else "no face (whole image)" if r["face_detected"] is False and r["label"] else
               "no face" if r["face_detected"] is False else "image")
    what = f"error: {r['error']}" if r["error"] else f"{r['label']} {r['score']:.2f}" if r["label"] else "-"
    return f"{csv_escape(r['input'])}{where} {who}: {what}"  # a name with a line break or not UTF-8 prints too


ANNOTATED_FORMATS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")


def annotated_path(annotate_dir: Path, rel: str, suffix: str) -> Path:
    """Where the picture of an input goes: its relative name + ``suffix`` (keeps a.png and a.jpg apart)."""
    return annotate_dir / f"{rel}{suffix}"


def predict_to_file(model: Any, inputs: Any, out: str | Path | None = None, labels: Any = None,
                    prompts: Any = DEFAULT_PROMPTS, *, resume: bool = False, overwrite: bool = False,
                    frame_folders: bool = False, annotate_dir: str | Path | None = None, progress: bool = True,
                    on_rows: Callable[[list[dict]], None] | None = None, **predict_kwargs: Any) -> RunSummary:
    """Run ``model.predict_iter`` over ``inputs`` and stream the rows to ``out`` (.csv or .jsonl) as they come.

    Args:
        model: an :class:`expclip.ExpCLIP`.
        resume: continue ``out``: inputs whose rows are complete there are skipped, unfinished ones redone; refused
            when ``out`` was written by another run (its record ``<out>.run.json``: model, labels, prompts, options).
        frame_folders: folders of extracted frames are videos, one per folder (see :meth:`ExpCLIP.predict`).
        annotate_dir: write each image with boxes and labels under its own name (``photo0.png``; other formats,
            and in-memory images, as ``<name>.jpg``); for videos ``<input>.timeline.png`` (each frame's largest
            face) and ``<input>.track<k>.timeline.png`` per face track.
        on_rows: called with each batch of rows (the CLI prints them).
        predict_kwargs: passed to ``predict_iter`` (faces, margin, no_face, batch_size, device, ...).
    """
    lp = model.label_prompts(labels, prompts)
    check_frame_folder_options(frame_folders, predict_kwargs.get("video_fps"))
    items = expand_inputs(inputs, frame_folders)
    summary = RunSummary(inputs=len(items), out=Path(out) if out else None)
    identity = run_identity(model, lp, {**predict_kwargs, "frame_folders": frame_folders}) if out else None
    writer = RowWriter(out, result_columns(lp.labels), resume, overwrite, identity=identity) if out else None
    annotate_dir = Path(annotate_dir) if annotate_dir else None
    summary.annotate_dir = annotate_dir
    try:
        skip = {it.name for it in items if writer.is_done(it.name)} if writer else set()
        summary.already_done = len(skip)
        if summary.already_done:
            log.info("%s: %d of %d inputs already done, continuing", out, summary.already_done, len(items))
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items) - summary.already_done, unit="input", desc="predict", disable=not progress,
                   dynamic_ncols=True)
        video_rows: list[dict] = []  # only with annotate_dir: the few fields a timeline draws, per frame row
        chunks = model.predict_iter(items, lp, keep_images=annotate_dir is not None, skip=skip, **predict_kwargs)
        for chunk in chunks:
            if writer:
                writer.write(chunk.rows)
            if on_rows:
                on_rows(chunk.rows)
            summary.count(chunk.rows)
            if annotate_dir and chunk.item.kind == "video":
                video_rows += map(_timeline_fields, chunk.rows)
            if annotate_dir and chunk.done:
                summary.annotated += _annotate(chunk, video_rows, lp.labels, annotate_dir)
            if chunk.done:
                video_rows = []
                bar.update(1)
        bar.close()
    finally:
        if writer:
            writer.close()
    return summary


def _timeline_fields(row: dict) -> dict:
    """What a timeline needs of a row (rows of a long video are kept for its timelines only as much as this)."""
    keep = ("kind", "frame", "timestamp", "face", "track", "face_detected", "label", "score")
    return {k: v for k, v in row.items() if k in keep or k.startswith("p_")}


def _annotate(chunk: Any, video_rows: list[dict], labels: list[str], annotate_dir: Path) -> list[Path]:
    item = chunk.item
    if item.kind == "video":
        if not any(r["kind"] == "frame" for r in video_rows):
            return []
        out = [plot_timeline(video_rows, labels, annotated_path(annotate_dir, item.rel, ".timeline.png"),
                             title=item.name)]
        tracks = sorted({r["track"] for r in video_rows if r["kind"] == "frame" and r.get("track") is not None})
        for k in tracks:
            path = annotated_path(annotate_dir, item.rel, f".track{k}.timeline.png")
            out.append(plot_timeline(video_rows, labels, path, title=f"{item.name}, face track {k}", track=k))
        return out
    if chunk.image is None:
        return []
    # The input's own name and format where PIL writes it as RGB (photo0.png -> photo0.png), else a JPEG beside it.
    keep = Path(item.rel).suffix.lower() in ANNOTATED_FORMATS
    path = annotated_path(annotate_dir, item.rel, "" if keep else ".jpg")
    path.parent.mkdir(parents=True, exist_ok=True)
    annotate_image(chunk.image, chunk.rows, labels).save(path, quality=92)
    return [path]
