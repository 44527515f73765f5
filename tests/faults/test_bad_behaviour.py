"""Wrong or surprising behaviour a new user hits: moved model folders, signals while workers start, what is named
how, what is written where, and what the README promises."""

from __future__ import annotations

import shutil

import pytest

from expclip.cli import main
from support.cli import user_error


# ------------------------------------------------------------------------------------------------ 14. offline error
def test_the_offline_error_is_one_short_line_with_our_remedy(face_pool, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = user_error(["extract", "--data", face_pool, "--backbone", "someone/not-cached", "--store", tmp_path], capsys,
                     "someone/not-cached", "hf download someone/not-cached", "save_pretrained")
    line = err.strip()
    assert "\n" not in line and len(line) < 300, line
    assert "local_files_only" not in line  # Hugging Face's advice names its API's options, not ours
    with pytest.raises(Exception) as e:  # -v: the hub's own message is the cause, shown with the traceback
        main(["-v", "extract", "--data", str(face_pool), "--backbone", "someone/not-cached", "--store", str(tmp_path)])
    assert e.value.__cause__ is not None


# ------------------------------------------------------------------------------------------------ 8. moved backbone
@pytest.fixture()
def moved(tiny_clip_dir, tmp_path):
    """A head trained on a local backbone folder that was moved afterwards: (head dir, the folder's new place)."""
    import torch

    from expclip.checkpoint import save_head
    from expclip.models.heads import build_head
    from expclip.models.hub import resolve_model

    old, new = tmp_path / "old-place" / "clip", tmp_path / "new-place" / "clip"
    shutil.copytree(tiny_clip_dir, old)
    rev = resolve_model(old).revision
    torch.manual_seed(0)
    cfg = {"head": {"type": "linear", "in_dim": 16, "out_dim": 24}, "backbone": {"id": str(old), "revision": rev},
           "preprocessing": {"mode": "reference"}, "name": "Exp-CLIP moved", "run_name": "moved"}
    head = save_head(tmp_path / "run" / "seed1", build_head("linear", 16, 24), cfg)
    new.parent.mkdir()
    old.rename(new)
    return head, new


def test_eval_names_the_option_for_a_moved_backbone(moved, face_test, tmp_path, capsys):
    head, _ = moved
    user_error(["eval", "--data", face_test, "--head", head, "--store", tmp_path / "s", "--out", tmp_path / "r"],
               capsys, "old-place", "--backbone")


def test_a_moved_backbone_with_the_same_content_is_accepted_in_eval_ablate_and_predict(moved, face_test, tmp_path,
                                                                                       capsys, caplog):
    head, new = moved
    common = ["--store", str(tmp_path / "s"), "--no-progress"]
    assert main(["eval", "--data", str(face_test), "--head", str(head), "--backbone", str(new), "--prompts",
                 "class_name", "--out", str(tmp_path / "r"), *common]) == 0
    assert main(["ablate", "tsne", "--data", str(face_test), "--head", str(head), "--backbone", str(new), "--prompts",
                 "class_name", "--out", str(tmp_path / "a"), "--no-report", *common]) == 0
    capsys.readouterr()
    with caplog.at_level("WARNING"):
        assert main(["predict", str(face_test / "Happy"), "--head", str(head), "--backbone", str(new), "--faces",
                     "none", "--device", "cpu"]) == 0
    assert "replaces" not in caplog.text


def test_another_backbone_still_contradicts_the_head(moved, face_test, tmp_path, capsys):
    from expclip.models.tiny import build_tiny_clip

    head, _ = moved
    other = build_tiny_clip(tmp_path / "other-clip", seed=5)
    user_error(["eval", "--data", face_test, "--head", head, "--backbone", other, "--out", tmp_path / "r"], capsys,
               "contradicts head")
    user_error(["ablate", "tsne", "--data", face_test, "--head", head, "--backbone", other, "--out", tmp_path / "a"],
               capsys, "is not the backbone of the given --head")


def test_readme_says_a_moved_backbone_is_accepted():
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert "same content fingerprint" in readme and "--backbone NEW_FOLDER" in readme


# ------------------------------------------------------------------------------------------------ 9. SIGINT
SIGINT_WHILE_WORKERS_START = """
import multiprocessing.process, os, signal, sys
started = []
real = multiprocessing.process.BaseProcess.start
def start(self):
    real(self)
    started.append(self)
    if len(started) == {k}:  # what a scheduler or an IDE does: SIGINT to the main process only
        os.kill(os.getpid(), signal.SIG{sig})
multiprocessing.process.BaseProcess.start = start
from expclip.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize("k,sig", [(1, "INT"), (2, "INT"), (1, "TERM")])
def test_a_signal_to_the_main_process_while_workers_start_stops_cleanly(k, sig, face_pool, tiny_clip_dir, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    argv = ["extract", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--store", str(tmp_path / "s"),
            "--num-workers", "2", "--batch-size", "8", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", SIGINT_WHILE_WORKERS_START.format(k=k, sig=sig, argv=argv)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == (130 if sig == "INT" else 143), out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr
    assert ("interrupted" if sig == "INT" else "terminated") in out.stderr
    assert not list((tmp_path / "s").glob("*/features.npy"))  # stopped, not finished


# ------------------------------------------------------------------------------------------------ 13. names, labels
def test_list_shows_the_training_datasets_beside_the_test_sets(tmp_path, capsys):
    assert main(["list", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "CAER-S: training pool" in out and "RAFDB (also RAF-DB): test set" in out and "DFEW: test set, videos" in out


@pytest.mark.parametrize("spelling", ["RAF-DB", "raf-db", "RAFDB", "AffectNet-7", "affectnet 8", "caers", "FERV39K"])
def test_the_readmes_spellings_name_the_datasets(spelling):
    from expclip.data.registry import get_spec

    assert get_spec(spelling).name in ("RAFDB", "AffectNet7", "AffectNet8", "CAER-S", "FERV39k")


def test_dataset_raf_db_as_the_readme_spells_it(tmp_path, capsys):
    from support.native import rafdb

    rafdb(tmp_path / "raf")
    err = user_error(["eval", "--dataset", "RAF-DB", "--root", tmp_path / "raf", "--no-clip", "--out", tmp_path / "r"],
                     capsys, "nothing to evaluate")  # read fine: only then does eval say there is nothing to score
    assert "unknown dataset" not in err


@pytest.mark.parametrize("content,says", [('{"labels": {"happy": ["a smile"], "sad": []}}', "'sad' are an empty list"),
                                          ('{"labels": {"happy": ["  "]}}', "'happy' are blank")])
def test_a_label_file_with_an_empty_description_list_is_refused(content, says, tmp_path):
    from expclip.errors import InputError
    from expclip.labels import load_label_spec

    f = tmp_path / "labels.json"
    f.write_text(content)
    with pytest.raises(InputError, match=says):
        load_label_spec(f)


def test_predict_takes_a_run_directory_and_says_which_head(tiny_head_dir, face_test, capsys, caplog):
    run = tiny_head_dir.parent  # holds seed1/
    with caplog.at_level("WARNING"):
        assert main(["predict", str(face_test / "Happy"), "--head", str(run), "--faces", "none", "--device",
                     "cpu"]) == 0
    assert f"is a training run of 1 head(s) (seed1): predicting with the first, {tiny_head_dir}" in caplog.text
    assert "Exp-CLIP tiny" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ 15. short clips
def test_readme_says_one_thing_about_folders_with_fewer_frames_than_listed_and_it_is_true(tmp_path):
    from pathlib import Path

    from support.media import frame_folder

    from expclip.data.loaders import plan_clip

    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert "frame folders with fewer frames than the list says: each is recorded" not in readme
    assert readme.count("sampled from the frames found") == 2 and "left out of training and scoring" in readme
    frame_folder(tmp_path / "clip", 5)
    plan = plan_clip(tmp_path, {"path": "clip", "num_frames": 40, "label": 0}, 16, "reference")
    assert "error" not in plan and plan["frames_found"] == 5 and plan["frames_listed"] == 40  # sampled, counted
    assert plan["frames"] == [0] * 16  # the reference rule over the 5 frames found


# ------------------------------------------------------------------------------------------------ 18. small things
def test_annotated_photos_keep_their_name(tiny_clip_dir, tmp_path, capsys):
    from PIL import Image

    (tmp_path / "in").mkdir()
    for name in ("photo0.png", "photo1.jpg", "photo2.gif"):
        Image.new("RGB", (32, 32), (90, 60, 30)).save(tmp_path / "in" / name)
    assert main(["predict", str(tmp_path / "in"), "--backbone", str(tiny_clip_dir), "--faces", "none", "--annotate",
                 str(tmp_path / "viz"), "--device", "cpu"]) == 0
    assert sorted(p.name for p in (tmp_path / "viz" / "in").iterdir()) == ["photo0.png", "photo1.jpg",
                                                                          "photo2.gif.jpg"]
    assert Image.open(tmp_path / "viz" / "in" / "photo0.png").format == "PNG"


def test_repr_of_a_model_says_what_it_is(tiny_head_dir, tiny_clip_dir):
    from expclip import ExpCLIP

    r = repr(ExpCLIP.from_pretrained(tiny_head_dir, device="cpu"))
    assert r.startswith("ExpCLIP(name='Exp-CLIP tiny', backbone=") and "head=linear 16->24" in r
    assert "preprocessing='clip'" in r and "device=cpu" in r
    assert "head=none (plain CLIP)" in repr(ExpCLIP.from_pretrained(tiny_clip_dir, device="cpu"))


def test_a_store_found_under_a_nearby_key_is_explained_in_words(tmp_path, caplog):
    from support.kill import TOY_KEY, toy_encode, toy_items, toy_load

    from expclip.features.extraction import run_extraction
    from expclip.features.store import find_store, store_path

    key = {**TOY_KEY, "dtype": "bfloat16-autocast"}
    run_extraction(store_path(tmp_path, key), key, toy_items(8), toy_load, toy_encode, (4,), batch_size=4,
                   progress=False)
    with caplog.at_level("INFO"):
        find_store(tmp_path, {**TOY_KEY, "dtype": "float32"}, ("dtype",))
    assert "computed in bfloat16-autocast (this machine would compute float32)" in caplog.text
    assert "matches on all but" not in caplog.text


def test_every_option_and_command_has_help():
    import argparse

    from expclip.cli import build_parser

    missing = []

    def walk(parser, path):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in a._choices_actions}
                for name, sub in a.choices.items():
                    if not helps.get(name) or not sub.description:
                        missing.append(f"{name} (help or description)")
                    walk(sub, path + [name])
            elif a.help is None:
                missing.append(" ".join(path + [a.option_strings[0] if a.option_strings else a.dest]))

    walk(build_parser(), [])
    assert missing == []


def test_predict_offers_no_option_it_does_not_use(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--allow-outside-root" not in capsys.readouterr().out


def test_a_split_folder_is_named_by_its_parent_in_tables(face_test, tiny_clip_dir, tmp_path, capsys):
    data = tmp_path / "my-faces" / "test"
    shutil.copytree(face_test, data)
    assert main(["eval", "--data", str(data), "--backbone", str(tiny_clip_dir), "--prompts", "class_name", "--out",
                 str(tmp_path / "r"), "--store", str(tmp_path / "s"), "--no-progress"]) == 0
    md = (tmp_path / "r" / "results.md").read_text()
    assert "## my-faces" in md and "## test" not in md


def test_standalone_confusion_pngs_of_random_weights_say_so(face_test, tiny_clip_dir, tmp_path):
    from PIL import Image

    from expclip.models.hub import RANDOM_WEIGHTS_NOTE

    assert main(["eval", "--data", str(face_test), "--backbone", str(tiny_clip_dir), "--prompts", "class_name",
                 "--out", str(tmp_path / "r"), "--store", str(tmp_path / "s"), "--no-progress"]) == 0
    pngs = sorted((tmp_path / "r" / "confusion").glob("*.png"))
    assert pngs and all(Image.open(p).info.get("Comment") == RANDOM_WEIGHTS_NOTE for p in pngs)
