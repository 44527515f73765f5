"""Models and data for the bench scripts: the paper's architectures with random weights, synthetic images/stores.

Speed does not depend on weight values, so every model here is built from its published architecture with random
weights (nothing is downloaded); "small" stand-ins with the same structure keep CPU runs to minutes.
"""

from __future__ import annotations

from pathlib import Path

# Architectures of the paper's models (random weights are enough for speed). Values from the published configs.
CLIP_VISION = {
    "B32": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                image_size=224, patch_size=32),
    "B16": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                image_size=224, patch_size=16),
    "L14": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                image_size=224, patch_size=14),
    # A small stand-in with the same structure, for timing on a CPU in minutes (not a paper size).
    "small": dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                  image_size=224, patch_size=32),
}
CLIP_TEXT = {
    "B32": dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
    "B16": dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
    "L14": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
    "small": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
}
CLIP_PROJECTION = {"B32": 512, "B16": 512, "L14": 768, "small": 128}

# Salesforce/blip2-flan-t5-xxl: ViT-g/14 (1408, 39 layers), Q-Former (BERT-base, 32 queries), Flan-T5-XXL.
BLIP2_XXL = dict(
    vision_config=dict(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16,
                       image_size=224, patch_size=14, layer_norm_eps=1e-6),
    qformer_config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                        encoder_hidden_size=1408, cross_attention_frequency=2, vocab_size=30522),
    text_config=dict(model_type="t5", vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
                     num_decoder_layers=24, num_heads=64, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                     decoder_start_token_id=0, pad_token_id=0, eos_token_id=1),
    num_query_tokens=32,
)
# A mid-size BLIP-2 + T5 (~490M parameters) with the xxl model's proportions — vision : T5 encoder : T5 decoder
# ≈ 1 : 4.8 : 6.4 by parameters — for where a whole model must fit this machine's memory (teacher memory bench).
BLIP2_MID = dict(
    vision_config=dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=20, num_attention_heads=6,
                       image_size=224, patch_size=14, layer_norm_eps=1e-6),
    qformer_config=dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                        encoder_hidden_size=384, cross_attention_frequency=2, vocab_size=30522),
    text_config=dict(model_type="t5", vocab_size=32128, d_model=768, d_kv=64, d_ff=2048, num_layers=24,
                     num_decoder_layers=24, num_heads=12, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                     decoder_start_token_id=0, pad_token_id=0, eos_token_id=1),
    num_query_tokens=32,
)


def build_random_clip(out_dir: Path, arch: str = "B32", full_text: bool = False, seed: int = 0) -> Path:
    """A random-weight CLIP with the vision tower of ``arch`` (B32, B16, L14), saved with save_pretrained.

    The text tower is the real size when ``full_text``, else a small one (image extraction never runs it).
    """
    import torch
    from transformers import CLIPModel

    from expclip.models.hub import mark_random_weights
    from expclip.models.tiny import pil_image_processor, tiny_clip_tokenizer

    torch.manual_seed(seed)
    CLIPModel(clip_config(arch, full_text)).eval().save_pretrained(out_dir)
    tiny_clip_tokenizer().save_pretrained(out_dir)
    size = CLIP_VISION[arch]["image_size"]
    proc = pil_image_processor("CLIP")(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    proc.save_pretrained(out_dir)
    mark_random_weights(out_dir)
    return out_dir


def write_jpeg_folder(root: Path, n: int, size: int = 256, seed: int = 0, quality: int = 90) -> Path:
    """``n`` synthetic face JPEGs of ``size`` px with photo-like noise (so decoding costs what a photo costs)."""
    import numpy as np
    from PIL import Image

    from expclip.data.synthetic import draw_face
    from expclip.labels import classes_for

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    classes = classes_for(7)
    for i in range(n):
        face = np.asarray(draw_face(classes[i % 7], size, seed=seed * 100_003 + i), dtype=np.int16)
        noisy = np.clip(face + rng.normal(0, 12, face.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / f"{i:06d}.jpg", quality=quality)
    return root


def write_store(root: Path, kind: str, name: str, features, labels=None, extra_key: dict | None = None):
    """Write a complete feature store from an array (or a ``fill(memmap)`` callable) without any encoder.

    ``features``: a (N, *shape) float32 array, or a tuple (shape, fill) where ``fill(out)`` writes into the
    memory-mapped (N, *shape) file (so that stores larger than memory can be made). Returns the FeatureStore.
    """
    import numpy as np

    from expclip.features.store import (
        FEATURE_CODE_VERSION, STORE_FORMAT, FeatureStore, canonical, key_digest, store_path,
    )
    from expclip.files import atomic_save_npy, atomic_write_json

    shape, fill = (features.shape, None) if hasattr(features, "shape") else features
    n = int(shape[0])
    items = [{"path": f"{i:07d}.jpg", "label": None if labels is None else int(labels[i])} for i in range(n)]
    key = canonical({"kind": kind, "model": {"id": "bench-random", "revision": "r0"}, "preprocessing": None,
                     "data": {"name": name, "n": n, "sha256": key_digest({"name": name, "n": n})[:20]},
                     "code_version": FEATURE_CODE_VERSION, **(extra_key or {})})
    path = store_path(root, key)
    path.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(path / "features.npy", mode="w+", dtype=np.float32, shape=tuple(shape))
    if fill is None:
        out[:] = features
    else:
        fill(out)
    out.flush()
    del out
    atomic_save_npy(path / "valid.npy", np.ones(n, dtype=bool))
    atomic_write_json(path / "items.json", items)
    meta = {"format": STORE_FORMAT, "key": key, "items_sha256": key_digest({"items": items}), "n": n,
            "feature_shape": list(shape[1:]), "dtype": "float32", "batch_size": 64, "chunk_size": 2048,
            "complete": True, "failures": [], "n_valid": n, "logit_scale": 100.0}
    atomic_write_json(path / "meta.json", meta)
    return FeatureStore.open(path, key)


# Small stand-in teacher for CPU timing runs.
BLIP2_SMALL = dict(
    vision_config=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                       image_size=224, patch_size=14, layer_norm_eps=1e-6),
    qformer_config=dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=512,
                        encoder_hidden_size=128, cross_attention_frequency=2, vocab_size=30522),
    text_config=dict(model_type="t5", vocab_size=32128, d_model=256, d_kv=32, d_ff=512, num_layers=2,
                     num_decoder_layers=2, num_heads=8, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                     decoder_start_token_id=0, pad_token_id=0, eos_token_id=1),
    num_query_tokens=32,
)
BLIP2_CONFIGS = {"small": BLIP2_SMALL, "mid": BLIP2_MID, "xxl": BLIP2_XXL}


def clip_config(arch: str, full_text: bool = True):
    """CLIPConfig of ``arch`` (SDPA attention); the text tower small unless ``full_text``, over the test vocabulary."""
    from transformers import CLIPConfig

    from expclip.models.tiny import tiny_clip_tokenizer

    tok = tiny_clip_tokenizer()
    text = dict(CLIP_TEXT[arch] if full_text else CLIP_TEXT["small"])
    text.update(vocab_size=len(tok), max_position_embeddings=77, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    cfg = CLIPConfig(text_config=text, vision_config=CLIP_VISION[arch], projection_dim=CLIP_PROJECTION[arch],
                     logit_scale_init_value=4.605170185988092)  # ln 100, OpenAI CLIP's trained value
    cfg._attn_implementation = "sdpa"
    return cfg


def random_backbone(arch: str, device: str = "cpu", seed: int = 0):
    """A random-weight :class:`~expclip.models.backbone.Backbone` of ``arch`` built in memory on ``device``.

    bfloat16 autocast on CUDA (as ``Backbone.from_pretrained``); no files are written.
    """
    import torch
    from transformers import CLIPModel

    from expclip.models.backbone import Backbone
    from expclip.models.hub import ResolvedModel
    from expclip.models.tiny import tiny_clip_tokenizer

    cfg = clip_config(arch)
    dev = torch.device(device)
    torch.manual_seed(seed)
    with torch.device(dev):  # built and initialized on the device: no host copy of a large model
        model = CLIPModel(cfg).eval().requires_grad_(False)
    return Backbone(model=model, tokenizer=tiny_clip_tokenizer(), device=dev,
                    resolved=ResolvedModel(f"random-clip-{arch}", Path("."), "random"),
                    image_size=cfg.vision_config.image_size, embed_dim=CLIP_PROJECTION[arch],
                    max_text_length=77, amp_dtype=torch.bfloat16 if dev.type == "cuda" else None)


def blip2_config(size: str):
    from transformers import Blip2Config

    # Attention left to transformers, as Teacher.from_pretrained does (SDPA where the installed version has it).
    return Blip2Config(**BLIP2_CONFIGS[size])


def random_teacher(size: str, device: str = "cpu", dtype=None, seed: int = 0, meta_only: bool = False):
    """A random-weight :class:`~expclip.models.teacher.Teacher` of ``size`` (small, mid, xxl) built in memory.

    As loaded by ``Teacher.from_pretrained``: encoder parts only, Q-Former and query tokens in float32, the rest in
    ``dtype`` (default: bfloat16 on CUDA, float32 on CPU). ``meta_only``: shapes only, no memory (for counting).
    """
    import torch

    from expclip.models.hub import ResolvedModel
    from expclip.models.teacher import Teacher, TeacherInfo, teacher_dtype
    from expclip.models.tiny import tiny_t5_tokenizer

    dev = torch.device(device)
    dt = teacher_dtype(dev, dtype)
    info = TeacherInfo(ResolvedModel(f"random-blip2-{size}", Path("."), "random"), dt)
    if meta_only:
        with torch.device("meta"):
            return Teacher(blip2_config(size), tiny_t5_tokenizer(), info)
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dt)  # built and initialized on the device in its dtype: no float32 copy of 6B weights
    try:
        with torch.device(dev):
            t = Teacher(blip2_config(size), tiny_t5_tokenizer(), info)
    finally:
        torch.set_default_dtype(default)
    t.qformer.float()  # as the loader keeps them
    t.query_tokens.data = t.query_tokens.data.float()
    return t.eval().requires_grad_(False)
