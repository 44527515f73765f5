"""The ablation presets by name: what each is and which inputs it needs. Their functions are
:data:`expclip.runs.ablations.presets.RUNNERS`, by the same names; the names alone cost no torch import
(``expclip ablate --help`` lists them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .setup import AblationSetup


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    needs: tuple[str, ...]  # AblationSetup fields that must be non-empty (any of a tuple inside)

    def ready(self, setup: "AblationSetup") -> bool:
        return all(any(bool(getattr(setup, f)) for f in need.split("|")) for need in self.needs)


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("heads", "Projection heads: linear (paper) vs 2-/3-layer MLP vs Transformer encoder", ("train", "tests")),
    Preset("instructions", "Teacher instruction: task-related vs short vs task-unrelated vs user-given",
           ("train", "tests")),
    Preset("llm-encoder", "The LLM as zero-shot image and/or text encoder vs CLIP and Exp-CLIP",
           ("train|head_runs", "tests")),
    Preset("backbones", "CLIP vs Exp-CLIP per backbone with the gain row (Table 2's layout)",
           ("results|head_runs|train",)),
    Preset("gains", "Mean gain of Exp-CLIP over CLIP across prompt sets, per backbone", ("results|head_runs|train",)),
    Preset("tsne", "Image features before/after the head in t-SNE, coloured by class", ("train|head_runs", "tests")),
]}
