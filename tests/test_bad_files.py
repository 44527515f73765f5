"""Damaged and hostile files: every JSON file the package reads goes through one schema, and every absurd value in
them is refused before anything is allocated, in one line naming the file, the field and what was expected."""

from __future__ import annotations

import json
import shutil

import pytest

from expclip.cli import main


def user_error(argv: list[str], capsys, *says: str) -> str:
    """Run the CLI; it must end in a one-line user error (rc 2) that contains every ``says``."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "bug in expclip" not in err and "Traceback" not in err, err
    for s in says:
        assert s in err, err
    return err


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
