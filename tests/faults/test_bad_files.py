"""Damaged and hostile files: every JSON file the package reads goes through one schema, and every absurd value in
them is refused before anything is allocated, in one line naming the file, the field and what was expected."""

from __future__ import annotations

import json
import shutil

import pytest

from expclip.cli import main

from support.cli import user_error


@pytest.fixture()
def head_copy(tiny_head_dir, tmp_path):
    d = tmp_path / "head"
    shutil.copytree(tiny_head_dir, d)
    return d


def _edit(path, fn):
    cfg = json.loads(path.read_text())
    out = fn(cfg)
    path.write_text(json.dumps(cfg if out is None else out))


# ------------------------------------------------------------------------------------------------ head config.json
@pytest.mark.parametrize("edit,says", [
    (lambda c: c["head"].update(in_dim=-1), "head.in_dim must be an integer in 1..1048576, got -1"),
    (lambda c: c["head"].update(in_dim=10 ** 10), "head.in_dim must be an integer"),
    (lambda c: c["head"].update(kwargs={"bogus": 1}), "unknown argument(s) ['bogus']"),
    (lambda c: c["head"].update(kwargs=[1, 2]), "head.kwargs must be an object"),
    (lambda c: c["head"].update(type="transformer", kwargs={"width": 100, "heads": 3}), "not divisible"),
    (lambda c: c["head"].update(type="transformer", kwargs={"tokens": 256, "width": 16384}), "over the"),
    (lambda c: c["head"].update(type="mlp2", kwargs={"hidden": 1.5}), "hidden must be an integer"),
    (lambda c: c.update(backbone="openai/clip"), "backbone must be an object"),
    (lambda c: c.update(preprocessing=[]), "preprocessing must be an object"),
    (lambda c: c.update(preprocessing={"mode": 3}), "preprocessing.mode must be one of"),
    (lambda c: c.update(teacher={"instruction": ["x"]}), "teacher.instruction must be a string"),
    (lambda c: c.pop("head") and None, "the field 'head' is missing"),
    (lambda c: c.update(head="linear"), "head must be an object"),
    (lambda c: c.update(seed="1"), "seed must be an integer"),
])
def test_a_damaged_head_config_is_named_with_its_field(head_copy, face_test, tmp_path, capsys, edit, says):
    _edit(head_copy / "config.json", edit)
    user_error(["eval", "--data", face_test, "--head", head_copy, "--no-clip", "--store", tmp_path / "s"], capsys,
               str(head_copy / "config.json"), says)


@pytest.mark.parametrize("content,says", [
    (b'\xff\xfe{"format": "expclip-head"}', "not UTF-8"),
    (b"[1, 2]", "not an expclip head config"),
    (b"[" * 100000, "nested too deeply"),
    (b"{\"format\": ", "not valid JSON"),
])
def test_a_head_config_that_is_not_json_text_is_named(head_copy, face_test, tmp_path, capsys, content, says):
    (head_copy / "config.json").write_bytes(content)
    user_error(["eval", "--data", face_test, "--head", head_copy, "--no-clip", "--store", tmp_path / "s"], capsys,
               str(head_copy / "config.json"), says)


def test_absurd_head_arguments_are_refused_before_anything_is_allocated():
    from expclip.errors import InputError
    from expclip.models.heads import build_head

    with pytest.raises(InputError, match="over the"):  # 2^40 weights: would try to allocate 4 TB
        build_head("linear", 1 << 20, 1 << 20)
    with pytest.raises(InputError, match="unknown argument"):
        build_head("linear", 4, 4, width=3)
    with pytest.raises(InputError, match="not divisible"):
        build_head("transformer", 4, 4, width=10, heads=3)


# ------------------------------------------------------------------------------------------------ store meta.json/items
@pytest.fixture()
def toy_store(tmp_path):
    from expclip.features.extraction import run_extraction

    from support.kill import TOY_KEY, toy_encode, toy_items, toy_load

    root = tmp_path / "stores"
    from expclip.features.store import store_path

    store = run_extraction(store_path(root, TOY_KEY), TOY_KEY, toy_items(10), toy_load, toy_encode, (4,),
                           batch_size=4, chunk_size=8, progress=False)
    return root, store.path, TOY_KEY


@pytest.mark.parametrize("edit,says", [
    (lambda m: [m], "must be a JSON object"),
    (lambda m: m.update(key="image") or m, "key must be an object"),
    (lambda m: m.update(n="10") or m, "n must be an integer"),
    (lambda m: m["key"]["model"].pop("id") and m, "the field 'key.model.id' is missing"),
    (lambda m: m["key"].update(data=[]) or m, "key.data must be an object"),
    (lambda m: m.update(failures=[{"index": 99, "reason": "x"}]) or m, "failures[0].index must be an integer"),
    (lambda m: m.update(feature_shape=[10 ** 12]) or m, "feature_shape must be a list of integers"),
])
def test_a_damaged_store_meta_is_named_with_its_field(toy_store, edit, says):
    from expclip.errors import StoreError
    from expclip.features.store import FeatureStore

    root, path, key = toy_store
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps(edit(meta)))
    with pytest.raises(StoreError) as e:
        FeatureStore.open(path, key)
    assert str(path / "meta.json") in str(e.value) and says in str(e.value)


def test_a_non_utf8_store_meta_is_named(toy_store):
    from expclip.errors import StoreError
    from expclip.features.store import FeatureStore

    root, path, key = toy_store
    (path / "meta.json").write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(StoreError, match="meta.json: the store meta.json is not UTF-8"):
        FeatureStore.open(path, key)


@pytest.mark.parametrize("items,says", [
    ({"path": "a"}, "items.json must be a JSON list"),
    ([{"path": 3}] * 10, "entry 0.path must be a string"),
    ([{"path": "a", "label": "happy"}] * 10, "entry 0.label must be an integer"),
    ([{"path": "a"}], "holds 1 items but meta.json says 10"),
])
def test_a_damaged_items_json_is_named(toy_store, items, says):
    from expclip.errors import StoreError
    from expclip.features.store import FeatureStore

    root, path, key = toy_store
    (path / "items.json").write_text(json.dumps(items))
    with pytest.raises(StoreError) as e:
        FeatureStore.open(path, key).labels()
    assert str(path / "items.json") in str(e.value) and says in str(e.value)


@pytest.mark.parametrize("junk", [b"[1, 2]", b'{"key": "x"}', b"\xff\xfe", b'{"complete": true, "key": {"kind": 1}}'])
def test_one_damaged_meta_json_does_not_hide_the_other_stores(toy_store, junk, caplog):
    from expclip.features.store import find_store

    root, path, key = toy_store
    (root / "image-junk").mkdir()
    (root / "image-junk" / "meta.json").write_bytes(junk)
    other = {**key, "dtype": "bfloat16-autocast"}  # not the exact directory: every store is looked at
    with caplog.at_level("WARNING"):
        assert find_store(root, other, ("dtype",)).path == path
    assert "image-junk" in caplog.text


def test_list_names_a_damaged_store_and_goes_on(toy_store, capsys):
    root, path, key = toy_store
    for name, junk in (("image-a", b"[]"), ("image-b", b"\xff"), ("image-c", b'{"key": {"kind": "image"}}')):
        (root / name).mkdir()
        (root / name / "meta.json").write_bytes(junk)
    assert main(["list", "--store", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("damaged meta.json") == 3 and f"{path.name}: image model=toy" in out


def test_a_damaged_chunk_failure_list_is_named(tmp_path):
    from expclip.errors import StoreError
    from expclip.features.extraction import run_extraction

    from support.kill import TOY_KEY, toy_encode, toy_items, toy_load

    d = tmp_path / "s"
    args = (d, TOY_KEY, toy_items(16), toy_load, toy_encode, (4,))
    run_extraction(*args, batch_size=4, chunk_size=8, progress=False, shard=(1, 2))  # chunk 1 only, no finalize
    (d / "chunks" / "00001.json").write_text('{"x": 1}')
    with pytest.raises(StoreError, match="00001.json: expected {item index: reason}"):
        run_extraction(*args, batch_size=4, chunk_size=8, progress=False)


# ------------------------------------------------------------------------------------------------ model folders
@pytest.fixture()
def clip_copy(tiny_clip_dir, tmp_path):
    d = tmp_path / "clip"
    shutil.copytree(tiny_clip_dir, d)
    return d


@pytest.fixture()
def blip_copy(tiny_blip2_dir, tmp_path):
    d = tmp_path / "blip"
    shutil.copytree(tiny_blip2_dir, d)
    return d


@pytest.mark.parametrize("file,edit,says", [
    ("config.json", lambda c: [c], "a model config must be a JSON object"),
    ("config.json", lambda c: c["vision_config"].update(hidden_size=10 ** 9), "vision_config.hidden_size must be an "
                                                                             "integer in 1..65536, got 1000000000"),
    ("config.json", lambda c: c["text_config"].update(num_attention_heads=3), "text_config.hidden_size 32 is not "
                                                                              "divisible by"),
    ("config.json", lambda c: c["vision_config"].update(patch_size=64), "patch_size 64 is larger than"),
    ("config.json", lambda c: c.update(projection_dim=24), "does not match the weights"),
    ("config.json", lambda c: c["text_config"].update(vocab_size="many"), "text_config.vocab_size must be an integer"),
    ("preprocessor_config.json", lambda c: [c], "preprocessor_config.json: the file must be a JSON object"),
    ("preprocessor_config.json", lambda c: c.update(size="big"), "size must be an integer or an object"),
    ("preprocessor_config.json", lambda c: c.update(crop_size={"height": 10 ** 6}), "crop_size.height must be an "
                                                                                   "integer in 1..4096"),
    ("preprocessor_config.json", lambda c: c.update(image_std=[0, 0, 0]), "image_std must be a list of 3 finite "
                                                                          "numbers > 0"),
    ("preprocessor_config.json", lambda c: c.update(image_mean="grey"), "image_mean must be a list"),
    ("preprocessor_config.json", lambda c: c.update(resample=99), "resample must be an integer in 0..5"),
])
def test_a_damaged_backbone_folder_is_named_before_any_work(clip_copy, face_pool, tmp_path, capsys, file, edit,
                                                            says):
    _edit(clip_copy / file, edit)
    user_error(["extract", "--data", face_pool, "--backbone", clip_copy, "--preprocessing", "clip", "--store",
                tmp_path / "s", "--no-progress"], capsys, file, says)
    assert not list((tmp_path / "s").glob("*/meta.json"))


def test_a_non_utf8_model_config_is_named(clip_copy, face_pool, tmp_path, capsys):
    (clip_copy / "config.json").write_bytes(b'{"model_type": "clip\xff"}')
    user_error(["extract", "--data", face_pool, "--backbone", clip_copy, "--store", tmp_path / "s"], capsys,
               "config.json: the model config is not UTF-8 text")


@pytest.mark.parametrize("header", [(10 ** 12).to_bytes(8, "little"), (5).to_bytes(8, "little") + b"[1,2]",
                                    (30).to_bytes(8, "little") + b'{"w": {"dtype": "F32", "shape": [1000000000], '])
def test_a_damaged_safetensors_header_is_refused_unread(clip_copy, face_pool, tmp_path, capsys, header):
    (clip_copy / "model.safetensors").write_bytes(header + b"\0" * 64)
    user_error(["extract", "--data", face_pool, "--backbone", clip_copy, "--store", tmp_path / "s"], capsys,
               "model.safetensors")


def test_a_safetensors_entry_larger_than_its_file_is_refused(clip_copy):
    import struct

    from expclip.errors import ModelNotAvailableError
    from expclip.models.checks import read_header

    head = json.dumps({"w": {"dtype": "F32", "shape": [10 ** 9], "data_offsets": [0, 4 * 10 ** 9]}}).encode()
    (clip_copy / "model.safetensors").write_bytes(struct.pack("<Q", len(head)) + head + b"\0" * 16)
    with pytest.raises(ModelNotAvailableError, match="tensor 'w' has a damaged header entry"):
        read_header(clip_copy / "model.safetensors")


@pytest.mark.parametrize("edit,says", [
    (lambda c: c["text_config"].update(d_model=48), "does not match the weights"),
    (lambda c: c.update(num_query_tokens=10 ** 6), "num_query_tokens must be an integer in 1..4096"),
    (lambda c: c.update(qformer_config=[]), "qformer_config must be an object"),
    (lambda c: c["vision_config"].update(layer_norm_eps="x"), "not a BLIP-2 config transformers can read"),
])
def test_a_damaged_teacher_folder_is_named_before_any_work(blip_copy, face_pool, tmp_path, capsys, edit, says):
    _edit(blip_copy / "config.json", edit)
    user_error(["extract", "--data", face_pool, "--no-backbone", "--teacher", blip_copy, "--store", tmp_path / "s"],
               capsys, *(["config.json", says] if says else []))


# ------------------------------------------------------------------------------------------------ suite presets
def _mutations(base, rng, n):
    """``n`` damaged copies of the JSON value ``base``: a random node replaced by a value of another shape."""
    import copy

    junk = [[], {}, "", "x", 0, -1, 10 ** 30, 1.5, float("nan"), True, None, [[[[]]]], {"a": {"b": [1]}},
            ["a", 3], {"dataset": "RAFDB"}]

    def nodes(v, path=()):
        yield path
        if isinstance(v, dict):
            for k in v:
                yield from nodes(v[k], path + (k,))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                yield from nodes(x, path + (i,))

    paths = list(nodes(base))
    for _ in range(n):
        v = copy.deepcopy(base)
        path = paths[rng.randrange(len(paths))]
        new = rng.choice(junk) if rng.random() < 0.9 else [0] * rng.randrange(1, 4) + [[]] * 2
        if not path:
            v = new
        else:
            node = v
            for k in path[:-1]:
                node = node[k]
            if rng.random() < 0.2 and isinstance(node, dict):
                del node[path[-1]]
            else:
                node[path[-1]] = new
        yield v


def test_a_fuzzed_suite_file_never_ends_in_a_traceback(face_test, tmp_path):
    import random

    from expclip.errors import ExpclipError
    from expclip.runs.suite import load_entries, read_preset

    base = {"datasets": [{"dataset": "folder", "root": str(face_test), "options": {"name": "mine"}},
                         {"dataset": "RAFDB", "root": "raf", "options": {"split": "test"}},
                         {"dataset": "DFEW", "root": "dfew", "folds": [1, 2], "options": {"media": "clips"}}]}
    rng = random.Random(0)
    files = [json.dumps(v).encode() for v in _mutations(base, rng, 380)]
    files += [b"[" * 50000, b'{"datasets": ' + b"[" * 50000, b"\xff\xfe\x00", json.dumps(base).encode()[:-7],
              "{\"datasets\": [{\"dataset\": \"folder\", \"root\": \"caf\u00e9\"}]}".encode("latin-1")]
    files += [json.dumps(base).encode()[: rng.randrange(1, 200)] for _ in range(15)]
    bugs = []
    for i, content in enumerate(files):
        f = tmp_path / f"suite{i}.json"
        f.write_bytes(content)
        try:
            load_entries(read_preset(f))
        except ExpclipError:
            pass
        except Exception as e:  # anything else is a traceback for the user
            bugs.append(f"{content[:120]!r}: {type(e).__name__}: {e}")
    assert len(files) >= 400 and bugs == []


@pytest.mark.parametrize("suite,says", [
    ({"datasets": [{"dataset": "RAFDB", "root": "r", "options": []}]}, "datasets[0].options must be an object"),
    ({"datasets": [{"dataset": ["RAFDB"], "root": "r"}]}, "datasets[0].dataset must be a non-empty string"),
    ({"datasets": [{"dataset": "RAFDB", "root": True}]}, "datasets[0].root must be a non-empty string"),
    ({"datasets": [{"dataset": "DFEW", "root": "r", "folds": 2}]}, "datasets[0].folds must be a list of fold"),
    ({"datasets": [{"dataset": "FERPlus", "root": "r", "options": {"votes": {"a": 1}}}]}, "options.votes must be"),
])
def test_a_suite_file_with_a_wrong_shape_names_the_field(suite, says, face_test, tmp_path, capsys):
    f = tmp_path / "suite.json"
    f.write_text(json.dumps(suite))
    user_error(["eval", "--suite", f, "--out", tmp_path / "r", "--store", tmp_path / "s"], capsys, str(f), says)


def test_a_non_utf8_suite_file_is_named(tmp_path, capsys):
    f = tmp_path / "suite.json"
    f.write_bytes(b'{"datasets": [{"dataset": "RAFDB", "root": "caf\xe9"}]}')
    user_error(["eval", "--suite", f, "--out", tmp_path / "r"], capsys, f"{f}: the suite preset is not UTF-8")


# ------------------------------------------------------------------------------------------------ report inputs
@pytest.fixture(scope="module")
def demo_like_run(tmp_path_factory, tiny_clip_dir, tiny_blip2_dir, face_pool, face_test):
    """A run folder with results, an ablation and trained heads, made once through the CLI."""
    root = tmp_path_factory.mktemp("run")
    store, common = root / "store", ["--store", str(root / "store"), "--no-progress"]
    assert main(["extract", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--teacher",
                 str(tiny_blip2_dir), *common]) == 0
    assert main(["train", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--teacher", str(tiny_blip2_dir),
                 "--out", str(root / "out/run"), "--seeds", "1", "--train-batch-size", "16", "--epochs", "1",
                 *common]) == 0
    assert main(["eval", "--data", str(face_test), "--head", str(root / "out/run"), "--prompts", "class_name",
                 "--out", str(root / "out/results"), *common]) == 0
    assert main(["ablate", "tsne", "--data", str(face_test), "--head", str(root / "out/run"), "--prompts",
                 "class_name", "--out", str(root / "out"), "--no-report", *common]) == 0
    del store
    return root / "out"


@pytest.mark.parametrize("file,edit,says", [
    ("results/cells/*.json", lambda c: [c], "must be a JSON object"),
    ("results/cells/*.json", lambda c: c.update(uar="high"), "uar must be a finite number in 0.0..1.0"),
    ("results/cells/*.json", lambda c: c.pop("group") and None, "the field 'group' is missing"),
    ("results/cells/*.json", lambda c: c.update(confusion_matrix=[[1, 2]]), "confusion_matrix must be a 7x7"),
    ("results/cells/*.json", lambda c: c.update(classes="happy"), "classes must be a list of class names"),
    ("ablations/tsne/ablation.json", lambda a: a.update(table=[]), "table must be an object"),
    ("ablations/tsne/ablation.json", lambda a: a.pop("preset") and None, "the field 'preset' is missing"),
    ("ablations/tsne/ablation.json", lambda a: a["table"]["rows"][0].update(values=3), "rows[0].values must be"),
    ("ablations/tsne/ablation.json", lambda a: a["extra"]["tsne"][0].update(panels=5), "tsne[0].panels must be"),
    ("run/seed1/history.json", lambda h: {"steps": h}, "a training history must be a JSON list"),
    ("run/seed1/history.json", lambda h: h[0].update(loss="low"), "entry 0.loss must be a finite number"),
    ("run/seed1/config.json", lambda c: c["train"].update(lr="fast"), "train.lr must be a finite number"),
    ("run/seed1/config.json", lambda c: c.update(final={"loss": [1]}), "final.loss must be a finite number"),
])
def test_report_names_a_damaged_input_file_and_field(demo_like_run, tmp_path, capsys, file, edit, says):
    run = tmp_path / "out"
    shutil.copytree(demo_like_run, run)
    target = sorted(run.glob(file))[0]
    _edit(target, edit)
    user_error(["report", run], capsys, str(target), says)
