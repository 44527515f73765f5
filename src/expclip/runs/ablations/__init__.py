"""The paper's ablations as named presets: ``setup`` (:class:`AblationSetup`: what they run on, found in the store or
computed once; :class:`Ablation`: what each returns) and ``presets`` (the presets, ``run_presets``, their files).
"""

from .presets import PRESETS, Preset, run_presets, write_ablation
from .setup import Ablation, AblationSetup

__all__ = ["PRESETS", "Ablation", "AblationSetup", "Preset", "run_presets", "write_ablation"]
