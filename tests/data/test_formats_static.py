"""Readers of the static benchmarks in their native formats: counts, PROTOCOL.md's label mapping, errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from expclip.data.datasets import DatasetError
from expclip.data.formats.ferplus import vote_winner
from expclip.data.images import Preprocess
from expclip.data.loaders import image_loader
from expclip.data.registry import DATASETS, PAPER_DATASETS, get_spec, load_dataset

from support import media
from support import native as nf


def found(data) -> dict[str, str]:
    """relative path -> class name, as the reader labelled them."""
    return {it["path"]: data.classes[it["label"]] for it in data.items}


def test_registry_covers_the_paper_and_dispatches_by_table():
    assert set(PAPER_DATASETS) <= set(DATASETS) and "CAER-S" in DATASETS
    assert [get_spec(d).num_classes for d in PAPER_DATASETS] == [7, 7, 8, 8, 7, 7, 11, 7]
    assert get_spec("dfew").folds == (1, 2, 3, 4, 5) and get_spec("MAFW").folds == (1, 2, 3, 4, 5)
    with pytest.raises(DatasetError, match="unknown dataset 'SFEW'"):
        get_spec("SFEW")


def test_rafdb_maps_native_ids_and_splits_by_prefix(tmp_path):
    expected = nf.rafdb(tmp_path / "basic")
    [data] = load_dataset("RAFDB", tmp_path / "basic")
    assert data.classes == nf.CANON[:7] and len(data) == 8
    assert found(data) == expected
    assert data.info["per_class"]["happiness"] == 2  # native 4 written twice
    [train] = load_dataset("RAFDB", tmp_path / "basic", split="train")
    assert sorted(found(train)) == [f"Image/aligned/train_{k:05d}_aligned.jpg" for k in (1, 2, 3)]


def test_rafdb_compound_labels_are_refused_with_file_and_line(tmp_path):
    nf.rafdb(tmp_path)
    f = tmp_path / "EmoLabel/list_patition_label.txt"
    lines = f.read_text().splitlines()
    lines[4] = "test_0004.jpg 9"
    f.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=r"list_patition_label.txt, line 5: .*9"):
        load_dataset("RAFDB", tmp_path)


def test_rafdb_native_id_folders(tmp_path):
    for native in range(1, 8):
        media.image(tmp_path / "test" / str(native) / f"x{native}_aligned.jpg")
    [data] = load_dataset("RAFDB", tmp_path)
    assert {p.split("/")[0]: c for p, c in found(data).items()} == {
        str(n): nf.CANON[nf.RAFDB_TO_INDEX[n - 1]] for n in range(1, 8)}


@pytest.mark.parametrize("header", [True, False])
def test_affectnet_legacy_drops_ids_and_crops_the_face_box(tmp_path, header):
    rows = nf.affectnet_legacy(tmp_path, header=header)
    [an7] = load_dataset("AffectNet7", tmp_path)
    [an8] = load_dataset("AffectNet8", tmp_path)
    assert found(an8) == {rel: c for n, (rel, c) in rows.items() if n < 8}
    assert found(an7) == {rel: c for n, (rel, c) in rows.items() if n < 7}
    assert an7.classes == nf.CANON[:7] and an8.classes == nf.CANON[:8]
    assert an7.info["dropped"] == 4 and an8.info["dropped"] == 3
    assert all(it["box"] == [10, 5, 12, 14] for it in an8.items)
    x = image_loader(an8, Preprocess("reference", 8, 8))(0)  # the box is red inside a blue picture
    assert x.shape == (3, 8, 8) and torch.allclose(x.mean(dim=(1, 2)), torch.tensor([1.0, 0.0, 0.0]), atol=0.05)


def test_affectnet_bad_expression_names_file_and_line(tmp_path):
    nf.affectnet_legacy(tmp_path)
    f = tmp_path / "Manually_Annotated_file_lists/validation.csv"
    text = f.read_text().splitlines()
    text[3] = text[3].replace(";1.0,2,", ";1.0,12,")
    f.write_text("\n".join(text) + "\n")
    with pytest.raises(DatasetError, match=r"validation.csv, line 4: unknown expression id 12"):
        load_dataset("AffectNet8", tmp_path)


def test_affectnet_2021_release(tmp_path):
    expected = nf.affectnet_2021(tmp_path)
    [an8] = load_dataset("AffectNet8", tmp_path)
    assert an8.info["release"] == "2021" and found(an8) == expected
    [an7] = load_dataset("AffectNet7", tmp_path, release="2021")
    assert "contempt" not in found(an7).values() and len(an7) == 7


@pytest.mark.parametrize("votes, winner", nf.FERPLUS_VOTES)
def test_ferplus_majority_rule(votes, winner):
    assert vote_winner(votes) == winner


def test_ferplus_other_rules():
    votes = [3, 0, 0, 3, 0, 0, 0, 0, 0, 0]  # no majority, but a plurality (first maximum)
    assert vote_winner(votes, "majority") is None and vote_winner(votes, "plurality") == 0
    unknown = [1, 0, 0, 0, 0, 0, 0, 0, 6, 2]
    assert vote_winner(unknown, "plurality") == 0 and vote_winner(unknown, "argmax10") is None
    with pytest.raises(ValueError):
        vote_winner(votes, "mode")


@pytest.mark.parametrize("named", [True, False])
def test_ferplus_from_the_kaggle_csv(tmp_path, named):
    expected = nf.ferplus_csv(tmp_path, named=named)
    [data] = load_dataset("FERPlus", tmp_path)
    assert data.classes == nf.CANON[:8] and found(data) == expected
    assert data.info["source"] == "csv" and data.info["rule"] == "majority"
    assert data.info["unnamed_rows"] == (1 if named else 0)
    with open(tmp_path / "fer2013.csv") as f:
        rows = list(csv.reader(f))[1:]
    for it in data.items:  # the in-memory decoder gives the CSV's pixels
        img = np.asarray(data.decoder(data.root, it))
        assert img.shape == (48, 48, 3)
        assert (img[..., 0].ravel() == np.array(rows[it["row"]][1].split(), dtype=np.uint8)).all()
    [plural] = load_dataset("FERPlus", tmp_path, rule="plurality")
    assert len(plural) > len(data)


def test_ferplus_csv_and_vote_file_must_agree(tmp_path):
    nf.ferplus_csv(tmp_path)
    f = tmp_path / "fer2013.csv"
    rows = f.read_text().splitlines()
    rows[4] = rows[4].replace("PrivateTest", "PublicTest")
    f.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"fer2013.csv, line 5: Usage"):
        load_dataset("FERPlus", tmp_path)


def test_ferplus_png_folder_with_label_csv(tmp_path):
    expected = nf.ferplus_png(tmp_path)
    [data] = load_dataset("FERPlus", tmp_path)
    assert data.info["source"] == "png" and data.info["votes"] == "label.csv" and found(data) == expected
    assert data.root == tmp_path / "FER2013Test" and data.decoder is None


def test_caers_accepts_both_anger_spellings(tmp_path):
    expected = nf.caers(tmp_path)
    [train] = load_dataset("CAER-S", tmp_path)
    assert found(train) == expected and train.name == "CAER-S-train"
    [test] = load_dataset("CAER-S", tmp_path, split="test")
    assert len(test) == 14 and test.info["per_class"]["anger"] == 2


def test_generic_csv_and_registry_errors(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        media.image(tmp_path / name)
    (tmp_path / "labels.csv").write_text("path,label\na.jpg,Happy\nb.jpg,3\nc.jpg,surprised\n")
    [data] = load_dataset("csv", tmp_path)
    assert found(data) == {"a.jpg": "happiness", "b.jpg": "anger", "c.jpg": "surprise"}
    assert data.classes == nf.CANON[:5] and data.kind == "image"
    (tmp_path / "bad.csv").write_text("a.jpg,happy\nb.jpg,bored\n")
    with pytest.raises(DatasetError, match=r"bad.csv, line 2: label 'bored'"):
        load_dataset("csv", tmp_path, file="bad.csv")
    with pytest.raises(DatasetError, match=r"does not take the option\(s\) \['rule'\]; it accepts"):
        load_dataset("RAFDB", tmp_path, rule="majority")
    with pytest.raises(DatasetError, match="not found"):
        load_dataset("DFEW", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="has folds"):
        load_dataset("DFEW", tmp_path, folds=[6])
