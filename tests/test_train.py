"""The loss, the paper's recipe, and learning on a planted signal."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from expclip.metrics import uar
from expclip.train import TrainConfig, contrastive_loss, train_head
from expclip.zeroshot import zero_shot_logits


def test_loss_matches_hand_computation():
    g = torch.Generator().manual_seed(0)
    v, e = torch.randn(5, 8, generator=g) * 3, torch.randn(5, 8, generator=g)
    kappa = 37.0
    vn = [x / math.sqrt(sum(float(a) ** 2 for a in x)) for x in v]
    en = [x / math.sqrt(sum(float(a) ** 2 for a in x)) for x in e]
    s = [[kappa * float(sum(a * b for a, b in zip(vi, ej))) for ej in en] for vi in vn]
    rows = [-(s[i][i] - math.log(sum(math.exp(x) for x in s[i]))) for i in range(5)]
    cols = [-(s[j][j] - math.log(sum(math.exp(s[i][j]) for i in range(5)))) for j in range(5)]
    expected = 0.5 * sum(rows) / 5 + 0.5 * sum(cols) / 5
    assert float(contrastive_loss(v, e, kappa)) == pytest.approx(expected, rel=1e-5)


def test_loss_is_scale_invariant_and_symmetric_in_roles():
    g = torch.Generator().manual_seed(1)
    v, e = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    base = contrastive_loss(v, e)
    assert torch.allclose(contrastive_loss(10 * v, 0.1 * e), base, atol=1e-5)  # inputs are L2-normalized
    assert torch.allclose(contrastive_loss(e, v), base, atol=1e-5)  # 0.5/0.5 over both directions


def test_train_config_defaults_are_the_papers():
    c = TrainConfig()
    assert (c.head, c.lr, c.momentum, c.weight_decay, c.batch_size, c.drop_last, c.epochs, c.seed, c.logit_scale) == (
        "linear", 1e-3, 0.9, 1e-4, 512, True, 5, 1, 100.0)
    assert TrainConfig.from_dict(c.to_dict()) == c


def test_head_is_bias_free_linear_and_steps_follow_drop_last():
    x, y = torch.randn(1100, 12), torch.randn(1100, 20)
    hist: list[dict] = []
    head = train_head(x, y, TrainConfig(epochs=2), history=hist)
    params = dict(head.named_parameters())
    assert list(params) == ["mlp.weight"] and params["mlp.weight"].shape == (20, 12)
    assert len(hist) == 2 * (1100 // 512)  # drop_last: 2 steps per epoch, the last 76 items never form a batch
    assert all(r["lr"] == 1e-3 for r in hist)  # constant lr (milestone 30 never fires)


def test_same_seed_same_head_other_seed_other_head():
    x, y = torch.randn(600, 6), torch.randn(600, 10)
    a = train_head(x, y, TrainConfig(batch_size=100, seed=3)).mlp.weight
    b = train_head(x, y, TrainConfig(batch_size=100, seed=3)).mlp.weight
    c = train_head(x, y, TrainConfig(batch_size=100, seed=4)).mlp.weight
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_refuses_bad_inputs():
    with pytest.raises(ValueError, match="fewer than one batch"):
        train_head(torch.randn(10, 4), torch.randn(10, 6))
    with pytest.raises(ValueError, match="same N"):
        train_head(torch.randn(10, 4), torch.randn(11, 6))
    x = torch.randn(600, 4)
    x[7, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        train_head(x, torch.randn(600, 6), TrainConfig(batch_size=100))


def planted_world(n: int, seed: int, d: int = 32, e: int = 64, c: int = 7, r: int = 4, prompt_offset: float = 2.0):
    """Students see the expression plus a strong nuisance subspace; their prompts are pushed around inside that
    subspace; the teacher sees only the expression. A head that learns to drop the nuisance wins zero-shot."""
    g = torch.Generator().manual_seed(0)  # the world is fixed; only the sample depends on ``seed``
    basis = torch.linalg.qr(torch.randn(d, r, generator=g))[0].T  # (r,d) orthonormal nuisance basis
    u = F.normalize(torch.randn(c, d, generator=g), dim=-1)
    u = F.normalize(u - (u @ basis.T) @ basis, dim=-1)  # class directions outside the nuisance
    m = F.normalize(torch.randn(c, e, generator=g), dim=-1)  # what the teacher says of each class
    prompts = (u + prompt_offset * torch.randn(c, r, generator=g) @ basis).unsqueeze(1)  # (C,1,D)
    gs = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=gs)
    x = u[y] + torch.randn(n, r, generator=gs) @ basis + 0.05 * torch.randn(n, d, generator=gs)
    t = m[y] + 0.3 * torch.randn(n, e, generator=gs) / math.sqrt(e)
    return x, t, y, prompts


def test_training_lifts_zero_shot_uar_far_above_the_identity_head():
    x, t, _, prompts = planted_world(32768, seed=1)
    xt, _, yt, _ = planted_world(2000, seed=2)
    identity = uar(yt, zero_shot_logits(xt, prompts).argmax(1))
    head = train_head(x, t, TrainConfig())  # the paper's recipe, untouched
    trained = uar(yt, zero_shot_logits(xt, prompts, head).argmax(1))
    assert identity < 0.35
    assert trained > 0.9
    # Control: with targets shuffled, the teacher carries no signal and nothing is learned.
    shuffled = t[torch.randperm(len(t), generator=torch.Generator().manual_seed(0))]
    control = uar(yt, zero_shot_logits(xt, prompts, train_head(x, shuffled, TrainConfig())).argmax(1))
    assert control < 0.4


def test_fused_training_loss_equals_the_autograd_loss_in_value_and_gradient():
    from expclip.train import _NormalizedPairLoss

    g = torch.Generator().manual_seed(5)
    v, e = (torch.randn(9, 16, generator=g) * 4).requires_grad_(), F.normalize(torch.randn(9, 16, generator=g), dim=-1)
    want = contrastive_loss(v, e, 37.0)
    (want_grad,) = torch.autograd.grad(want, v)
    v2 = v.detach().clone().requires_grad_()
    got, logits = _NormalizedPairLoss.apply(v2, e, 37.0)
    (got_grad,) = torch.autograd.grad(3.0 * got, v2)  # the upstream gradient is honoured
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(got_grad, 3.0 * want_grad, atol=1e-5)
    assert torch.allclose(logits, 37.0 * F.normalize(v.detach(), dim=-1) @ e.t(), atol=1e-4)
    assert torch.autograd.gradcheck(lambda a: _NormalizedPairLoss.apply(a, e.double(), 7.0)[0],
                                    (torch.randn(9, 16, dtype=torch.float64, requires_grad=True),))
