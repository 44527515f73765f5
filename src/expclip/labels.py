"""Label sets: the canonical expression vocabulary of Exp-CLIP, the synonyms that map folder names onto it, and
people's own label sets (words, dicts of descriptions, JSON/YAML label files) as one validated :class:`LabelSpec`.

Class order (index 0..10) is the reference's prompt order (resources/exp_clip_prompts.json): a dataset with N
classes uses the first N. Every label id in this package is an index into :data:`CLASS_ORDER` unless stated
otherwise.

Imports nothing of expclip; :mod:`expclip.prompts` turns a label set into the prompts that are scored.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from .errors import InputError, MissingError, UnavailableError

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
        raise InputError(f"num_classes must be in 1..{len(CLASS_ORDER)}, got {num_classes}")
    return list(CLASS_ORDER[:num_classes])


def order_classes(classes: list[str]) -> list[str]:
    """Sort canonical class names into CLASS_ORDER (so 7 folder classes give the reference's 7-class order)."""
    unknown = [c for c in classes if c not in CLASS_ORDER]
    if unknown:
        raise InputError(f"not canonical class names: {unknown}; known: {list(CLASS_ORDER)}")
    return sorted(set(classes), key=CLASS_ORDER.index)


# ------------------------------------------------------------------------------------------------ people's label sets
LABEL_FILE_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class LabelSpec:
    """User-defined classes: their names, optional templates and optional per-class descriptions."""

    labels: list[str]
    templates: list[str] | None = None
    descriptions: dict[str, list[str]] | None = None


LabelSpecArg = Union[None, int, str, Path, list, tuple, dict, LabelSpec]


def load_label_spec(path: str | Path) -> LabelSpec:
    """Read a label file: JSON (or YAML when PyYAML is installed).

    Accepted shapes: a list of labels; ``{"labels": [...], "templates": [...]}``; or
    ``{"labels": {"happy": ["a smiling face", ...], ...}}`` for per-class descriptions.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingError(f"label file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError as e:
            raise UnavailableError(f"{path}: reading YAML needs PyYAML (pip install pyyaml), or write the file as JSON") from e
        try:
            data = yaml.load(text, Loader=_unique_key_loader(yaml))  # a safe loader that refuses repeated keys
        except _DuplicateKey as e:
            raise InputError(f"{path}, line {e.line}: key {e.key!r} given more than once (YAML would keep only the "
                             "last; labels and keys must be unique)") from None
        except (yaml.YAMLError, RecursionError) as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            why = getattr(e, "problem", None) or type(e).__name__
            raise InputError(f"{path}: not valid YAML{where} ({why})") from None
    else:
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except _DuplicateKey as e:
            raise InputError(f"{path}: key {e.key!r} given more than once (JSON would keep only the last; labels "
                             "and keys must be unique)") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e
        except RecursionError:
            raise InputError(f"{path}: JSON nested too deeply") from None
    return label_spec_from_obj(data, source=str(path))


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int | None = None):
        super().__init__(key)
        self.key, self.line = key, line


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """``json.loads`` object hook: an object with a key twice is refused (``dict`` would keep the last)."""
    seen: set[str] = set()
    for k, _ in pairs:
        if k in seen:
            raise _DuplicateKey(k)
        seen.add(k)
    return dict(pairs)


def _unique_key_loader(yaml: Any) -> type:
    """PyYAML's SafeLoader, refusing a mapping with a key twice (SafeLoader keeps the last)."""
    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict:
        loader.flatten_mapping(node)
        seen: set = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            except TypeError:  # an unhashable key: the constructor below says so
                pass
        return loader.construct_mapping(node, deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return UniqueKeyLoader


def label_spec_from_obj(data: Any, source: str = "labels") -> LabelSpec:
    """Validate the parsed content of a label file (see :func:`load_label_spec`)."""
    if isinstance(data, list):
        data = {"labels": data}
    if not isinstance(data, dict) or "labels" not in data:
        raise InputError(f"{source}: expected a list of labels or an object with a 'labels' key")
    labels_obj, templates = data["labels"], data.get("templates")
    if templates is not None and (not isinstance(templates, list) or not all(isinstance(t, str) for t in templates)):
        raise InputError(f"{source}: 'templates' must be a list of strings")
    if isinstance(labels_obj, dict) and labels_obj:
        labels = check_labels([str(k) for k in labels_obj], source)
        descriptions = {}
        for k, v in labels_obj.items():
            v = [v] if isinstance(v, str) else v
            if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
                raise InputError(f"{source}: descriptions of {k!r} must be a string or a list of strings")
            if not v or not all(s.strip() for s in v):  # an empty list would score the class on nothing
                raise InputError(f"{source}: descriptions of {k!r} are " + ("an empty list" if not v else
                                 "blank") + "; give at least one description, or list the labels as words")
            descriptions[str(k)] = v
        return LabelSpec(labels, templates, descriptions)
    if isinstance(labels_obj, list) and labels_obj and all(isinstance(s, str) for s in labels_obj):
        return LabelSpec(check_labels([str(s) for s in labels_obj], source), templates, None)
    raise InputError(f"{source}: 'labels' must be a non-empty list of strings or an object of label -> descriptions")


def check_labels(labels: list[str], source: str = "labels") -> list[str]:
    """The one check of a label list: labels are used as given; none, a blank one or the same one twice is an error
    naming it (``source``: the file or argument they came from)."""
    if not labels:
        raise InputError(f"{source}: at least one label is needed")
    blank = [i for i, s in enumerate(labels) if not s.strip()]
    if blank:
        raise InputError(f"{source}: label number {blank[0] + 1} is empty")
    dupes = sorted(s for s, n in Counter(labels).items() if n > 1)  # one pass: 100k labels take milliseconds
    if dupes:
        raise InputError(f"{source}: label(s) {dupes} given more than once (labels must be unique)")
    return labels


def label_spec(labels: LabelSpecArg) -> LabelSpec:
    """Normalize every accepted form of ``labels`` to a :class:`LabelSpec` (validated by :func:`check_labels`).

    None -> the paper's 7 classes; 7/8/11 (or "7") -> the paper's first N; a list of words; a comma-separated
    string ("happy,sad,bored"); a path to a JSON/YAML label file; a dict label -> description(s); a LabelSpec.
    """
    if labels is None:
        return LabelSpec(classes_for(7))
    if isinstance(labels, LabelSpec):
        return labels
    if isinstance(labels, bool):
        raise TypeError("labels must be a number of classes, words, a label file or a dict, not a bool")
    if isinstance(labels, int):
        return LabelSpec(classes_for(labels))
    if isinstance(labels, Path) or (isinstance(labels, str) and Path(labels).suffix.lower() in LABEL_FILE_SUFFIXES):
        return load_label_spec(labels)
    if isinstance(labels, str):
        if labels.strip().isdigit():
            return LabelSpec(classes_for(int(labels)))
        words = [w.strip() for w in labels.split(",")]
        labels = [w for w in words if w]
    if isinstance(labels, (list, tuple, dict)):
        return label_spec_from_obj({"labels": labels if isinstance(labels, dict) else list(labels)})
    raise TypeError(f"labels: unsupported type {type(labels).__name__}")
