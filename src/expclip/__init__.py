"""expclip: zero-shot facial expression recognition by LLM knowledge transfer (Exp-CLIP, WACV 2025)."""

from .files import __version__

__all__ = ["ExpCLIP", "__version__"]


def __getattr__(name: str):
    # Lazy: `import expclip` stays light (no torch/transformers) until the predictor is asked for.
    if name == "ExpCLIP":
        from .api import ExpCLIP

        return ExpCLIP
    raise AttributeError(f"module 'expclip' has no attribute {name!r}")
