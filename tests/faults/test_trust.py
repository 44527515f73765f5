"""Fault injection, untrusted files: no load path unpickles or runs code, model repos never run remote code, dataset
paths cannot leave the dataset root, offline errors say how to make a model available."""

from __future__ import annotations

import ast
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import expclip
from expclip.checkpoint import CheckpointError, load_head, save_head
from expclip.cli import main
from expclip.data.datasets import DatasetError, ItemList, image_folder, unlabelled_images
from expclip.data.safe import PathEscapeError, safe_join
from expclip.features.store import FeatureStore, StoreError
from expclip.models.backbone import Backbone
from expclip.models.heads import build_head
from expclip.models.hub import ModelNotAvailableError
from expclip.models.teacher import Teacher

from support import media
from support.kill import job_extract


class _Evil:
    """Unpickling this creates the file ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_pickle(path: Path, marker: Path) -> Path:
    with open(path, "wb") as f:
        pickle.dump({"weight": _Evil(marker)}, f)
    return path


def test_pickled_model_weights_are_refused_and_never_run(tiny_clip_dir, tiny_blip2_dir, tmp_path):
    marker = tmp_path / "pwned"
    for name, src, cls in (("clip", tiny_clip_dir, Backbone), ("blip2", tiny_blip2_dir, Teacher)):
        d = tmp_path / name
        shutil.copytree(src, d, ignore=shutil.ignore_patterns("*.safetensors*"))
        _evil_pickle(d / "pytorch_model.bin", marker)
        with pytest.raises(ModelNotAvailableError, match="pickled weights.*pytorch_model.bin"):
            cls.from_pretrained(d)
    # An index that points the teacher at a pickle, or outside its directory.
    d = tmp_path / "blip2-index"
    shutil.copytree(tiny_blip2_dir, d)
    for target, why in (("pytorch_model.bin", "only .safetensors"), ("../../elsewhere.safetensors", "climbs out")):
        (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"query_tokens": target}}))
        with pytest.raises(ModelNotAvailableError if "only" in why else PathEscapeError, match=why):
            Teacher.from_pretrained(d)
    assert not marker.exists()


def test_a_model_repo_with_remote_code_never_runs_it(tiny_clip_dir, tmp_path):
    marker = tmp_path / "pwned"
    d = tmp_path / "clip-remote"
    shutil.copytree(tiny_clip_dir, d)
    (d / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "evil.EvilModel", "AutoConfig": "evil.EvilConfig"}
    (d / "config.json").write_text(json.dumps(cfg))
    for tok in d.glob("tokenizer_config.json"):
        t = json.loads(tok.read_text())
        t["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
        tok.write_text(json.dumps(t))
    try:
        Backbone.from_pretrained(d)  # either the built-in CLIP code loads it, or it is refused
    except ModelNotAvailableError:
        pass
    assert not marker.exists()


def test_every_from_pretrained_call_turns_remote_code_off():
    """trust_remote_code is never on by default: every call in the package says False, explicitly."""
    calls = []
    for path in Path(expclip.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "from_pretrained":
                owner = getattr(node.func.value, "id", "")
                if owner in ("Backbone", "Teacher", "ExpCLIP", "cls"):  # ours: they call the transformers ones below
                    continue
                kw = {k.arg: k.value for k in node.keywords}
                calls.append((path.name, node.lineno))
                flag = kw.get("trust_remote_code")
                assert isinstance(flag, ast.Constant) and flag.value is False, \
                    f"{path.name}:{node.lineno} calls from_pretrained without trust_remote_code=False"
    assert len(calls) >= 5


def test_a_tampered_store_or_head_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = _Evil(marker)
    # A finished store whose features.npy became an object array (a pickle): reading it refuses.
    job_extract({"n": 20, "dir": str(tmp_path / "s")})
    store = FeatureStore.open(tmp_path / "s")
    np.save(store.path / "features.npy", evil, allow_pickle=True)
    with pytest.raises(StoreError, match="Python objects"):  # named as a damaged store, never unpickled
        store.features()
    d = tmp_path / "partial"  # a finished store turned back into an unfinished one whose chunk 1 is a pickle
    job_extract({"n": 20, "dir": str(d)})
    meta = json.loads((d / "meta.json").read_text())
    (d / "meta.json").write_text(json.dumps({**meta, "complete": False}))
    (d / "chunks").mkdir()
    for c in range(3):
        np.save(d / "chunks" / f"{c:05d}.npy", evil if c == 1 else np.zeros((8 if c < 2 else 4, 4), np.float32),
                allow_pickle=True)
        (d / "chunks" / f"{c:05d}.json").write_text("{}")
    with pytest.raises(ValueError, match="allow_pickle"):
        job_extract({"n": 20, "dir": str(d)})
    # A head whose weights file is a pickle.
    save_head(tmp_path / "h", build_head("linear", 4, 3), {"head": {"type": "linear", "in_dim": 4, "out_dim": 3}})
    _evil_pickle(tmp_path / "h" / "head.safetensors", marker)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_head(tmp_path / "h")
    # And a released-head .pth through the command line.
    _evil_pickle(tmp_path / "ExpCLIP_B16_model.pth", marker)
    assert main(["import-official", str(tmp_path / "ExpCLIP_B16_model.pth"), "--out", str(tmp_path / "imp")]) == 2
    assert not marker.exists() and not (tmp_path / "imp").exists()


def test_a_head_with_non_finite_weights_is_refused(tmp_path):
    head = build_head("linear", 4, 3)
    with torch.no_grad():
        head.mlp.weight[1, 2] = float("nan")
    save_head(tmp_path / "h", head, {"head": {"type": "linear", "in_dim": 4, "out_dim": 3}})
    with pytest.raises(CheckpointError, match="non-finite"):
        load_head(tmp_path / "h")


@pytest.mark.parametrize("rel,ok", [
    ("a/b.jpg", True), ("./a/../b.jpg", True), ("a/./b.jpg", True),
    ("../b.jpg", False), ("a/../../b.jpg", False), ("/etc/passwd", False), ("link_out/x.jpg", False),
    ("link_in/b.jpg", True), ("", False), ("a\x00b", False),
])
def test_paths_cannot_leave_the_dataset_root_unless_allowed(tmp_path, rel, ok):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link_out").symlink_to(tmp_path / "outside")
    (root / "link_in").symlink_to(root / "a")
    if ok:
        assert safe_join(root, rel) == root / rel
    else:
        with pytest.raises(PathEscapeError, match="allow_outside|invalid"):
            safe_join(root, rel, source="list.txt, line 3")
        if rel and "\x00" not in rel:
            assert safe_join(root, rel, allow_outside=True) == root / rel


def test_folder_readers_refuse_links_out_of_the_dataset_unless_allowed(face_test, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(face_test, data)
    secret = tmp_path / "secret.png"
    shutil.copy(next((data / "sadness").glob("*.png")), secret)
    (data / "Happy" / "zz_link.png").symlink_to(secret)
    with pytest.raises(PathEscapeError, match="zz_link.png"):
        image_folder(data)
    with pytest.raises(PathEscapeError):
        unlabelled_images(data)
    assert len(image_folder(data, allow_outside=True)) == 43
    args = ["extract", "--data", str(data), "--labelled", "--backbone", "x/y", "--store", str(tmp_path / "s")]
    assert main(args) == 2 and "--allow-outside-root" in capsys.readouterr().err
    # An item list built by hand (or by a list-file reader) is held to the same rule.
    items = [{"path": "../secret.png", "label": 0}]
    with pytest.raises(PathEscapeError):
        ItemList("x", data, items, ["happiness"]).validate()
    with pytest.raises(DatasetError, match="none of the 1 items"):  # allowed, but it must still exist
        ItemList("x", data, [{"path": "../nope.png", "label": 0}], ["happiness"]).validate(allow_outside=True)


def test_list_file_paths_leave_the_root_only_with_allow_outside_root(tiny_clip_dir, tmp_path, capsys):
    """--dataset and --suite read annotation files whose paths are held to the dataset root, named by line."""
    root = tmp_path / "clips"
    media.frame_folder(root / "in", 20)
    media.frame_folder(tmp_path / "private" / "c", 20)
    lst = tmp_path / "list.txt"
    lst.write_text("in 20 0\n../private/c 20 1\n")
    common = ["--backbone", str(tiny_clip_dir), "--num-workers", "0", "--no-progress", "--device", "cpu"]
    extract = ["extract", "--dataset", "list", "--root", str(root), "--option", f"list_path={lst}",
               "--store", str(tmp_path / "s"), *common]
    assert main(extract) == 2
    err = capsys.readouterr().err
    assert "list.txt, line 2" in err and "'../private/c'" in err and "--allow-outside-root" in err, err
    assert not (tmp_path / "s").exists()  # refused before any model was loaded
    assert main([*extract, "--allow-outside-root"]) == 0
    assert "2 of 2 items" in capsys.readouterr().out

    preset = tmp_path / "suite.json"
    preset.write_text(json.dumps({"datasets": [{"dataset": "list", "root": "clips",
                                                "options": {"list_path": str(lst), "num_classes": 7}}]}))
    evaluate = ["eval", "--suite", str(preset), "--prompts", "class_name", "--store", str(tmp_path / "s"),
                "--out", str(tmp_path / "res"), *common]
    assert main(evaluate) == 2 and "list.txt, line 2" in capsys.readouterr().err
    assert main([*evaluate, "--allow-outside-root"]) == 0
    assert json.loads(next((tmp_path / "res" / "cells").glob("*.json")).read_text())["num_samples"] == 2


def test_offline_errors_name_the_model_and_how_to_provide_it(face_pool, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for role in (["--backbone"], ["--no-backbone", "--teacher"]):
        model = "someone/not-in-the-cache"
        assert main(["extract", "--data", str(face_pool), "--store", str(tmp_path), *role, model]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and "someone/not-in-the-cache" in err and "Traceback" not in err
        assert "hf download someone/not-in-the-cache" in err and "save_pretrained" in err and "cache" in err
