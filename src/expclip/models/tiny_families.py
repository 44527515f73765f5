"""Tiny random-weight dual encoders of every family :mod:`expclip.models.families` knows, with offline tokenizers.

Each is the family's own transformers model class with its own tokenizer kind and image processor, shrunk to a few
kilobytes and written with ``save_pretrained`` (plus :func:`~expclip.models.hub.mark_random_weights`), so tests load
them through exactly the ``from_pretrained`` path real checkpoints take. The tokenizers are built in code, never
downloaded: a unigram (sentencepiece-style) vocabulary for SigLIP, XLM-R-style unigram for AltCLIP and MetaCLIP 2,
Gemma-style byte-fallback BPE for SigLIP 2, BERT wordpiece for ALIGN and Chinese-CLIP (with Chinese characters).

>>> from expclip.models.tiny_families import TINY_BUILDERS
>>> sorted(TINY_BUILDERS)
['align', 'altclip', 'chinese_clip', 'clip', 'metaclip_2', 'siglip', 'siglip2']
"""

from __future__ import annotations

import math
import string
from pathlib import Path
from typing import Callable

import torch

from .hub import mark_random_weights
from .tiny import _WORDS, build_tiny_clip, pil_image_processor

# Chinese class names (Chinese-CLIP is prompted in Chinese): each character is a token of BERT's Chinese rule.
CHINESE_WORDS = "快乐 悲伤 中性 愤怒 惊讶 厌恶 恐惧 轻蔑 焦虑 无助 失望 一张 人脸 的 照片 表情".split()
_CHARS = string.ascii_lowercase + string.digits + string.punctuation

# Small transformer towers shared by the builders (two layers, four heads).
_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, patch_size=8)


# ------------------------------------------------------------------------------------------------ tokenizers
def _unigram_pieces(specials: list[str]) -> list[tuple[str, float]]:
    """Sentencepiece-style unigram pieces: the specials, whole "▁word" pieces, then single characters."""
    pieces = [(s, 0.0) for s in specials] + [("▁", -2.0)] + [("▁" + w, -1.0) for w in _WORDS]
    return pieces + [(c, -5.0) for c in _CHARS] + [("▁" + c, -5.5) for c in _CHARS]


def tiny_sentencepiece_tokenizer():
    """A unigram tokenizer in SigLIP's shape (``</s>`` appended, pad = eos), built without sentencepiece.

    SigLIP's own ``SiglipTokenizer`` needs the ``sentencepiece`` package to read ``spiece.model``; transformers'
    T5Tokenizer is the same unigram model on the ``tokenizers`` backend and loads everywhere.
    """
    from transformers import T5Tokenizer

    return T5Tokenizer(vocab=_unigram_pieces(["<pad>", "</s>", "<unk>"]), extra_ids=0, pad_token="</s>",
                       model_max_length=64)


def tiny_xlmr_tokenizer():
    """An XLM-R (unigram) tokenizer: ``<s> … </s>``, pad id 1, as AltCLIP's and MetaCLIP 2's (XLM-V) are."""
    from transformers import XLMRobertaTokenizer

    return XLMRobertaTokenizer(vocab=_unigram_pieces(["<s>", "<pad>", "</s>", "<unk>"]) + [("<mask>", 0.0)],
                               model_max_length=77)


def tiny_gemma_tokenizer():
    """SigLIP 2's tokenizer kind: Gemma byte-fallback BPE over "▁"-joined words, lower-casing (Siglip2Tokenizer)."""
    from transformers import Siglip2Tokenizer

    vocab: dict[str, int] = {t: i for i, t in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"])}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for ch in "▁" + _CHARS:
        vocab.setdefault(ch, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        parts = ["▁"] + list(word)
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            if pair not in merges:
                merges.append(pair)
            vocab.setdefault(pair[0] + pair[1], len(vocab))
            parts = [pair[0] + pair[1]] + parts[2:]
    return Siglip2Tokenizer(vocab=vocab, merges=merges, model_max_length=64)


def tiny_wordpiece_tokenizer(chinese: bool = False):
    """A BERT wordpiece tokenizer (lower-casing; ``[CLS] … [SEP]``), with CJK characters when ``chinese``."""
    from transformers import BertTokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(_WORDS) + list(_CHARS) + [f"##{c}" for c in _CHARS]
    if chinese:
        tokens += list(dict.fromkeys("".join(CHINESE_WORDS)))
    return BertTokenizer(vocab={t: i for i, t in enumerate(dict.fromkeys(tokens))}, model_max_length=52 if chinese
                         else 64)


def _text(tok, **extra) -> dict:
    return dict(_TEXT, vocab_size=len(tok), pad_token_id=tok.pad_token_id, **extra)


def _save(out: Path, model, tok, processor) -> Path:
    model.eval().save_pretrained(out)
    tok.save_pretrained(out)
    processor.save_pretrained(out)
    mark_random_weights(out)
    return out


# ------------------------------------------------------------------------------------------------ builders
def build_tiny_siglip(out_dir: str | Path, seed: int = 0, image_size: int = 32) -> Path:
    """SiglipModel (sigmoid-loss CLIP): squash-resize processor, mean/std 0.5, text padded to 64, logit bias."""
    from transformers import SiglipConfig, SiglipModel

    tok = tiny_sentencepiece_tokenizer()
    torch.manual_seed(seed)
    # SigLIP's text has no bos; any in-vocabulary id keeps the config loadable without a warning (None falls back
    # to the class default 49406, outside this vocabulary).
    cfg = SiglipConfig(text_config=_text(tok, max_position_embeddings=64, eos_token_id=tok.eos_token_id,
                                         bos_token_id=tok.unk_token_id),
                       vision_config=dict(_VISION, image_size=image_size))
    model = SiglipModel(cfg)
    _sigmoid_init(model)
    proc = pil_image_processor("Siglip")(size={"height": image_size, "width": image_size})
    return _save(Path(out_dir), model, tok, proc)


def build_tiny_siglip2(out_dir: str | Path, seed: int = 0, image_size: int = 32) -> Path:
    """Siglip2Model (NaFlex): the processor patchifies with a patch budget of (image_size / 8)² patches."""
    from transformers import Siglip2Config, Siglip2Model

    tok = tiny_gemma_tokenizer()
    side = image_size // _VISION["patch_size"]
    torch.manual_seed(seed)
    cfg = Siglip2Config(text_config=_text(tok, max_position_embeddings=64, eos_token_id=tok.eos_token_id,
                                          bos_token_id=tok.bos_token_id),
                        vision_config=dict(_VISION, num_patches=side * side))
    model = Siglip2Model(cfg)
    _sigmoid_init(model)
    proc = pil_image_processor("Siglip2")(patch_size=_VISION["patch_size"], max_num_patches=side * side)
    return _save(Path(out_dir), model, tok, proc)


def _sigmoid_init(model) -> None:
    """SigLIP's initial temperature and bias (t' = log 10, b = -10): transformers zero-initializes them."""
    with torch.no_grad():
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-10.0)


def _clip_processor(image_size: int, squash: bool = False, family: str = "CLIP"):
    size = {"height": image_size, "width": image_size} if squash else {"shortest_edge": image_size}
    return pil_image_processor(family)(size=size, crop_size={"height": image_size, "width": image_size})


def build_tiny_metaclip2(out_dir: str | Path, seed: int = 0, image_size: int = 32, embed_dim: int = 16) -> Path:
    """MetaClip2Model: CLIP's towers and processor, an XLM-R-style tokenizer (MetaCLIP 2 uses XLM-V's)."""
    from transformers import MetaClip2Config, MetaClip2Model

    tok = tiny_xlmr_tokenizer()
    torch.manual_seed(seed)
    cfg = MetaClip2Config(text_config=_text(tok, max_position_embeddings=77, bos_token_id=tok.bos_token_id,
                                            eos_token_id=tok.eos_token_id),
                          vision_config=dict(_VISION, image_size=image_size), projection_dim=embed_dim,
                          logit_scale_init_value=math.log(100.0))
    return _save(Path(out_dir), MetaClip2Model(cfg), tok, _clip_processor(image_size))


def build_tiny_altclip(out_dir: str | Path, seed: int = 0, image_size: int = 32, embed_dim: int = 16) -> Path:
    """AltCLIPModel: an XLM-R text tower (positions offset by the pad id, 514 = 512 tokens), CLIP's vision side."""
    from transformers import AltCLIPConfig, AltCLIPModel

    tok = tiny_xlmr_tokenizer()
    torch.manual_seed(seed)
    cfg = AltCLIPConfig(text_config=_text(tok, max_position_embeddings=80, bos_token_id=tok.bos_token_id,
                                          eos_token_id=tok.eos_token_id, project_dim=embed_dim),
                        vision_config=dict(_VISION, image_size=image_size), projection_dim=embed_dim,
                        logit_scale_init_value=math.log(100.0))
    return _save(Path(out_dir), AltCLIPModel(cfg), tok, _clip_processor(image_size))


def build_tiny_chinese_clip(out_dir: str | Path, seed: int = 0, image_size: int = 32, embed_dim: int = 16) -> Path:
    """ChineseCLIPModel: a BERT wordpiece tokenizer with CJK characters; processor squashes then center-crops."""
    from transformers import ChineseCLIPConfig, ChineseCLIPModel

    tok = tiny_wordpiece_tokenizer(chinese=True)
    torch.manual_seed(seed)
    cfg = ChineseCLIPConfig(text_config=_text(tok, max_position_embeddings=64), projection_dim=embed_dim,
                            vision_config=dict(_VISION, image_size=image_size), logit_scale_init_value=math.log(100.0))
    proc = _clip_processor(image_size, squash=True, family="ChineseCLIP")
    return _save(Path(out_dir), ChineseCLIPModel(cfg), tok, proc)


def build_tiny_align(out_dir: str | Path, seed: int = 0, image_size: int = 32) -> Path:
    """AlignModel: EfficientNet image tower, BERT text tower; κ = 1 / temperature.

    The processor rescales to [-1, 1] (``rescale_offset``) with no mean/std, squashing to a larger square than the
    model's and center-cropping (EfficientNet's processor options; the real ALIGN settings are not verified offline).
    """
    from transformers import AlignConfig, AlignModel

    tok = tiny_wordpiece_tokenizer()
    torch.manual_seed(seed)
    vision = dict(image_size=image_size, width_coefficient=0.1, depth_coefficient=0.2, hidden_dim=64,
                  num_block_repeats=(1, 1, 1, 1, 1, 1, 1), drop_connect_rate=0.0)
    # The image features are the last EfficientNet stage's channels, which the text projection must match.
    width = max(8, int(320 * 0.1 + 4) // 8 * 8)
    cfg = AlignConfig(text_config=_text(tok, max_position_embeddings=64), vision_config=vision, projection_dim=width,
                      temperature_init_value=0.01)
    from transformers import EfficientNetImageProcessorPil

    proc = EfficientNetImageProcessorPil(size={"height": image_size + 8, "width": image_size + 8}, do_center_crop=True,
                                         crop_size={"height": image_size, "width": image_size},
                                         rescale_factor=1 / 127.5, rescale_offset=True, do_normalize=False,
                                         include_top=False)
    model = AlignModel(cfg)
    # transformers' 0.02-std init makes a random EfficientNet's features vanish (~1e-30, which normalizes to NaN):
    # He-initialized convolutions keep their scale.
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        for mod in model.vision_model.modules():
            if isinstance(mod, torch.nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.normal_(0, math.sqrt(2.0 / fan_in), generator=gen)
    return _save(Path(out_dir), model, tok, proc)


TINY_BUILDERS: dict[str, Callable[..., Path]] = {
    "clip": build_tiny_clip, "siglip": build_tiny_siglip, "siglip2": build_tiny_siglip2,
    "metaclip_2": build_tiny_metaclip2, "align": build_tiny_align, "altclip": build_tiny_altclip,
    "chinese_clip": build_tiny_chinese_clip,
}


def build_tiny_family(family: str, out_dir: str | Path, seed: int = 0) -> Path:
    """A tiny random model of ``family`` (a transformers ``model_type``) saved to ``out_dir``."""
    return TINY_BUILDERS[family](out_dir, seed=seed)
