"""The annotation files of each benchmark reader, for the property tests of tests/faults/test_parsers.py.

For each format: ``write_<format>(root, data)`` lays out the least of a download that the reader needs (empty
image files, clip folders) and puts ``data`` where the reader parses it (the annotation file, or folder names),
through the format's one writer in :mod:`support.formats`; and
``valid_<format>(draw)`` draws valid content as (bytes, {item path: class}), its classes worked out from
the tables of :mod:`support.formats` (PROTOCOL.md), not from the package's.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
from hypothesis import strategies as st

from . import formats as nf
from .formats import csv_lines, mkdir, text, touch

Draw = Callable[[st.SearchStrategy], object]
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])


def text_file(draw: Draw, lines: list[str], encoding: str = "utf-8") -> bytes:
    """``lines`` joined by a random line end, with or without a final one (several real files lack it)."""
    end = draw(ENDINGS)
    return text(lines, end, bool(draw(st.sampled_from(["", end]))), encoding)


def subset(draw: Draw, items: list, min_size: int = 1) -> list:
    return draw(st.lists(st.sampled_from(items), min_size=min_size, max_size=len(items), unique=True))


def folder_names(data: bytes) -> list[str]:
    """The lines of ``data`` that can be folder names (no "/", NUL, leading dot, nor longer than a file name)."""
    names = []
    for line in data.decode("utf-8", "replace").splitlines():
        name = line.strip()
        if name and "/" not in name and "\x00" not in name and not name.startswith(".") and len(name.encode()) < 200:
            names.append(name)
    return names


# ------------------------------------------------------------------------------------------------- RAF-DB
RAFDB_IMAGES = list(range(1, 9))


write_rafdb = partial(nf.write_rafdb, images=dict.fromkeys(
    [*(f"test_{k:04d}.jpg" for k in RAFDB_IMAGES), "train_00001.jpg"], touch))


def valid_rafdb(draw: Draw) -> tuple[bytes, dict[str, str]]:
    ks = subset(draw, RAFDB_IMAGES)
    ids = [draw(st.integers(1, 7)) for _ in ks]
    sep = draw(st.sampled_from([" ", "\t", "  "]))
    lines = [f"test_{k:04d}.jpg{sep}{i}" for k, i in zip(ks, ids)]
    lines += [f"train_{j + 1:05d}.jpg {i}" for j, i in enumerate(draw(st.lists(st.integers(1, 7), max_size=3)))]
    expected = {nf.rafdb_image(f"test_{k:04d}.jpg"): nf.CANON[nf.RAFDB_TO_INDEX[i - 1]] for k, i in zip(ks, ids)}
    return text_file(draw, draw(st.permutations(lines))), expected


# ------------------------------------------------------------------------------------------------ AffectNet
AFFECTNET_IMAGES = [f"1/a{k}.jpg" for k in range(6)]


write_affectnet_csv = partial(nf.write_affectnet_csv, images=dict.fromkeys(AFFECTNET_IMAGES, touch))


def valid_affectnet_csv(draw: Draw) -> tuple[bytes, dict[str, str]]:
    """Rows of AffectNet-8: ids 8-10 are dropped; at least one row is kept."""
    rels = subset(draw, AFFECTNET_IMAGES)
    ids = [draw(st.integers(0, 10)) for _ in rels]
    if min(ids) > 7:
        ids[0] = draw(st.integers(0, 7))
    rows = [[rel, draw(st.integers(0, 50)), draw(st.integers(0, 50)), draw(st.integers(1, 60)),
             draw(st.sampled_from(["12", "12.0"])), "1.0;2.0", i, "0.1", "-0.2"] for rel, i in zip(rels, ids)]
    lines = csv_lines(([nf.AFFECTNET_HEADER] if draw(st.booleans()) else []) + rows)
    return text_file(draw, lines), {rel: nf.CANON[nf.AFFECTNET_TO_INDEX[i]] for rel, i in zip(rels, ids) if i < 8}


NPY_MAGIC = b"\x93NUMPY"


def write_affectnet_npy(root: Path, data: bytes) -> Path:
    """``data`` as ``val_set/annotations/10_exp.npy``: a .npy file as is, else by its length raw bytes, a string
    array of its text or a small integer array of its bytes."""
    kind = 0 if data.startswith(NPY_MAGIC) else len(data) % 3
    if kind == 1:
        data = nf.npy(np.array(data.decode("utf-8", "replace")))
    elif kind == 2:
        data = nf.npy(np.array(list(data[: len(data) % 5]), dtype=np.int64))
    return nf.write_affectnet_npy(root, {"10": data})


def valid_affectnet_npy(draw: Draw) -> tuple[bytes, dict[str, str]]:
    native = draw(st.integers(0, 7))
    value = draw(st.sampled_from([np.array(native), np.array(str(native)), np.array(float(native))]))
    return nf.npy(value), {"images/10.jpg": nf.CANON[nf.AFFECTNET_TO_INDEX[native]]}


# -------------------------------------------------------------------------------------------------- FERPlus
FER_ROWS = ["Training", "PrivateTest", "PrivateTest", "PrivateTest"]  # fer2013.csv's data rows 0..3


def majority(votes: list[int]) -> int | None:
    """The FERPlus authors' rule, from its definition: single votes are outliers; a winner needs more than half of
    what is left; unknown and NF winners are dropped."""
    kept = [0 if v <= 1 else v for v in votes]
    best = max(kept)
    if 2 * best <= sum(kept):
        return None
    winner = kept.index(best)
    return winner if winner < 8 else None


def draw_votes(draw: Draw, n: int) -> list[list[int]]:
    """``n`` vote rows of 10 counts, at least one of which has a winner."""
    votes = [draw(st.lists(st.integers(0, 10), min_size=10, max_size=10)) for _ in range(n)]
    if all(majority(v) is None for v in votes):
        votes[0] = [0] * 10
        votes[0][draw(st.integers(0, 7))] = 10
    return votes


FER2013 = text(csv_lines([nf.FER2013_HEADER] + [[0, " ".join(["7"] * 2304), usage] for usage in FER_ROWS]),
               final=False)
VOTES = text(csv_lines([nf.vote_header(True)] + [nf.vote_row("PrivateTest", f"fer{r:07d}.png", [0, 10] + [0] * 8)
                                                 for r in (1, 2, 3)]), final=False)  # names rows 1..3


def write_ferplus_votes(root: Path, data: bytes) -> Path:
    return nf.write_ferplus(root, FER2013, data)


def valid_ferplus_votes(draw: Draw) -> tuple[bytes, dict[str, str]]:
    """fer2013new.csv, with its "Image name" column or (first release) without it: then every row, in order."""
    named = draw(st.booleans())
    rows_used = subset(draw, [1, 2, 3]) if named else [0, 1, 2, 3]
    votes = draw_votes(draw, len(rows_used)) if named else draw_votes(draw, 1) + draw_votes(draw, 3)  # row 0: Training
    lines = csv_lines([nf.vote_header(named)] + [nf.vote_row(FER_ROWS[r], f"fer{r:07d}.png" if named else None, v)
                                                 for r, v in zip(rows_used, votes)])
    expected = {f"fer{r:07d}.png": nf.CANON[nf.FERPLUS_TO_INDEX[majority(v)]] for r, v in zip(rows_used, votes)
                if FER_ROWS[r] == "PrivateTest" and majority(v) is not None}
    return text_file(draw, lines), expected


def write_ferplus_pixels(root: Path, data: bytes) -> Path:
    """Random ``fer2013.csv`` under a vote file that names its rows 1..3."""
    return nf.write_ferplus(root, data, VOTES)


FER_PNGS = [f"fer{k:07d}.png" for k in range(6)]


write_ferplus_png = partial(nf.write_ferplus_png, images=dict.fromkeys(FER_PNGS, touch))


def valid_ferplus_png(draw: Draw) -> tuple[bytes, dict[str, str]]:
    names = subset(draw, FER_PNGS)
    votes = draw_votes(draw, len(names))
    lines = csv_lines([[name, nf.FER_BOX, *v] for name, v in zip(names, votes)])
    expected = {name: nf.CANON[nf.FERPLUS_TO_INDEX[majority(v)]] for name, v in zip(names, votes)
                if majority(v) is not None}
    return text_file(draw, lines), expected


# ------------------------------------------------------------------------------------------------ CAER-S, AFEW
CAERS_FOLDERS = dict(zip(nf.BASIC7_FOLDERS, nf.BASIC7_TO_INDEX)) | {"Anger": 3}  # either anger spelling
AFEW_FOLDERS = CAERS_FOLDERS | {nf.CANON[i].capitalize(): i for i in range(7)}  # + the face-frame copies' names


def write_caers(root: Path, data: bytes) -> Path:
    return nf.write_caers(root, "train", {f"{name}/0001.png": touch for name in folder_names(data)})


def write_afew(root: Path, data: bytes) -> Path:
    return nf.write_afew(root, {f"{name}/000000001": mkdir for name in folder_names(data)})


def valid_folders(table: dict[str, int], clip: str) -> Callable[[Draw], tuple[bytes, dict[str, str]]]:
    """Class folders named as in ``table`` (any case), each holding ``clip``."""

    def valid(draw: Draw) -> tuple[bytes, dict[str, str]]:
        names = subset(draw, sorted(table))
        shown = [draw(st.sampled_from([n, n.lower(), n.upper()])) for n in names]
        return "\n".join(shown).encode(), {f"{s}/{clip}": nf.CANON[table[n]] for n, s in zip(names, shown)}

    return valid


# ------------------------------------------------------------------------------------------------------ DFEW
DFEW_CLIPS = list(range(1, 9))


def write_dfew(root: Path, data: bytes) -> Path:
    return nf.write_dfew(root, {1: data}, {f"{v:05d}": mkdir for v in DFEW_CLIPS})


def valid_dfew(draw: Draw) -> tuple[bytes, dict[str, str]]:
    vids = subset(draw, DFEW_CLIPS)
    ids = [draw(st.integers(1, 7)) for _ in vids]
    rows = ([["video_name", "label"]] if draw(st.booleans()) else []) + \
        [[draw(st.sampled_from([str(v), f"{v:05d}"])), i] for v, i in zip(vids, ids)]
    return text_file(draw, csv_lines(rows)), {f"{v:05d}": nf.CANON[i - 1] for v, i in zip(vids, ids)}


# --------------------------------------------------------------------------------------------------- FERV39k
write_ferv39k = partial(nf.write_ferv39k, clips={rel: mkdir for rel, _, _ in nf.FERV39K_CLIPS})


def valid_ferv39k(draw: Draw) -> tuple[bytes, dict[str, str]]:
    clips = subset(draw, nf.FERV39K_CLIPS)
    sep = draw(st.sampled_from([" ", ",", "  "]))
    lines = (["path label"] if draw(st.booleans()) else []) + [f"{rel}{sep}{folder}" for rel, folder, _ in clips]
    return text_file(draw, lines), {rel: nf.CANON[idx] for rel, _, idx in clips}


# ------------------------------------------------------------------------------------------------------ MAFW
MAFW_CLIPS = [nf.mafw_clip(k) for k in range(6)]


def write_mafw(root: Path, data: bytes) -> Path:
    return nf.write_mafw(root, {1: data}, dict.fromkeys(MAFW_CLIPS, mkdir))


def valid_mafw(draw: Draw) -> tuple[bytes, dict[str, str]]:
    """``00025.mp4 anger`` lines, or the caption variant (tab-separated, Chinese and English captions, UTF-8 or
    GBK)."""
    clips = subset(draw, MAFW_CLIPS)
    ids = [draw(st.integers(0, 10)) for _ in clips]
    caption = draw(st.booleans())
    lines = [f"{c}.mp4\t{nf.MAFW_NAMES[i]}\t一个人皱眉\tA person frowns." if caption else f"{c}.mp4 {nf.MAFW_NAMES[i]}"
             for c, i in zip(clips, ids)]
    encoding = draw(st.sampled_from(["utf-8", "gbk"])) if caption else "utf-8"
    return text_file(draw, lines, encoding), {c: nf.CANON[nf.MAFW_TO_INDEX[i]] for c, i in zip(clips, ids)}


# ---------------------------------------------------------------------------------------------- generic formats
CSV_IMAGES = ["a.jpg", "b.jpg", "sub/c.jpg", "d e.jpg"]
WORDS = {"Happy": "happiness", "angry": "anger", "sad": "sadness", "Surprised": "surprise", "neutral": "neutral",
         "disgusted": "disgust", "fearful": "fear", "contempt": "contempt"}


def write_csv_labels(root: Path, data: bytes) -> Path:
    return nf.lay_out(root, dict.fromkeys(CSV_IMAGES, touch), {"labels.csv": data})


def valid_csv_labels(draw: Draw) -> tuple[bytes, dict[str, str]]:
    rels = subset(draw, CSV_IMAGES)
    labels = [draw(st.one_of(st.sampled_from(sorted(WORDS)), st.integers(0, 10))) for _ in rels]
    rows = ([["path", "label"]] if draw(st.booleans()) else []) + [[r, lab] for r, lab in zip(rels, labels)]
    expected = {r: WORDS[lab] if isinstance(lab, str) else nf.CANON[lab] for r, lab in zip(rels, labels)}
    return text_file(draw, csv_lines(rows)), expected


LIST_CLIPS = ["c1", "c2", "sub/c3", "c4"]


def write_list(root: Path, data: bytes) -> Path:
    return nf.lay_out(root, {f"clips/{c}": mkdir for c in LIST_CLIPS}, {"list.txt": data})


def valid_list(draw: Draw) -> tuple[bytes, dict[str, str]]:
    """``<path> <num_frames> <label>`` with the authors' absolute paths (re-based) or relative ones."""
    clips = subset(draw, LIST_CLIPS)
    labels = [draw(st.integers(0, 10)) for _ in clips]
    # Re-basing strips the paths' common folder: alone, sub/c3 would lose its "sub/" too.
    prefix = draw(st.sampled_from(["", "/data/someone/DFEW_Frame_Face/"])) if clips != ["sub/c3"] else ""
    lines = [f"{prefix}{c} {draw(st.integers(1, 500))} {lab}" for c, lab in zip(clips, labels)]
    return text_file(draw, lines), {c: nf.CANON[lab] for c, lab in zip(clips, labels)}
