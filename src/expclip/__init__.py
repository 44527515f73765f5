"""expclip: zero-shot facial expression recognition by LLM knowledge transfer (Exp-CLIP, WACV 2025)."""

__version__ = "0.1.0"
