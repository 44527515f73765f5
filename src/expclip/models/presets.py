"""Named backbone presets: short names for the hub checkpoints people pick, usable wherever a backbone is named.

``--backbone siglip2-so400m`` (CLI) or ``Backbone.from_pretrained("siglip2-so400m")`` resolve here, in
:func:`expclip.models.hub.resolve_model`, to the hub id; stores and heads record the hub id, so a preset and its
hub id share features. A local folder of the same name wins over a preset.

Widths are the projected feature size (a head's input). Each preset says where its numbers come from; "not verified
offline" marks what could not be checked against the checkpoint's own ``config.json`` while writing this (no
network): such a preset still resolves, and the width is checked against the real config once it is downloaded.

>>> resolve_preset("siglip2-so400m")
'google/siglip2-so400m-patch14-384'
>>> resolve_preset("LAION-bigG")
'laion/CLIP-ViT-bigG-14-laion2B-39B-b160k'
>>> resolve_preset("openai/clip-vit-base-patch32")
'openai/clip-vit-base-patch32'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Preset:
    """A named checkpoint: hub id, transformers ``model_type``, feature width, image side, where they come from."""

    name: str
    hub_id: str
    family: str
    feature_dim: int
    image_size: int  # the square side its own processor ("--preprocessing clip") gives the image tower
    source: str


PRESETS: dict[str, Preset] = {p.name: p for p in [
    # The paper's three (PROTOCOL.md: 512 / 512 / 768).
    Preset("clip-b32", "openai/clip-vit-base-patch32", "clip", 512, 224, "the paper's B/32"),
    Preset("clip-b16", "openai/clip-vit-base-patch16", "clip", 512, 224, "the paper's B/16"),
    Preset("clip-l14", "openai/clip-vit-large-patch14", "clip", 768, 224, "the paper's L/14"),
    # CLIP-format checkpoints: they load as "clip".
    Preset("laion-h14", "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", "clip", 1024, 224,
           "hub config.json projection_dim 1024"),
    Preset("laion-bigG", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k", "clip", 1280, 224,
           "hub config.json projection_dim 1280; open_clip_config.json embed_dim 1280"),
    Preset("metaclip-h14", "facebook/metaclip-h14-fullcc2.5b", "clip", 1024, 224,
           "MetaCLIP 1 (CLIP format); ViT-H/14 width, not verified offline"),
    # MetaCLIP 2 (worldwide, XLM-V tokenizer).
    Preset("metaclip2-h14", "facebook/metaclip-2-worldwide-huge-quickgelu", "metaclip_2", 1024, 224,
           "hub id from transformers' MetaCLIP 2 docs; ViT-H/14 width 1024, not verified offline"),
    # SigLIP: width = the towers' hidden size (no projection layer).
    Preset("siglip-b16", "google/siglip-base-patch16-224", "siglip", 768, 224,
           "transformers' SiglipConfig defaults (documented as this checkpoint): hidden 768"),
    Preset("siglip-l16-384", "google/siglip-large-patch16-384", "siglip", 1024, 384,
           "hub config.json: hidden 1024, image 384"),
    Preset("siglip-so400m", "google/siglip-so400m-patch14-384", "siglip", 1152, 384,
           "hub config.json: hidden 1152, image 384, patch 14"),
    # SigLIP 2 fixed resolution: "siglip" models with a Gemma tokenizer (hub configs say model_type "siglip").
    Preset("siglip2-b16", "google/siglip2-base-patch16-224", "siglip", 768, 224,
           "base towers (hidden 768) as siglip-b16; model_type siglip as on the hub's siglip2-base-patch16-512"),
    Preset("siglip2-so400m", "google/siglip2-so400m-patch14-384", "siglip", 1152, 384,
           "so400m towers (hidden 1152) as siglip-so400m; not verified offline"),
    # SigLIP 2 NaFlex ("siglip2"): image side at the default budget of 256 patches of 16 px.
    Preset("siglip2-b16-naflex", "google/siglip2-base-patch16-naflex", "siglip2", 768, 256,
           "transformers' Siglip2Config defaults (documented as this checkpoint): hidden 768, 256 patches"),
    Preset("siglip2-so400m-naflex", "google/siglip2-so400m-patch16-naflex", "siglip2", 1152, 256,
           "so400m towers (hidden 1152); not verified offline"),
    # Others transformers ships.
    Preset("align-base", "kakaobrain/align-base", "align", 640, 289,
           "transformers' AlignConfig defaults (documented as this checkpoint): projection_dim 640; hub "
           "preprocessor_config.json: squash 346, center crop 289, [-1, 1]"),
    Preset("altclip", "BAAI/AltCLIP", "altclip", 768, 224, "hub config.json projection_dim 768"),
    Preset("chinese-clip-b16", "OFA-Sys/chinese-clip-vit-base-patch16", "chinese_clip", 512, 224,
           "hub config.json projection_dim 512; preprocessor_config.json squash 224, no crop"),
]}
_BY_LOWER = {k.lower(): p for k, p in PRESETS.items()}
_BY_HUB = {p.hub_id: p for p in PRESETS.values()}


def get_preset(name: str) -> Preset | None:
    """The preset named ``name`` (case-insensitive), or None."""
    return _BY_LOWER.get(str(name).lower())


def resolve_preset(name: str | Path) -> str:
    """``name``'s hub id when it names a preset (and no local folder of that name exists), else ``name``."""
    p = get_preset(str(name))
    if p is None or Path(name).is_dir():
        return str(name)
    return p.hub_id


def preset_for_hub_id(hub_id: str) -> Preset | None:
    """The preset whose checkpoint is ``hub_id`` (for short names in tables), or None."""
    return _BY_HUB.get(str(hub_id))
