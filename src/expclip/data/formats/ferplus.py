"""FERPlus: FER2013 faces relabelled by 10 taggers (Microsoft's vote files), 8 classes.

Two on-disk forms: the Kaggle ``fer2013.csv`` (48x48 pixels as text) with a vote file (``fer2013new.csv``), or the
PNG folders written by Microsoft's ``generate_training_data.py`` (``FER2013Test/*.png`` + ``label.csv``). The vote
file and the rule that turns votes into a label are options, and the number of images kept is logged, because
the published test counts differ by both (3,137-3,153 for the official rule; README, "Benchmarks").
"""

from __future__ import annotations

import hashlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ...errors import InputError
from ..datasets import DatasetError, ItemList
from ..safe import AnnotationError, int_field, iter_csv_records
from . import labelmaps
from .common import Row, build, existing

log = logging.getLogger(__name__)

VOTE_RULES = ("majority", "plurality", "argmax10")
SPLITS = {"test": ("PrivateTest", "FER2013Test"), "valid": ("PublicTest", "FER2013Valid"),
          "train": ("Training", "FER2013Train")}
NUM_VOTES = len(labelmaps.FERPLUS_COLUMNS)  # 8 emotions + unknown + NF


def vote_winner(votes: Sequence[int], rule: str = "majority") -> int | None:
    """The winning column of one image's 10 vote counts (index into FERPLUS_COLUMNS), or None to drop the image.

    "majority" (the FERPlus authors' rule): counts of 1 are zeroed as outliers; the first maximum wins if it is more
    than half of the remaining votes, else the image is unknown. "plurality": first maximum of the 8 emotion
    columns. "argmax10": first maximum of all 10. An unknown or NF (non-face) winner is dropped.
    """
    if len(votes) != NUM_VOTES:
        raise InputError(f"expected {NUM_VOTES} vote counts, got {len(votes)}")
    v = [float(x) for x in votes]
    if rule == "majority":
        v = [0.0 if x < 1.0 + sys.float_info.epsilon else x for x in v]
        total = sum(v)
        best = max(v)
        if not best > 0.5 * total:
            return None
        winner = v.index(best)
    elif rule == "plurality":
        emo = v[:8]
        winner = emo.index(max(emo)) if max(emo) > 0 else None
    elif rule == "argmax10":
        winner = v.index(max(v)) if max(v) > 0 else None
    else:
        raise InputError(f"unknown FERPlus vote rule {rule!r}; choose one of {VOTE_RULES}")
    return winner if winner is not None and winner < 8 else None


@dataclass
class _Votes:
    """Rows of a vote file for one split: (image name, 10 counts, line number)."""

    path: Path
    rows: list[tuple[str, list[int], int]] = field(default_factory=list)
    unnamed: int = 0


def read_vote_file(path: str | Path, usage: str) -> _Votes:
    """Votes of the ``usage`` split from ``fer2013new.csv`` (with or without its ``Image name`` column) or from a
    ``label.csv`` (no header: name, face box, 10 counts; one file per split)."""
    path = Path(path)
    out = _Votes(path)
    records = iter_csv_records(path)
    first = next(records, None)
    if first is None:
        raise AnnotationError(path, None, "empty vote file")
    if first[1][0] == "Usage":
        header = first[1]
        named = "Image name" in header
        start = header.index("Image name") + 1 if named else 1
        for n, rec in records:
            if len(rec) < start + NUM_VOTES:
                raise AnnotationError(path, n, f"expected {start + NUM_VOTES} columns, got {len(rec)}")
            if rec[0] != usage:
                continue
            # The first release had no names: the image is the data row's index (Microsoft's own naming).
            name = rec[start - 1] if named else f"fer{n - first[0] - 1:07d}.png"
            if not name:  # the authors left these images out of FERPlus
                out.unnamed += 1
                continue
            out.rows.append((name, _votes(path, n, rec[start:start + NUM_VOTES]), n))
        return out
    for n, rec in [first, *records]:
        if len(rec) < 2 + NUM_VOTES or not rec[0].lower().endswith(".png"):
            raise AnnotationError(path, n, "expected 'image name, face box, 10 vote counts' (label.csv) or a "
                                  "fer2013new.csv with a 'Usage' header")
        out.rows.append((rec[0], _votes(path, n, rec[2:2 + NUM_VOTES]), n))
    return out


MAX_VOTES = 1000  # FERPlus has 10 taggers; a count beyond this is a damaged file (and overflows float)


def _votes(path: Path, line: int, fields: list[str]) -> list[int]:
    return [int_field(path, line, c, "vote count", 0, MAX_VOTES) for c in fields]


class PixelTable:
    """Picklable decoder of FER2013 faces held in memory: item "row" (fer2013.csv data row) -> 48x48 RGB image."""

    def __init__(self, rows: Sequence[int], pixels: np.ndarray):
        self.pixels = pixels  # (n, 48, 48) uint8, in the order of ``rows``
        self.index = {int(r): i for i, r in enumerate(rows)}

    def __call__(self, root: Path, item: dict) -> Image.Image:
        return Image.fromarray(self.pixels[self.index[item["row"]]], "L").convert("RGB")

    def fingerprint(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.pixels).tobytes()).hexdigest()[:20]


def read_fer2013_pixels(path: str | Path, rows: set[int], usage: str,
                        votes: str | Path = "the vote file") -> PixelTable:
    """The 48x48 faces of the data rows ``rows`` of ``fer2013.csv`` (columns emotion, pixels, Usage).

    Data row r is r + 1 lines after the header. Each row's Usage must be ``usage``: a mismatch means the CSV and the
    vote file (``votes``, named in the errors) are not the same release.
    """
    path = Path(path)
    got: dict[int, np.ndarray] = {}
    records = iter_csv_records(path)
    top, header = next(records, (1, []))
    if "pixels" not in header or "Usage" not in header:
        raise AnnotationError(path, top, f"expected a header with 'pixels' and 'Usage' columns, got {header[:10]}")
    pi, ui = header.index("pixels"), header.index("Usage")
    for n, rec in records:
        row = n - top - 1
        if row not in rows:
            continue
        if len(rec) <= max(pi, ui):
            raise AnnotationError(path, n, f"expected {len(header)} columns, got {len(rec)}")
        if rec[ui] != usage:
            raise AnnotationError(path, n, f"Usage is {rec[ui][:40]!r} but {votes} puts this image in {usage!r}")
        values = rec[pi].split()
        if len(values) != 48 * 48 or not all(v.isascii() and v.isdigit() and len(v) <= 3 for v in values):
            raise AnnotationError(path, n, f"expected 2304 pixel values in 0..255, got {len(values)} values")
        pixels = np.array(values, dtype=np.int64)
        if pixels.max() > 255:
            raise AnnotationError(path, n, f"pixel value {pixels.max()} is above 255")
        got[row] = pixels.astype(np.uint8).reshape(48, 48)
    missing = sorted(rows - set(got))
    if missing:
        raise DatasetError(f"{path}: has no data rows {missing[:5]} named by {votes}")
    order = tuple(sorted(got))
    return PixelTable(order, np.stack([got[r] for r in order]))


def read_ferplus(root: str | Path, split: str = "test", votes: str = "auto", rule: str = "majority",
                 source: str = "auto", allow_outside: bool = False) -> ItemList:
    """FERPlus ``split`` (test = PrivateTest / FER2013Test) labelled by ``rule`` over the vote file ``votes``.

    ``source`` "png": ``<root>/FER2013Test/*.png`` (also ``<root>/data/FER2013Test``); "csv": ``fer2013.csv`` pixels
    decoded in memory; "auto": png when that folder holds images, else csv. ``votes`` "auto": the folder's
    ``label.csv`` for png, ``fer2013new.csv`` for csv; or a path (relative to ``root``) to either kind of file.
    """
    root = Path(root)
    if split not in SPLITS:
        raise DatasetError(f"FERPlus split must be one of {list(SPLITS)}, got {split!r}")
    if rule not in VOTE_RULES:
        raise DatasetError(f"FERPlus vote rule must be one of {VOTE_RULES}, got {rule!r}")
    usage, folder = SPLITS[split]
    png_dir = next((d for d in (root / folder, root / "data" / folder, root) if d.is_dir() and any(d.glob("*.png"))),
                   None)
    if source == "auto":
        source = "png" if png_dir is not None else "csv"
    if source == "png" and png_dir is None:
        raise DatasetError(f"FERPlus: no PNG folder {root / folder} with images")
    if source not in ("png", "csv"):
        raise DatasetError(f"FERPlus source must be auto, png or csv, got {source!r}")
    if votes == "auto":
        cands = ([str((png_dir / "label.csv").relative_to(root))] if source == "png" else []) + \
            ["fer2013new.csv", "FERPlus/fer2013new.csv"]
        vote_path = existing(root, cands, "FERPlus vote file (fer2013new.csv or label.csv)")
    else:
        vote_path = Path(votes) if Path(votes).is_absolute() else root / votes
        if not vote_path.is_file():
            raise DatasetError(f"FERPlus vote file {vote_path} not found")
    v = read_vote_file(vote_path, usage)
    rows, dropped = [], 0
    for name, counts, n in v.rows:
        winner = vote_winner(counts, rule)
        if winner is None:
            dropped += 1
            continue
        item = {"path": name}
        if source == "csv":
            digits = name[3:-4] if name.startswith("fer") and name.endswith(".png") else ""
            item["row"] = int_field(vote_path, n, digits, "row number in the image name", 0)
        rows.append(Row(item, labelmaps.FERPLUS[labelmaps.FERPLUS_COLUMNS[winner]], n))
    info = {"split": split, "usage": usage, "votes": vote_path.name, "rule": rule, "source": source,
            "named_images": len(v.rows), "dropped_by_rule": dropped, "unnamed_rows": v.unnamed}
    log.info("FERPlus %s: %d of %d images kept by the %r rule on %s", split, len(rows), len(v.rows), rule,
             vote_path.name)
    if not rows:
        raise DatasetError(f"{vote_path}: none of its {len(v.rows)} named {usage} images has a label by the {rule!r} "
                           "rule")
    if source == "png":
        return build("FERPlus", png_dir, rows, 8, info=info, source=vote_path, allow_outside=allow_outside)
    pix_path = existing(root, ["fer2013.csv", "fer2013/fer2013.csv"], "FER2013 pixels fer2013.csv")
    table = read_fer2013_pixels(pix_path, {r.fields["row"] for r in rows}, usage, vote_path)
    return build("FERPlus", pix_path.parent, rows, 8, info={**info, "pixels": pix_path.name}, source=vote_path,
                 allow_outside=allow_outside, decoder=table)
