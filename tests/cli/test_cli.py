"""The command line end to end on the tiny models."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from expclip.cli import main

COMMANDS = ["demo", "extract", "train", "eval", "import-official", "list"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert len(capsys.readouterr().out) > 200


@pytest.mark.slow
def test_pipeline_end_to_end(tiny_clip_dir, tiny_blip2_dir, face_pool, face_test, tmp_path, capsys, monkeypatch):
    store = str(tmp_path / "store")
    common = ["--store", store, "--device", "cpu", "--num-workers", "0", "--no-progress"]
    assert main(["extract", "--data", str(face_pool), "--backbone", str(tiny_clip_dir),
                 "--teacher", str(tiny_blip2_dir), *common]) == 0
    out = capsys.readouterr().out
    assert "CLIP: 84 of 84 items" in out and "teacher [task]: 84 of 84 items" in out

    # train must not run any encoder: make loading one impossible.
    from expclip.models import backbone as bb_mod
    from expclip.models import teacher as te_mod

    def boom(*a, **k):
        raise AssertionError("train loaded a model")

    monkeypatch.setattr(te_mod.Teacher, "from_pretrained", boom)
    monkeypatch.setattr(bb_mod.Backbone, "from_pretrained", boom)
    run = tmp_path / "run"
    assert main(["train", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--teacher", str(tiny_blip2_dir),
                 "--out", str(run), "--seeds", "1", "2", "3", "--train-batch-size", "16", *common]) == 0
    monkeypatch.undo()
    cfg = json.loads((run / "seed2" / "config.json").read_text())
    assert cfg["seed"] == 2 and cfg["train"]["epochs"] == 5 and cfg["train"]["lr"] == 1e-3
    assert cfg["preprocessing"]["mode"] == "reference" and cfg["teacher"]["instruction"].startswith("Please play")
    assert cfg["backbone"]["revision"].startswith("local-") and cfg["train"]["logit_scale"] == pytest.approx(100, rel=1e-4)

    res = tmp_path / "results"
    assert main(["eval", "--data", str(face_test), "--head", str(run), "--out", str(res), *common]) == 0
    md = (res / "results.md").read_text()
    assert "RANDOM WEIGHTS" in md and "| CLIP |" in md and "| run |" in md and "± " in md
    cells = sorted((res / "cells").glob("*.json"))
    assert len(cells) == (1 + 3) * 5  # CLIP + 3 seeds, × 5 prompt sets
    cell = json.loads(cells[0].read_text())
    assert cell["num_samples"] == 42 and 0 <= cell["uar"] <= 1 and len(cell["confusion_matrix"]) == 7
    assert len(list((res / "confusion").glob("*.png"))) == 2 * 5
    csv = (res / "results.csv").read_text().splitlines()
    assert csv[0].startswith("dataset,group,model,prompt_set,uar") and len(csv) == 1 + 2 * 5

    torch.save({"mlp.weight": torch.randn(64, 768)}, tmp_path / "ExpCLIP_L14_model.pth")
    assert main(["import-official", str(tmp_path / "ExpCLIP_L14_model.pth"), "--out", str(tmp_path / "imp")]) == 0
    assert main(["list", "--store", store]) == 0
    listed = capsys.readouterr().out
    assert "ensemble_10" in listed and "teacher model=" in listed and "complete" in listed


def test_train_without_features_says_how_to_extract(tiny_clip_dir, tiny_blip2_dir, face_pool, tmp_path, capsys):
    code = main(["train", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--teacher", str(tiny_blip2_dir),
                 "--out", str(tmp_path / "r"), "--store", str(tmp_path / "s")])
    assert code == 2
    assert "expclip extract" in capsys.readouterr().err


def test_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "missing"), "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "missing" in err and "Traceback" not in err


@pytest.mark.slow
def test_demo_runs_offline_from_the_console(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "expclip", "demo", "--out", str(tmp_path / "demo"), "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RANDOM WEIGHTS" in proc.stdout and "Expression Ensemble Ten" in proc.stdout
    assert (tmp_path / "demo" / "results" / "results.md").is_file()
    assert len(list((tmp_path / "demo" / "runs" / "exp-clip-tiny").glob("seed*/head.safetensors"))) == 3
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "RANDOM WEIGHTS" in page and "Projection head" in page and "data:image/png;base64," in page
    assert "report.html" in proc.stdout


# ------------------------------------------------------------------------------------- mistakes a researcher makes
def _common(store):
    return ["--store", str(store), "--device", "cpu", "--num-workers", "0", "--no-progress"]


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and err.count("\n") == 1, err
    for w in words:
        assert w in err, err
    return err


def test_the_teacher_given_as_backbone_is_refused_by_name(tiny_blip2_dir, face_test, tmp_path, capsys):
    for cmd in (["extract", "--data", str(face_test), "--backbone", str(tiny_blip2_dir)],
                ["eval", "--data", str(face_test), "--backbone", str(tiny_blip2_dir), "--out", str(tmp_path / "r")]):
        assert main([*cmd, *_common(tmp_path / "store")]) == 2
        _one_line_error(capsys, str(tiny_blip2_dir), "teacher", "--teacher")


def test_extract_with_nothing_to_extract_is_refused(face_pool, tmp_path, capsys):
    assert main(["extract", "--data", str(face_pool), "--no-backbone", *_common(tmp_path / "store")]) == 2
    _one_line_error(capsys, "--no-backbone", "--teacher")


@pytest.mark.slow
def test_a_head_trained_from_a_relative_model_path_works_from_any_folder(
        tiny_clip_dir, tiny_blip2_dir, face_pool, face_test, tmp_path, capsys, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.chdir(tiny_clip_dir.parent)
    assert main(["extract", "--data", str(face_pool), "--backbone", tiny_clip_dir.name, "--teacher",
                 str(tiny_blip2_dir), *_common(store)]) == 0
    # Another spelling of the same folder finds the same features; the head names the folder absolutely.
    assert main(["train", "--data", str(face_pool), "--backbone", f"./{tiny_clip_dir.name}/", "--teacher",
                 str(tiny_blip2_dir), "--out", str(tmp_path / "run"), "--seeds", "1", "--train-batch-size", "16",
                 *_common(store)]) == 0
    cfg = json.loads((tmp_path / "run" / "seed1" / "config.json").read_text())
    assert cfg["backbone"]["id"] == str(tiny_clip_dir)
    monkeypatch.chdir(tmp_path)  # elsewhere, with a fresh store: the backbone must load from the head's config
    assert main(["eval", "--data", str(face_test), "--head", str(tmp_path / "run"), "--out", "res",
                 *_common(tmp_path / "store2")]) == 0
    assert (tmp_path / "res" / "results.md").is_file()
    monkeypatch.chdir(tiny_clip_dir.parent)  # a relative --backbone naming the head's folder does not clash
    assert main(["eval", "--data", str(face_test), "--head", str(tmp_path / "run"), "--backbone", tiny_clip_dir.name,
                 "--out", str(tmp_path / "res2"), *_common(tmp_path / "store2")]) == 0


def test_an_unwritable_out_is_refused_before_any_work(tiny_head_dir, face_test, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["eval", "--data", str(face_test), "--head", str(tiny_head_dir), "--out", str(blocker / "res"),
                 *_common(tmp_path / "store")]) == 2
    _one_line_error(capsys, "--out", str(blocker / "res"), "is a file")
    assert not (tmp_path / "store").exists()  # no feature was computed first
    assert main(["demo", "--out", str(blocker / "demo"), "--no-progress"]) == 2
    _one_line_error(capsys, "--out", str(blocker / "demo"), "is a file")


@pytest.mark.slow
def test_train_refuses_repeated_seeds_and_says_what_differs(tiny_clip_dir, tiny_blip2_dir, face_pool, tmp_path,
                                                            capsys):
    store = tmp_path / "store"
    assert main(["extract", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--teacher",
                 str(tiny_blip2_dir), *_common(store)]) == 0
    train = ["train", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--teacher", str(tiny_blip2_dir),
             "--out", str(tmp_path / "run"), "--train-batch-size", "16", *_common(store)]
    assert main([*train, "--seeds", "1", "1"]) == 2
    _one_line_error(capsys, "--seeds", "[1]")
    assert main([*train, "--seeds", "1"]) == 0
    assert main([*train, "--seeds", "1", "--epochs", "2"]) == 2
    _one_line_error(capsys, "seed1", "train.epochs: wanted 2, that head has 5")


def test_train_help_gives_the_papers_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("(default 5)", "(default 512)", "(default 0.001)", "(default 0.9)", "(default 0.0001)",
                 "(default linear", "(default openai/clip-vit-large-patch14)", "(default Salesforce/blip2-flan-t5-xxl)"):
        assert text in out, text


def test_sigterm_ends_a_command_like_ctrl_c(monkeypatch, capsys):
    import signal
    import time

    from expclip.cli import catalog

    def killed(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt the command")

    monkeypatch.setattr(catalog, "cmd_list", killed)
    assert main(["list"]) == 143
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the process's own handler is given back


def test_a_head_named_twice_is_scored_once(tiny_head_dir, face_test, tmp_path, capsys):
    run = tiny_head_dir.parent  # a run directory holding seed1/
    assert main(["eval", "--data", str(face_test), "--head", str(tiny_head_dir), str(run), "--no-clip", "--prompts",
                 "class_name", "--out", str(tmp_path / "res"), *_common(tmp_path / "store")]) == 0
    rows = (tmp_path / "res" / "results.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].endswith(",1,1,42,0")  # 1 seed, 1 fold, 42 samples: not 2 folds of 84
