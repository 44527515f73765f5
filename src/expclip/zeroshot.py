"""Zero-shot scoring, the reference's rule.

logits[n, c] = mean over the prompts p of class c of  κ · normalize(P f_n) · normalize(P t_{c,p})
with P the head (identity = plain CLIP). For a video, P is applied to every frame, the projected frames are
averaged over time, then normalized. The LOGITS are averaged over prompts, not the prompt embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError

PromptFeatures = torch.Tensor | list[torch.Tensor]


@dataclass
class Classifier:
    """Normalized projected prompt embeddings, flattened, with each column's class (built once, reused)."""

    weights: torch.Tensor  # (sum_c P_c, E) normalized
    owner: torch.Tensor  # (sum_c P_c,) class index of each row
    counts: torch.Tensor  # (C,) prompts per class
    logit_scale: float

    @property
    def num_classes(self) -> int:
        return len(self.counts)


def _apply(head: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    if head is None:
        return x.float()
    p = next(head.parameters(), None)
    if p is not None:
        x = x.to(p.device, p.dtype)
    return head(x).float()


@torch.no_grad()
def build_classifier(prompt_features: PromptFeatures, head: nn.Module | None = None,
                     logit_scale: float = 100.0) -> Classifier:
    """Project and normalize prompt features: (C,P,D) tensor or a list of C (P_c,D) tensors."""
    per_class = list(prompt_features) if not isinstance(prompt_features, torch.Tensor) else list(prompt_features.unbind(0))
    if not per_class or any(t.ndim != 2 or len(t) == 0 for t in per_class):
        raise InputError("prompt features must be (C,P,D) or a list of non-empty (P_c,D) tensors")
    flat = torch.cat(per_class)
    w = F.normalize(_apply(head, flat), dim=-1)
    counts = torch.tensor([len(t) for t in per_class])
    owner = torch.repeat_interleave(torch.arange(len(per_class)), counts)
    return Classifier(w, owner.to(w.device), counts.to(w.device), float(logit_scale))


def is_affine(head: nn.Module | None) -> bool:
    """True for heads that commute with averaging (identity, nn.Linear, the paper's LinearHead)."""
    from .models.head_modules import LinearHead

    return head is None or isinstance(head, (nn.Linear, LinearHead))


@torch.no_grad()
def embed_images(image_features: torch.Tensor, head: nn.Module | None = None, batch_size: int = 2048) -> torch.Tensor:
    """(N,D) images or (N,T,D) video frames -> (N,E) normalized embeddings (frames averaged after the head).

    Batched over N so that (N,T,E) never has to fit in memory at once. For an affine head (the paper's linear
    one) the frame mean is taken first: mean_t(P f_t) = P mean_t(f_t), the same value at 1/T of the cost.
    """
    if image_features.ndim not in (2, 3):
        raise InputError(f"image features must be (N,D) or (N,T,D), got {tuple(image_features.shape)}")
    mean_first = image_features.ndim == 3 and is_affine(head)
    out = []
    for i in range(0, len(image_features), batch_size):
        x = torch.as_tensor(image_features[i : i + batch_size])
        z = _apply(head, x.float().mean(dim=1) if mean_first else x)
        out.append(F.normalize(z.mean(dim=1) if z.ndim == 3 else z, dim=-1))
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


@torch.no_grad()
def project_frames(image_features: torch.Tensor, head: nn.Module | None = None) -> torch.Tensor:
    """(N,D) image features -> (N,E) head outputs, not normalized: the terms of the paper's frame average.

    A clip's embedding is ``normalize(mean_t project_frames(f_t))``, so sums of these can be kept as frames come
    (bounded memory on long videos) and classified at the end with :func:`classify_pooled`.
    """
    return _apply(head, torch.as_tensor(image_features).float())


@torch.no_grad()
def classify_pooled(mean_embeddings: torch.Tensor, classifier: Classifier) -> torch.Tensor:
    """(N,E) means of :func:`project_frames` over each clip's frames -> (N,C) logits (normalized, then scored)."""
    return classify(F.normalize(mean_embeddings.float(), dim=-1), classifier)


@torch.no_grad()
def classify(image_embeddings: torch.Tensor, classifier: Classifier, batch_size: int = 8192) -> torch.Tensor:
    """(N,E) normalized embeddings -> (N,C) logits, averaged over each class's prompts."""
    out = []
    w = classifier.weights
    counts = classifier.counts.to(w.dtype)
    for i in range(0, len(image_embeddings), batch_size):
        sims = classifier.logit_scale * image_embeddings[i : i + batch_size].to(w.device, w.dtype) @ w.t()
        summed = torch.zeros(len(sims), classifier.num_classes, device=w.device, dtype=w.dtype)
        summed.index_add_(1, classifier.owner, sims)
        out.append(summed / counts)
    return torch.cat(out) if out else torch.zeros(0, classifier.num_classes)


@torch.no_grad()
def zero_shot_logits(
    image_features: torch.Tensor,
    prompt_features: PromptFeatures,
    head: nn.Module | None = None,
    logit_scale: float = 100.0,
) -> torch.Tensor:
    """(N,D) images or (N,T,D) videos, (C,P,D) prompts (or a list of (P_c,D)) -> (N,C) logits.

    ``head`` None is plain CLIP. See the module docstring for the rule.
    """
    clf = build_classifier(prompt_features, head, logit_scale)
    return classify(embed_images(image_features, head), clf)
