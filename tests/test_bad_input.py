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
