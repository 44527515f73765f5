"""Ablation presets, their CLI and the report of their run, on the tiny models (one shared run per module). The
table layouts and the report on planted cells: tests/report/test_report.py."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from expclip.cli import main
from expclip.data.datasets import image_folder, unlabelled_images
from expclip.runs.ablations import PRESETS, AblationSetup, run_presets
from expclip.train import TrainConfig

from support.browser import needs_chromium

CUSTOM = "Describe the mouth and the eyebrows of the person."
HEAD_ROWS = ["CLIP", "linear (paper)", "2-layer MLP", "3-layer MLP", "Transformer encoder"]
LLM_ROWS = ["CLIP", "Exp-CLIP", "(a) LLM image · CLIP text + P", "(b) CLIP image + P · LLM text",
            "(c) LLM image · LLM text"]
ARTIFACTS = Path(os.environ.get("EXPCLIP_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


def _setup(out: Path, clip_dir, blip_dir, pool, test, **kw) -> AblationSetup:
    return AblationSetup(out=out / "ablations", store=out / "store", train=unlabelled_images(pool, name="pool"),
                         tests=[image_folder(test, name="faces")], backbone=str(clip_dir), teacher=str(blip_dir),
                         seeds=[1, 2], train_cfg=TrainConfig(batch_size=16, epochs=2), num_workers=0, progress=False,
                         **kw)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_clip_dir, tiny_blip2_dir, backbone, teacher, face_pool, face_test):
    """Every preset on the tiny models, plus a results directory (CLIP + the linear heads), like the demo."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: extra intra-op threads only wait (several times slower on a busy machine)
    yield _run_all(tmp_path_factory, tiny_clip_dir, tiny_blip2_dir, backbone, teacher, face_pool, face_test)
    torch.set_num_threads(threads)


def _run_all(tmp_path_factory, tiny_clip_dir, tiny_blip2_dir, backbone, teacher, face_pool, face_test) -> dict:
    from expclip.prompts import resolve_prompt_sets
    from expclip.report.results import write_results
    from expclip.runs.evaluate import clip_model, evaluate, head_model

    out = tmp_path_factory.mktemp("analysis")
    setup = _setup(out, tiny_clip_dir, tiny_blip2_dir, face_pool, face_test, results=[out / "results"],
                   instructions=["task", "unrelated", CUSTOM]).use_models(backbone, teacher)
    done = run_presets(["heads"], setup)
    test = setup.tests[0]
    heads = [head_model(d) for d in sorted((out / "ablations" / "heads" / "linear-task").glob("seed*"))]
    cells = evaluate(test, [clip_model(str(tiny_clip_dir))] + heads, resolve_prompt_sets("all", test.classes),
                     setup.store, num_workers=0, progress=False)
    write_results(cells, out / "results", banner="random", confusion=False)
    done |= run_presets([p for p in PRESETS if p != "heads"], setup)
    return {"out": out, "setup": setup, "done": done}


# ------------------------------------------------------------------------------------------------ presets
def test_every_preset_runs_and_writes_its_table(run):
    assert list(run["done"]) == ["heads", "instructions", "llm-encoder", "backbones", "gains", "tsne"]
    for name, ab in run["done"].items():
        d = run["out"] / "ablations" / name
        saved = json.loads((d / "ablation.json").read_text())
        assert saved["preset"] == name and saved["random_weights"] and saved["table"] == ab.table
        assert saved["config"]["backbone"] and saved["versions"]["torch"] == torch.__version__
        md, csv = (d / "table.md").read_text(), (d / "table.csv").read_text().splitlines()
        assert "RANDOM WEIGHTS" in md and ab.table["title"] in md
        assert len(csv) == 1 + sum(len(r["values"]) for r in ab.table["rows"])
        assert ab.table["rows"] and all(r["values"] for r in ab.table["rows"])


def test_head_variants_train_and_score(run):
    ab = run["done"]["heads"]
    assert [r["label"] for r in ab.table["rows"]] == HEAD_ROWS
    x = torch.randn(3, 16)
    for kind in ("linear", "mlp2", "mlp3", "transformer"):
        from expclip.checkpoint import load_head

        for seed in (1, 2):
            d = run["out"] / "ablations" / "heads" / f"{kind}-task" / f"seed{seed}"
            head, cfg = load_head(d)
            assert cfg.head.type == kind and cfg.train["epochs"] == 2 and cfg.seed == seed
            assert head(x).shape == (3, 64)
            hist = json.loads((d / "history.json").read_text())
            assert len(hist) == 2 * (84 // 16) and all(np.isfinite(h["loss"]) for h in hist)
    # The table's number = mean over seeds of (mean over the 5 prompt sets of the cells' UAR), in %.
    cells = [c for c in ab.cells if c["group"] == "2-layer MLP"]
    assert len(cells) == 2 * 5
    per_seed = [np.mean([c["uar"] for c in cells if c["seed"] == s]) * 100 for s in (1, 2)]
    row = next(r for r in ab.table["rows"] if r["label"] == "2-layer MLP")
    assert row["values"]["faces"]["uar"] == pytest.approx(np.mean(per_seed))
    assert row["values"]["faces"]["uar_std"] == pytest.approx(np.std(per_seed))
    assert row["values"]["faces"]["seeds"] == 2


def test_instructions_each_get_their_own_teacher_store(run):
    ab = run["done"]["instructions"]
    assert [r["label"] for r in ab.table["rows"]] == ["CLIP", "task-related (paper)", "task-unrelated",
                                                      f'user-given: "{CUSTOM}"']
    metas = [json.loads(p.read_text()) for p in (run["out"] / "store").glob("teacher-*/meta.json")]
    on_pool = {m["key"]["instruction"] for m in metas if m["key"]["data"]["name"] == "pool"}
    from expclip.models.teacher import INSTRUCTIONS

    assert on_pool == {INSTRUCTIONS["task"], INSTRUCTIONS["unrelated"], CUSTOM}
    cfgs = [json.loads(p.read_text()) for p in (run["out"] / "ablations" / "heads").glob("linear-*/seed1/config.json")]
    assert {c["teacher"]["instruction"] for c in cfgs} == on_pool


def test_rerun_needs_no_encoder(run, tiny_clip_dir, tiny_blip2_dir, face_pool, face_test, monkeypatch):
    """Everything is in the store and the heads exist: a rerun loads no model and gives the same tables."""
    from expclip.models import backbone as bb_mod
    from expclip.models import teacher as te_mod

    def boom(*a, **k):
        raise AssertionError("an encoder was loaded")

    monkeypatch.setattr(te_mod.Teacher, "from_pretrained", boom)
    monkeypatch.setattr(bb_mod.Backbone, "from_pretrained", boom)
    setup = _setup(run["out"], tiny_clip_dir, tiny_blip2_dir, face_pool, face_test,
                   instructions=["task", "unrelated", CUSTOM])
    again = run_presets(["instructions", "llm-encoder"], setup)
    for name in again:
        assert again[name].table == run["done"][name].table


def _manual_uar(img: torch.Tensor, txt: list[torch.Tensor], labels: torch.Tensor) -> float:
    """Zero-shot UAR by explicit loops: mean over a class's prompts of 100·cos, argmax, mean per-class recall."""
    img = F.normalize(img, dim=-1)
    preds = []
    for v in img:
        scores = [np.mean([100 * float(v @ F.normalize(t, dim=-1)) for t in cls]) for cls in txt]
        preds.append(int(np.argmax(scores)))
    preds = np.array(preds)
    y = labels.numpy()
    return float(np.mean([(preds[y == k] == k).mean() for k in np.unique(y)]))


def test_llm_encoder_rows_match_an_independent_computation(run, backbone, teacher):
    from expclip.checkpoint import load_head
    from expclip.features.service import find_image_store, find_teacher_store
    from expclip.prompts import paper_prompts

    ab = run["done"]["llm-encoder"]
    assert [r["label"] for r in ab.table["rows"]] == LLM_ROWS
    setup, test = run["setup"], run["setup"].tests[0]
    x, labels, items = find_image_store(setup.store, setup.backbone, test).tensors()
    tstore = find_teacher_store(setup.store, setup.teacher, test, "task")
    pos = {it["path"]: i for i, it in enumerate(tstore.items)}
    y = torch.from_numpy(np.asarray(tstore.features()[[pos[it["path"]] for it in items]]))
    prompts = paper_prompts("ensemble_5", test.classes)
    llm_txt = [teacher.encode_text(cls) for cls in prompts]  # the T5 encoder, straight, no cache
    head, _ = load_head(run["out"] / "ablations" / "heads" / "linear-task" / "seed1")
    with torch.no_grad():
        clip_txt_p = [head(backbone.encode_text(cls)) for cls in prompts]
        x_p = head(x)

    def cell(group, seed):
        return next(c for c in ab.cells
                    if c["group"] == group and c["seed"] == seed and c["prompt_set"] == "ensemble_5")

    assert cell(LLM_ROWS[4], None)["uar"] == pytest.approx(_manual_uar(y, llm_txt, labels))
    assert cell(LLM_ROWS[2], 1)["uar"] == pytest.approx(_manual_uar(y, clip_txt_p, labels))
    assert cell(LLM_ROWS[3], 1)["uar"] == pytest.approx(_manual_uar(x_p, llm_txt, labels))
    assert cell(LLM_ROWS[1], 1)["uar"] == pytest.approx(_manual_uar(x_p, clip_txt_p, labels))
    # Exp-CLIP here is the very head the heads preset calls "linear (paper)": one training, two tables.
    heads_row = next(r for r in run["done"]["heads"].table["rows"] if r["label"] == "linear (paper)")
    assert ab.table["rows"][1]["values"] == heads_row["values"]


def test_tsne_preset_gives_coordinates_before_and_after(run):
    ab = run["done"]["tsne"]
    (plot,) = ab.extra["tsne"]
    assert [p[0] for p in plot["panels"]] == [r["label"] for r in ab.table["rows"]]
    assert plot["panels"][0][0].startswith("before") and plot["panels"][1][0].startswith("after")
    for _, xy in plot["panels"]:
        assert np.asarray(xy).shape == (42, 2) and np.isfinite(xy).all()
    assert sorted(set(plot["labels"])) == list(range(7))
    for r in ab.table["rows"]:
        assert -1 <= r["values"]["faces"]["silhouette"] <= 1


# ------------------------------------------------------------------------------------------------ CLI
@pytest.mark.parametrize("cmd", ["ablate", "report"])
def test_analysis_commands_have_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0 and len(capsys.readouterr().out) > 400


def test_cli_ablate_from_results_then_report(run, tmp_path, capsys):
    out = tmp_path / "analyses"
    assert main(["ablate", "backbones", "gains", "--results", str(run["out"] / "results"), "--out", str(out),
                 "--store", str(tmp_path / "unused-store")]) == 0
    printed = capsys.readouterr().out
    assert "*gain (linear-task)*" in printed and "mean over prompt sets" in printed and "report:" in printed
    assert (out / "ablations" / "backbones" / "table.csv").is_file() and (out / "report.html").is_file()
    assert main(["ablate", "heads", "--out", str(out), "--store", str(tmp_path)]) == 2
    assert "--train-data" in capsys.readouterr().err
    for bad, why in ((tmp_path / "nope", "folder not found"), (tmp_path, "no result cells")):
        assert main(["ablate", "gains", "--results", str(bad), "--out", str(out), "--store", str(tmp_path)]) == 2
        assert capsys.readouterr().err == f"error: --results {bad}: {why}" + (
            "" if why == "folder not found" else " (cells/*.json) in it; give the --out folder of expclip eval") + "\n"
    assert main(["report", str(tmp_path / "empty")]) == 2


def test_cli_ablate_analyses_given_heads_on_their_own_backbone(run, tiny_clip_dir, face_test, tmp_path, capsys):
    """README: `expclip ablate tsne --data ... --head RUN`: no --backbone, so the features are the head's backbone's
    (here the tiny CLIP), not the default L/14's; an option that contradicts the head is refused."""
    heads = run["out"] / "ablations" / "heads" / "linear-task"
    base = ["ablate", "tsne", "--data", str(face_test), "--head", str(heads), "--store", str(tmp_path / "store"),
            "--no-progress", "--num-workers", "0", "--no-report"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    ab = json.loads((tmp_path / "a" / "ablations" / "tsne" / "ablation.json").read_text())
    assert ab["config"]["backbone"] == str(tiny_clip_dir) and ab["config"]["preprocessing"] == "reference"
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "b"), "--preprocessing", "clip"]) == 2
    err = capsys.readouterr().err
    assert "was trained on 'reference' (preprocessing)" in err and "linear-task" in err and "Traceback" not in err


def test_ablate_checks_every_presets_inputs_before_training_anything(tiny_clip_dir, tiny_blip2_dir, face_pool,
                                                                    tmp_path, capsys):
    # heads has --train-data but no --data: refused at once, not after training 4 heads × 3 seeds.
    assert main(["ablate", "heads", "--train-data", str(face_pool), "--backbone", str(tiny_clip_dir), "--teacher",
                 str(tiny_blip2_dir), "--out", str(tmp_path / "a"), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ablation heads needs --data") and "Traceback" not in err
    assert not (tmp_path / "a" / "ablations" / "heads").exists() and not (tmp_path / "s").exists()


def test_ablate_on_given_heads_uses_their_backbone(run, tiny_clip_dir, face_test, tmp_path, capsys):
    heads = run["out"] / "ablations" / "heads" / "linear-task"
    # No --backbone: the heads' own (not openai/clip-vit-large-patch14, which is not here).
    assert main(["ablate", "tsne", "--head", str(heads), "--data", str(face_test), "--out", str(tmp_path / "a"),
                 "--store", str(run["setup"].store), "--no-report", "--no-progress", "--num-workers", "0"]) == 0
    assert (tmp_path / "a" / "ablations" / "tsne" / "table.md").is_file()
    # A --backbone that none of the heads was trained on is refused (it used to end in a matmul traceback).
    assert main(["ablate", "tsne", "--head", str(heads), "--data", str(face_test), "--out", str(tmp_path / "b"),
                 "--backbone", "openai/clip-vit-base-patch32", "--store", str(run["setup"].store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --backbone openai/clip-vit-base-patch32 is not the backbone") and "Traceback" not in err


def test_report_of_one_training_run_or_one_head(run, tmp_path, capsys):
    import shutil

    runs = shutil.copytree(run["out"] / "ablations" / "heads" / "linear-task", tmp_path / "linear-task")
    for d in (runs, runs / "seed1"):  # the folder given is the run itself, or one of its heads
        assert main(["report", str(d)]) == 0, capsys.readouterr().err
        assert "Training" in (d / "report.md").read_text()
    assert main(["report", str(runs / "seed1" / "config.json")]) == 2
    assert "(it is a file; give the folder that holds it)" in capsys.readouterr().err
    (runs / "seed2" / "config.json").write_text("{")
    assert main(["report", str(runs)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {runs / 'seed2' / 'config.json'}: the head config is not valid JSON")


# ------------------------------------------------------------------------------------------------ report
@pytest.fixture(scope="module")
def report(run):
    from expclip.report.page import build_report

    return build_report(run["out"])


def test_report_is_self_contained_and_complete(report, run):
    from PIL import Image

    page = report["html"].read_text()
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page), "only data: URIs and in-page anchors"
    imgs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == report["figures"] == page.count("<figure")
    for b64 in imgs:
        assert Image.open(io.BytesIO(base64.b64decode(b64))).size[0] > 100
    assert page.count("<table") == report["tables"]
    assert "RANDOM WEIGHTS" in page and 'class="banner"' in page
    assert report["sections"] == ["Zero-shot results", "Per-class view", "Ablations", "Training",
                                  "Configuration and versions"]
    for title in [ab.table["title"] for n, ab in run["done"].items() if n not in ("backbones", "gains")]:
        assert title in page
    for words in ("Table 1 layout", "Table 2 layout", "Mean gain over prompt sets", "t-SNE", "Per-class recall",
                  "Training curves of the heads", "torch " + torch.__version__, "SGD lr 0.001"):
        assert words in page, words
    md = report["markdown"].read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == report["figures"] and all((run["out"] / p).is_file() for p in links)


@needs_chromium
def test_report_renders_offline_in_headless_chromium(report, browser):
    s = browser.open(report["html"].resolve().as_uri())
    page = browser.evaluate(s, """JSON.stringify({
        tables: document.querySelectorAll('table').length,
        images: document.images.length,
        decoded: Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length,
        sections: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
        banner: (document.querySelector('.banner') || {}).innerText || '',
        bannerHeight: (document.querySelector('.banner') || {offsetHeight: 0}).offsetHeight,
        width: document.documentElement.scrollWidth})""")
    page = json.loads(page)
    shot = browser.screenshot(s, ARTIFACTS / "report.png")
    assert browser.problems() == []
    assert page["tables"] == report["tables"] and page["images"] == page["decoded"] == report["figures"]
    assert page["sections"] == report["sections"]
    assert "RANDOM WEIGHTS" in page["banner"] and page["bannerHeight"] > 20
    assert page["width"] <= 1280, "the page must not scroll sideways (wide tables scroll inside their box)"
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size[0] == 1280 and im.size[1] > 2000
