"""Tiny copies of each benchmark in its native layout, written by :mod:`support.formats`: a few items of each (real
images, frame folders and videos from :mod:`support.media`), each copy returning what a correct reader must find,
relative item path -> canonical class name. The native ids come from PROTOCOL.md's table (:mod:`support.formats`),
spelled out independently of the package's mapping tables.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from .formats import (
    AFFECTNET_HEADER, AFFECTNET_TO_INDEX, BASIC7_FOLDERS, BASIC7_TO_INDEX, CANON, FER2013_HEADER, FER_BOX,
    FERPLUS_TO_INDEX, FERV39K_CLIPS, MAFW_NAMES, MAFW_TO_INDEX, RAFDB_TO_INDEX, csv_file, mafw_clip, npy, rafdb_image,
    text, vote_header, vote_row, write_afew, write_affectnet_csv, write_affectnet_npy, write_caers, write_dfew,
    write_ferplus, write_ferplus_png, write_ferv39k, write_mafw, write_rafdb,
)
from .media import frame_folder, image, video


def rafdb(root: Path) -> dict[str, str]:
    """basic/: 8 test images (every native id, 4 twice) and 3 training images."""
    lines, expected = [], {}
    for k, native in enumerate([1, 2, 3, 4, 5, 6, 7, 4], 1):
        name = f"test_{k:04d}.jpg"
        lines.append(f"{name} {native}")
        expected[rafdb_image(name)] = CANON[RAFDB_TO_INDEX[native - 1]]
    for k, native in enumerate([7, 1, 2], 1):
        lines.insert(0, f"train_{k:05d}.jpg {native}")
    write_rafdb(root, text(lines), {line.split()[0]: image for line in lines})
    return expected


def _boxed(path: Path) -> None:
    """A red face box x=10 y=5 w=12 h=14 in a blue image, lossless, so the crop test sees exact colours."""
    im = Image.new("RGB", (40, 30), (0, 0, 255))
    im.paste((255, 0, 0), (10, 5, 10 + 12, 5 + 14))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=100)


def affectnet_legacy(root: Path, header: bool = True) -> dict[int, tuple[str, str]]:
    """Manually_Annotated: one row per expression id 0..10; each face box is a red patch inside a blue image.

    Returns native id -> (relative path, canonical class or None when dropped).
    """
    rows, out = [], {}
    for native in range(11):
        rel = f"{native + 100}/img{native:02d}.png"
        rows.append([rel, 10, 5, 12, 14, ";".join(["1.0"] * 136), native, 0.1, -0.2])
        out[native] = (rel, CANON[AFFECTNET_TO_INDEX[native]] if native < 8 else None)
    write_affectnet_csv(root, csv_file(([AFFECTNET_HEADER] if header else []) + rows),
                        {rel: _boxed for rel, _ in out.values()})
    return out


def affectnet_2021(root: Path) -> dict[str, str]:
    """val_set/: ids 0..7, one expression stored as a digit string (as some copies do)."""
    values = {f"{native + 10}": np.array(str(native)) if native == 3 else np.array(native) for native in range(8)}
    write_affectnet_npy(root, {stem: npy(v) for stem, v in values.items()}, image)
    return {f"images/{native + 10}.jpg": CANON[AFFECTNET_TO_INDEX[native]] for native in range(8)}


# Votes (10 columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF) and what the
# FERPlus authors' majority rule gives, worked out by hand from its definition.
FERPLUS_VOTES = [
    ([0, 10, 0, 0, 0, 0, 0, 0, 0, 0], 1),  # unanimous happiness
    ([4, 0, 3, 0, 0, 0, 0, 0, 0, 1], 0),  # the single NF vote is removed: neutral 4 > 7/2
    ([1, 0, 0, 0, 0, 0, 0, 5, 1, 1], 7),  # singles removed: contempt 5 of 5
    ([3, 0, 0, 3, 0, 0, 0, 0, 0, 0], None),  # tie 3/3: not more than half -> unknown, dropped
    ([0, 0, 0, 0, 0, 0, 0, 0, 6, 2], None),  # unknown wins -> dropped
    ([0, 0, 0, 0, 0, 0, 0, 0, 2, 8], None),  # NF wins -> dropped
    ([0, 0, 2, 0, 0, 0, 3, 0, 0, 0], 6),  # fear 3 of 5
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], None),  # every count is a single vote: nothing left -> dropped
]


def ferplus_csv(root: Path, named: bool = True) -> dict[str, str]:
    """fer2013.csv + fer2013new.csv: 2 Training rows, then the PrivateTest rows of FERPLUS_VOTES, one unnamed."""
    rng = np.random.default_rng(0)
    usages = ["Training", "Training"] + ["PrivateTest"] * (len(FERPLUS_VOTES) + 1)
    pix_rows, vote_rows, expected = [], [], {}
    for row, usage in enumerate(usages):
        pixels = rng.integers(0, 256, 48 * 48)
        pix_rows.append([3, " ".join(map(str, pixels)), usage])
        k = row - 2
        votes, winner = (FERPLUS_VOTES[k] if 0 <= k < len(FERPLUS_VOTES) else ([0, 9, 0, 0, 0, 0, 0, 0, 0, 1], 1))
        name = f"fer{row:07d}.png" if not (usage == "PrivateTest" and k == len(FERPLUS_VOTES)) else ""
        vote_rows.append(vote_row(usage, name if named else None, votes))
        if usage == "PrivateTest" and winner is not None and (name or not named):
            expected[f"fer{row:07d}.png"] = CANON[FERPLUS_TO_INDEX[winner]]
    write_ferplus(root, csv_file([FER2013_HEADER, *pix_rows]), csv_file([vote_header(named), *vote_rows]))
    return expected


def ferplus_png(root: Path) -> dict[str, str]:
    """FER2013Test/*.png + label.csv (no header; name, face box, 10 counts)."""
    rows, images, expected = [], {}, {}
    for k, (votes, winner) in enumerate(FERPLUS_VOTES):
        name = f"fer{k + 30000:07d}.png"
        images[name] = lambda p, k=k: Image.new("L", (48, 48), 100 + k).save(p)
        rows.append([name, FER_BOX, *votes])
        if winner is not None:
            expected[name] = CANON[FERPLUS_TO_INDEX[winner]]
    write_ferplus_png(root, csv_file(rows), images)
    return expected


def caers(root: Path) -> dict[str, str]:
    """train/ with Angry, test/ with Anger; 2 images per class."""
    expected = {}
    for split, anger in (("train", "Angry"), ("test", "Anger")):
        files = {}
        for folder, idx in zip(BASIC7_FOLDERS, BASIC7_TO_INDEX):
            folder = anger if folder == "Angry" else folder
            for i in range(2):
                files[f"{folder}/{i:04d}.png"] = image
                if split == "train":
                    expected[f"{folder}/{i:04d}.png"] = CANON[idx]
        write_caers(root, split, files)
    return expected


def dfew(root: Path, clips_per_fold: int = 2, media: str = "frames") -> dict[int, dict[str, str]]:
    """Clip/clip_224x224/<5-digit id>/ (or Clip/original/<id>.mp4) + EmoLabel_DataSplit/test(single_labeled)/.

    Fold k tests clips with native labels cycling 1..7; frame counts vary (5 to 40) so both sampling branches run.
    """
    out: dict[int, dict[str, str]] = {}
    splits, clips = {}, {}
    vid = 1
    for fold in range(1, 6):
        lines, out[fold] = ["video_name,label"], {}
        for j in range(clips_per_fold):
            native = (vid - 1) % 7 + 1
            n = 5 + (vid * 7) % 36
            if media == "frames":
                rel = f"{vid:05d}"
                clips[rel] = partial(frame_folder, n=n, stem=f"{vid:05d}_")
            else:
                rel = f"{vid:05d}.mp4"
                clips[rel] = partial(video, n=n)
            lines.append(f"{vid},{native}")  # the CSV's ids are not zero-padded
            out[fold][rel] = CANON[native - 1]
            vid += 1
        splits[fold] = text(lines)
    write_dfew(root, splits, clips, "frames" if media == "frames" else "clips")
    return out


def ferv39k(root: Path) -> dict[str, str]:
    """2_ClipsforFaceCrop/<Scene>/<Emotion>/<NNNN>/ + 4_setups/All_scenes/test_All.csv (space-separated)."""
    lines, clips, expected = [], {}, {}
    for k, (rel, folder, idx) in enumerate(FERV39K_CLIPS):
        clips[rel] = partial(frame_folder, n=8 + 3 * k)
        lines.append(f"{rel} {folder}")
        expected[rel] = CANON[idx]
    write_ferv39k(root, text(lines, final=False), clips)  # no final newline
    return expected


def mafw(root: Path, media: str = "faces") -> dict[int, dict[str, str]]:
    """data/faces/<id>/ (or data/clips/<id>.mp4) + 'Train & Test Set/single/no_caption/set_N/test.txt'.

    The 11 classes are spread over the 5 folds (3, 2, 2, 2, 2 clips).
    """
    out: dict[int, dict[str, str]] = {}
    splits, clips = {}, {}
    names = iter(enumerate(MAFW_NAMES))
    for fold, count in zip(range(1, 6), (3, 2, 2, 2, 2)):
        lines, out[fold] = [], {}
        for _ in range(count):
            k, name = next(names)
            clip = mafw_clip(k)
            clips[clip] = partial(frame_folder if media == "faces" else video, n=10 + 4 * k)
            lines.append(f"{clip}.mp4 {name}")
            out[fold][clip if media == "faces" else f"{clip}.mp4"] = CANON[MAFW_TO_INDEX[k]]
        splits[fold] = text(lines, final=False)
    write_mafw(root, splits, clips, media)
    return out


def afew(root: Path) -> dict[str, str]:
    """Val_AFEW/<Emotion>/<9-digit>.avi for 6 classes, and a frame folder for the 7th (Surprise)."""
    clips, expected = {}, {}
    for k, (folder, idx) in enumerate(zip(BASIC7_FOLDERS, BASIC7_TO_INDEX)):
        code = f"{k + 1:09d}"
        if folder == "Surprise":
            rel = f"{folder}/{code}"
            clips[rel] = partial(frame_folder, n=20)
        else:
            rel = f"{folder}/{code}.avi"
            clips[rel] = partial(video, n=12 + 5 * k)
        expected[rel] = CANON[idx]
    write_afew(root, clips)
    return expected
