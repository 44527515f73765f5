"""The paper's evaluation suite end to end on the tiny models, and the dataset options of the CLI."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from expclip.checkpoint import save_head
from expclip.cli import main
from expclip.models.heads import build_head

from support import native as nf

PAPER_COLUMNS = ["RAF-DB", "AffectNet-7", "AffectNet-8", "FERPlus", "DFEW", "FERV39k", "MAFW", "AFEW"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """Every benchmark in its native layout, under the folder names a download gives."""
    root = tmp_path_factory.mktemp("datasets")
    nf.rafdb(root / "RAF-DB/basic")
    nf.affectnet_legacy(root / "AffectNet")
    nf.ferplus_csv(root / "FERPlus")
    nf.dfew(root / "DFEW")
    nf.ferv39k(root / "FERV39k")
    nf.mafw(root / "MAFW")
    nf.afew(root / "AFEW")
    nf.caers(root / "CAER-S")
    return root


@pytest.fixture(scope="module")
def run_dir(tiny_clip_dir, tmp_path_factory):
    """Two seeds of a linear head for the tiny CLIP (random weights: the suite's mechanics are under test)."""
    run = tmp_path_factory.mktemp("runs") / "exp-clip-tiny"
    for seed in (1, 2):
        torch.manual_seed(seed)
        save_head(run / f"seed{seed}", build_head("linear", 16, 24), {
            "name": "Exp-CLIP", "run_name": "exp-clip-tiny", "seed": seed,
            "head": {"type": "linear", "in_dim": 16, "out_dim": 24},
            "backbone": {"id": str(tiny_clip_dir), "revision": None}, "preprocessing": {"mode": "reference"}})
    return run


def common(tmp_path, store=None):
    return ["--store", str(store or tmp_path / "store"), "--device", "cpu", "--num-workers", "0", "--no-progress"]


@pytest.mark.slow
def test_paper_suite_end_to_end(data_root, run_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "res"
    args = ["eval", "--suite", "paper", "--data-root", str(data_root), "--head", str(run_dir),
            "--prompts", "class_name,ensemble_5", "--out", str(out), *common(tmp_path)]
    assert main(args) == 0
    md = (out / "results.md").read_text()
    assert "RANDOM WEIGHTS" in md
    table = md.split("# Per dataset")[0]
    for ps in ("Class Name", "Expression Ensemble Five"):
        assert f"## Prompts: {ps}" in table
    assert "| model | " + " | ".join(PAPER_COLUMNS[:4]) + " |" in table
    assert "| model | " + " | ".join(PAPER_COLUMNS[4:]) + " |" in table
    assert table.count("| CLIP |") == 4 and table.count("| exp-clip-tiny |") == 4 and "±" in table
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    itemlists = 4 + 5 + 1 + 5 + 1  # static sets, DFEW folds, FERV39k, MAFW folds, AFEW
    assert len(cells) == 3 * itemlists * 2  # CLIP + 2 seeds, × 2 prompt sets
    dfew = [c for c in cells if c["dataset"] == "DFEW"]
    assert sorted({c["fold"] for c in dfew}) == [1, 2, 3, 4, 5] and all(c["num_samples"] == 2 for c in dfew)
    assert all(c["sampling"] == {"rule": "reference", "num_segments": 16} for c in dfew)
    mafw = next(c for c in cells if c["dataset"] == "MAFW")
    assert len(mafw["confusion_matrix"]) == 11 and mafw["kind"] == "video"
    # The merged table: DFEW's folds averaged within each seed, then mean ± std over the seeds.
    rows = json.loads((out / "summary.json").read_text())["rows"]
    row = next(r for r in rows if r["dataset"] == "DFEW" and r["group"] == "exp-clip-tiny"
               and r["prompt_set"] == "ensemble_5")
    per_seed = [np.mean([c["uar"] for c in dfew if c["seed"] == s and c["prompt_set"] == "ensemble_5"]) * 100
                for s in (1, 2)]
    assert row["folds"] == 5 and row["seeds"] == 2
    assert row["uar"] == pytest.approx(np.mean(per_seed)) and row["uar_std"] == pytest.approx(np.std(per_seed))
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 2 * 8 * 2
    assert len((out / "cells.csv").read_text().splitlines()) == 1 + len(cells)
    assert len(list((out / "confusion").glob("*.png"))) == 2 * 8 * 2
    stores = list((tmp_path / "store").glob("*/meta.json"))
    assert sum(p.parent.name.startswith(("image-", "video-")) for p in stores) == itemlists  # once per dataset/fold
    # Rerun: every feature comes from the store, so no model is loaded, and the numbers are the same.
    from expclip.models import backbone as bb_mod

    monkeypatch.setattr(bb_mod.Backbone, "from_pretrained", lambda *a, **k: pytest.fail("model loaded"))
    assert main([*args[:-len(common(tmp_path)) - 2], "--out", str(tmp_path / "res2"), *common(tmp_path)]) == 0
    assert (tmp_path / "res2/results.csv").read_text() == (out / "results.csv").read_text()


def test_one_dataset_with_folds_and_options(data_root, tiny_clip_dir, tmp_path, capsys):
    out = tmp_path / "dfew"
    assert main(["eval", "--dataset", "DFEW", "--root", str(data_root / "DFEW"), "--fold", "2", "4",
                 "--backbone", str(tiny_clip_dir), "--prompts", "class_name", "--sampling", "edge",
                 "--out", str(out), *common(tmp_path)]) == 0
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert sorted(c["fold"] for c in cells) == [2, 4]
    assert all(c["sampling"]["rule"] == "edge" for c in cells)
    preset = tmp_path / "mine.json"
    preset.write_text(json.dumps({"datasets": [
        {"dataset": "FERPlus", "root": "FERPlus", "options": {"rule": "plurality"}},
        {"dataset": "RAFDB", "root": "RAF-DB/basic"}]}))
    out2 = tmp_path / "preset"
    assert main(["eval", "--suite", str(preset), "--data-root", str(data_root), "--only", "FERPlus",
                 "--backbone", str(tiny_clip_dir), "--prompts", "class_name", "--out", str(out2),
                 *common(tmp_path)]) == 0
    [cell] = [json.loads(p.read_text()) for p in (out2 / "cells").glob("*.json")]
    assert cell["dataset"] == "FERPlus" and cell["data_info"]["rule"] == "plurality"
    assert cell["num_samples"] == 6  # the majority rule keeps 4 of the fixture's votes


def test_cli_dataset_errors_are_one_line(data_root, tmp_path, capsys, caplog):
    assert main(["eval", "--dataset", "DFEW", *common(tmp_path)]) == 2
    assert "needs --root" in capsys.readouterr().err
    assert main(["eval", "--dataset", "RAFDB", "--root", str(data_root / "RAF-DB/basic"), "--option", "rule=x",
                 *common(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "accepts ['split', 'images']" in err
    assert main(["eval", "--suite", "paper", "--data-root", str(tmp_path / "nope"), *common(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --data-root {tmp_path / 'nope'}: folder not found") and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.WARNING):
        assert main(["eval", "--suite", "paper", "--data-root", str(tmp_path / "empty"), *common(tmp_path)]) == 2
    assert "none of its datasets" in capsys.readouterr().err
    assert not any("left out" in r.getMessage() for r in caplog.records)  # said once, as the error
    # A fold given twice would be averaged in twice (reported as 2 folds of one fold's clips).
    assert main(["eval", "--dataset", "DFEW", "--root", str(data_root / "DFEW"), "--fold", "1", "1",
                 *common(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: DFEW: fold(s) [1] given more than once\n"
    preset = tmp_path / "dup.json"  # the same dataset twice in a preset: merged as if it were two folds
    preset.write_text(json.dumps({"datasets": [{"dataset": "RAFDB", "root": "RAF-DB/basic"},
                                               {"dataset": "RAFDB", "root": "RAF-DB/basic", "options": {}}]}))
    assert main(["eval", "--suite", str(preset), "--data-root", str(data_root), *common(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: the suite names RAFDB more than once")


def test_extract_and_train_on_caers(data_root, tiny_clip_dir, tiny_blip2_dir, tmp_path, capsys):
    src = ["--dataset", "CAER-S", "--root", str(data_root / "CAER-S")]
    assert main(["extract", *src, "--backbone", str(tiny_clip_dir), "--teacher", str(tiny_blip2_dir),
                 *common(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "CLIP: 14 of 14 items" in out and "teacher [task]: 14 of 14 items" in out
    run = tmp_path / "run"
    assert main(["train", *src, "--backbone", str(tiny_clip_dir), "--teacher", str(tiny_blip2_dir),
                 "--out", str(run), "--seeds", "1", "--train-batch-size", "4", "--epochs", "1",
                 *common(tmp_path)]) == 0
    cfg = json.loads((run / "seed1/config.json").read_text())
    assert cfg["data"]["name"] == "CAER-S-train" and cfg["data"]["n_used"] == 14
    assert main(["train", "--dataset", "DFEW", "--root", str(data_root / "DFEW"), "--fold", "1", "--out",
                 str(tmp_path / "r2"), *common(tmp_path)]) == 2
    assert "heads are trained on images" in capsys.readouterr().err


def test_clip_rows_per_backbone_in_the_papers_order():
    from expclip.runs.evaluate import Model
    from expclip.runs.suite import with_clip_baselines

    l14, b32 = "openai/clip-vit-large-patch14", "openai/clip-vit-base-patch32"
    heads = [Model("Exp-CLIP", "run-L14", l14, "reference", seed=1), Model("Exp-CLIP", "run-B32", b32, "reference")]
    rows = with_clip_baselines(heads, l14, "reference")
    assert [m.group for m in rows] == ["CLIP B/32", "run-B32", "CLIP L/14", "run-L14"]
    assert [m.group for m in with_clip_baselines([], b32, "clip")] == ["CLIP"]


def test_reader_options_from_the_command_line():
    from expclip.runs.suite import parse_options

    got = parse_options(["rule=plurality", "dfew:media=clips", "list_path=reference:MAFW_set_1_test.txt",
                         "num_classes=11"])
    assert got == {None: {"rule": "plurality", "list_path": "reference:MAFW_set_1_test.txt", "num_classes": 11},
                   "DFEW": {"media": "clips"}}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_options(["media"])
