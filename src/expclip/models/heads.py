"""Projection heads by name. The paper's is ``linear``: one bias-free D -> E map; the others are its ablation.

Every head maps (..., D) -> (..., E) so it applies alike to image features, video frames and prompt features.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import InputError


class LinearHead(nn.Module):
    """P(x) = W x, W: (E, D), no bias (the reference's ``mlp`` layer)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.mlp = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class MLPHead(nn.Module):
    """``layers`` linear maps with GELU between them; hidden width = E."""

    def __init__(self, in_dim: int, out_dim: int, layers: int = 2, hidden: int | None = None):
        super().__init__()
        hidden = hidden or out_dim
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        mods: list[nn.Module] = []
        for i in range(layers):
            mods.append(nn.Linear(dims[i], dims[i + 1]))
            if i < layers - 1:
                mods.append(nn.GELU())
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TransformerHead(nn.Module):
    """A Transformer encoder over ``tokens`` learned sub-tokens of the feature, pooled, then projected to E.

    The feature is split into ``tokens`` slices (a sequence the encoder can attend over), mean-pooled after the
    encoder and mapped to E.
    """

    def __init__(self, in_dim: int, out_dim: int, tokens: int = 4, width: int = 256, layers: int = 1, heads: int = 4):
        super().__init__()
        self.tokens, self.width = tokens, width
        self.inp = nn.Linear(in_dim, tokens * width)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        h = self.inp(x.reshape(-1, x.shape[-1])).view(-1, self.tokens, self.width)
        h = self.encoder(h).mean(1)
        return self.out(h).view(*lead, -1)


HEADS: dict[str, Callable[..., nn.Module]] = {
    "linear": LinearHead,
    "mlp2": lambda i, o, **kw: MLPHead(i, o, layers=2, **kw),
    "mlp3": lambda i, o, **kw: MLPHead(i, o, layers=3, **kw),
    "transformer": TransformerHead,
}


def build_head(name: str, in_dim: int, out_dim: int, **kwargs) -> nn.Module:
    """A fresh head of type ``name`` (one of HEADS) mapping in_dim -> out_dim."""
    if name not in HEADS:
        raise InputError(f"unknown head {name!r}; choose one of {sorted(HEADS)}")
    return HEADS[name](in_dim, out_dim, **kwargs)
