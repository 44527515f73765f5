"""The classes a prediction scores and their prompts: the paper's vocabularies or people's own words.

Rules (scoring is always the paper's: logits averaged over each class's prompts):
- a class that is one of the paper's 11 names (``happiness``, ``sadness``...) gets the paper's exact strings of the
  chosen prompt set;
- any other word gets the same prompt set's templates, taken from the paper's prompts for ``happiness`` with the
  word put in its place ("a photo of a face with an expression of {}.");
- explicit templates ("a photo of a {} face.") replace both for every class;
- per-class descriptions (a JSON/YAML label file or a dict) are used as given for their class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

from .labels import CLASS_ORDER, classes_for
from .prompts import (
    PAPER_PROMPT_SETS, LabelSpec, _paper_data, custom_prompts, fill_template, label_spec_from_obj, load_label_spec,
    paper_prompts,
)

DEFAULT_PROMPTS = "ensemble_10"
LABEL_FILE_SUFFIXES = (".json", ".yaml", ".yml")
LabelsArg = Union[None, int, str, Path, list, tuple, dict, LabelSpec, "LabelPrompts"]


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
        raise ValueError(f"unknown prompt set {name!r}; choose one of {list(PAPER_PROMPT_SETS)} or give templates")
    return [p.replace("happiness", "{}") for p in _paper_data()["prompt_sets"][name]["happiness"]]


def label_spec(labels: LabelsArg) -> LabelSpec:
    """Normalize every accepted form of ``labels`` to a :class:`LabelSpec`.

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
        spec = label_spec_from_obj({"labels": labels if isinstance(labels, dict) else list(labels)})
        bad = [w for w in spec.labels if not w.strip()]
        if bad or len(set(spec.labels)) != len(spec.labels):
            raise ValueError(f"labels must be unique non-empty words, got {spec.labels}")
        return spec
    raise TypeError(f"labels: unsupported type {type(labels).__name__}")


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
            raise ValueError(f"templates must be non-empty strings, got {templates}")
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
