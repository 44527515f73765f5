"""README.md cannot silently rot: its Python examples run (hub ids swapped for the tiny local models), every
``expclip`` command line in it parses with the real argument parser, and a hub id offline fails the way it says."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_readme_has_the_examples_this_module_checks():
    py, sh = blocks("python"), blocks("bash")
    assert len(py) == 2 and "ExpCLIP.from_pretrained" in py[0] and "train_head" in py[1]
    assert sum(c.count("expclip ") for c in sh) > 30


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_clip_dir):
    """The files the README's predict example names (me.jpg, holiday/, talk.mp4, crops/, a DFEW frame folder,
    labels.json) and heads/official-L14 imported from a reference-format .pth on the tiny CLIP."""
    import json

    import torch
    from PIL import Image

    from expclip.official import import_official
    from expclip.data.synthetic import draw_face

    from support.media import write_face_video

    root = tmp_path_factory.mktemp("readme")
    (root / "holiday").mkdir()
    for i, expr in enumerate(["happiness", "sadness"]):
        canvas = Image.new("RGB", (120, 120), (200, 200, 200))
        canvas.paste(draw_face(expr, 80, seed=i), (20, 20))
        canvas.save(root / "holiday" / f"p{i}.jpg")
    draw_face("anger", 64, seed=3).save(root / "me.jpg")
    write_face_video(root / "talk.mp4", n=12, face_until=12)
    (root / "crops").mkdir()
    draw_face("surprise", 48, seed=4).save(root / "crops" / "c0.png")
    clip = root / "DFEW" / "clip_224x224" / "00001"
    clip.mkdir(parents=True)
    for f in range(1, 4):
        draw_face("fear", 48, seed=f).save(clip / f"{f:05d}.jpg")
    (root / "labels.json").write_text(json.dumps(
        {"labels": {"glad": ["a smiling face", "a happy person"], "bored": "a yawning face"}}))
    torch.manual_seed(0)
    torch.save({"mlp.weight": torch.randn(24, 16)}, root / "ExpCLIP_L14_model.pth")
    import_official(root / "ExpCLIP_L14_model.pth", root / "heads" / "official-L14", backbone=str(tiny_clip_dir))
    return root


def test_predict_example_runs_on_the_tiny_models(workdir, monkeypatch):
    pytest.importorskip("cv2")  # faces="detect" (the default) needs the [faces] extra
    pytest.importorskip("pandas")  # the example indexes a DataFrame
    import numpy as np
    from PIL import Image

    # heads/official-L14 is a real directory here; the plain-CLIP hub id is only in a comment.
    code = blocks("python")[0].replace('device="cuda"', 'device="cpu"')  # this machine may have no GPU
    monkeypatch.chdir(workdir)
    ns = {"pil_image_or_rgb_array": Image.open(workdir / "me.jpg").convert("RGB")}
    exec(compile(code, "README.md (python block 1)", "exec"), ns)
    df = ns["df"]
    assert ns["model"].head is not None
    assert set(df["kind"]) == {"image", "frame", "clip"} and len(df.filter(like="p_").columns) == 7
    for col in ("input", "kind", "frame", "timestamp", "face", "track", "num_faces", "face_detected", "box_x", "box_y",
                "box_w", "box_h", "face_score", "label", "score", "error"):  # the columns the README lists
        assert col in df.columns
    assert np.allclose(df.filter(like="p_").sum(axis=1), 1, atol=1e-4)


def test_core_example_runs_on_tensors():
    import torch

    torch.manual_seed(0)
    ns = {"image_features": torch.randn(512, 16), "teacher_features": torch.randn(512, 24),
          "test_features": torch.randn(20, 16), "prompt_features": torch.randn(7, 3, 16),
          "labels": torch.randint(0, 7, (20,))}
    exec(compile(blocks("python")[1], "README.md (python block 2)", "exec"), ns)
    head, logits = ns["head"], ns["logits"]
    assert head.mlp.weight.shape == (24, 16) and head.mlp.bias is None  # "Linear D->E, no bias"
    assert logits.shape == (20, 7)


def command_lines() -> list[list[str]]:
    """Every ``expclip ...`` command of the README's shell blocks, continuations joined, comments and the
    shell variables it defines ($H, $T) expanded."""
    out, env = [], {}
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if len(words) == 1 and "=" in words[0] and words[0].split("=")[0].isidentifier():
                k, v = words[0].split("=", 1)
                env[k] = v
                continue
            words = [w for word in words for w in (shlex.split(env[word[1:]]) if word[1:] in env else [word])]
            if "expclip" in words and words[0] in ("expclip", "torchrun"):
                out.append(words[words.index("expclip") + 1:])
    return out


@pytest.mark.parametrize("argv", command_lines(), ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_line_parses(argv, capsys):
    from expclip.cli import build_parser

    if "--help" in argv:
        with pytest.raises(SystemExit) as e:
            build_parser().parse_args(argv)
        assert e.value.code == 0
        return
    args = build_parser().parse_args(argv)  # an unknown flag or a bad choice exits with status 2
    assert getattr(args, "fn", None) is not None


def test_a_hub_id_offline_names_the_ways_to_provide_it(monkeypatch, tmp_path):
    import huggingface_hub.constants

    import expclip
    from expclip.models.hub import ModelNotAvailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # surely lacks it
    with pytest.raises(ModelNotAvailableError) as e:
        expclip.ExpCLIP.from_pretrained("openai/clip-vit-large-patch14", device="cpu")
    msg = str(e.value)
    assert "openai/clip-vit-large-patch14" in msg and "offline" in msg
    assert "hf download" in msg and "save_pretrained" in msg and "HF_HOME" in msg
