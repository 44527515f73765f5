"""Prompt sets: the paper's five (shipped as package data, exact strings) and user-given labels/templates.

A prompt set for C classes is a list of C lists of strings (class-major, the reference's layout). Classes may
have different numbers of prompts (user descriptions); scoring averages logits within each class.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .labels import CLASS_ORDER

log = logging.getLogger(__name__)

PAPER_PROMPT_SETS: tuple[str, ...] = ("class_name", "an_expression_of", "a_photo_of_a_face", "ensemble_5", "ensemble_10")


@lru_cache(maxsize=1)
def _paper_data() -> dict[str, Any]:
    text = resources.files("expclip").joinpath("resources/exp_clip_prompts.json").read_text(encoding="utf-8")
    return json.loads(text)


def prompt_set_display_name(name: str) -> str:
    """The paper's column title of a prompt set ("Expression Ensemble Ten"); custom names pass through."""
    return _paper_data()["prompt_set_display_names"].get(name, name)


def paper_prompts(name: str, classes: list[str] | None = None) -> list[list[str]]:
    """The exact strings of one of the paper's prompt sets for ``classes`` (canonical names, default all 11)."""
    sets = _paper_data()["prompt_sets"]
    if name not in sets:
        raise KeyError(f"unknown prompt set {name!r}; the paper's sets are {list(PAPER_PROMPT_SETS)}")
    classes = list(CLASS_ORDER) if classes is None else classes
    missing = [c for c in classes if c not in sets[name]]
    if missing:
        raise KeyError(f"prompt set {name!r} has no prompts for {missing}; use custom labels for other words")
    return [list(sets[name][c]) for c in classes]


def fill_template(template: str, label: str) -> str:
    """Put ``label`` into ``template`` at ``{}`` or ``{label}``; a template without a slot gets it appended."""
    if "{label}" in template:
        return template.replace("{label}", label)
    if "{}" in template:
        return template.replace("{}", label)
    return f"{template} {label}".strip()


def custom_prompts(
    labels: list[str],
    templates: list[str] | None = None,
    descriptions: dict[str, list[str]] | None = None,
) -> list[list[str]]:
    """Prompts for user labels: per-class descriptions where given, else each template filled with the label.

    Without templates a label is used as "<label>." (the paper's class-name rule).
    """
    if not labels:
        raise ValueError("at least one label is needed")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be unique, got {labels}")
    descriptions = descriptions or {}
    out = []
    for label in labels:
        if descriptions.get(label):
            out.append([str(d) for d in descriptions[label]])
        elif templates:
            out.append([fill_template(t, label) for t in templates])
        else:
            out.append([f"{label}."])
    return out


@dataclass(frozen=True)
class LabelSpec:
    """User-defined classes: their names, optional templates and optional per-class descriptions."""

    labels: list[str]
    templates: list[str] | None = None
    descriptions: dict[str, list[str]] | None = None

    def prompts(self) -> list[list[str]]:
        return custom_prompts(self.labels, self.templates, self.descriptions)


def load_label_spec(path: str | Path) -> LabelSpec:
    """Read a label file: JSON (or YAML when PyYAML is installed).

    Accepted shapes: a list of labels; ``{"labels": [...], "templates": [...]}``; or
    ``{"labels": {"happy": ["a smiling face", ...], ...}}`` for per-class descriptions.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError as e:
            raise RuntimeError(f"{path}: reading YAML needs PyYAML (pip install pyyaml), or write the file as JSON") from e
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            why = getattr(e, "problem", None) or type(e).__name__
            raise ValueError(f"{path}: not valid YAML{where} ({why})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e
        except RecursionError:
            raise ValueError(f"{path}: JSON nested too deeply") from None
    return label_spec_from_obj(data, source=str(path))


def label_spec_from_obj(data: Any, source: str = "labels") -> LabelSpec:
    """Validate the parsed content of a label file (see :func:`load_label_spec`)."""
    if isinstance(data, list):
        data = {"labels": data}
    if not isinstance(data, dict) or "labels" not in data:
        raise ValueError(f"{source}: expected a list of labels or an object with a 'labels' key")
    labels_obj, templates = data["labels"], data.get("templates")
    if templates is not None and (not isinstance(templates, list) or not all(isinstance(t, str) for t in templates)):
        raise ValueError(f"{source}: 'templates' must be a list of strings")
    if isinstance(labels_obj, dict) and labels_obj:
        labels = _check_labels([str(k) for k in labels_obj], source)
        descriptions = {}
        for k, v in labels_obj.items():
            v = [v] if isinstance(v, str) else v
            if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
                raise ValueError(f"{source}: descriptions of {k!r} must be a string or a list of strings")
            descriptions[str(k)] = v
        return LabelSpec(labels, templates, descriptions)
    if isinstance(labels_obj, list) and labels_obj and all(isinstance(s, str) for s in labels_obj):
        return LabelSpec(_check_labels([str(s) for s in labels_obj], source), templates, None)
    raise ValueError(f"{source}: 'labels' must be a non-empty list of strings or an object of label -> descriptions")


def _check_labels(labels: list[str], source: str) -> list[str]:
    """Labels are used as given; a blank one or the same one twice is an error naming it."""
    blank = [i for i, s in enumerate(labels) if not s.strip()]
    if blank:
        raise ValueError(f"{source}: label number {blank[0] + 1} is empty")
    dupes = sorted({s for s in labels if labels.count(s) > 1})
    if dupes:
        raise ValueError(f"{source}: label(s) {dupes} given more than once")
    return labels


def resolve_prompt_sets(spec: str | list[str], classes: list[str]) -> dict[str, list[list[str]]]:
    """Turn a CLI/API prompt choice into named prompt sets for canonical ``classes``.

    ``spec``: "all" (the paper's five), one name, or a list of names.
    """
    names = list(PAPER_PROMPT_SETS) if spec == "all" else ([spec] if isinstance(spec, str) else list(spec))
    return {n: paper_prompts(n, classes) for n in names}
