"""expclip score: another system's per-sample predictions scored on the test lists, checked against scikit-learn.

Prediction files are generated from the test lists themselves: the shipped reference lists (read here with a
plain parser of their ``<path> <num_frames> <label>`` lines, not the package's) for the video sets, tiny native
copies (support/native.py) for the static ones.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, recall_score

from expclip.cli import main
from expclip.prompts import OWN_PREDICTIONS
from expclip.report.results import write_results
from expclip.runs.answers import OUTSIDE, answer_class
from expclip.runs.testsets import ID_RULES

from support import native as nf

CANON = nf.CANON
LISTS = {"DFEW": "DFEW_set_{fold}_test.txt", "MAFW": "MAFW_set_{fold}_test.txt", "FERV39k": "FERV39k_test.txt",
         "AFEW": "AFEW_validation.txt"}
EVAL_KEYS = {"model", "group", "seed", "head_dir", "dataset", "fold", "kind", "classes", "prompt_set", "uar", "war",
             "per_class_recall", "confusion_matrix", "num_samples", "data_info", "sampling", "clips", "num_items",
             "num_failed", "backbone", "preprocessing", "store", "random_weights", "versions"}


def reference(dataset: str, fold: int | None = None) -> list[tuple[str, int]]:
    """(the dataset's own id, label index) of every line of a shipped list, parsed independently."""
    name = LISTS[dataset].format(fold=fold)
    text = resources.files("expclip").joinpath(f"resources/annotations/{name}").read_text()
    out = []
    for line in text.splitlines():
        if line.strip():
            path, _, label = line.split()
            parts = path.split("/")
            sample = "/".join(parts[-3:]) if dataset == "FERV39k" else parts[-1]
            if dataset == "AFEW":
                sample = sample.split("_", 2)[2]  # 1_1_002916200 -> the native clip name 002916200
            out.append((sample, int(label)))
    return out


def write(path: Path, rows: list[dict]) -> Path:
    """rows as JSON lines (.jsonl) or CSV (.csv, header from the first row's keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return path


def score(tmp_path, preds: Path, *args: str, out: str = "out") -> list[dict]:
    """Run the command; returns its cells, fold order."""
    assert main(["-q", "score", str(preds), "--out", str(tmp_path / out), *args]) == 0
    return sorted((json.loads(p.read_text()) for p in (tmp_path / out / "cells").glob("*.json")),
                  key=lambda c: (c["group"], c["dataset"], c["fold"] or 0))


def sk(truth, pred, n):
    """What scikit-learn says of (truth, pred) with -1 = counted wrong without a class."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true" for the -1s
        return {"uar": balanced_accuracy_score(truth, pred), "war": accuracy_score(truth, pred),
                "recall": recall_score(truth, pred, labels=list(range(n)), average=None, zero_division=np.nan),
                "cm": confusion_matrix(truth, pred, labels=list(range(n)))}


def assert_matches(cell: dict, truth, pred):
    n = len(cell["classes"])
    want = sk(truth, pred, n)
    assert cell["uar"] == pytest.approx(want["uar"]) and cell["war"] == pytest.approx(want["war"])
    got = [np.nan if cell["per_class_recall"][c] is None else cell["per_class_recall"][c] for c in cell["classes"]]
    np.testing.assert_allclose(got, want["recall"])
    np.testing.assert_array_equal(cell["confusion_matrix"], want["cm"])
    assert cell["num_samples"] == len(truth)
    assert np.sum(cell["confusion_matrix"]) + sum(cell["counts"]["wrong_outside_confusion"]) == len(truth)


# ------------------------------------------------------------------------------------------------ perfect
@pytest.mark.parametrize("dataset, fold, form", [("DFEW", 1, "name"), ("FERV39k", None, "index"),
                                                 ("MAFW", 3, "synonym"), ("AFEW", None, "name")])
def test_perfect_predictions_score_100_on_the_shipped_lists(tmp_path, dataset, fold, form):
    ref = reference(dataset, fold)
    synonyms = {"happiness": "Happy", "sadness": "sad", "anger": "Angry.", "surprise": "surprised",
                "disgust": "disgusted", "fear": "scared", "neutral": "calm", "contempt": "contemptuous",
                "anxiety": "anxious", "helplessness": "helpless", "disappointment": "disappointed"}
    label = {"name": lambda i: CANON[i], "index": lambda i: i, "synonym": lambda i: synonyms[CANON[i]]}[form]
    rows = [{"id": s, "label": label(i)} for s, i in reversed(ref)]  # any order: matched by id
    args = ["--dataset", dataset, "--name", "Oracle"] + (["--fold", str(fold)] if fold else [])
    [cell] = score(tmp_path, write(tmp_path / "p.csv", rows), *args)
    assert EVAL_KEYS <= set(cell) and cell["prompt_set"] == OWN_PREDICTIONS
    assert cell["uar"] == cell["war"] == 1.0 and cell["fold"] == fold and cell["group"] == "Oracle"
    c = cell["counts"]
    assert c["test"] == c["scored"] == c["predicted"] == len(ref) and c["missing"] == c["outside"] == 0
    assert c["scored_fraction"] == 1.0 and c["label_forms"] == {form: len(ref)}
    assert cell["source"]["sha256"] == hashlib.sha256((tmp_path / "p.csv").read_bytes()).hexdigest()
    assert cell["test_list"]["lists"] == "reference" and cell["test_list"]["file"] == LISTS[dataset].format(fold=fold)
    assert cell["rules"]["outside"] == "wrong" and cell["rules"]["missing"] == "drop"
    np.testing.assert_array_equal(np.diag(cell["confusion_matrix"]), np.bincount([i for _, i in ref],
                                                                                  minlength=len(cell["classes"])))


# ------------------------------------------------------------------------------------------------ the rules vs sklearn
def noisy_dfew(seed: int = 0):
    """Fold 2 of DFEW: random answers, 10% free text, 5% of an 8th class, 15% of the samples unanswered."""
    rng = random.Random(seed)
    rows, truth = [], []
    for sample, label in reference("DFEW", 2):
        r = rng.random()
        if r < 0.15:
            truth.append((label, None))  # missing
            continue
        ans = (rng.choice(["I cannot tell", "", "a smile?"]) if r < 0.25 else "contempt" if r < 0.30
               else CANON[label] if rng.random() < 0.4 else CANON[rng.randrange(7)])
        truth.append((label, ans))
        rows.append({"id": str(int(sample)) if rng.random() < 0.5 else f"/x/DFEW/clip_224x224/{sample}",
                     "label": ans})
    return rows, truth


@pytest.mark.parametrize("outside, missing", [("wrong", "drop"), ("drop", "drop"), ("wrong", "wrong"),
                                              ("drop", "wrong")])
def test_rules_match_sklearn(tmp_path, outside, missing):
    rows, truth = noisy_dfew()
    [cell] = score(tmp_path, write(tmp_path / "p.jsonl", rows), "--dataset", "DFEW", "--fold", "2",
                   "--outside", outside, "--missing", missing)
    t, p = [], []
    for label, ans in truth:
        if ans is None:
            if missing == "wrong":
                t.append(label), p.append(-1)
            continue
        idx = CANON.index(ans) if ans in CANON[:7] else -1
        if idx == -1 and outside == "drop":
            continue
        t.append(label), p.append(idx)
    assert_matches(cell, t, p)
    n_missing = sum(a is None for _, a in truth)
    n_outside = sum(a is not None and a not in CANON[:7] for _, a in truth)
    c = cell["counts"]
    assert (c["missing"], c["outside"], c["test"]) == (n_missing, n_outside, len(truth))
    assert c["scored"] == len(t) and c["scored_fraction"] == pytest.approx(len(t) / len(truth))
    assert cell["rules"]["outside"] == outside and cell["rules"]["missing"] == missing
    assert sum(c["missing_per_class"]) == n_missing and sum(c["outside_per_class"]) == n_outside


def test_counts_and_rules_are_printed(tmp_path, capsys):
    rows, _ = noisy_dfew()
    assert main(["score", str(write(tmp_path / "p.jsonl", rows)), "--dataset", "DFEW", "--fold", "2", "--out",
                 str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "without a prediction -> left out of UAR/WAR" in out
    assert "answers outside the 7 classes -> counted wrong" in out
    assert "test clips scored" in out


def test_strict_makes_missing_or_outside_an_error(tmp_path, capsys):
    rows, _ = noisy_dfew()
    preds = write(tmp_path / "p.jsonl", rows)
    strict = ["--dataset", "DFEW", "--fold", "2", "--strict", "--out", str(tmp_path / "o")]
    assert main(["score", str(preds), *strict]) == 2
    err = capsys.readouterr().err
    assert "--strict" in err and "no prediction" in err and len(err.strip().splitlines()) == 1
    ref = reference("DFEW", 2)
    full = write(tmp_path / "full.csv", [{"id": s, "label": "contempt" if k == 3 else CANON[i]}
                                         for k, (s, i) in enumerate(ref)])
    assert main(["score", str(full), *strict]) == 2
    assert "outside the 7 classes" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written


# ------------------------------------------------------------------------------------------------ labels
def test_answer_forms():
    classes = CANON[:7]
    assert answer_class("Happy.", classes) == (0, "synonym")
    assert answer_class("**anger**", classes) == (3, "name")
    assert answer_class(" 2 ", classes) == (2, "index")
    assert answer_class(6, classes) == (6, "index")
    assert answer_class(7, classes) == (OUTSIDE, "not in set")  # contempt is not a RAF-DB/DFEW class
    assert answer_class("contempt", CANON[:8]) == (7, "name")
    assert answer_class(["sad", "happy"], classes) == (1, "ranked synonym")
    assert answer_class('["fear", "anger"]', classes) == (6, "ranked name")
    assert answer_class("surprise; fear | anger", classes) == (4, "ranked name")
    assert answer_class(["I do not know", "happy"], classes) == (OUTSIDE, "ranked unknown")  # the first counts
    assert answer_class(None, classes) == (OUTSIDE, "empty") and answer_class("", classes) == (OUTSIDE, "empty")
    assert answer_class("The person looks happy", classes) == (OUTSIDE, "unknown")


def test_ranked_lists_count_their_first_label(tmp_path):
    rng = random.Random(3)
    ref = reference("MAFW", 1)
    ranked = [rng.sample(range(11), 3) for _ in ref]
    rows = [{"id": f"{s}.mp4", "label": [CANON[j] for j in r]} for (s, _), r in zip(ref, ranked)]
    [cell] = score(tmp_path, write(tmp_path / "p.jsonl", rows), "--dataset", "MAFW", "--fold", "1")
    assert_matches(cell, [i for _, i in ref], [r[0] for r in ranked])
    assert cell["counts"]["label_forms"] == {"ranked name": len(ref)}
    assert cell["rules"]["ranked"] == "first label counts"
    csv_rows = [{"id": s, "label": ";".join(CANON[j] for j in r)} for (s, _), r in zip(ref, ranked)]
    [again] = score(tmp_path, write(tmp_path / "p.csv", csv_rows), "--dataset", "MAFW", "--fold", "1", out="o2")
    assert (again["uar"], again["war"]) == (cell["uar"], cell["war"])


# ------------------------------------------------------------------------------------------------ ids
def test_id_rules_read_each_datasets_own_naming():
    k = {d: r.key for d, r in ID_RULES.items()}
    assert k["DFEW"]("1") == k["DFEW"]("00001.mp4") == k["DFEW"]("/data/DFEW/Clip/clip_224x224/00001/") == "00001"
    assert k["FERV39k"]("/d/FERV39K/2_ClipsforFaceCrop/Action/Happy/0015") == "Action/Happy/0015"
    assert k["FERV39k"]("0015") is None  # a clip number alone is ambiguous across scenes
    assert k["MAFW"]("data/faces/00025") == k["MAFW"]("00025.mp4") == "00025"
    assert k["AFEW"]("Sadness/1_1_002916200") == k["AFEW"]("Sad/002916200.avi") == "002916200"
    assert k["RAFDB"]("Image/aligned/test_0001_aligned.jpg") == k["RAFDB"]("test_0001.jpg") == "test_0001"
    assert k["FERPlus"]("fer0032220.png") == "fer0032220"


def test_shifted_ids_that_match_nothing_are_named(tmp_path, capsys):
    rows = [{"id": f"{int(s) + 50000:05d}", "label": CANON[i]} for s, i in reference("DFEW", 1)]
    assert main(["score", str(write(tmp_path / "p.csv", rows)), "--dataset", "DFEW", "--fold", "1", "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "none of its 2341 ids matches" in err and rows[0]["id"] in err and "--id-column" in err
    assert "00001" in err and len(err.strip().splitlines()) == 1


def test_ids_shifted_by_one_are_scored_by_id_not_by_row(tmp_path, capsys):
    """Each row carries its neighbour's id: the scorer must pair answers with the named sample (sklearn on that
    pairing), count the row whose id is not in the list, and leave the sample nobody answered out."""
    ref = reference("FERV39k")
    rng = random.Random(5)
    answers = [rng.randrange(7) for _ in ref]
    rows = [{"id": ref[k + 1][0] if k + 1 < len(ref) else "Action/Happy/9999", "label": a}
            for k, a in enumerate(answers)]
    assert main(["score", str(write(tmp_path / "p.csv", rows)), "--dataset", "FERV39k", "--out",
                 str(tmp_path / "out")]) == 0
    assert "1 of 7847 rows have an id in no FERV39k test list" in capsys.readouterr().out
    [cell] = [json.loads(p.read_text()) for p in (tmp_path / "out/cells").glob("*.json")]
    assert_matches(cell, [i for _, i in ref[1:]], answers[:-1])
    assert cell["counts"]["missing"] == 1 and cell["counts"]["unmatched_rows"] == 1


def test_missing_samples_are_left_out_or_counted_wrong(tmp_path):
    ref = reference("AFEW")
    half = ref[::2]
    rows = [{"sample": f"Val_AFEW/x/{s}.avi", "pred": CANON[i]} for s, i in half]
    preds = write(tmp_path / "p.csv", rows)
    cols = ["--id-column", "sample", "--label-column", "pred"]
    [drop] = score(tmp_path, preds, "--dataset", "AFEW", *cols)
    assert drop["war"] == 1.0 and drop["counts"]["missing"] == len(ref) - len(half)
    assert drop["counts"]["scored_fraction"] == pytest.approx(len(half) / len(ref))
    [wrong] = score(tmp_path, preds, "--dataset", "AFEW", "--missing", "wrong", *cols, out="o2")
    answered = {s for s, _ in half}
    assert_matches(wrong, [i for _, i in ref], [i if s in answered else -1 for s, i in ref])


def test_a_sample_answered_twice_is_refused_with_both_lines(tmp_path, capsys):
    ref = reference("DFEW", 1)
    rows = [{"id": s, "label": CANON[i]} for s, i in ref] + [{"id": str(int(ref[0][0])), "label": "sad"}]
    assert main(["score", str(write(tmp_path / "p.csv", rows)), "--dataset", "DFEW", "--fold", "1", "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"line {len(rows) + 1}" in err and "line 2" in err and "00001" in err


# ------------------------------------------------------------------------------------------------ folds
def test_every_answered_fold_is_kept_and_fewer_folds_are_said(tmp_path, capsys):
    rows = [{"id": s, "label": CANON[i]} for k in (1, 3) for s, i in reference("DFEW", k)]
    preds = write(tmp_path / "p.jsonl", rows)
    cells = score(tmp_path, preds, "--dataset", "DFEW", "--name", "LLM")
    assert [c["fold"] for c in cells] == [1, 3]
    md = (tmp_path / "out/results.md").read_text()
    assert "LLM on DFEW: 2 of 5 folds (1, 3)" in md
    lines = (tmp_path / "out/cells.csv").read_text().splitlines()
    assert sum(",LLM," in line for line in lines) == 2  # per-fold results kept
    assert main(["score", str(preds), "--dataset", "DFEW", "--fold", "2", "--out", str(tmp_path / "o2")]) == 2
    assert "answers fold(s) [1, 3]" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--dataset", "FERV39k", "--fold", "1"], "FERV39k has no folds"),
    (["--dataset", "DFEW", "--fold", "6"], "has folds [1, 2, 3, 4, 5]"),
    (["--dataset", "SFEW"], "unknown dataset 'SFEW'"),
    (["--dataset", "CAER-S"], "knows the test lists of RAFDB"),
    (["--dataset", "RAFDB"], "needs --root"),
    (["--dataset", "DFEW", "--id-column", "clip"], "no column 'clip'"),
    (["--dataset", "DFEW", "--name", "CLIP"], "--name 'CLIP'"),
    (["--dataset", "DFEW", "--option", "media=clips"], "give --root too"),
])
def test_bad_input_is_one_line_naming_the_option(tmp_path, capsys, args, message):
    preds = write(tmp_path / "p.csv", [{"id": s, "label": i} for s, i in reference("DFEW", 1)])
    assert main(["score", str(preds), *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_a_missing_or_malformed_file_is_named(tmp_path, capsys):
    assert main(["score", str(tmp_path / "nope.csv"), "--dataset", "DFEW", "--out", str(tmp_path / "o")]) == 2
    assert "prediction file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "00001", "label": "happy"}\n{"id": 2, label}\n')
    assert main(["score", str(bad), "--dataset", "DFEW", "--out", str(tmp_path / "o")]) == 2
    assert "bad.jsonl, line 2" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ static sets
def test_rafdb_from_its_annotation_file_matches_sklearn(tmp_path):
    expected = nf.rafdb(tmp_path / "basic")  # relative path -> class
    rng = random.Random(1)
    ids = {p: p.split("/")[-1].replace("_aligned.jpg", "") for p in expected}
    forms = [lambda s: s, lambda s: f"{s}.jpg", lambda s: f"Image/aligned/{s}_aligned.jpg"]
    rows, truth, pred = [], [], []
    for k, (p, cls) in enumerate(sorted(expected.items())):
        ans = rng.randrange(8)  # 7 = contempt: outside RAF-DB's 7 classes
        rows.append({"id": forms[k % 3](ids[p]), "label": ans})
        truth.append(CANON.index(cls))
        pred.append(ans if ans < 7 else -1)
    [cell] = score(tmp_path, write(tmp_path / "p.csv", rows), "--dataset", "RAFDB", "--root", str(tmp_path / "basic"))
    assert_matches(cell, truth, pred)
    assert cell["test_list"]["file"].endswith("list_patition_label.txt") and cell["test_list"]["sha256"]


def test_ferplus_and_affectnet_ids(tmp_path):
    fer = nf.ferplus_csv(tmp_path / "FERPlus")  # image name -> class (majority vote)
    rows = [{"id": name, "label": cls} for name, cls in fer.items()]
    [cell] = score(tmp_path, write(tmp_path / "f.jsonl", rows), "--dataset", "FERPlus", "--root",
                   str(tmp_path / "FERPlus"))
    assert cell["uar"] == 1.0 and cell["counts"]["test"] == len(fer) and len(cell["classes"]) == 8
    an = nf.affectnet_2021(tmp_path / "AffectNet")  # images/<id>.jpg -> class
    rows = [{"id": p.split("/")[-1].split(".")[0], "label": cls} for p, cls in an.items() if cls != "contempt"]
    [a7] = score(tmp_path, write(tmp_path / "a.csv", rows), "--dataset", "AffectNet7", "--root",
                 str(tmp_path / "AffectNet"), out="o2")
    assert a7["war"] == 1.0 and a7["counts"]["test"] == 7


def test_a_video_set_with_root_uses_the_downloads_split_files(tmp_path):
    folds = nf.dfew(tmp_path / "DFEW")  # fold -> folder name -> class
    rows = [{"id": str(int(p)), "label": cls} for k in (1, 2) for p, cls in folds[k].items()]
    cells = score(tmp_path, write(tmp_path / "p.csv", rows), "--dataset", "DFEW", "--root", str(tmp_path / "DFEW"))
    assert [(c["fold"], c["war"]) for c in cells] == [(1, 1.0), (2, 1.0)]
    assert cells[0]["test_list"]["lists"] == "official" and cells[0]["test_list"]["file"].endswith("set_1.csv")


# ------------------------------------------------------------------------------------------------ beside eval's rows
def eval_cell(group: str, fold: int, prompt_set: str, uar: float, seed: int | None = 1) -> dict:
    """A cell as expclip eval writes it (the keys the tables read)."""
    cm = [[1 if i == j else 0 for j in range(7)] for i in range(7)]
    return {"model": "CLIP" if group == "CLIP" else "Exp-CLIP", "group": group, "seed": None if group == "CLIP"
            else seed, "head_dir": None, "dataset": "DFEW", "fold": fold, "kind": "video", "classes": CANON[:7],
            "prompt_set": prompt_set, "uar": uar, "war": uar, "per_class_recall": {}, "confusion_matrix": cm,
            "num_samples": 7, "num_items": 7, "num_failed": 0, "random_weights": False,
            "backbone": {"id": "openai/clip-vit-large-patch14"}, "preprocessing": {"mode": "reference"},
            "store": "s", "versions": {}}


def test_scored_rows_join_eval_tables_and_the_report(tmp_path, capsys):
    out = tmp_path / "paper"
    cells = [eval_cell(g, f, ps, u) for f in range(1, 6) for ps, u in (("class_name", 0.2), ("ensemble_10", 0.3))
             for g in ("CLIP", "Exp-CLIP L14")]
    write_results(cells, out, paper_layout=True)
    rows = [{"id": s, "label": CANON[i]} for s, i in reference("DFEW", 1)]
    preds = write(tmp_path / "gpt.jsonl", rows)
    assert main(["-q", "score", str(preds), "--dataset", "DFEW", "--fold", "1", "--name", "GPT-4V", "--out",
                 str(out)]) == 0
    md = (out / "results.md").read_text()
    for ps in ("Class Name", "Expression Ensemble Ten"):  # a row of every prompt set's table
        section = md.split(f"## Prompts: {ps}")[1].split("## ")[0]
        assert "| GPT-4V | 100.00 / 100.00 |" in section and "| CLIP |" in section
    assert "GPT-4V on DFEW: 1 of 5 folds (1)" in md and "2341 of 2341 test samples scored" in md
    assert len(list((out / "cells").glob("*.json"))) == 21  # eval's 20 kept
    assert main(["report", str(out), "--prompt-set", "ensemble_10"]) == 0
    report = (out / "report.md").read_text()
    table1 = report.split("### Models × datasets")[1].split("###")[0]
    assert "| GPT-4V |" in table1 and "Fewer folds (the mean of these only): GPT-4V on DFEW: 1 of 5 folds" in table1
    table2 = report.split("### CLIP vs Exp-CLIP per backbone")[1].split("### Mean gain")[0]
    assert "GPT-4V" not in table2 and "Exp-CLIP L14" in table2
    # a rescore replaces the earlier one; a name of eval's models is refused
    assert main(["score", str(preds), "--dataset", "DFEW", "--name", "GPT-4V", "--out", str(out)]) == 0
    assert "replaced 1 earlier cell(s)" in capsys.readouterr().out
    assert main(["score", str(preds), "--dataset", "DFEW", "--name", "Exp-CLIP L14", "--out", str(out)]) == 2
    assert "is a model evaluated by expclip eval" in capsys.readouterr().err


def test_help_documents_the_rules_and_id_forms(capsys):
    with pytest.raises(SystemExit) as e:
        main(["score", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for text in ("--outside", "--missing", "--strict", "Action/Happy/0015", "test_0001", "ranked list", "example:"):
        assert text in out
