"""The models expclip knows by name: the default backbone and teacher, the paper's backbones (and their feature
widths), and the teacher's instruction presets. Plain data, no torch: ``expclip --help`` and ``expclip list`` show
them without importing a deep-learning library."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .presets import preset_for_hub_id, resolve_preset

DEFAULT_BACKBONE = "openai/clip-vit-large-patch14"
PAPER_BACKBONES = {
    "B32": "openai/clip-vit-base-patch32",
    "B16": "openai/clip-vit-base-patch16",
    "L14": "openai/clip-vit-large-patch14",
}


def backbone_short_name(model_id: str | Path) -> str:
    """The paper's name of its backbones ("openai/clip-vit-large-patch14" -> "L/14"), a preset's name for its hub id
    ("google/siglip2-so400m-patch14-384" -> "siglip2-so400m"); other hub ids and local folders by their last part."""
    model_id = resolve_preset(model_id)
    for short, hub in PAPER_BACKBONES.items():
        if model_id == hub:
            return f"{short[0]}/{short[1:]}"
    preset = preset_for_hub_id(model_id)
    if preset is not None:
        return preset.name
    return Path(model_id).name or model_id


DEFAULT_TEACHER = "Salesforce/blip2-flan-t5-xxl"

INSTRUCTIONS: dict[str, str] = {
    # The paper's task-related instruction, used for every released head.
    "task": "Please play the role of a facial action describer. Objectively describe the detailed facial actions "
    "of the person in the image.",
    # The shorter one shown in the paper's figure.
    "short": "Describe the facial actions of the person in the image.",
    # Task-unrelated (the paper's ablation; its exact string is not public): a generic caption request.
    "unrelated": "Write a short description of this image.",
}


# Flan-T5 reads 512 tokens (its tokenizer's model_max_length), and BLIP-2 puts 32 query tokens of the image in
# front of the instruction. Every word is at least one token, so more words than this cannot fit.
LLM_CONTEXT = 512


def resolve_instruction(spec: str) -> tuple[str, str]:
    """Preset name or free text -> (name, text). Free text is named "custom".

    Refused before any model is loaded: an empty text, and one that cannot fit the LLM's context (more words than
    :data:`LLM_CONTEXT` tokens; :meth:`Teacher.check_instruction` counts the exact tokens once the tokenizer is
    there).
    """
    if spec in INSTRUCTIONS:
        return spec, INSTRUCTIONS[spec]
    if not spec.strip():
        raise InputError("the instruction is empty; use a preset (task, short, unrelated) or a sentence")
    words = len(spec.split())
    if words > LLM_CONTEXT or len(spec) > 16 * LLM_CONTEXT:
        raise InputError(f"--instruction has {words} words ({len(spec)} characters), more than the teacher's LLM "
                         f"reads: at most {LLM_CONTEXT} tokens, its image's among them, and a word is at least one "
                         f"token; shorten it (the paper's task instruction has {len(INSTRUCTIONS['task'].split())})")
    return "custom", spec
