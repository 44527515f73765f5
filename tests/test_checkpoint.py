"""Head checkpoints and the import of the reference's released .pth heads."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from expclip.checkpoint import CheckpointError, load_head, save_head
from expclip.models.heads import build_head
from expclip.official import import_official


def test_save_and_load_round_trip(tmp_path):
    head = build_head("linear", 6, 10)
    save_head(tmp_path / "h", head, {"head": {"type": "linear", "in_dim": 6, "out_dim": 10}, "seed": 1})
    loaded, cfg = load_head(tmp_path / "h")
    assert torch.equal(loaded.mlp.weight, head.mlp.weight)
    assert cfg.seed == 1 and cfg.versions["torch"] == torch.__version__
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == ["config.json", "head.safetensors"]


@pytest.mark.parametrize("name,dim,backbone", [("ExpCLIP_L14_model.pth", 768, "openai/clip-vit-large-patch14"),
                                               ("ExpCLIP_B32_model.pth", 512, "openai/clip-vit-base-patch32"),
                                               ("ExpCLIP_B16_model.pth", 512, "openai/clip-vit-base-patch16")])
def test_import_official_round_trip(tmp_path, name, dim, backbone):
    w = torch.randn(4096, dim)
    torch.save({"mlp.weight": w}, tmp_path / name)
    out = import_official(tmp_path / name, tmp_path / "imported")
    head, cfg = load_head(out)
    assert torch.equal(head.mlp.weight, w)
    assert cfg.backbone.id == backbone and cfg.preprocessing["mode"] == "reference"
    x = torch.randn(3, dim)
    assert torch.allclose(head(x), x @ w.T)


def test_import_refuses_a_pickle_that_runs_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "ExpCLIP_L14_model.pth"
    with open(path, "wb") as f:
        pickle.dump({"mlp.weight": Evil()}, f)
    with pytest.raises(CheckpointError, match="refused"):
        import_official(path, tmp_path / "out")
    assert not marker.exists()


def test_import_needs_a_backbone_when_the_name_does_not_tell(tmp_path):
    torch.save({"mlp.weight": torch.randn(4096, 512)}, tmp_path / "head.pth")
    with pytest.raises(CheckpointError, match="--backbone"):
        import_official(tmp_path / "head.pth", tmp_path / "o")
    out = import_official(tmp_path / "head.pth", tmp_path / "o", backbone="openai/clip-vit-base-patch16")
    assert json.loads((out / "config.json").read_text())["backbone"]["id"] == "openai/clip-vit-base-patch16"


def test_a_head_whose_weights_do_not_fit_is_reported(tmp_path):
    save_head(tmp_path / "h", build_head("linear", 6, 10), {"head": {"type": "linear", "in_dim": 7, "out_dim": 10}})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_head(tmp_path / "h")


def test_import_never_overwrites_a_trained_head_nor_fills_a_run_directory(tmp_path, tiny_head_dir):
    import shutil

    torch.save({"mlp.weight": torch.randn(4096, 512)}, tmp_path / "ExpCLIP_B16_model.pth")
    run = tmp_path / "run"
    shutil.copytree(tiny_head_dir, run / "seed1")
    trained = (run / "seed1" / "head.safetensors").read_bytes()
    for out in (run, run / "seed1"):
        with pytest.raises(CheckpointError, match=f"--out {out} is not empty"):
            import_official(tmp_path / "ExpCLIP_B16_model.pth", out)
    assert (run / "seed1" / "head.safetensors").read_bytes() == trained and not (run / "config.json").exists()
    out = import_official(tmp_path / "ExpCLIP_B16_model.pth", tmp_path / "imp")
    assert import_official(tmp_path / "ExpCLIP_B16_model.pth", out) == out  # the same import again is fine


def test_import_names_a_local_backbone_folder_absolutely(tmp_path, tiny_clip_dir, monkeypatch):
    torch.save({"mlp.weight": torch.randn(64, 16)}, tmp_path / "head.pth")
    monkeypatch.chdir(tiny_clip_dir.parent)
    out = import_official(tmp_path / "head.pth", tmp_path / "o", backbone=tiny_clip_dir.name)
    assert json.loads((out / "config.json").read_text())["backbone"]["id"] == str(tiny_clip_dir)
