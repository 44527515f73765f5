"""Vocabulary, synonyms, the paper's prompt sets as data, custom labels, and folder reading."""

from __future__ import annotations

import json

import pytest

from expclip.data.datasets import DatasetError, image_folder
from expclip.labels import (
    CLASS_ORDER, DATASET_NUM_CLASSES, canonical_label, classes_for, label_spec_from_obj, load_label_spec,
)
from expclip.prompts import PAPER_PROMPT_SETS, custom_prompts, paper_prompts


def test_class_order_and_dataset_sizes_follow_the_protocol():
    assert CLASS_ORDER == ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear", "contempt",
                           "anxiety", "helplessness", "disappointment")
    assert DATASET_NUM_CLASSES == {"RAFDB": 7, "AffectNet7": 7, "AffectNet8": 8, "FERPlus": 8, "DFEW": 7,
                                   "FERV39k": 7, "MAFW": 11, "AFEW": 7}
    assert classes_for(8)[-1] == "contempt"


@pytest.mark.parametrize("name,want", [("happy", "happiness"), ("Happiness", "happiness"), ("joy", "happiness"),
                                       ("Angry", "anger"), ("3_angry", "anger"), ("Surprised", "surprise"),
                                       ("Snxiety", "anxiety"), ("table", None)])
def test_synonyms(name, want):
    assert canonical_label(name) == want


def test_paper_prompt_sets_hold_the_papers_strings_with_their_quirks():
    for name in PAPER_PROMPT_SETS:
        got = paper_prompts(name, list(CLASS_ORDER))
        assert len(got) == 11 and all(got), name
    assert paper_prompts("class_name", ["happiness"]) == [["happiness."]]
    assert paper_prompts("an_expression_of", ["neutral"]) == [["an expression of neutral."]]  # kept as published
    assert paper_prompts("a_photo_of_a_face", ["contempt"]) == [["a photo of a face with an expression of contempt."]]
    assert paper_prompts("ensemble_5", ["anger"])[0][:2] == ["an expression of anger.",
                                                             "a photo of a face with an expression of anger."]
    ens5 = paper_prompts("ensemble_5", ["happiness", "sadness"])
    assert len(ens5[0]) == len(ens5[1]) == 5 and ens5[1][1] == "a cropped photo emphasizing a face expressing sadness."
    ens10 = paper_prompts("ensemble_10", ["fear"])[0]
    assert len(ens10) == 10 and ens10[-1] == "a clean photo showcasing a person's fearful expression."


def test_custom_labels_templates_and_descriptions(tmp_path):
    assert custom_prompts(["grin", "scowl"]) == [["grin."], ["scowl."]]
    assert custom_prompts(["grin"], ["a photo of a {}.", "{label} face"]) == [["a photo of a grin.", "grin face"]]
    spec = label_spec_from_obj({"labels": {"grin": ["a wide grin", "teeth showing"], "blank": "a blank stare"}})
    assert custom_prompts(spec.labels, spec.templates, spec.descriptions) == [["a wide grin", "teeth showing"],
                                                                             ["a blank stare"]]
    f = tmp_path / "labels.json"
    f.write_text(json.dumps({"labels": ["a", "b"], "templates": ["{} face"]}))
    spec = load_label_spec(f)
    assert custom_prompts(spec.labels, spec.templates, spec.descriptions) == [["a face"], ["b face"]]
    f.write_text("{not json")
    with pytest.raises(ValueError, match="labels.json: not valid JSON"):
        load_label_spec(f)
    with pytest.raises(ValueError, match="unique"):
        custom_prompts(["a", "a"])


def test_image_folder_maps_synonyms_to_the_canonical_order(face_test):
    data = image_folder(face_test)
    assert data.classes == list(CLASS_ORDER[:7])
    by_label = {data.classes[it["label"]]: it["path"].split("/")[0] for it in data.items}
    assert by_label["happiness"] == "Happy" and by_label["anger"] == "3_angry"
    assert len(data) == 42


def test_image_folder_errors_name_the_problem(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "furniture").mkdir()
    with pytest.raises(DatasetError, match="furniture"):
        image_folder(tmp_path)
    (tmp_path / "furniture").rmdir()
    (tmp_path / "joy").mkdir()
    with pytest.raises(DatasetError, match="both mean 'happiness'"):
        image_folder(tmp_path)
