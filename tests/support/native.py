"""Writers of tiny copies of each benchmark in its native on-disk format (DATASETS.md), for the tests (the media
they hold: support.media).

Each writer returns what a correct reader must find: relative item path -> canonical class name. The native ids
written here come from PROTOCOL.md's table, spelled out independently of the package's mapping tables.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from .media import frame_folder, image, video

# PROTOCOL.md, "Native label ids -> class order": native id/name -> index in the canonical order.
CANON = ["happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear", "contempt", "anxiety",
         "helplessness", "disappointment"]
RAFDB_TO_INDEX = [4, 6, 5, 0, 1, 3, 2]  # native 1..7
AFFECTNET_TO_INDEX = [2, 0, 1, 4, 6, 5, 3, 7]  # native 0..7; 8-10 dropped
FERPLUS_TO_INDEX = [2, 0, 4, 1, 3, 5, 6, 7]  # vote columns 0..7
BASIC7_FOLDERS = ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
BASIC7_TO_INDEX = [3, 5, 6, 0, 2, 1, 4]
MAFW_NAMES = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
              "helplessness", "disappointment"]
MAFW_TO_INDEX = [3, 5, 6, 0, 2, 1, 4, 7, 8, 9, 10]


# --------------------------------------------------------------------------------------------------- static
def rafdb(root: Path) -> dict[str, str]:
    """basic/: 8 test images (every native id, 4 twice) and 3 training images."""
    lines, expected = [], {}
    for k, native in enumerate([1, 2, 3, 4, 5, 6, 7, 4], 1):
        name = f"test_{k:04d}.jpg"
        lines.append(f"{name} {native}")
        expected[f"Image/aligned/test_{k:04d}_aligned.jpg"] = CANON[RAFDB_TO_INDEX[native - 1]]
        image(root / "Image/aligned" / f"test_{k:04d}_aligned.jpg")
    for k, native in enumerate([7, 1, 2], 1):
        lines.insert(0, f"train_{k:05d}.jpg {native}")
        image(root / "Image/aligned" / f"train_{k:05d}_aligned.jpg")
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel/list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return expected


def affectnet_legacy(root: Path, header: bool = True) -> dict[int, tuple[str, str]]:
    """Manually_Annotated: one row per expression id 0..10; each face box is a red patch inside a blue image.

    Returns native id -> (relative path, canonical class or None when dropped).
    """
    rows, out = [], {}
    for native in range(11):
        rel = f"{native + 100}/img{native:02d}.png"  # lossless, so the crop test sees exact colours
        im = Image.new("RGB", (40, 30), (0, 0, 255))
        im.paste((255, 0, 0), (10, 5, 10 + 12, 5 + 14))  # box x=10 y=5 w=12 h=14
        (root / "Manually_Annotated_Images" / rel).parent.mkdir(parents=True, exist_ok=True)
        im.save(root / "Manually_Annotated_Images" / rel, quality=100)
        rows.append([rel, 10, 5, 12, 14, ";".join(["1.0"] * 136), native, 0.1, -0.2])
        out[native] = (rel, CANON[AFFECTNET_TO_INDEX[native]] if native < 8 else None)
    (root / "Manually_Annotated_file_lists").mkdir(parents=True, exist_ok=True)
    with open(root / "Manually_Annotated_file_lists/validation.csv", "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                        "expression", "valence", "arousal"])
        w.writerows(rows)
    return out


def affectnet_2021(root: Path) -> dict[str, str]:
    """val_set/: ids 0..7, one expression stored as a digit string (as some copies do)."""
    out = {}
    for native in range(8):
        image(root / "val_set/images" / f"{native + 10}.jpg")
        value = np.array(str(native)) if native == 3 else np.array(native)
        (root / "val_set/annotations").mkdir(parents=True, exist_ok=True)
        np.save(root / "val_set/annotations" / f"{native + 10}_exp.npy", value)
        out[f"images/{native + 10}.jpg"] = CANON[AFFECTNET_TO_INDEX[native]]
    return out


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
        vote_rows.append([usage, name, *votes] if named else [usage, *votes])
        if usage == "PrivateTest" and winner is not None and (name or not named):
            expected[f"fer{row:07d}.png"] = CANON[FERPLUS_TO_INDEX[winner]]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "fer2013.csv", "w", newline="") as f:
        csv.writer(f).writerows([["emotion", "pixels", "Usage"], *pix_rows])
    cols = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]
    with open(root / "fer2013new.csv", "w", newline="") as f:
        csv.writer(f).writerows([["Usage", "Image name", *cols] if named else ["Usage", *cols], *vote_rows])
    return expected


def ferplus_png(root: Path) -> dict[str, str]:
    """FER2013Test/*.png + label.csv (no header; name, face box, 10 counts)."""
    folder = root / "FER2013Test"
    folder.mkdir(parents=True, exist_ok=True)
    rows, expected = [], {}
    for k, (votes, winner) in enumerate(FERPLUS_VOTES):
        name = f"fer{k + 30000:07d}.png"
        Image.new("L", (48, 48), 100 + k).save(folder / name)
        rows.append([name, "(0, 0, 48, 48)", *votes])
        if winner is not None:
            expected[name] = CANON[FERPLUS_TO_INDEX[winner]]
    with open(folder / "label.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return expected


def caers(root: Path) -> dict[str, str]:
    """train/ with Angry, test/ with Anger; 2 images per class."""
    expected = {}
    for split, anger in (("train", "Angry"), ("test", "Anger")):
        for folder, idx in zip(BASIC7_FOLDERS, BASIC7_TO_INDEX):
            folder = anger if folder == "Angry" else folder
            for i in range(2):
                image(root / split / folder / f"{i:04d}.png")
                if split == "train":
                    expected[f"{folder}/{i:04d}.png"] = CANON[idx]
    return expected


# ---------------------------------------------------------------------------------------------------- video
def dfew(root: Path, clips_per_fold: int = 2, media: str = "frames") -> dict[int, dict[str, str]]:
    """Clip/clip_224x224/<5-digit id>/ (or Clip/original/<id>.mp4) + EmoLabel_DataSplit/test(single_labeled)/.

    Fold k tests clips with native labels cycling 1..7; frame counts vary (5 to 40) so both sampling branches run.
    """
    out: dict[int, dict[str, str]] = {}
    vid = 1
    for fold in range(1, 6):
        lines, out[fold] = ["video_name,label"], {}
        for j in range(clips_per_fold):
            native = (vid - 1) % 7 + 1
            n = 5 + (vid * 7) % 36
            if media == "frames":
                frame_folder(root / "Clip/clip_224x224" / f"{vid:05d}", n, stem=f"{vid:05d}_")
                rel = f"{vid:05d}"
            else:
                video(root / "Clip/original" / f"{vid:05d}.mp4", n)
                rel = f"{vid:05d}.mp4"
            lines.append(f"{vid},{native}")  # the CSV's ids are not zero-padded
            out[fold][rel] = CANON[native - 1]
            vid += 1
        split = root / "EmoLabel_DataSplit/test(single_labeled)"
        split.mkdir(parents=True, exist_ok=True)
        (split / f"set_{fold}.csv").write_text("\n".join(lines) + "\n")
    return out


def ferv39k(root: Path) -> dict[str, str]:
    """2_ClipsforFaceCrop/<Scene>/<Emotion>/<NNNN>/ + 4_setups/All_scenes/test_All.csv (space-separated)."""
    lines, expected = [], {}
    for k, (folder, idx) in enumerate(zip(BASIC7_FOLDERS, BASIC7_TO_INDEX)):
        rel = f"{'Action' if k % 2 else 'War'}/{folder}/{k + 1:04d}"
        frame_folder(root / "2_ClipsforFaceCrop" / rel, 8 + 3 * k)
        lines.append(f"{rel} {folder}")
        expected[rel] = CANON[idx]
    (root / "4_setups/All_scenes").mkdir(parents=True, exist_ok=True)
    (root / "4_setups/All_scenes/test_All.csv").write_text("\n".join(lines))  # no final newline
    return expected


def mafw(root: Path, media: str = "faces") -> dict[int, dict[str, str]]:
    """data/faces/<id>/ (or data/clips/<id>.mp4) + 'Train & Test Set/single/no_caption/set_N/test.txt'.

    The 11 classes are spread over the 5 folds (3, 2, 2, 2, 2 clips).
    """
    out: dict[int, dict[str, str]] = {}
    names = iter(enumerate(MAFW_NAMES))
    for fold, count in zip(range(1, 6), (3, 2, 2, 2, 2)):
        lines, out[fold] = [], {}
        for _ in range(count):
            k, name = next(names)
            clip = f"{k * 1000 + 25:05d}"
            if media == "faces":
                frame_folder(root / "data/faces" / clip, 10 + 4 * k)
                rel = clip
            else:
                video(root / "data/clips" / f"{clip}.mp4", 10 + 4 * k)
                rel = f"{clip}.mp4"
            lines.append(f"{clip}.mp4 {name}")
            out[fold][rel] = CANON[MAFW_TO_INDEX[k]]
        d = root / "Train & Test Set/single/no_caption" / f"set_{fold}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "test.txt").write_text("\n".join(lines))
    return out


def afew(root: Path) -> dict[str, str]:
    """Val_AFEW/<Emotion>/<9-digit>.avi for 6 classes, and a frame folder for the 7th (Surprise)."""
    expected = {}
    for k, (folder, idx) in enumerate(zip(BASIC7_FOLDERS, BASIC7_TO_INDEX)):
        code = f"{k + 1:09d}"
        if folder == "Surprise":
            frame_folder(root / "Val_AFEW" / folder / code, 20)
            rel = f"{folder}/{code}"
        else:
            video(root / "Val_AFEW" / folder / f"{code}.avi", 12 + 5 * k)
            rel = f"{folder}/{code}.avi"
        expected[rel] = CANON[idx]
    return expected
