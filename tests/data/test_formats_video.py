"""Readers of the video benchmarks (folds, media, label mapping, errors) and the shipped reference lists."""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath

import pytest

from expclip.data.datasets import DatasetError
from expclip.data.formats.generic import REFERENCE_LISTS, parse_list_file, reference_list_path
from expclip.data.registry import load_dataset
from expclip.data.video import sample_frame_indices

from support import media
from support import native as nf


def found(data) -> dict[str, str]:
    return {it["path"]: data.classes[it["label"]] for it in data.items}


def test_dfew_five_folds_of_frame_folders(tmp_path):
    expected = nf.dfew(tmp_path)
    folds = load_dataset("DFEW", tmp_path)
    assert [d.info["fold"] for d in folds] == [1, 2, 3, 4, 5]
    for d in folds:
        assert d.kind == "video" and d.classes == nf.CANON[:7] and d.root == tmp_path / "Clip/clip_224x224"
        assert found(d) == expected[d.info["fold"]]
    [f3] = load_dataset("DFEW", tmp_path, folds=[3])
    assert found(f3) == expected[3]


def test_dfew_clip_files_and_headerless_split(tmp_path):
    expected = nf.dfew(tmp_path, media="clips")
    split = tmp_path / "EmoLabel_DataSplit/test(single_labeled)/set_2.csv"
    split.write_text("\n".join(split.read_text().splitlines()[1:]))
    [d] = load_dataset("DFEW", tmp_path, folds=[2])
    assert d.info["media"] == "clips" and found(d) == expected[2]


def test_dfew_label_outside_1_to_7_names_file_and_line(tmp_path):
    nf.dfew(tmp_path)
    split = tmp_path / "EmoLabel_DataSplit/test(single_labeled)/set_1.csv"
    split.write_text(split.read_text().replace(",1\n", ",8\n"))
    with pytest.raises(DatasetError, match=r"set_1.csv, line 2: unknown DFEW label 8"):
        load_dataset("DFEW", tmp_path, folds=[1])


def test_ferv39k_space_separated_split_with_optional_header(tmp_path):
    expected = nf.ferv39k(tmp_path)
    [d] = load_dataset("FERV39k", tmp_path)
    assert found(d) == expected and len(d) == 7
    split = tmp_path / "4_setups/All_scenes/test_All.csv"
    split.write_text("path label\n" + split.read_text())
    [d2] = load_dataset("FERV39k", tmp_path)
    assert found(d2) == expected
    split.write_text(split.read_text() + "\nWar/Bored/0001 Bored")
    with pytest.raises(DatasetError, match=r"test_All.csv, line 9: unknown FERV39k class 'Bored'"):
        load_dataset("FERV39k", tmp_path)


@pytest.mark.parametrize("media", ["faces", "clips"])
def test_mafw_eleven_classes_over_five_folds(tmp_path, media):
    expected = nf.mafw(tmp_path, media=media)
    folds = load_dataset("MAFW", tmp_path)
    assert [len(d) for d in folds] == [3, 2, 2, 2, 2]
    for d in folds:
        assert d.classes == nf.CANON and found(d) == expected[d.info["fold"]] and d.info["media"] == media


def test_mafw_caption_variant_and_compound_labels(tmp_path):
    expected = nf.mafw(tmp_path)
    split = tmp_path / "Train & Test Set/single/no_caption/set_1/test.txt"
    split.write_bytes("\n".join(f"{line.replace(' ', chr(9))}\t一个人\tA person frowns." for line in
                                split.read_text().splitlines()).encode("gbk"))
    [d] = load_dataset("MAFW", tmp_path, folds=[1])
    assert found(d) == expected[1]
    split.write_text("00025.mp4 anger_disgust\n")
    with pytest.raises(DatasetError, match=r"test.txt, line 1: compound label"):
        load_dataset("MAFW", tmp_path, folds=[1])


def test_afew_class_folders_of_videos_and_frame_folders(tmp_path):
    expected = nf.afew(tmp_path)
    [d] = load_dataset("AFEW", tmp_path)
    assert found(d) == expected and d.root == tmp_path / "Val_AFEW"


def test_afew_derived_face_layout(tmp_path):
    for name in ("Happiness", "Anger"):
        media.frame_folder(tmp_path / "AFEW_Face/validation" / name / f"1_0_00000000{len(name)}", 4)
    [d] = load_dataset("AFEW", tmp_path)
    assert sorted(found(d).values()) == ["anger", "happiness"]


# ------------------------------------------------------------------------------------------ reference lists
# Clips per list and per class (canonical order), computed from the lists (DATASETS.md §5-§8): lines, not `wc -l`
# (several files lack a final newline).
LIST_COUNTS = {"AFEW_validation.txt": 381, "FERV39k_test.txt": 7847,
               **{f"DFEW_set_{k}_test.txt": n for k, n in zip(range(1, 6), (2341, 2341, 2340, 2339, 2336))},
               **{f"MAFW_set_{k}_test.txt": n for k, n in zip(range(1, 6), (1839, 1837, 1833, 1832, 1831))}}
CLASS_TOTALS = {"DFEW": [2445, 1894, 2669, 2173, 1469, 145, 902], "FERV39k": [1473, 1393, 1958, 1487, 638, 467, 431],
                "MAFW": [1242, 1470, 1138, 1390, 1072, 639, 625, 236, 916, 262, 182],
                "AFEW": [62, 61, 64, 63, 45, 40, 46]}


def protocol_indices(n: int, t: int = 16) -> list[int]:
    """PROTOCOL.md's test sampler, written out: middle of each of t segments, else frame 0 repeated."""
    if n > t:
        return [int(n / t / 2 + n / t * k) for k in range(t)]
    return [0] * t


def test_every_line_of_every_shipped_list_parses_and_samples_by_the_protocol():
    totals: dict[str, Counter] = {}
    for name in REFERENCE_LISTS:
        entries = parse_list_file(reference_list_path(name))
        raw = reference_list_path(name).read_text().splitlines()
        assert len(entries) == LIST_COUNTS[name] == sum(1 for line in raw if line.strip())
        totals.setdefault(name.split("_")[0], Counter()).update(e[2] for e in entries)
        for path, n, label, _ in entries:
            assert path.startswith("/data/EECS-IoannisLab/datasets/")
            idx = sample_frame_indices(n)
            assert idx == protocol_indices(n) and len(idx) == 16 and max(idx) < n
    for ds, want in CLASS_TOTALS.items():
        assert [totals[ds][i] for i in range(len(want))] == want and sum(totals[ds].values()) == sum(want)


def test_reference_list_labels_agree_with_the_folder_names():
    """FERV39k and AFEW paths carry the class: the list's 0-based labels must follow PROTOCOL.md's mapping."""
    native = dict(zip(nf.BASIC7_FOLDERS, nf.BASIC7_TO_INDEX))
    for path, _, label, _ in parse_list_file(reference_list_path("FERV39k_test.txt")):
        assert native[PurePosixPath(path).parts[-2]] == label
    for path, _, label, _ in parse_list_file(reference_list_path("AFEW_validation.txt")):
        folder, clip = PurePosixPath(path).parts[-2:]
        assert nf.CANON.index(folder.lower()) == label == int(clip.split("_")[1])


def first_clip(list_name: str) -> str:
    """The clip folder name of a shipped list's first line."""
    return PurePosixPath(parse_list_file(reference_list_path(list_name))[0][0]).name


def test_reference_lists_rebase_onto_the_local_media_folder(tmp_path):
    media = tmp_path / "DFEW/Clip/clip_224x224"
    media.mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"none of the 2341 items .* is the dataset root right"):
        load_dataset("DFEW", tmp_path / "DFEW", lists="reference", folds=[1])  # a wrong root is refused early
    for k in range(1, 6):  # one clip of each fold is there (the others become failures when read)
        (media / first_clip(f"DFEW_set_{k}_test.txt")).mkdir()
    folds = load_dataset("DFEW", tmp_path / "DFEW", lists="reference")
    assert [len(d) for d in folds] == [2341, 2341, 2340, 2339, 2336]
    first = folds[0].items[0]
    assert folds[0].root == tmp_path / "DFEW/Clip/clip_224x224" and first["path"] == "00001"
    assert first["num_frames"] == 144 and folds[0].classes[first["label"]] == "sadness"
    (tmp_path / "FERV39k/2_ClipsforFaceCrop/Action/Happy/0015").mkdir(parents=True)
    [fv] = load_dataset("FERV39k", tmp_path / "FERV39k", lists="reference")
    assert fv.items[0]["path"] == "Action/Happy/0015" and len(fv) == 7847


def test_afew_reference_list_finds_native_clips_by_name(tmp_path):
    media.video(tmp_path / "Val_AFEW/Sad/002916200.avi", 10)
    [d] = load_dataset("AFEW", tmp_path, lists="reference")
    assert len(d) == 381 and d.info["missing"] == 380
    hit = next(it for it in d.items if it["path"] == "Sad/002916200.avi")
    assert d.classes[hit["label"]] == "sadness" and "num_frames" not in hit  # face-frame counts don't apply


def test_list_file_format_rebases_and_checks_labels(tmp_path):
    lst = tmp_path / "my_list.txt"
    lst.write_text("/home/a/data/X/clips/c1 30 2\n/home/a/data/X/clips/sub/c2 8 0")  # no final newline
    (tmp_path / "frames/c1").mkdir(parents=True)
    [d] = load_dataset("list", tmp_path / "frames", list_path=str(lst), num_classes=7)
    assert found(d) == {"c1": "neutral", "sub/c2": "happiness"} and d.info["stripped_prefix"] == "/home/a/data/X/clips"
    assert [it["num_frames"] for it in d.items] == [30, 8]
    lst.write_text("/x/c1 30 2\n/x/c2 8 7\n")
    with pytest.raises(DatasetError, match=r"my_list.txt, line 2: label 7 is outside 0..6"):
        load_dataset("list", tmp_path / "frames", list_path=str(lst), num_classes=7)
    lst.write_text("/x/c1 30\n")
    with pytest.raises(DatasetError, match=r"my_list.txt, line 1: expected 3 fields \(<path> <num_frames> <label>\)"):
        load_dataset("list", tmp_path / "frames", list_path=str(lst))
    (tmp_path / "frames" / first_clip("MAFW_set_5_test.txt")).mkdir()
    [ref] = load_dataset("list", tmp_path / "frames", list_path="reference:MAFW_set_5_test.txt")
    assert len(ref) == 1831 and len(ref.classes) == 11
