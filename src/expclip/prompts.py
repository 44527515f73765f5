"""Prompts: the paper's five prompt sets (package data, exact strings), templates, and the prompts of a label set.

One way through: a label set (:mod:`expclip.labels`: the paper's vocabulary or people's words and label files) ->
prompt sets and templates -> :func:`resolve_label_prompts`, the classes and prompt strings that are scored.

A prompt set for C classes is a list of C lists of strings (class-major, the reference's layout). Classes may
have different numbers of prompts (user descriptions); scoring averages logits within each class.

Rules for a label set (scoring is always the paper's: logits averaged over each class's prompts):
- a class that is one of the paper's 11 names (``happiness``, ``sadness``...) gets the paper's exact strings of the
  chosen prompt set;
- any other word gets the same prompt set's templates, taken from the paper's prompts for ``happiness`` with the
  word put in its place ("a photo of a face with an expression of {}.");
- explicit templates ("a photo of a {} face.") replace both for every class;
- per-class descriptions (a JSON/YAML label file or a dict) are used as given for their class.

Imports only :mod:`expclip.labels`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Union

from .errors import InputError
from .labels import CLASS_ORDER, LabelSpecArg, check_labels, label_spec

log = logging.getLogger(__name__)

PAPER_PROMPT_SETS: tuple[str, ...] = ("class_name", "an_expression_of", "a_photo_of_a_face", "ensemble_5", "ensemble_10")
# The "prompt set" of a result cell scored from a system's own answers (``expclip score``): it used no prompts, so
# tables show it beside every prompt set's rows.
OWN_PREDICTIONS = "own_predictions"


@lru_cache(maxsize=1)
def _paper_data() -> dict[str, Any]:
    text = resources.files("expclip").joinpath("resources/exp_clip_prompts.json").read_text(encoding="utf-8")
    return json.loads(text)


def prompt_set_display_name(name: str) -> str:
    """The paper's column title of a prompt set ("Expression Ensemble Ten"); custom names pass through."""
    if name == OWN_PREDICTIONS:
        return "own predictions (no prompts)"
    return _paper_data()["prompt_set_display_names"].get(name, name)


def paper_prompts(name: str, classes: list[str] | None = None) -> list[list[str]]:
    """The exact strings of one of the paper's prompt sets for ``classes`` (canonical names, default all 11)."""
    sets = _paper_data()["prompt_sets"]
    if name not in sets:
        raise InputError(f"unknown prompt set {name!r}; the paper's sets are {list(PAPER_PROMPT_SETS)}")
    classes = list(CLASS_ORDER) if classes is None else classes
    missing = [c for c in classes if c not in sets[name]]
    if missing:
        raise InputError(f"prompt set {name!r} has no prompts for {missing}; use custom labels for other words")
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
    check_labels(list(labels))
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


def resolve_prompt_sets(spec: str | list[str], classes: list[str]) -> dict[str, list[list[str]]]:
    """Turn a CLI/API prompt choice into named prompt sets for canonical ``classes``.

    ``spec``: "all" (the paper's five), one name, or a list of names.
    """
    names = list(PAPER_PROMPT_SETS) if spec == "all" else ([spec] if isinstance(spec, str) else list(spec))
    return {n: paper_prompts(n, classes) for n in names}


# ------------------------------------------------------------------------------------------------ label sets -> prompts
DEFAULT_PROMPTS = "ensemble_10"
LabelsArg = Union[LabelSpecArg, "LabelPrompts"]


@dataclass(frozen=True)
class LabelPrompts:
    """C classes and, for each, the prompts whose logits are averaged."""

    labels: list[str]
    prompts: list[list[str]]
    prompt_set: str  # the paper set used for classes without own prompts, or "custom"

    def __len__(self) -> int:
        return len(self.labels)


def paper_templates(name: str) -> list[str]:
    """A paper prompt set as templates for any word: its ``happiness`` prompts with ``{}`` for the word."""
    if name not in PAPER_PROMPT_SETS:
        raise InputError(f"unknown prompt set {name!r}; choose one of {list(PAPER_PROMPT_SETS)} or give templates")
    return [p.replace("happiness", "{}") for p in _paper_data()["prompt_sets"][name]["happiness"]]


def resolve_label_prompts(labels: LabelsArg = None, prompts: str | list[str] | None = DEFAULT_PROMPTS) -> LabelPrompts:
    """The classes and prompts to score (see the module docstring for the rules).

    ``prompts``: the name of one of the paper's prompt sets, or a list of templates with ``{}`` for the label.
    A :class:`LabelPrompts` passes through unchanged.
    """
    if isinstance(labels, LabelPrompts):
        return labels
    spec = label_spec(labels)
    prompts = DEFAULT_PROMPTS if prompts is None else prompts
    templates = spec.templates or (list(prompts) if not isinstance(prompts, str) else None)
    if templates is not None:
        if not templates or not all(isinstance(t, str) and t.strip() for t in templates):
            raise InputError(f"templates must be non-empty strings, got {templates}")
        return LabelPrompts(list(spec.labels), custom_prompts(spec.labels, templates, spec.descriptions), "custom")
    assert isinstance(prompts, str)
    generic = paper_templates(prompts)
    out = []
    for label in spec.labels:
        if spec.descriptions and spec.descriptions.get(label):
            out.append(list(spec.descriptions[label]))
        elif label in CLASS_ORDER:
            out.append(paper_prompts(prompts, [label])[0])
        else:
            out.append([fill_template(t, label) for t in generic])
    return LabelPrompts(list(spec.labels), out, prompts)
