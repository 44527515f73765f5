"""Bad input refused before any work: every model an invocation names is resolved and checked before the first
encoder runs, outputs are checked before anything is loaded, every option is finite and in range, and every
command an error suggests runs as printed."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest
import torch

from expclip.cli import main


def user_error(argv, capsys, *says: str) -> str:
    """Run the CLI; it must end in a one-line user error (rc 2) that contains every ``says``."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "bug in expclip" not in err and "Traceback" not in err, err
    for s in says:
        assert s in err, err
    return err


def no_store(root) -> bool:
    return not list(root.glob("*/meta.json")) if root.exists() else True


# ------------------------------------------------------------------------------------------------ 1. models first
@pytest.mark.parametrize("teacher,says", [
    ("missing", "model directory not found"),
    ("clip", "is not BLIP-2 with a T5"),
    ("nobody/uncached-teacher", "not in the local Hugging Face cache"),
])
def test_extract_checks_the_teacher_before_the_clip_pass(face_pool, tiny_clip_dir, tmp_path, capsys, teacher, says):
    name = {"missing": str(tmp_path / "no-such-teacher"), "clip": str(tiny_clip_dir)}.get(teacher, teacher)
    store = tmp_path / "s"
    user_error(["extract", "--data", face_pool, "--backbone", tiny_clip_dir, "--teacher", name, "--store", store,
                "--no-progress"], capsys, says)
    assert no_store(store)  # no CLIP feature was computed


def test_extract_checks_every_backbone_before_the_first(face_pool, tiny_clip_dir, tmp_path, capsys):
    store = tmp_path / "s"
    user_error(["extract", "--data", face_pool, "--backbone", tiny_clip_dir, tmp_path / "gone", "--store", store,
                "--no-progress"], capsys, "gone")
    assert no_store(store)


def test_train_extract_checks_the_teacher_before_the_clip_pass(face_pool, tiny_clip_dir, tmp_path, capsys):
    store = tmp_path / "s"
    user_error(["train", "--data", face_pool, "--backbone", tiny_clip_dir, "--teacher", tmp_path / "gone",
                "--extract", "--out", tmp_path / "run", "--store", store, "--no-progress"], capsys, "gone")
    assert no_store(store)


def test_eval_checks_every_heads_backbone_before_the_first_encoder(tiny_head_dir, face_test, tmp_path, capsys):
    other = tmp_path / "other-head"
    shutil.copytree(tiny_head_dir, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["backbone"] = {"id": str(tmp_path / "moved-away-clip"), "revision": None}
    cfg["run_name"] = "other"
    (other / "config.json").write_text(json.dumps(cfg))
    store = tmp_path / "s"
    user_error(["eval", "--data", face_test, "--head", tiny_head_dir, other, "--store", store, "--out",
                tmp_path / "r", "--no-progress"], capsys, "moved-away-clip")
    assert no_store(store)


def test_ablate_checks_the_teacher_before_the_clip_pass(face_pool, face_test, tiny_clip_dir, tmp_path, capsys):
    store = tmp_path / "s"
    user_error(["ablate", "heads", "--train-data", face_pool, "--data", face_test, "--backbone", tiny_clip_dir,
                "--teacher", tmp_path / "gone", "--store", store, "--out", tmp_path / "a", "--no-progress"],
               capsys, "gone")
    assert no_store(store)


# ------------------------------------------------------------------------------------------------ 2. outputs first
@pytest.mark.parametrize("out,says", [
    ("/proc/nope/x.csv", "--out /proc/nope/x.csv: cannot write there"),
    ("results.txt", "--out results.txt: the results file must end in .csv or .jsonl"),
    ("EXISTING", "exists: add --resume"),
    ("FOLDER", "is a folder"),
])
def test_predict_checks_out_before_loading_the_model(face_pool, tmp_path, capsys, monkeypatch, out, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.csv").write_text("input\n")
    (tmp_path / "dir.csv").mkdir()
    out = {"EXISTING": "old.csv", "FOLDER": "dir.csv"}.get(out, out)
    # the backbone does not exist: only an --out checked before loading gives this error rather than that one
    user_error(["predict", face_pool, "--faces", "none", "--backbone", tmp_path / "no-model", "--out", out], capsys,
               says)


def test_predict_checks_annotate_before_loading_the_model(face_pool, tmp_path, capsys):
    user_error(["predict", face_pool, "--faces", "none", "--backbone", tmp_path / "no-model", "--annotate",
                "/proc/nope/viz"], capsys, "--annotate /proc/nope/viz: cannot write there")


@pytest.mark.parametrize("cmd", ["eval", "train", "ablate", "demo", "import-official"])
def test_an_out_folder_that_cannot_be_written_is_named(cmd, face_pool, face_test, tmp_path, capsys):
    argv = {"eval": ["eval", "--data", face_test], "train": ["train", "--data", face_pool],
            "ablate": ["ablate", "tsne", "--data", face_test], "demo": ["demo"],
            "import-official": ["import-official", tmp_path / "x.pth"]}[cmd]
    user_error([*argv, "--out", "/proc/nope/out"], capsys, "--out /proc/nope/out: cannot write there")
