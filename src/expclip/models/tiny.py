"""Tiny random-weight CLIP and BLIP-2(+T5) models with offline-built tokenizers.

They are written with ``save_pretrained`` so the demo and the tests load them through exactly the same
``from_pretrained`` path as real weights. Their outputs mean nothing: they exist to run the mechanics.
"""

from __future__ import annotations

import logging
import string
from pathlib import Path

import torch

from .hub import mark_random_weights

log = logging.getLogger(__name__)

# Words given whole tokens in the tiny vocabularies, so prompts and instructions tokenize to short sequences.
_WORDS = (
    "a an of the with in photo face expression person image please play role facial action describer objectively "
    "describe detailed actions write short description this cropped emphasizing expressing exuding showing someone "
    "immersed capturing within individual radiating happiness sadness neutral anger surprise disgust fear contempt "
    "anxiety helplessness disappointment happy sad angry surprised"
).split()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet: every byte gets a printable unicode character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def tiny_clip_tokenizer():
    """A CLIP BPE tokenizer over the byte alphabet, with merges that make the vocabulary words whole tokens."""
    from transformers import CLIPTokenizer

    alphabet = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for ch in alphabet:
        vocab.setdefault(ch, len(vocab))
    for ch in alphabet:
        vocab.setdefault(ch + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            a, b = parts[0], parts[1]
            merged = a + b
            if (a, b) not in merges:
                merges.append((a, b))
            vocab.setdefault(merged, len(vocab))
            parts = [merged] + parts[2:]
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=32)


def tiny_t5_tokenizer():
    """A T5 (Unigram) tokenizer whose pieces are whole vocabulary words plus single characters."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + w, -1.0) for w in _WORDS]
    chars = string.ascii_letters + string.digits + string.punctuation
    pieces += [(c, -5.0) for c in chars] + [("▁" + c, -5.5) for c in chars]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def pil_image_processor(family: str) -> type:
    """The PIL-backed (torchvision-free) image processor class of ``family`` ("CLIP", "Blip").

    transformers 5.4+ names it ``<Family>ImageProcessorPil`` (the plain name is the torchvision one, which needs
    torchvision); 5.0-5.3 have only the plain name, which is the PIL one there. The top-level name is used because
    5.4-5.5 ship the BLIP classes in each other's module files.
    """
    import transformers

    return getattr(transformers, f"{family}ImageProcessorPil", None) or getattr(transformers, f"{family}ImageProcessor")


def build_tiny_clip(out_dir: str | Path, seed: int = 0, image_size: int = 32, embed_dim: int = 16) -> Path:
    """Write a tiny random CLIPModel + tokenizer + image processor to ``out_dir``; returns the directory."""
    from transformers import CLIPConfig, CLIPModel

    out = Path(out_dir)
    tok = tiny_clip_tokenizer()
    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=32, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=image_size,
            patch_size=8,
        ),
        projection_dim=embed_dim,
        logit_scale_init_value=4.605170185988092,  # ln 100, as OpenAI CLIP's trained value
    )
    model = CLIPModel(cfg).eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    pil_image_processor("CLIP")(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    ).save_pretrained(out)
    mark_random_weights(out)
    return out


def build_tiny_blip2(out_dir: str | Path, seed: int = 0, image_size: int = 32, llm_dim: int = 64) -> Path:
    """Write a tiny random Blip2ForConditionalGeneration (Flan-T5-style LLM) + T5 tokenizer to ``out_dir``."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration

    out = Path(out_dir)
    tok = tiny_t5_tokenizer()
    torch.manual_seed(seed)
    cfg = Blip2Config(
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=image_size,
            patch_size=8, layer_norm_eps=1e-6,
        ),
        qformer_config=dict(
            vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            encoder_hidden_size=32, cross_attention_frequency=1,
        ),
        text_config=dict(
            model_type="t5", vocab_size=len(tok), d_model=llm_dim, d_kv=16, d_ff=128, num_layers=2,
            num_decoder_layers=1, num_heads=4, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
            decoder_start_token_id=0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        ),
        num_query_tokens=32,
    )
    model = Blip2ForConditionalGeneration(cfg).eval()
    # Random query tokens (transformers initializes them to zero) and wider weights than transformers' 0.02 in the
    # image path, so that a random tiny teacher still gives different images different targets.
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        model.query_tokens.normal_(0, 1.0, generator=gen)
        for part in (model.vision_model, model.qformer, model.language_projection):
            for p in part.parameters():
                if p.ndim == 2:
                    p.normal_(0, 0.2, generator=gen)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    pil_image_processor("Blip")(size={"height": image_size, "width": image_size}).save_pretrained(out)
    mark_random_weights(out)
    return out
