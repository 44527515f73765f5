"""Every dual-encoder family transformers ships, read and scored with its own conventions (issue 13).

Per family: a tiny random model of its own transformers class, saved with ``save_pretrained`` (tokenizers built
offline) and loaded back through ``Backbone.from_pretrained``; plain zero-shot scores against transformers' own
``pipeline("zero-shot-image-classification")``; ``--preprocessing clip`` against the family's own image processor
(on the tiny models' processors and on the published checkpoints' processor configs); a head trained and evaluated
end to end through the CLI; the reference-mode warning; presets; the backbone sweep into Table 2's layout.
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
from PIL import Image

from expclip.cli import main
from expclip.data.images import Preprocess, preprocess_for_model
from expclip.models import families
from expclip.models.backbone import Backbone
from expclip.models.tiny_families import CHINESE_WORDS, TINY_BUILDERS
from expclip.zeroshot import zero_shot_logits

FAMILIES = sorted(TINY_BUILDERS)
LABELS = ["happiness", "sadness", "neutral", "anger", "surprise"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny models' ops are so small that extra intra-op threads only wait (slower on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """family -> its tiny model folder, built on first use (once per module)."""
    root, built = tmp_path_factory.mktemp("families"), {}

    def get(family: str):
        if family not in built:
            built[family] = TINY_BUILDERS[family](root / family, seed=0)
        return built[family]

    return get


@pytest.fixture(scope="module")
def loaded(tiny):
    cache = {}

    def get(family: str) -> Backbone:
        if family not in cache:
            cache[family] = Backbone.from_pretrained(tiny(family), device="cpu")
        return cache[family]

    return get


def _faces(square: bool) -> list[Image.Image]:
    from expclip.data.synthetic import draw_face

    shapes = [(40, 40), (64, 64), (33, 33)] if square else [(40, 40), (80, 50), (40, 90)]
    return [draw_face(LABELS[i % 5], max(s), seed=i).resize(s) for i, s in enumerate(shapes)]


def _labels(family: str) -> list[str]:
    return CHINESE_WORDS[:5] if family == "chinese_clip" else LABELS


# ------------------------------------------------------------------------------------------------ loading
@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_loads_through_from_pretrained_with_its_conventions(family, tiny, loaded):
    from transformers import AutoModel

    bb = loaded(family)
    model = AutoModel.from_pretrained(tiny(family))
    assert bb.family.model_type == family == model.config.model_type and bb.family.verified
    x = torch.stack([bb.preprocess("clip")(im) for im in _faces(square=True)])
    img, txt = bb.encode_image(x), bb.encode_text(_labels(family))
    assert img.shape == (3, bb.embed_dim) and txt.shape == (5, bb.embed_dim) and torch.isfinite(img).all()
    # κ: exp(logit_scale), or 1 / temperature for ALIGN; SigLIP's bias is kept apart.
    want = 1 / model.temperature.item() if family == "align" else model.logit_scale.exp().item()
    assert bb.logit_scale == pytest.approx(want, rel=1e-6)
    assert (bb.logit_bias is not None) == (family in ("siglip", "siglip2"))
    assert bb.max_text_length == {"siglip": 64, "siglip2": 64, "align": 64, "chinese_clip": 52, "altclip": 77,
                                  "clip": 32, "metaclip_2": 77}[family]


# ------------------------------------------------------------------------------------------------ vs pipeline
@pytest.mark.parametrize("family", FAMILIES)
def test_plain_zero_shot_scores_equal_transformers_pipeline(family, tiny, loaded):
    """The pipeline knows each family's conventions (SigLIP's max_length padding and sigmoid, ALIGN's temperature,
    NaFlex patches): our features + κ reproduce its scores, so its ranking of the labels."""
    from transformers import pipeline

    bb = loaded(family)
    labels = _labels(family)
    template = "{}" if family == "chinese_clip" else "a photo of a face with an expression of {}."
    pipe = pipeline("zero-shot-image-classification", model=str(tiny(family)), device="cpu")
    faces = _faces(square=bb.family.naflex)  # NaFlex keeps a non-square image's aspect ratio (docs/backbones.md)
    pre = bb.preprocess("clip")
    text = bb.encode_text([template.format(c) for c in labels])
    logits = zero_shot_logits(bb.encode_image(torch.stack([pre(im) for im in faces])), text[:, None], None,
                              bb.logit_scale).double()
    for img, ours in zip(faces, logits):
        out = pipe(img, candidate_labels=labels, hypothesis_template=template)
        score = torch.tensor([{o["label"]: o["score"] for o in out}[c] for c in labels], dtype=torch.float64)
        if bb.family.sigmoid:  # the pipeline's sigmoid(κ·cos + b): compare in logit space
            theirs, mine = torch.logit(score), ours + bb.logit_bias
        else:  # softmax(κ·cos): compare log-probabilities where they did not underflow
            theirs, mine = score.log(), torch.log_softmax(ours, dim=0)
        ok = score > 1e-30
        assert torch.allclose(mine[ok], theirs[ok], atol=2e-3), (family, mine, theirs)
        ranked = [o["label"] for o in out]  # the pipeline's order, best first
        for i, a in enumerate(ranked):
            for b in ranked[i + 1:]:
                ia, ib = labels.index(a), labels.index(b)
                if score[ia] - score[ib] > 1e-6 * max(1.0, float(score[ia])):
                    assert ours[ia] > ours[ib], (family, a, b)


@pytest.mark.parametrize("family", ["siglip", "siglip2"])
def test_siglip_text_is_lower_cased_and_padded_to_its_64_positions(family, loaded):
    bb = loaded(family)
    prompt = "an expression of happiness."
    assert torch.equal(bb.encode_text([prompt.replace("h", "H", 1)]), bb.encode_text([prompt]))
    tok = bb.tokenizer([prompt], padding="max_length", max_length=64, truncation=True, return_tensors="pt")
    assert tok["input_ids"].shape[1] == 64
    with torch.no_grad():
        want = bb.model.get_text_features(**{k: v for k, v in tok.items() if k in ("input_ids", "attention_mask")})
        short = bb.tokenizer([prompt], padding=True, return_tensors="pt")
        other = bb.model.get_text_features(**{k: v for k, v in short.items() if k in ("input_ids", "attention_mask")})
    assert torch.allclose(bb.encode_text([prompt]), want.pooler_output, atol=1e-6)
    assert not torch.allclose(want.pooler_output, other.pooler_output, atol=1e-4)  # why the padding matters


def test_a_tokenizer_that_needs_a_missing_package_is_named(tiny, tmp_path):
    """SigLIP 1 checkpoints ship only spiece.model, read by SiglipTokenizer through the sentencepiece package."""
    import importlib.util
    import shutil

    from expclip.errors import ModelNotAvailableError

    if importlib.util.find_spec("sentencepiece") is not None:
        pytest.skip("sentencepiece is installed here")
    d = shutil.copytree(tiny("siglip"), tmp_path / "siglip-spm")
    (d / "tokenizer.json").unlink()
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    (d / "tokenizer_config.json").write_text(json.dumps({**cfg, "tokenizer_class": "SiglipTokenizer"}))
    (d / "spiece.model").write_bytes(b"\0" * 16)
    with pytest.raises(ModelNotAvailableError, match="pip install sentencepiece"):
        Backbone.from_pretrained(d)


def test_stored_prompt_features_are_keyed_by_the_familys_text_rule(tiny, loaded, tmp_path):
    """SigLIP's prompt features depend on its padding and case rule: their store key holds it, so features made
    under another rule are never reused; CLIP's key is as before (no rule), so existing stores stay valid."""
    from expclip.features.extract import prompt_features
    from expclip.features.service import find_prompt_features

    prompts = [["happiness."], ["sadness."]]
    for family in ("siglip", "clip"):
        made = prompt_features(loaded(family), prompts, tmp_path / family)
        key = json.loads(next((tmp_path / family).glob("*/meta.json")).read_text())["key"]
        assert ("text" in key) == (family == "siglip")
        found = find_prompt_features(tmp_path / family, str(tiny(family)), prompts)
        assert found is not None and torch.equal(torch.as_tensor(found), torch.as_tensor(made))
    assert key.get("text") is None and json.loads(next((tmp_path / "siglip").glob("*/meta.json")).read_text())[
        "key"]["text"] == {"padding": "max_length", "max_length": None, "position_offset": 0, "lowercase": True}


def test_family_table_text_lengths():
    fam = families.get_family
    assert families.text_max_length({"model_type": "altclip", "text_config": {"max_position_embeddings": 514}}) == 512
    cn = {"model_type": "chinese_clip", "text_config": {"max_position_embeddings": 512}}
    assert families.text_max_length(cn) == 52
    assert families.text_max_length({"model_type": "siglip", "text_config": {"max_position_embeddings": 64}}) == 64
    assert fam("clip").reference_native and not fam("siglip").reference_native
    assert not fam("some_new_clip").verified and fam("some_new_clip").padding == "longest"


# ------------------------------------------------------------------------------------------------ vs processors
def _processor(folder):
    """The family's own PIL-backed (torchvision-free) image processor, read from the folder's config."""
    from expclip.models.tiny import pil_image_processor

    kind = json.loads((folder / "preprocessor_config.json").read_text())["image_processor_type"]
    return pil_image_processor(kind.removesuffix("Fast").removesuffix("ImageProcessor")).from_pretrained(folder)


@pytest.mark.parametrize("family", FAMILIES)
def test_clip_preprocessing_equals_the_familys_own_processor(family, tiny, loaded):
    bb = loaded(family)
    pre, proc = bb.preprocess("clip"), _processor(tiny(family))
    for img in _faces(square=bb.family.naflex) + ([] if bb.family.naflex else _faces(square=True)):
        got = pre(img)
        out = proc(images=img, return_tensors="pt")
        if bb.family.naflex:  # compare the patch sequences the model reads
            inputs = families.image_inputs(bb.family, bb.model.config.to_dict(), got[None])
            n = inputs["pixel_values"].shape[1]
            assert torch.equal(inputs["spatial_shapes"], out["spatial_shapes"])
            assert int(out["pixel_attention_mask"].sum()) == n
            assert torch.allclose(inputs["pixel_values"], out["pixel_values"][:, :n], atol=1e-5)
        else:
            assert got.shape == out["pixel_values"][0].shape
            want = out["pixel_values"][0]
            assert torch.allclose(got, want, atol=1e-5), float((got - want).abs().max())


# The published checkpoints' own preprocessor configs (copied from the hub pages; the processors read them as is).
PUBLISHED = {
    "kakaobrain/align-base": {
        "crop_size": {"height": 289, "width": 289}, "do_center_crop": True, "do_normalize": False, "do_rescale": True,
        "do_resize": True, "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "EfficientNetImageProcessor",
        "image_std": [0.5, 0.5, 0.5], "include_top": False, "resample": 2, "rescale_factor": 0.00784313725490196,
        "rescale_offset": True, "size": {"height": 346, "width": 346}},
    "OFA-Sys/chinese-clip-vit-base-patch16": {
        "do_center_crop": False, "do_normalize": True, "do_resize": True, "image_processor_type":
        "ChineseCLIPImageProcessor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": {"height": 224, "width": 224}},
    "google/siglip-so400m-patch14-384 (SigLIP's processor)": {
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "SiglipImageProcessor", "image_std": [0.5, 0.5, 0.5], "resample": 3,
        "rescale_factor": 0.00392156862745098, "size": {"height": 384, "width": 384}},
    "google/siglip2-*-naflex (Siglip2ImageProcessor defaults)": {
        "image_processor_type": "Siglip2ImageProcessor", "patch_size": 16, "max_num_patches": 256, "resample": 2,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_normalize": True, "do_rescale": True},
    "EfficientNet defaults (include_top)": {
        "image_processor_type": "EfficientNetImageProcessor", "size": {"height": 100, "width": 100},
        "do_center_crop": False, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.47, 0.47, 0.47],
        "include_top": True, "resample": 0, "rescale_factor": 0.00392156862745098, "rescale_offset": False},
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_clip_preprocessing_equals_the_processor_of_published_configs(name, tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(PUBLISHED[name]))
    proc = _processor(tmp_path)
    pre = preprocess_for_model(tmp_path, "clip", 224)
    naflex = "max_num_patches" in PUBLISHED[name]
    for img in _faces(square=True) + ([] if naflex else _faces(square=False)):
        img = img.resize((img.width * 3, img.height * 3))
        out = proc(images=img, return_tensors="pt")
        got = pre(img)
        if naflex:
            got = families.image_inputs(families.get_family("siglip2"), {"vision_config": {"patch_size": 16}},
                                        got[None])["pixel_values"][0]
            want = out["pixel_values"][0]
        else:
            want = out["pixel_values"][0]
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-5), (name, float((got - want).abs().max()))


def test_store_keys_change_only_where_the_features_do(tiny_clip_dir):
    """New Preprocess fields are left out of the key at their defaults: stores made before them stay valid. The one
    rule whose pixels changed (CLIP's short side + crop, exact beyond 4:1 since issue 15) says so in its key, so a
    store made under the old rule is not reused; squashes (SigLIP, BLIP) and "reference" keep their keys."""
    base = {"mode", "image_size", "resize", "crop", "resample", "mean", "std"}
    assert set(preprocess_for_model(tiny_clip_dir, "clip", 32).describe()) == base | {"crop_rule"}
    assert set(Preprocess("clip", 32, 32, False).describe()) == base
    assert set(preprocess_for_model(tiny_clip_dir, "reference", 32).describe()) == base


# ------------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_a_head_trains_and_evaluates_end_to_end(family, tiny, tiny_blip2_dir, face_pool, face_test, tmp_path,
                                                capsys):
    store, model = str(tmp_path / "store"), str(tiny(family))
    common = ["--store", store, "--device", "cpu", "--num-workers", "0", "--no-progress", "--preprocessing", "clip"]
    run, res = tmp_path / "run", tmp_path / "res"
    assert main(["train", "--data", str(face_pool), "--backbone", model, "--teacher", str(tiny_blip2_dir), "--extract",
                 "--out", str(run), "--seeds", "1", "--epochs", "2", "--train-batch-size", "16", *common]) == 0
    cfg = json.loads((run / "seed1" / "config.json").read_text())
    bb = Backbone.from_pretrained(model)
    assert cfg["head"]["in_dim"] == bb.embed_dim and cfg["train"]["logit_scale"] == pytest.approx(bb.logit_scale)
    assert main(["eval", "--data", str(face_test), "--head", str(run), "--prompts", "class_name,ensemble_5",
                 "--out", str(res), *common[:-2]]) == 0
    cells = [json.loads(p.read_text()) for p in sorted((res / "cells").glob("*.json"))]
    assert len(cells) == 2 * 2 and {c["model"] for c in cells} == {"CLIP", "Exp-CLIP"}
    assert all(c["num_samples"] == 42 and c["preprocessing"]["mode"] == "clip" for c in cells)
    capsys.readouterr()


def test_reference_preprocessing_on_a_non_clip_family_warns(tiny, face_test, tmp_path, caplog):
    common = ["--data", str(face_test), "--store", str(tmp_path / "s"), "--num-workers", "0", "--no-progress",
              "--prompts", "class_name"]
    families._WARNED.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["eval", "--backbone", str(tiny("siglip")), "--preprocessing", "reference", "--out",
                     str(tmp_path / "a"), *common]) == 0
    said = [r.getMessage() for r in caplog.records if "CLIP-specific" in r.getMessage()]
    assert len(said) == 1 and "SigLIP" in said[0] and "no mean/std normalization" in said[0]
    assert "--preprocessing clip" in said[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # the paper's family: no warning
        assert main(["eval", "--backbone", str(tiny("clip")), "--preprocessing", "reference", "--out",
                     str(tmp_path / "b"), *common]) == 0
    assert not any("CLIP-specific" in r.getMessage() for r in caplog.records)


def test_non_square_images_are_squashed_for_naflex(loaded):
    """Decision (docs/backbones.md): NaFlex gets the square its patch budget gives a square face crop; a non-square
    image is squashed to it instead of keeping its aspect ratio, so that features stay fixed-size (N,3,H,W)."""
    bb = loaded("siglip2")
    assert bb.preprocess("clip").image_size == bb.image_size == 32 and not bb.preprocess("clip").crop
    x = torch.stack([bb.preprocess("clip")(im) for im in _faces(square=False)])
    assert x.shape == (3, 3, 32, 32) and torch.isfinite(bb.encode_image(x)).all()


# ------------------------------------------------------------------------------------------------ presets
def test_presets_resolve_in_one_place_and_expclip_list_shows_them(capsys, tmp_path, monkeypatch):
    from expclip.errors import ModelNotAvailableError
    from expclip.models.backbone import backbone_short_name, known_feature_dim
    from expclip.models.hub import model_name, resolve_model
    from expclip.models.presets import PRESETS, resolve_preset

    for need in ("siglip2-so400m", "siglip-l16-384", "metaclip2-h14", "laion-bigG"):
        assert need in PRESETS
    assert main(["list", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for p in PRESETS.values():
        assert p.name in out and p.hub_id in out and f"width {p.feature_dim}" in out
    assert known_feature_dim("laion-bigG") == 1280 and known_feature_dim("siglip-so400m") == 1152
    assert model_name("SigLIP2-so400m") == "google/siglip2-so400m-patch14-384"
    assert backbone_short_name("google/siglip-large-patch16-384") == "siglip-l16-384"
    with pytest.raises(ModelNotAvailableError, match="google/siglip2-so400m-patch14-384"):
        resolve_model("siglip2-so400m", local_files_only=True)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "laion-bigG").mkdir()  # a local folder of a preset's name wins
    assert resolve_preset("laion-bigG") == "laion-bigG"


def test_a_preset_name_works_wherever_a_backbone_is_named(tiny, face_test, tmp_path, monkeypatch, capsys):
    """A hub cache holding the preset's checkpoint (here: the tiny SigLIP under the so400m id): the preset name
    loads it, stores and cells record the hub id and its revision, and the result rows use the preset's name."""
    import shutil

    import huggingface_hub.constants as hf

    hub_id, commit = "google/siglip-so400m-patch14-384", "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / ("models--" + hub_id.replace("/", "--"))
    shutil.copytree(tiny("siglip"), repo / "snapshots" / commit)
    (repo / "snapshots" / commit / "EXPCLIP_RANDOM_WEIGHTS.json").unlink()  # as a real checkpoint would be
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hub"))
    bb = Backbone.from_pretrained("siglip-so400m")
    assert bb.identity() == {"id": hub_id, "revision": commit} and bb.family.model_type == "siglip"
    res = tmp_path / "res"
    assert main(["eval", "--data", str(face_test), "--backbone", "siglip-so400m", "--preprocessing", "clip",
                 "--prompts", "class_name", "--out", str(res), "--store", str(tmp_path / "s"), "--num-workers", "0",
                 "--no-progress"]) == 0
    cell = json.loads(next((res / "cells").glob("*.json")).read_text())
    assert cell["backbone"] == {"id": hub_id, "revision": commit}
    capsys.readouterr()


# ------------------------------------------------------------------------------------------------ sweeps
@pytest.mark.slow
def test_ablate_backbones_sweeps_any_list_into_table_2(tiny, tiny_blip2_dir, face_pool, face_test, tmp_path, capsys):
    out, store = tmp_path / "out", tmp_path / "store"
    names = [str(tiny("clip")), str(tiny("siglip"))]
    assert main(["ablate", "backbones", "gains", "--train-data", str(face_pool), "--data", str(face_test),
                 "--backbone", *names, "--teacher", str(tiny_blip2_dir), "--seeds", "1", "2", "--epochs", "1",
                 "--train-batch-size", "16", "--preprocessing", "clip", "--prompts", "class_name", "--out", str(out),
                 "--store", str(store), "--no-report", "--num-workers", "0", "--no-progress"]) == 0
    table = json.loads((out / "ablations" / "backbones" / "ablation.json").read_text())["table"]
    sections = list(dict.fromkeys(r["section"] for r in table["rows"]))
    assert sections == ["clip", "siglip"]
    labels = [(r["section"], r["label"]) for r in table["rows"]]
    assert labels == [(s, x) for s in sections for x in ("CLIP", "Exp-CLIP", "gain (Exp-CLIP)")]
    for s in sections:
        assert sorted(p.name for p in (out / "ablations" / "heads" / s / "linear-task").glob("seed*")) == \
            ["seed1", "seed2"]
    # Each backbone's features in stores of their own: the test set once per backbone, keyed by its model.
    models = {json.loads(m.read_text())["key"]["model"]["id"] for m in store.glob("*/meta.json")
              if json.loads(m.read_text())["key"]["kind"] == "image"}
    assert models == set(names)
    # Several backbones are for these two presets only.
    assert main(["ablate", "tsne", "--head", str(out), "--data", str(face_test), "--backbone", *names, "--out",
                 str(tmp_path / "x"), "--store", str(store)]) == 2
    assert "runs on one" in capsys.readouterr().err


def test_eval_scores_several_backbones_as_clip_rows(tiny, face_test, tmp_path, capsys):
    names = [str(tiny("clip")), str(tiny("metaclip_2")), str(tiny("altclip"))]
    res = tmp_path / "res"
    assert main(["eval", "--data", str(face_test), "--backbone", *names, "--preprocessing", "clip", "--prompts",
                 "class_name", "--out", str(res), "--store", str(tmp_path / "s"), "--num-workers", "0",
                 "--no-progress"]) == 0
    groups = {json.loads(p.read_text())["group"] for p in (res / "cells").glob("*.json")}
    assert groups == {"CLIP clip", "CLIP metaclip_2", "CLIP altclip"}
    assert math.isfinite(np.mean([json.loads(p.read_text())["uar"] for p in (res / "cells").glob("*.json")]))
    capsys.readouterr()
