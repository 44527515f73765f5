"""Native formats written by strangers: absurd values, malformed headers, mistyped names and unreadable folders are
one-line errors naming the file (and line), and valid variants are read."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch

from expclip.data.registry import load_dataset
from expclip.errors import ExpclipError

from support.native import affectnet_2021, ferplus_png, rafdb


def test_a_rafdb_line_with_a_mistyped_split_prefix_is_an_error_with_file_and_line(tmp_path):
    rafdb(tmp_path)
    f = tmp_path / "EmoLabel/list_patition_label.txt"
    lines = f.read_text().splitlines()
    lines[5] = lines[5].replace("test_", "tset_")
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(ExpclipError, match=r"list_patition_label.txt, line 6: image name 'tset_\d+.jpg' starts with "
                                           r"neither 'train_' nor 'test_'"):
        load_dataset("RAFDB", tmp_path)


def test_a_ferplus_vote_count_of_309_digits_is_an_error_with_file_and_line(tmp_path):
    ferplus_png(tmp_path)
    f = tmp_path / "FER2013Test/label.csv"
    rows = list(csv.reader(f.open()))
    rows[2][3] = "1" * 309
    with open(f, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(ExpclipError, match=r"label.csv, line 3: vote count 11111111111111111111\.\.\. \(309 digits\) "
                                           r"is out of range 0\.\.1000"):
        load_dataset("FERPlus", tmp_path)


@pytest.mark.parametrize("value,native", [(np.array("10"), 10), (np.array("5 "), 5), (np.array(b"6"), 6),
                                          (np.array(4.0), 4), (np.int16(2), 2), (np.array([1]), 1)])
def test_affectnet_2021_reads_any_integer_valued_scalar(tmp_path, value, native):
    expected = affectnet_2021(tmp_path)
    np.save(tmp_path / "val_set/annotations/13_exp.npy", value)  # native id 3 in the writer, replaced
    paths = [it["path"] for it in load_dataset("AffectNet8", tmp_path, release="2021")[0].items]
    assert ("images/13.jpg" in paths) == (native < 8)  # ids 8-10 are dropped, the others read
    assert len(paths) == len(expected) - (native >= 8)


@pytest.mark.parametrize("header", [
    b"{'descr': '<i8', 'fortran_order': False, 'shape': (), }",  # fine: the control
    b"{'descr': '<i8', 'fortran_order': False, 'shape': ((((, }",
    b"{'descr': '<i8', 'fortran_order': False, 'shape': (), 'x': '''}",
    b"{'descr': '|O', 'fortran_order': False, 'shape': (), }",
    b"{'descr': '<U100000', 'fortran_order': False, 'shape': (), }",
])
def test_a_malformed_npy_header_is_an_error_naming_the_file(tmp_path, header):
    affectnet_2021(tmp_path)
    body = header + b" " * (118 - len(header) % 64) + b"\n"
    f = tmp_path / "val_set/annotations/13_exp.npy"
    f.write_bytes(b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body + (3).to_bytes(8, "little"))
    if header.startswith(b"{'descr': '<i8', 'fortran_order': False, 'shape': (), }"):
        assert len(load_dataset("AffectNet8", tmp_path, release="2021")[0]) == 8
        return
    with pytest.raises(ExpclipError, match="13_exp.npy"):
        load_dataset("AffectNet8", tmp_path, release="2021")


def test_a_sparse_tensor_in_an_official_pth_is_refused(tmp_path):
    from expclip.official import import_official

    f = tmp_path / "ExpCLIP_B32_model.pth"
    torch.save({"mlp.weight": torch.eye(4, 512).to_sparse()}, f)
    with pytest.raises(ExpclipError, match="'mlp.weight' is a torch.sparse_coo"):
        import_official(f, tmp_path / "out")


def test_an_unreadable_subfolder_is_named_not_skipped(face_test, tmp_path, monkeypatch):
    import shutil

    from expclip.data.datasets import image_folder, unlabelled_images
    from expclip.data.inputs import expand_inputs

    root = tmp_path / "faces"
    shutil.copytree(face_test, root)
    (root / "Happy" / "more").mkdir()
    locked = str(root / "Happy" / "more")
    real = os.scandir

    def scandir(path="."):  # root may read anything: a permission error is simulated
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    for read in (image_folder, unlabelled_images, lambda r: expand_inputs([r])):
        with pytest.raises(ExpclipError, match=f"{locked}: cannot read this folder"):
            read(root)


def test_every_decoded_image_format_is_listed(tmp_path):
    from PIL import Image

    from expclip.data.datasets import unlabelled_images
    from expclip.data.inputs import expand_inputs

    for ext in ("ppm", "pgm", "pbm", "png"):
        Image.new("RGB" if ext != "pbm" else "1", (8, 8)).save(tmp_path / f"a.{ext}")
    assert sorted(it["path"] for it in unlabelled_images(tmp_path).items) == ["a.pbm", "a.pgm", "a.png", "a.ppm"]
    assert len(expand_inputs([tmp_path])) == 4


@pytest.mark.parametrize("resize,crop", [(224, 224), (256, 224), (200, 224), (32, 32)])
def test_clip_preprocessing_is_the_processors_at_every_aspect_ratio(resize, crop):
    """transformers' own (PIL) CLIP processor vs ours, on images from 1:1 to 10:1, wide and tall, large and small."""
    from PIL import Image

    from expclip.data.images import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, Preprocess
    from expclip.models.tiny import pil_image_processor

    proc = pil_image_processor("CLIP")(size={"shortest_edge": resize}, crop_size={"height": crop, "width": crop})
    ours = Preprocess("clip", crop, resize, True, 3, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)
    rng = np.random.default_rng(0)
    worst = 0.0
    for ratio in range(1, 11):
        for short in (7, 37, 100, 300):
            for h, w in ((short, short * ratio), (short * ratio, short)):
                img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
                want = torch.as_tensor(proc(images=img, return_tensors="np")["pixel_values"][0])
                got = ours(img)
                assert got.shape == want.shape
                worst = max(worst, float((got - want).abs().max()))
    assert worst < 1e-5, worst
