"""Fault injection, bad annotations and arguments, and numerics: each is a one-line error naming the file, line or
option and what to do, raised before any model runs or any feature is computed."""

from __future__ import annotations

import json

import pytest
import torch

from expclip.checkpoint import save_head
from expclip.cli import main
from expclip.data.datasets import DatasetError, ItemList
from expclip.data.safe import AnnotationError, int_field, mapped_field, read_csv_rows, read_lines, split_fields
from expclip.data.synthetic import draw_face
from expclip.features.extraction import ExtractionFailure, run_extraction
from expclip.labels import load_label_spec
from expclip.models.heads import build_head
from expclip.runs.evaluate import Model, evaluate
from expclip.train import TrainConfig, train_head

from support.kill import TOY_KEY, toy_encode, toy_items, toy_load


def _nothing_computed(store_root) -> bool:
    return not store_root.exists() or not list(store_root.glob("*/meta.json"))


@pytest.mark.parametrize("argv,option", [
    (["extract", "--data", "d", "--batch-size", "0"], "--batch-size"),
    (["extract", "--data", "d", "--num-workers", "-1"], "--num-workers"),
    (["extract", "--data", "d", "--teacher-batch-size", "x"], "--teacher-batch-size"),
    (["train", "--data", "d", "--out", "o", "--lr", "-1e-3"], "--lr"),
    (["train", "--data", "d", "--out", "o", "--lr", "nan"], "--lr"),
    (["train", "--data", "d", "--out", "o", "--epochs", "0"], "--epochs"),
    (["train", "--data", "d", "--out", "o", "--seeds", "1", "-2"], "--seeds"),
    (["train", "--data", "d", "--out", "o", "--logit-scale", "0"], "--logit-scale"),
    (["eval", "--data", "d", "--preprocessing", "squash"], "--preprocessing"),
    (["predict", "p.jpg", "--face-threshold", "2"], "--face-threshold"),  # a detector score is in [0, 1]
])
def test_bad_option_values_are_refused_by_name(argv, option, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and option in capsys.readouterr().err


@pytest.mark.parametrize("cmd", ["extract", "predict", "ablate"])
def test_a_device_that_does_not_exist_is_refused_before_loading(cmd, face_pool, face_test, tiny_clip_dir, tmp_path,
                                                                capsys):
    argv = {"extract": ["extract", "--data", str(face_pool), "--backbone", "x/y", "--store", str(tmp_path)],
            # a real (tiny) model: the device must be refused before it is loaded, not by torch while moving it
            "predict": ["predict", str(face_pool), "--backbone", str(tiny_clip_dir), "--faces", "none"],
            "ablate": ["ablate", "tsne", "--data", str(face_test), "--backbone", str(tiny_clip_dir),
                       "--store", str(tmp_path), "--out", str(tmp_path / "a")]}[cmd]
    devices = (("cuda:7", "no such CUDA GPU"), ("banana", "not a device"))
    if not torch.cuda.is_available():
        devices += (("cuda", "no such CUDA GPU"),)
    for device, says in devices:
        assert main([*argv, "--device", device]) == 2
        err = capsys.readouterr().err
        assert says in err and "--device" in err and "Traceback" not in err


def test_python_api_refuses_a_gpu_that_is_not_there(tiny_clip_dir):
    from expclip import ExpCLIP

    with pytest.raises(ValueError, match="no such CUDA GPU"):
        ExpCLIP.from_pretrained(tiny_clip_dir, device="cuda:7")
    model = ExpCLIP.from_pretrained(tiny_clip_dir, device="cpu")
    with pytest.raises(ValueError, match="no such CUDA GPU"):
        model.predict(draw_face("happiness", 32), faces="none", device="cuda:7")


def test_float16_teacher_is_refused_before_any_extraction(tiny_clip_dir, tiny_blip2_dir, face_pool, tmp_path, capsys):
    store = tmp_path / "s"
    assert main(["extract", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--teacher",
                 str(tiny_blip2_dir), "--teacher-dtype", "float16", "--store", str(store)]) == 2
    assert "float16 is refused" in capsys.readouterr().err
    assert _nothing_computed(store)  # not even the CLIP features, which come first


@pytest.fixture()
def reference_head(tiny_clip_dir, tmp_path):
    """A head trained (here: saved) in reference mode on the tiny CLIP's 16-d features."""

    def make(name="head", in_dim=16):
        d = tmp_path / name
        save_head(d, build_head("linear", in_dim, 8), {
            "head": {"type": "linear", "in_dim": in_dim, "out_dim": 8}, "backbone": {"id": str(tiny_clip_dir)},
            "preprocessing": {"mode": "reference"}, "run_name": name})
        return d

    return make


def test_eval_refuses_options_that_contradict_the_head_before_any_work(reference_head, tiny_clip_dir, face_test,
                                                                      tmp_path, capsys):
    head, store = reference_head(), tmp_path / "s"
    base = ["eval", "--data", str(face_test), "--head", str(head), "--store", str(store), "--out", str(tmp_path / "r")]
    assert main([*base, "--preprocessing", "clip"]) == 2
    err = capsys.readouterr().err
    assert "--preprocessing clip" in err and str(head) in err and "'reference'" in err and "drop --preprocessing" in err
    assert main([*base, "--backbone", "openai/clip-vit-base-patch32"]) == 2
    assert "--backbone" in capsys.readouterr().err
    assert _nothing_computed(store)
    # The head's own mode, named explicitly, is fine.
    assert main([*base, "--preprocessing", "reference", "--prompts", "class_name", "--num-workers", "0",
                 "--no-progress"]) == 0


def test_a_head_whose_input_size_does_not_fit_its_backbone_is_refused_before_extraction(reference_head, face_test,
                                                                                        tmp_path, capsys):
    head, store = reference_head("wide", in_dim=12), tmp_path / "s"
    assert main(["eval", "--data", str(face_test), "--head", str(head), "--store", str(store), "--no-clip"]) == 2
    err = capsys.readouterr().err
    assert "12-d" in err and "16-d" in err and str(head) in err
    assert _nothing_computed(store)


def test_a_store_under_another_key_says_what_to_do(tiny_clip_dir, face_pool, tmp_path, capsys):
    args = ["extract", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--store", str(tmp_path / "s"),
            "--num-workers", "0", "--no-progress"]
    assert main(args) == 0
    meta_file = next((tmp_path / "s").glob("image-*/meta.json"))
    meta = json.loads(meta_file.read_text())
    meta["key"]["code_version"] = -1  # as if written by another version of the extraction code
    meta_file.write_text(json.dumps(meta))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "code_version" in err and "another --store" in err and "delete" in err


def test_bad_item_lists_are_refused_before_any_work(face_test, tmp_path):
    good = [{"path": "Happy/00000.png", "label": 0}, {"path": "sadness/00000.png", "label": 1}]
    classes = ["happiness", "sadness"]
    cases = [
        ([], "empty"),
        ([good[0], dict(good[0])], "listed twice"),
        ([good[0], {"path": "sadness/00000.png", "label": 2}], "outside the 2 classes"),
        ([good[0], {"path": "sadness/00000.png", "label": -1}], "outside the 2 classes"),
        ([good[0], {"path": "sadness/00000.png", "label": True}], "outside the 2 classes"),
        ([{"path": "nope/1.png", "label": 0}], "is the dataset root right"),
        ([good[0], {"label": 1}], "has no path"),
    ]
    for items, says in cases:
        data = ItemList("t", face_test, items, classes)
        with pytest.raises(DatasetError, match=says):
            data.validate()
    # Through evaluate (a library caller's hand-made list): refused before the backbone is even looked for.
    bad = ItemList("t", face_test, [good[0], {"path": "sadness/00000.png", "label": 5}], classes)
    with pytest.raises(DatasetError, match="outside"):
        evaluate(bad, [Model("CLIP", "CLIP", "no/such-model", "reference")], {"p": [["a"], ["b"]]}, tmp_path / "s")
    assert _nothing_computed(tmp_path / "s")


def test_annotation_helpers_name_the_file_and_line(tmp_path):
    f = tmp_path / "list.txt"
    f.write_bytes(b"\xef\xbb\xbfa/1 16 0\r\n\r\nb/2 12 7\nc/3 x 1\nd/4 8")  # BOM, CRLF, blank, no final newline
    lines = read_lines(f)
    assert lines == [(1, "a/1 16 0"), (3, "b/2 12 7"), (4, "c/3 x 1"), (5, "d/4 8")]
    assert split_fields(f, 1, lines[0][1], 3, "<path> <frames> <label>") == ["a/1", "16", "0"]
    with pytest.raises(AnnotationError, match=r"list.txt, line 5: expected 3 fields \(<path> <frames> <label>\)"):
        split_fields(f, 5, lines[3][1], 3, "<path> <frames> <label>")
    with pytest.raises(AnnotationError, match="line 4: num_frames 'x' is not an integer"):
        int_field(f, 4, "x", "num_frames", 1)
    with pytest.raises(AnnotationError, match=r"line 3: label 7 is out of range 0\.\.6"):
        int_field(f, 3, "7", "label", 0, 6)
    with pytest.raises(AnnotationError, match="line 2: unknown label 'Joyful'; expected one of: Angry, Happy"):
        mapped_field(f, 2, "Joyful", "label", {"Happy": 0, "Angry": 3})
    f.write_bytes(b"ok\nbad \xff byte\n")
    with pytest.raises(AnnotationError, match="line 2: not UTF-8"):
        read_lines(f)
    with pytest.raises(DatasetError, match="not found"):
        read_lines(tmp_path / "missing.txt")
    c = tmp_path / "labels.csv"
    c.write_text("path,label\na.png,1\n\nb.png,2,extra\n")
    with pytest.raises(AnnotationError, match="labels.csv, line 4: 3 fields but the header has 2"):
        read_csv_rows(c, ["path", "label"])
    c.write_text("file,label\na.png,1\n")
    with pytest.raises(AnnotationError, match=r"line 1: missing column\(s\) \['path'\]"):
        read_csv_rows(c, ["path", "label"])


@pytest.mark.parametrize("content,says", [
    ("", "not valid JSON"), ("[]", "non-empty list"), ('{"labels": {}}', "non-empty"),
    ('["happy", "happy"]', "more than once"), ('["happy", " "]', "label number 2 is empty"),
    ('{"labels": ["a"], "templates": "a photo of {}"}', "'templates' must be a list"),
    ('{"labels": {"a": 3}}', "descriptions of 'a'"), ("[" * 100_000, "nested too deeply|not valid JSON"),
])
def test_label_files_are_refused_with_the_file_named(content, says, tmp_path):
    f = tmp_path / "labels.json"
    f.write_text(content)
    with pytest.raises(ValueError, match=says) as e:
        load_label_spec(f)
    assert "labels.json" in str(e.value)


def test_bad_yaml_label_file_names_the_line(tmp_path):
    f = tmp_path / "labels.yaml"
    f.write_text("labels:\n  - happy\n  - [unclosed\n")
    with pytest.raises(ValueError, match="labels.yaml: not valid YAML at line"):
        load_label_spec(f)


def test_non_finite_loss_names_the_step_and_the_cli_says_it_in_one_line():
    x, y = torch.randn(64, 6), torch.randn(64, 5)
    with pytest.raises(FloatingPointError, match=r"at step 1 \(epoch 0, batch 0, seed 1\)"):
        train_head(x, y, TrainConfig(batch_size=16, logit_scale=float("inf")))
    with pytest.raises(FloatingPointError, match=r"at step \d+ \(epoch \d, batch \d"):
        train_head(x * 1e30, y, TrainConfig(batch_size=16, lr=1e30, epochs=3))
    x[5, 2] = float("nan")
    with pytest.raises(ValueError, match=r"non-finite values in the image features \(rows \[5\]"):
        train_head(x, y, TrainConfig(batch_size=16))


def test_non_finite_features_name_the_item_in_strict_mode(tmp_path):
    def nan_for_item_9(batch):
        out = toy_encode(batch)
        out[batch[:, 0] == 9] = float("nan")
        return out

    items = toy_items(12)
    store = run_extraction(tmp_path / "a", TOY_KEY, items, toy_load, nan_for_item_9, (4,), batch_size=4,
                           progress=False)
    assert {f["path"]: f["reason"] for f in store.failures}["img009.png"].startswith("non-finite")
    with pytest.raises(ExtractionFailure, match="img003.png: corrupt"):  # item 3 fails to load first
        run_extraction(tmp_path / "b", TOY_KEY, items, toy_load, nan_for_item_9, (4,), batch_size=4, strict=True,
                       progress=False)
    with pytest.raises(ExtractionFailure, match="img009.png: non-finite"):
        run_extraction(tmp_path / "c", TOY_KEY, items, lambda i: torch.full((4,), float(i)), nan_for_item_9, (4,),
                       batch_size=4, strict=True, progress=False)


def test_the_cli_reports_a_non_finite_loss_in_one_line(face_pool, tmp_path, capsys, monkeypatch):
    def explode(args):
        return train_head(torch.ones(32, 3), torch.ones(32, 2), TrainConfig(batch_size=16, logit_scale=float("inf")))

    monkeypatch.setattr("expclip.cli.pipeline.cmd_train", explode)
    assert main(["train", "--data", str(face_pool), "--out", str(tmp_path / "r"), "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: training loss became non-finite") and "step 1" in err and "Traceback" not in err
