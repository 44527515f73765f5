"""The paper's ablations as named presets: ``registry`` (:data:`PRESETS`: their names, inputs and runners),
``setup`` (:class:`AblationSetup`: what they run on, found in the store or computed once; :class:`Ablation`: what
each returns) and ``presets`` (the presets themselves, ``run_presets``, their files).

The names are imported on first use (PEP 562), so that ``from expclip.runs.ablations import PRESETS`` costs no torch
import.
"""

from __future__ import annotations

_WHERE = {"PRESETS": "registry", "Preset": "registry", "run_presets": "presets", "write_ablation": "presets",
          "Ablation": "setup", "AblationSetup": "setup"}

__all__ = ["PRESETS", "Ablation", "AblationSetup", "Preset", "run_presets", "write_ablation"]


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
