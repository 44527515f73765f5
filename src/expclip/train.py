"""Training the projection head on cached features: pure functions on tensors, no encoder in sight.

The recipe is the reference's (github.com/zengqunzhao/Exp-CLIP): a bias-free linear map, symmetric InfoNCE with
in-batch negatives at the frozen CLIP temperature κ, SGD(lr 1e-3, momentum 0.9, weight decay 1e-4), batch 512 with
drop_last, 5 epochs, constant learning rate.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Callable

from .errors import InputError, TrainingDiverged
from .models.heads import build_head

if TYPE_CHECKING:  # torch is imported where it is used: TrainConfig (the CLI's defaults) costs no torch import
    import torch
    from torch import nn

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyperparameters of head training; the defaults are the paper's."""

    head: str = "linear"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 512
    drop_last: bool = True
    epochs: int = 5
    seed: int = 1
    logit_scale: float = 100.0  # κ: the pretrained CLIP's logit_scale.exp(), frozen
    # The reference's MultiStepLR milestone (epoch 30) never fires in 5 epochs; kept so longer runs match it.
    milestones: tuple[int, ...] = (30,)
    gamma: float = 0.1
    head_kwargs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["milestones"] = tuple(d.get("milestones", (30,)))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def contrastive_loss(image_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor,
                     logit_scale: float = 100.0) -> torch.Tensor:
    """Symmetric InfoNCE: 0.5·CE(S, diag) + 0.5·CE(Sᵀ, diag), S = κ·normalize(v)·normalize(e)ᵀ.

    Args:
        image_embeddings: (B,E) projected CLIP image features (normalized here).
        teacher_embeddings: (B,E) teacher targets (normalized here).
    Returns a scalar.
    """
    import torch
    import torch.nn.functional as F

    v = F.normalize(image_embeddings, dim=-1)
    e = F.normalize(teacher_embeddings, dim=-1)
    logits = logit_scale * v @ e.t()
    target = torch.arange(len(v), device=v.device)
    return 0.5 * F.cross_entropy(logits, target) + 0.5 * F.cross_entropy(logits.t(), target)


@lru_cache(maxsize=None)
def _pair_loss():
    """:class:`_NormalizedPairLoss`, defined on first use (it subclasses a torch class)."""
    import torch
    import torch.nn.functional as F

    class _NormalizedPairLoss(torch.autograd.Function):
        """:func:`contrastive_loss` for L2-normalized targets, with a hand-fused backward; also returns the logits.

        Same value and gradient as the autograd version (tested), with fewer passes over the (B,E) activations:
        the rows are scaled on the (B,B) logits instead of normalizing v, and the backward is one matrix product plus
        one fused multiply-add. With n_i = max(‖v_i‖, eps) and L_ij = κ s_ij / n_i, s = v·eᵀ:
        G = dloss/dL = (softmax_rows(L) + softmax_cols(L)) / 2B − I/B;
        dv = (κ G / n)·e + (−Σ_j G_ij L_ij / n_i²) v.
        """

        @staticmethod
        def forward(ctx, v: torch.Tensor, e: torch.Tensor, logit_scale: float):
            norm = torch.linalg.vector_norm(v, dim=1)
            n = norm.clamp_min(1e-12)  # F.normalize's eps
            logits = (v @ e.t()).mul_((logit_scale / n).unsqueeze(1))
            target = torch.arange(len(v), device=v.device)
            loss = 0.5 * F.cross_entropy(logits, target) + 0.5 * F.cross_entropy(logits.t(), target)
            ctx.save_for_backward(v, e, n, logits, norm >= 1e-12)
            ctx.logit_scale = logit_scale
            ctx.mark_non_differentiable(logits)
            return loss, logits

        @staticmethod
        def backward(ctx, grad_loss: torch.Tensor, _grad_logits: torch.Tensor):
            v, e, n, logits, unclamped = ctx.saved_tensors
            b = len(v)
            g = torch.softmax(logits, dim=1).add_(torch.softmax(logits, dim=0)).mul_(0.5 / b)
            g.diagonal().sub_(1.0 / b)
            g.mul_(grad_loss)
            dn = -(g * logits).sum(1) / n  # d loss / d n_i
            dv = (g * (ctx.logit_scale / n).unsqueeze(1)) @ e
            dv.addcmul_(v, (dn * unclamped / n).unsqueeze(1))  # d n_i / d v_i = v_i / n_i (0 where clamped)
            return dv, None, None

    return _NormalizedPairLoss


def train_head(
    image_features: torch.Tensor,
    teacher_features: torch.Tensor,
    cfg: TrainConfig | None = None,
    device: str | torch.device = "cpu",
    history: list[dict] | None = None,
    on_step: Callable[[dict], None] | None = None,
) -> nn.Module:
    """Train a projection head D -> E so that projected CLIP features match the teacher's targets.

    Args:
        image_features: (N,D) CLIP image features (not normalized).
        teacher_features: (N,E) teacher targets.
        history: if given, one dict per step is appended: epoch, step, loss, in-batch retrieval accuracy, lr
            (gathered on the device and read once per epoch, so that recording costs no per-step sync).
        on_step: called with the same dict after every step (this one syncs every step).
    Returns the trained head (on ``device``, eval mode).
    """
    import torch
    import torch.nn.functional as F

    cfg = cfg or TrainConfig()
    if image_features.ndim != 2 or teacher_features.ndim != 2 or len(image_features) != len(teacher_features):
        raise InputError(
            f"need (N,D) image and (N,E) teacher features with the same N, got {tuple(image_features.shape)} and "
            f"{tuple(teacher_features.shape)}"
        )
    n = len(image_features)
    steps_per_epoch = n // cfg.batch_size if cfg.drop_last else math.ceil(n / cfg.batch_size)
    if steps_per_epoch == 0:
        raise InputError(f"{n} training items are fewer than one batch of {cfg.batch_size} (the last partial batch "
                         f"is dropped, as in the paper): pass --train-batch-size {_largest_batch(n)} or less (Python: "
                         "TrainConfig(batch_size=...)), or train on more images (the paper's batch needs >= "
                         f"{cfg.batch_size})")
    for name, t in (("image", image_features), ("teacher", teacher_features)):
        _check_finite(name, t)
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    head = build_head(cfg.head, image_features.shape[1], teacher_features.shape[1], **cfg.head_kwargs).to(device)
    head.train()
    opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          **_fused(device))
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    x_all = image_features.to(device, torch.float32)
    y_all = F.normalize(teacher_features.to(device, torch.float32), dim=-1)
    gen = torch.Generator().manual_seed(cfg.seed)
    record = history is not None or on_step is not None
    step = 0
    for epoch in range(cfg.epochs):
        losses = torch.zeros(steps_per_epoch, device=device)
        accs = torch.zeros(steps_per_epoch, device=device)
        lr = opt.param_groups[0]["lr"]
        perm = torch.randperm(n, generator=gen).to(device)
        for b in range(steps_per_epoch):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            loss, logits = _pair_loss().apply(head(x_all[idx]), y_all[idx], cfg.logit_scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses[b] = loss.detach()
            step += 1
            if record:
                accs[b] = (logits.argmax(1) == torch.arange(len(idx), device=device)).float().mean()
            if on_step is not None:
                on_step(_step_record(epoch, step, losses[b], accs[b], lr))
        # One host sync per epoch: a NaN/Inf loss stops training and names the first bad step.
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            b = int((~finite).nonzero()[0])
            raise TrainingDiverged(
                f"training loss became non-finite ({float(losses[b])}) at step {epoch * steps_per_epoch + b + 1} "
                f"(epoch {epoch}, batch {b}, seed {cfg.seed}); lower --lr or --logit-scale, or check the features"
            )
        if history is not None:
            first = step - steps_per_epoch + 1
            history.extend(_step_record(epoch, first + i, lo, ac, lr) for i, (lo, ac) in
                           enumerate(zip(losses.tolist(), accs.tolist())))
        log.debug("epoch %d: mean loss %.4f", epoch, float(losses.mean()))
        sched.step()
    head.eval()
    return head


def _largest_batch(n: int) -> int:
    """A batch size that gives ``n`` items at least a few steps per epoch: n // 4 rounded down to a power of two."""
    return max(1, 1 << max(0, (max(1, n // 4)).bit_length() - 1))


def _step_record(epoch: int, step: int, loss, acc, lr: float) -> dict:
    return {"epoch": epoch, "step": step, "loss": float(loss), "acc": float(acc), "lr": lr}


def _fused(device: "torch.device") -> dict:
    """SGD's fused kernel (one pass over the weights per step) where this torch has it for the device."""
    return {"fused": True} if device.type in ("cpu", "cuda") else {}


def _check_finite(name: str, t: torch.Tensor) -> None:
    """Refuse NaN/Inf features; one read-only pass (a sum) when all is well, the exact rows when not."""
    import torch

    if torch.isfinite(t.sum()):
        return
    bad_rows = ~torch.isfinite(t).all(dim=1)
    if bad_rows.any():
        bad = torch.nonzero(bad_rows).flatten()[:5].tolist()
        raise InputError(f"non-finite values in the {name} features (rows {bad}...)")


def __getattr__(name: str):
    """``_NormalizedPairLoss`` is made on first use (tests import it by name)."""
    if name == "_NormalizedPairLoss":
        return _pair_loss()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
