"""The paper's table layouts from planted result cells, a report of several backbones and datasets, and the
browser check the report tests rely on (the report of a real run: tests/runs/test_ablations.py)."""

from __future__ import annotations

import pytest

from expclip.report.tables import backbone_table, gain_table, table_csv, table_markdown, variants_table

from support.browser import needs_chromium


# ------------------------------------------------------------------------------------------------ table layouts
def _cells() -> list[dict]:
    """Planted numbers: 2 backbones × (CLIP, Exp-CLIP 2 seeds) × 2 datasets (DFEW with 2 folds) × 2 prompt sets."""
    out = []
    for bb, base in (("openai/clip-vit-base-patch32", 0.30), ("openai/clip-vit-large-patch14", 0.40)):
        for ds, folds in (("RAFDB", [None]), ("DFEW", [1, 2])):
            for pi, ps in enumerate(("class_name", "ensemble_10")):
                for fold in folds:
                    f = 0.0 if fold is None else (fold - 1.5) * 0.02  # folds average out
                    clip = base + 0.01 * pi + f
                    out.append({"model": "CLIP", "group": "CLIP", "seed": None, "dataset": ds, "fold": fold,
                                "prompt_set": ps, "uar": clip, "war": clip + 0.05, "backbone": {"id": bb}})
                    for seed, g in ((1, 0.04), (2, 0.06)):  # gain UAR 4 / 6 points by seed
                        out.append({"model": "Exp-CLIP", "group": f"run-{bb[-2:]}", "seed": seed, "dataset": ds,
                                    "fold": fold, "prompt_set": ps, "uar": clip + g + 0.01 * (ds == "DFEW"),
                                    "war": clip + 0.05 + g, "backbone": {"id": bb}})
    return out


def test_table2_layout_has_backbone_blocks_with_gain_rows():
    t = backbone_table(_cells())
    assert t["columns"] == ["RAFDB", "DFEW"]
    assert [(r["section"], r["label"], r["kind"]) for r in t["rows"]] == [
        ("ViT-B/32", "CLIP", "score"), ("ViT-B/32", "run-32", "score"), ("ViT-B/32", "gain (run-32)", "gain"),
        ("ViT-L/14", "CLIP", "score"), ("ViT-L/14", "run-14", "score"), ("ViT-L/14", "gain (run-14)", "gain")]
    clip, exp, gain = t["rows"][:3]
    assert clip["values"]["RAFDB"]["uar"] == pytest.approx(30.5)  # mean over the 2 prompt sets
    assert clip["values"]["DFEW"]["uar"] == pytest.approx(30.5)  # folds averaged
    assert exp["values"]["DFEW"]["uar"] == pytest.approx(30.5 + 5 + 1) and exp["values"]["DFEW"]["uar_std"] == \
        pytest.approx(1.0)
    assert gain["values"]["RAFDB"]["uar"] == pytest.approx(5.0) and gain["values"]["RAFDB"]["war"] == pytest.approx(5)
    assert gain["values"]["DFEW"]["uar"] == pytest.approx(6.0)
    md = table_markdown(t)
    assert "| ViT-B/32 | *gain (run-32)* | +5.00 ± 1.00 / +5.00 ± 1.00 | +6.00 ± 1.00 / +5.00 ± 1.00 |" in md
    assert "**35.50 ± 1.00**" in md  # best per column in bold
    assert t["caption"].endswith("± = std over seeds (DFEW the mean of 2 folds within each seed).")
    assert variants_table([c for c in _cells() if c["dataset"] == "RAFDB"], "x")["caption"].endswith(
        "± = std over seeds.")  # no dataset with folds: nothing to say
    one = backbone_table(_cells(), prompt_set="ensemble_10")
    assert one["rows"][0]["values"]["RAFDB"]["uar"] == pytest.approx(31.0)


def test_mean_gain_over_prompt_sets_per_backbone():
    t = gain_table(_cells())
    assert t["columns"] == ["class_name", "ensemble_10", "mean"]
    assert [r["label"] for r in t["rows"]] == ["ViT-B/32", "ViT-L/14"]
    v = t["rows"][0]["values"]
    # gain per dataset: RAFDB 5, DFEW 6 (UAR) -> 5.5 averaged over datasets, for every prompt set; std over seeds 1
    assert v["class_name"]["uar"] == pytest.approx(5.5) and v["mean"]["uar"] == pytest.approx(5.5)
    assert v["mean"]["war"] == pytest.approx(5.0) and v["mean"]["uar_std"] == pytest.approx(1.0)
    assert len(table_csv(t).splitlines()) == 1 + 2 * 3


def test_variants_table_orders_rows_and_refuses_unknown_prompt_sets():
    t = variants_table(_cells(), "x", order=["run-14", "CLIP"])
    assert [r["label"] for r in t["rows"]] == ["run-14", "CLIP", "run-32"]
    with pytest.raises(ValueError, match="no result for prompt set"):
        variants_table(_cells(), "x", prompt_set="ensemble_5")


def test_report_of_several_backbones_and_datasets(tmp_path):
    """The suite's shape (several backbones, datasets, folds): rows get backbone names, Table 2 gets blocks."""
    from expclip.report.page import build_report
    from expclip.report.results import write_results

    cells = [{**c, "classes": ["happiness", "sadness"], "confusion_matrix": [[3, 1], [2, 4]], "random_weights": False,
              "head_dir": None} for c in _cells()]
    for bb in ("32", "14"):  # one results folder per backbone, as `expclip eval --out results/B32` writes them
        write_results([c for c in cells if c["backbone"]["id"].endswith(bb)], tmp_path / f"B{bb}", confusion=False)
    res = build_report(tmp_path, prompt_set="ensemble_10")
    page = res["html"].read_text()
    assert not res["random_weights"] and 'class="banner"' not in page
    for text in ("CLIP (ViT-B/32)", "CLIP (ViT-L/14)", "gain (run-14)", "RAFDB", "DFEW", "Expression Ensemble Ten"):
        assert text in page, text
    assert page.index("CLIP (ViT-B/32)") < page.index("CLIP (ViT-L/14)")  # the paper's order, not the folders'
    assert res["figures"] == 2 * (4 + 1)  # per dataset: a confusion matrix per row (2 CLIPs, 2 runs) + recall bars


@needs_chromium
def test_the_browser_check_catches_network_requests_and_console_errors(tmp_path, browser):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="https://example.org/x.png"><script>console.error("boom")</script>'
                   "</body></html>")
    browser.open(bad.as_uri())
    found = " ".join(browser.problems())
    assert "network request: https://example.org/x.png" in found and "boom" in found
