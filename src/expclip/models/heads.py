"""Projection heads by name. The paper's is ``linear``: one bias-free D -> E map; the others are its ablation.

Every head maps (..., D) -> (..., E) so it applies alike to image features, video frames and prompt features.
:data:`HEADS` names them with their extra arguments and the ranges those may take; the modules themselves are in
:mod:`expclip.models.head_modules`, imported only when a head is built (the names, e.g. for ``--help``, cost no
torch import). A head's arguments are checked, and its size bounded, before anything is allocated: a damaged
config.json asking for a 10^10-wide layer is refused, not attempted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from torch import nn

MAX_DIM = 1 << 20  # no CLIP-family feature or LLM width comes near it; a larger one is a damaged file
MAX_PARAMETERS = 1 << 28  # 1 GiB of float32 weights; the paper's L/14 head has 3.1M


@dataclass(frozen=True)
class HeadType:
    """A head in the registry: its module class (in :mod:`~expclip.models.head_modules`), fixed arguments, and the
    integer arguments a config may set with their inclusive ranges. Calling it builds the module."""

    module: str
    fixed: dict = field(default_factory=dict)
    options: dict[str, tuple[int, int]] = field(default_factory=dict)

    def check(self, name: str, in_dim: Any, out_dim: Any, kwargs: Any) -> None:
        """Refuse dims or arguments this head cannot take (InputError naming them), before anything is built."""
        for what, v in (("in_dim", in_dim), ("out_dim", out_dim)):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= MAX_DIM:
                raise InputError(f"head {name}: {what} must be an integer in 1..{MAX_DIM}, got {v!r}")
        if not isinstance(kwargs, dict):
            raise InputError(f"head {name}: its arguments must be an object, got {type(kwargs).__name__}")
        unknown = sorted(map(str, set(kwargs) - set(self.options)))
        if unknown:
            takes = f"it takes {sorted(self.options)}" if self.options else "it takes none"
            raise InputError(f"head {name}: unknown argument(s) {unknown}; {takes}")
        for k, v in kwargs.items():
            lo, hi = self.options[k]
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi):
                raise InputError(f"head {name}: {k} must be an integer in {lo}..{hi}, got {v!r}")
        if name == "transformer":
            width, heads = kwargs.get("width") or 256, kwargs.get("heads") or 4
            if width % heads:
                raise InputError(f"head {name}: width {width} is not divisible by its {heads} attention heads")

    def parameters(self, in_dim: int, out_dim: int, **kwargs) -> int:
        """How many weights the head has, counted on the meta device (nothing allocated)."""
        import torch

        with torch.device("meta"):
            return sum(p.numel() for p in self._build(in_dim, out_dim, kwargs).parameters())

    def _build(self, in_dim: int, out_dim: int, kwargs: dict) -> "nn.Module":
        from . import head_modules

        return getattr(head_modules, self.module)(in_dim, out_dim, **self.fixed, **kwargs)

    def __call__(self, in_dim: int, out_dim: int, **kwargs) -> "nn.Module":
        return self._build(in_dim, out_dim, kwargs)


HEADS: dict[str, HeadType] = {
    "linear": HeadType("LinearHead"),
    "mlp2": HeadType("MLPHead", {"layers": 2}, {"hidden": (1, MAX_DIM)}),
    "mlp3": HeadType("MLPHead", {"layers": 3}, {"hidden": (1, MAX_DIM)}),
    "transformer": HeadType("TransformerHead", options={"tokens": (1, 256), "width": (1, 16384), "layers": (1, 48),
                                                        "heads": (1, 256)}),
}


def check_head(name: Any, in_dim: Any, out_dim: Any, kwargs: Any = None) -> None:
    """The one check of a head's type, dims and arguments, and of its size (at most :data:`MAX_PARAMETERS`
    weights), before it is built. Raises InputError naming the value."""
    if name not in HEADS:
        raise InputError(f"unknown head {name!r}; choose one of {sorted(HEADS)}")
    spec = HEADS[name]
    spec.check(name, in_dim, out_dim, {} if kwargs is None else kwargs)
    n = spec.parameters(in_dim, out_dim, **(kwargs or {}))
    if n > MAX_PARAMETERS:
        raise InputError(f"head {name} {in_dim}->{out_dim} {kwargs or ''} would have {n:,} weights, over the "
                         f"{MAX_PARAMETERS:,} limit (is the file damaged?)")


def build_head(name: str, in_dim: int, out_dim: int, **kwargs) -> "nn.Module":
    """A fresh head of type ``name`` (one of HEADS) mapping in_dim -> out_dim, checked by :func:`check_head`."""
    check_head(name, in_dim, out_dim, kwargs)
    return HEADS[name](in_dim, out_dim, **kwargs)


def __getattr__(name: str):
    """The module classes, imported on first use (``from expclip.models.heads import LinearHead`` keeps working)."""
    if name in ("LinearHead", "MLPHead", "TransformerHead"):
        from . import head_modules

        return getattr(head_modules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
