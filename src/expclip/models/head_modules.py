"""The projection head modules (torch). Their names, arguments and limits are the registry of
:mod:`expclip.models.heads`, which imports this module only when a head is built."""

from __future__ import annotations

import torch
from torch import nn


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
