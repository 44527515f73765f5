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

from support.cli import no_store, user_error


# ------------------------------------------------------------------------------------------------ 1. models first
@pytest.mark.parametrize("teacher,says", [
    ("missing", "model directory not found"),
    ("clip", "is not BLIP-2 with a T5"),
    ("nobody/uncached-teacher", "not in the Hugging Face cache"),
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


# ------------------------------------------------------------------------------------------------ 3. printed commands
def _suggested(err: str) -> list[str]:
    assert "Extract it first: expclip " in err, err
    return shlex.split(err.split("Extract it first: expclip ", 1)[1].strip())


def test_trains_extract_first_hints_run_as_printed(face_pool, tiny_clip_dir, tiny_blip2_dir, tmp_path, capsys,
                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative --data and --store, as people type them
    shutil.copytree(face_pool, tmp_path / "my pool")  # a space in the path: the hint must quote it
    train = ["train", "--data", "my pool", "--backbone", str(tiny_clip_dir), "--teacher", str(tiny_blip2_dir),
             "--out", "run", "--store", "st", "--seeds", "1", "--train-batch-size", "16", "--epochs", "1"]
    image_hint = _suggested(user_error(train, capsys, "no complete image store"))
    assert "--backbone" in image_hint and main(image_hint + ["--no-progress"]) == 0
    capsys.readouterr()
    teacher_hint = _suggested(user_error(train, capsys, "no complete teacher store"))
    assert "--no-backbone" in teacher_hint  # without it, extract would also run the default L/14
    assert main(teacher_hint + ["--no-progress"]) == 0
    capsys.readouterr()
    assert main(train) == 0
    assert (tmp_path / "run" / "seed1" / "head.safetensors").is_file()


# ------------------------------------------------------------------------------------------------ 4. batch of 512
def test_too_few_training_items_name_the_option_that_fixes_it():
    from expclip.errors import InputError
    from expclip.train import TrainConfig, train_head

    with pytest.raises(InputError) as e:
        train_head(torch.randn(140, 8), torch.randn(140, 6), TrainConfig())
    assert "140 training items are fewer than one batch of 512" in str(e.value)
    assert "--train-batch-size 32" in str(e.value)
    train_head(torch.randn(140, 8), torch.randn(140, 6), TrainConfig(batch_size=32, epochs=1))  # the fix works


def test_readme_says_the_papers_batch_needs_512_images():
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert "at least 512 training images" in readme and "--train-batch-size" in readme


# ------------------------------------------------------------------------------------------------ 7. options
@pytest.mark.parametrize("argv,says", [
    (["predict", "p.jpg", "--video-fps", "inf"], "--video-fps: inf is not a finite number"),
    (["predict", "p.jpg", "--margin", "inf"], "--margin"),
    (["predict", "p.jpg", "--margin", "nan"], "--margin"),
    (["predict", "p.jpg", "--margin", "-0.1"], "--margin"),
    (["predict", "p.jpg", "--frames", "0"], "--frames"),
    (["eval", "--dataset", "", "--root", "r"], "--dataset: an empty value"),
    (["extract", "--dataset", " ", "--root", "r"], "--dataset"),
    (["extract", "--data", ""], "--data: an empty value"),
    (["train", "--data", "d", "--out", ""], "--out"),
    (["extract", "--data", "d", "--teacher", ""], "--teacher"),
    (["eval", "--data", "d", "--store", ""], "--store"),
    (["predict", ""], "paths"),
    (["train", "--data", "d", "--out", "o", "--seeds", "99999999999999999999"], "--seeds"),
    (["train", "--data", "d", "--out", "o", "--lr", "inf"], "--lr"),
    (["eval", "--dataset", "DFEW", "--root", "r", "--segments", "0"], "--segments"),
])
def test_option_values_are_finite_in_range_and_not_empty(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and "Traceback" not in err, err


@pytest.mark.parametrize("device,says", [("meta", "not a device expclip computes on"),
                                         ("mps", "not available in this torch build"),
                                         ("xpu", "not available in this torch build"),
                                         ("cuda:x", "is not a device")])
def test_a_device_torch_knows_but_expclip_cannot_use_is_refused(device, says, face_pool, tiny_clip_dir, capsys):
    if device == "mps" and torch.backends.mps.is_available() or device == "xpu" and torch.xpu.is_available():
        pytest.skip(f"{device} is available here")
    user_error(["predict", face_pool, "--faces", "none", "--backbone", tiny_clip_dir, "--device", device], capsys,
               "--device", device, says)


def test_the_python_api_refuses_a_non_finite_margin_or_rate():
    from expclip.errors import InputError
    from expclip.predict.options import PredictOptions

    for kw in ({"margin": float("nan")}, {"margin": float("inf")}, {"video_fps": float("inf")}):
        with pytest.raises(InputError):
            PredictOptions(**kw)


@pytest.mark.parametrize("content,says", [(b"{oops", "not valid JSON"), (b"[1, 2]", "must be a JSON object"),
                                          (b'{"vision_model": [0]}', "must be a JSON object"), (None, "no such file")])
def test_a_bad_teacher_device_map_file_is_named_before_any_model_loads(content, says, face_pool, tiny_blip2_dir,
                                                                      tmp_path, capsys):
    f = tmp_path / "map.json"
    if content is not None:
        f.write_bytes(content)
    store = tmp_path / "s"
    user_error(["extract", "--data", face_pool, "--no-backbone", "--teacher", tiny_blip2_dir, "--teacher-device-map",
                f, "--store", store], capsys, "--teacher-device-map", says)
    assert no_store(store)
