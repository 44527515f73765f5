"""The canonical expression vocabulary of Exp-CLIP and the synonyms that map folder names onto it.

Class order (index 0..10) is the reference's prompt order (resources/exp_clip_prompts.json): a dataset with N
classes uses the first N. Every label id in this package is an index into :data:`CLASS_ORDER` unless stated
otherwise.
"""

from __future__ import annotations

import re

CLASS_ORDER: tuple[str, ...] = (
    "happiness",
    "sadness",
    "neutral",
    "anger",
    "surprise",
    "disgust",
    "fear",
    "contempt",
    "anxiety",
    "helplessness",
    "disappointment",
)
DISPLAY_NAMES: dict[str, str] = {c: c.capitalize() for c in CLASS_ORDER}

# Number of classes of each benchmark (a prefix of CLASS_ORDER).
DATASET_NUM_CLASSES: dict[str, int] = {
    "RAFDB": 7,
    "AffectNet7": 7,
    "AffectNet8": 8,
    "FERPlus": 8,
    "DFEW": 7,
    "FERV39k": 7,
    "MAFW": 11,
    "AFEW": 7,
}

# Lower-cased spellings seen in datasets and in people's folders -> canonical class.
SYNONYMS: dict[str, str] = {
    **{c: c for c in CLASS_ORDER},
    "happy": "happiness", "joy": "happiness", "joyful": "happiness", "smile": "happiness", "smiling": "happiness",
    "sad": "sadness", "sorrow": "sadness", "unhappy": "sadness",
    "calm": "neutral", "none": "neutral",
    "angry": "anger", "mad": "anger", "rage": "anger",
    "surprised": "surprise", "surprising": "surprise", "suprise": "surprise",
    "disgusted": "disgust", "disgusting": "disgust",
    "fearful": "fear", "scared": "fear", "afraid": "fear",
    "contemptuous": "contempt",
    "anxious": "anxiety", "snxiety": "anxiety",
    "helpless": "helplessness",
    "disappointed": "disappointment",
}


def canonical_label(name: str) -> str | None:
    """Map a class name as people write it ("Happy", "happiness", "3_joy", "Angry") to a canonical class.

    Case, surrounding whitespace, separators and a leading numeric prefix ("0_happy", "3-Angry") are ignored.
    Returns None when the name is not a known expression word.
    """
    key = name.strip().lower()
    key = re.sub(r"^\d+[\s_\-.]+", "", key)
    key = re.sub(r"[\s_\-]+", " ", key).strip()
    if key in SYNONYMS:
        return SYNONYMS[key]
    return SYNONYMS.get(key.replace(" ", ""))


def classes_for(num_classes: int) -> list[str]:
    """The first ``num_classes`` canonical classes (the reference's rule for a dataset with that many)."""
    if not 1 <= num_classes <= len(CLASS_ORDER):
        raise ValueError(f"num_classes must be in 1..{len(CLASS_ORDER)}, got {num_classes}")
    return list(CLASS_ORDER[:num_classes])


def order_classes(classes: list[str]) -> list[str]:
    """Sort canonical class names into CLASS_ORDER (so 7 folder classes give the reference's 7-class order)."""
    unknown = [c for c in classes if c not in CLASS_ORDER]
    if unknown:
        raise ValueError(f"not canonical class names: {unknown}; known: {list(CLASS_ORDER)}")
    return sorted(set(classes), key=CLASS_ORDER.index)
