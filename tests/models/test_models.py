"""Backbone and teacher on tiny random models loaded from disk through from_pretrained."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from expclip.data.images import Preprocess, load_image, preprocess_for_model
from expclip.data.synthetic import draw_face
from expclip.models.hub import ModelNotAvailableError, resolve_model
from expclip.models.teacher import INSTRUCTIONS, Teacher, resolve_instruction, teacher_dtype


def _images(n=3, size=32):
    pre = Preprocess("reference", size, size)
    return torch.stack([pre(draw_face("happiness" if i % 2 else "sadness", seed=i)) for i in range(n)])


def test_backbone_features_equal_the_transformers_model(backbone, tiny_clip_dir):
    from transformers import CLIPModel

    ref = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    x = _images()
    with torch.no_grad():
        want = ref.get_image_features(pixel_values=x).pooler_output
    assert torch.allclose(backbone.encode_image(x), want, atol=1e-5)
    assert backbone.encode_text(["happiness.", "an expression of anger."]).shape == (2, backbone.embed_dim)
    assert backbone.logit_scale == pytest.approx(100.0, rel=1e-4)
    assert backbone.revision.startswith("local-")


def test_teacher_target_equals_running_blip2_parts_by_hand(teacher, tiny_blip2_dir):
    from transformers import AutoTokenizer, Blip2ForConditionalGeneration

    full = Blip2ForConditionalGeneration.from_pretrained(tiny_blip2_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_blip2_dir)
    x = _images(4)
    text = INSTRUCTIONS["task"]
    with torch.no_grad():
        image_tokens = full.get_image_features(pixel_values=x).pooler_output  # (B,32,E) projected queries
        ids = tok(text, return_tensors="pt").input_ids
        assert ids[0, -1].item() == tok.eos_token_id  # the instruction keeps its </s>
        text_emb = full.language_model.get_input_embeddings()(ids).expand(len(x), -1, -1)
        seq = torch.cat([image_tokens, text_emb], dim=1)
        hidden = full.language_model.get_encoder()(inputs_embeds=seq).last_hidden_state
        want = F.normalize(hidden.mean(dim=1), dim=-1)  # mean over ALL positions
    got = teacher.encode(x, text)
    assert got.dtype == torch.float32
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(got.norm(dim=-1), torch.ones(len(x)))


def test_mixed_instruction_lengths_give_the_same_targets_as_separate_batches(teacher):
    x = _images(3)
    texts = [INSTRUCTIONS["task"], INSTRUCTIONS["short"], "smile"]
    mixed = teacher.encode(x, texts)
    for i, t in enumerate(texts):
        assert torch.allclose(mixed[i], teacher.encode(x[i : i + 1], t)[0], atol=1e-5)


def test_teacher_loads_no_decoder_and_refuses_float16(teacher, tiny_blip2_dir):
    from transformers import Blip2ForConditionalGeneration

    names = [n for n, _ in teacher.named_parameters()]
    assert not any("decoder" in n or "lm_head" in n for n in names)
    full = Blip2ForConditionalGeneration.from_pretrained(tiny_blip2_dir)
    dec = sum(p.numel() for n, p in full.named_parameters() if ".decoder." in n or "lm_head" in n)
    assert dec > 0 and teacher.num_parameters() == sum(p.numel() for p in full.parameters()) - dec
    with pytest.raises(ValueError, match="float16 is refused"):
        Teacher.from_pretrained(tiny_blip2_dir, dtype="float16")
    assert teacher_dtype(torch.device("cpu"), None) == torch.float32
    assert teacher_dtype(torch.device("cuda"), None) == torch.bfloat16


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a, b, dim=-1)


def test_the_gpu_dtypes_run_on_cpu_and_stay_close_to_float32(teacher, backbone, tiny_blip2_dir, tiny_clip_dir,
                                                             face_pool, tmp_path):
    """A GPU runs the teacher in bfloat16 and CLIP under bfloat16 autocast; no GPU here, so those code paths run on
    CPU: float32 unit-norm targets and float32 features, near the float32 ones but not equal to them (the cast
    really happened), and a bfloat16 teacher store keyed apart from the float32 one."""
    from expclip.data.datasets import unlabelled_images
    from expclip.features.extract import extract_teacher
    from expclip.models.backbone import Backbone

    x = _images(4)
    t16 = Teacher.from_pretrained(tiny_blip2_dir, device="cpu", dtype="bfloat16")
    assert t16.dtype == torch.bfloat16 and t16.query_tokens.dtype == torch.float32  # Q-Former kept in float32
    got, want = t16.encode(x, INSTRUCTIONS["task"]), teacher.encode(x, INSTRUCTIONS["task"])
    assert got.dtype == torch.float32 and torch.allclose(got.norm(dim=-1), torch.ones(len(x)))
    assert not torch.equal(got, want) and _cos(got, want).min() > 0.99

    bb = Backbone.from_pretrained(tiny_clip_dir, device="cpu")
    assert bb.amp_dtype is None  # autocast is for CUDA only by default
    bb.amp_dtype = torch.bfloat16
    texts = ["happiness.", "an expression of anger."]
    pairs = ((bb.encode_image(x), backbone.encode_image(x)), (bb.encode_text(texts), backbone.encode_text(texts)))
    for got, want in pairs:
        assert got.dtype == torch.float32 and not torch.equal(got, want) and _cos(got, want).min() > 0.99

    data = unlabelled_images(face_pool)
    s16 = extract_teacher(t16, data, tmp_path, batch_size=16, num_workers=0, progress=False)
    s32 = extract_teacher(teacher, data, tmp_path, batch_size=16, num_workers=0, progress=False)
    assert s16.path != s32.path and s16.key["dtype"] != s32.key["dtype"]
    (f16, _, _), (f32, _, _) = s16.tensors(), s32.tensors()
    assert s16.valid().all() and len(f16) == len(data) and f16.dtype == torch.float32 and _cos(f16, f32).min() > 0.99


def test_instruction_presets_and_custom_text():
    assert resolve_instruction("task")[1].startswith("Please play the role of a facial action describer.")
    assert resolve_instruction("short") == ("short", "Describe the facial actions of the person in the image.")
    assert resolve_instruction("Say what you see.") == ("custom", "Say what you see.")
    with pytest.raises(ValueError):
        resolve_instruction("  ")


def test_a_clip_model_is_not_a_teacher(tiny_clip_dir):
    with pytest.raises(ModelNotAvailableError, match="not BLIP-2 with a T5"):
        Teacher.from_pretrained(tiny_clip_dir)


def test_offline_error_names_the_model_and_how_to_provide_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as e:
        resolve_model("openai/clip-vit-large-patch14-not-cached")
    msg = str(e.value)
    assert "openai/clip-vit-large-patch14-not-cached" in msg and "save_pretrained" in msg and "cache" in msg
    with pytest.raises(ModelNotAvailableError, match="model directory not found"):
        resolve_model("./no/such/dir")


def test_reference_preprocessing_is_a_bilinear_squash_to_unit_range(tmp_path):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 80, 3), dtype=np.uint8))
    t = Preprocess("reference", 224, 224)(img)
    want = np.asarray(img.resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255.0
    assert t.shape == (3, 224, 224) and float(t.min()) >= 0 and float(t.max()) <= 1
    assert np.allclose(t.permute(1, 2, 0).numpy(), want)


@pytest.mark.parametrize("shape", [(50, 80), (90, 40), (32, 32)])
def test_clip_preprocessing_matches_the_models_processor(tiny_clip_dir, shape):
    from expclip.models.tiny import pil_image_processor

    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8))
    pre = preprocess_for_model(tiny_clip_dir, "clip", 32)
    proc = pil_image_processor("CLIP").from_pretrained(tiny_clip_dir)
    want = torch.as_tensor(np.asarray(proc(images=img, return_tensors="np")["pixel_values"][0]))
    got = pre(img)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-5), float((got - want).abs().max())


def test_blip_preprocessing_is_a_bicubic_square_resize(tiny_blip2_dir):
    pre = preprocess_for_model(tiny_blip2_dir, "clip", 32)
    assert not pre.crop and pre.resample == int(Image.BICUBIC) and pre.mean is not None
    cfg = json.loads((tiny_blip2_dir / "preprocessor_config.json").read_text())
    assert pre.image_size == cfg["size"]["height"]


def test_load_image_handles_modes_and_exif(tmp_path):
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    rgba.save(tmp_path / "a.png")
    assert load_image(tmp_path / "a.png").getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    Image.new("L", (5, 5), 128).save(tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").mode == "RGB"
    Image.new("CMYK", (5, 5)).save(tmp_path / "c.jpg")
    assert load_image(tmp_path / "c.jpg").mode == "RGB"
    img = Image.new("RGB", (20, 10))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").size == (10, 20)
