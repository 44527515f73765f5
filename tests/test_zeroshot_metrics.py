"""Scoring against explicit loops, and the metrics against scikit-learn."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.metrics import confusion_matrix as sk_confusion

from expclip.metrics import confusion_matrix, per_class_recall, summarize, uar, war
from expclip.models.heads import build_head
from expclip.zeroshot import zero_shot_logits


def _norm(v):
    n = math.sqrt(sum(float(a) ** 2 for a in v))
    return [float(a) / n for a in v]


def _loop_logits(images, prompts, head, kappa):
    """The reference's rule written out with Python loops."""
    proj = (lambda t: head(t)) if head is not None else (lambda t: t)
    out = []
    with torch.no_grad():
        for img in images:
            if img.ndim == 2:  # video: project every frame, average, then normalize
                frames = [proj(f) for f in img]
                z = _norm([sum(float(f[k]) for f in frames) / len(frames) for k in range(len(frames[0]))])
            else:
                z = _norm(proj(img))
            row = []
            for cls in prompts:
                scores = [kappa * sum(a * b for a, b in zip(z, _norm(proj(p)))) for p in cls]
                row.append(sum(scores) / len(scores))  # logits averaged over the class's prompts
            out.append(row)
    return torch.tensor(out)


@pytest.mark.parametrize("use_head", [False, True])
@pytest.mark.parametrize("video", [False, True])
def test_scoring_matches_explicit_loops(use_head, video):
    g = torch.Generator().manual_seed(0)
    shape = (5, 3, 6) if video else (5, 6)
    images = torch.randn(*shape, generator=g)
    prompts = torch.randn(4, 3, 6, generator=g)
    torch.manual_seed(0)
    head = build_head("linear", 6, 9) if use_head else None
    got = zero_shot_logits(images, prompts, head, logit_scale=50.0)
    want = _loop_logits(images, prompts, head, 50.0)
    assert got.shape == (5, 4)
    assert torch.allclose(got, want, atol=1e-4)



def test_a_nonlinear_head_still_averages_frames_after_the_head():
    g = torch.Generator().manual_seed(3)
    images, prompts = torch.randn(4, 5, 6, generator=g), torch.randn(3, 2, 6, generator=g)
    torch.manual_seed(0)
    head = build_head("mlp2", 6, 9)
    got = zero_shot_logits(images, prompts, head, logit_scale=20.0)
    assert torch.allclose(got, _loop_logits(images, prompts, head, 20.0), atol=1e-4)
    mean_first = zero_shot_logits(images.mean(1), prompts, head, logit_scale=20.0)
    assert not torch.allclose(got, mean_first, atol=1e-3)  # the shortcut is only taken for affine heads

def test_ragged_prompts_average_within_each_class():
    g = torch.Generator().manual_seed(1)
    images = torch.randn(7, 5, generator=g)
    prompts = [torch.randn(1, 5, generator=g), torch.randn(4, 5, generator=g), torch.randn(2, 5, generator=g)]
    got = zero_shot_logits(images, prompts)
    want = _loop_logits(images, prompts, None, 100.0)
    assert torch.allclose(got, want, atol=1e-4)


def test_logits_not_embeddings_are_averaged():
    # Two prompts for class 0 whose embedding mean would point elsewhere than the mean of their logits.
    img = torch.tensor([[1.0, 0.0]])
    prompts = [torch.tensor([[1.0, 0.0], [-1.0, 0.01]]), torch.tensor([[0.6, 0.8]])]
    logits = zero_shot_logits(img, prompts, logit_scale=1.0)
    assert logits[0, 0] == pytest.approx((1.0 + (-1.0 / math.hypot(1, 0.01))) / 2, abs=1e-5)
    assert logits[0, 1] == pytest.approx(0.6, abs=1e-5)


def test_frames_are_averaged_after_the_head_not_before():
    # A nonlinear head tells the two orders apart.
    torch.manual_seed(0)
    head = build_head("mlp2", 4, 4)
    video = torch.randn(2, 5, 4)
    prompts = torch.randn(3, 1, 4)
    after = zero_shot_logits(video, prompts, head)
    before = zero_shot_logits(video.mean(1), prompts, head)
    assert torch.allclose(after, _loop_logits(video, prompts, head, 100.0), atol=1e-4)
    assert not torch.allclose(after, before, atol=1e-3)


labels = st.lists(st.integers(0, 6), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_metrics_match_scikit_learn(data):
    y = data.draw(labels)
    p = data.draw(st.lists(st.integers(0, 6), min_size=len(y), max_size=len(y)))
    assert war(y, p) == pytest.approx(accuracy_score(y, p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when a predicted class has no true sample
        assert uar(y, p, 7) == pytest.approx(balanced_accuracy_score(y, p))
    assert np.array_equal(confusion_matrix(y, p, 7), sk_confusion(y, p, labels=list(range(7))))


def test_uar_is_the_mean_diagonal_of_the_row_normalized_confusion_matrix():
    y = [0, 0, 0, 1, 2, 2]
    p = [0, 1, 1, 1, 2, 0]
    cm = np.array(confusion_matrix(y, p, 3), dtype=float)
    assert uar(y, p, 3) == pytest.approx(np.mean(np.diag(cm / cm.sum(1, keepdims=True))))
    rec = per_class_recall(y, p, 4)
    assert np.isnan(rec[3]) and rec[0] == pytest.approx(1 / 3)
    s = summarize(y, p, 4, ["a", "b", "c", "d"])
    assert s["per_class_recall"]["d"] is None and s["num_samples"] == 6


def test_metrics_refuse_mismatched_or_out_of_range_labels():
    with pytest.raises(ValueError, match="predictions"):
        war([0, 1], [0])
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix([0, 3], [0, 1], 3)
