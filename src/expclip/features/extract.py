"""Extraction of each kind of feature into the store, through :func:`~expclip.features.extraction.run_extraction`:
CLIP image features (N,D), per-frame video features (N,T,D), teacher targets (N,E) and prompt features.

The expensive encoders run here and only here. What an encoder must offer is typed by the protocols below (a
:class:`~expclip.models.backbone.Backbone`, a :class:`~expclip.models.teacher.Teacher`, or e.g. the teacher's T5
encoder used as a text encoder in the ablations).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch

from ..data.datasets import ItemList
from ..data.images import Preprocess
from ..data.loaders import ClipLoader, image_loader, plan_clips
from ..devices import default_num_workers
from ..errors import InputError, StaleStoreError, StoreError
from ..models.names import resolve_instruction
from ..zeroshot import PromptFeatures
from .extraction import require_store, run_extraction
from .keys import compute_dtype_name, image_key, prompt_key, store_location, teacher_key
from .store import FeatureStore

log = logging.getLogger(__name__)

class TextEncoder(Protocol):
    """What prompt features need from a model: its identity (for the store key) and a batch text encoder."""

    embed_dim: int
    amp_dtype: torch.dtype | None

    def identity(self) -> dict: ...

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """``texts`` -> (len(texts), embed_dim) features."""
        ...


class ImageEncoder(TextEncoder, Protocol):
    """What image and video extraction need from a backbone."""

    device: torch.device
    logit_scale: float

    def preprocess(self, mode: str = "reference") -> Preprocess: ...

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) preprocessed images -> (N, embed_dim) features."""
        ...


class TargetEncoder(Protocol):
    """What teacher-target extraction needs from a teacher."""

    embed_dim: int
    device: torch.device
    dtype: torch.dtype

    def identity(self) -> dict: ...

    def preprocess(self, mode: str = "reference") -> Preprocess: ...

    def encode(self, pixel_values: torch.Tensor, instruction: str) -> torch.Tensor:
        """(N,3,H,W) images + the instruction -> (N, embed_dim) targets."""
        ...


def extract_images(
    backbone: ImageEncoder,
    data: ItemList,
    store_root: str | Path,
    preprocessing: str = "reference",
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: bool = True,
    strict: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> FeatureStore | None:
    """CLIP image features (N, D) of ``data`` into the store (resumes a partial one)."""
    if data.kind != "image":
        raise InputError(f"{data.name} is a {data.kind} dataset; use extract_videos for it")
    data.validate(check_files=False)
    pre = backbone.preprocess(preprocessing)
    key = image_key(backbone.identity(), pre, data, compute_dtype_name(backbone.amp_dtype))
    return _extract_images(data, store_root, key, pre, backbone.encode_image, backbone.embed_dim, backbone.device,
                           f"CLIP {data.name}", batch_size, num_workers, progress, strict, shard,
                           {"logit_scale": backbone.logit_scale})


def extract_teacher(
    teacher: TargetEncoder,
    data: ItemList,
    store_root: str | Path,
    instruction: str = "task",
    preprocessing: str = "reference",
    batch_size: int = 32,
    num_workers: int | None = None,
    progress: bool = True,
    strict: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> FeatureStore | None:
    """Teacher targets e_G (N, E) of ``data`` for ``instruction`` into the store (resumes a partial one)."""
    if data.kind != "image":
        raise InputError(f"{data.name} is a {data.kind} dataset; teacher targets are computed for training images")
    name, text = resolve_instruction(instruction)
    if hasattr(teacher, "check_instruction"):  # the exact token count, before any store is made
        teacher.check_instruction(text)
    data.validate(check_files=False)
    pre = teacher.preprocess(preprocessing)
    key = teacher_key(teacher.identity(), pre, data, text, str(teacher.dtype).split(".")[-1])
    return _extract_images(data, store_root, key, pre, lambda x: teacher.encode(x, text), teacher.embed_dim,
                           teacher.device, f"teacher {data.name} [{name}]", batch_size, num_workers, progress, strict,
                           shard)


def _extract_images(data: ItemList, store_root: str | Path, key: dict, pre: Preprocess,
                    encode: Callable[[torch.Tensor], torch.Tensor], dim: int, device: torch.device, desc: str,
                    batch_size: int, num_workers: int | None, progress: bool, strict: bool, shard: tuple[int, int],
                    extra_meta: dict | None = None) -> FeatureStore | None:
    """``encode`` (N,3,H,W) -> (N, dim) over the images of ``data`` into the store for ``key``."""
    path, key = store_location(store_root, key)
    return run_extraction(
        path, key, data.items, image_loader(data, pre), encode, (dim,),
        batch_size=batch_size, num_workers=default_num_workers() if num_workers is None else num_workers,
        progress=progress, strict=strict, desc=desc, shard=shard, pin_memory=device.type == "cuda",
        extra_meta=extra_meta,
    )


@dataclass(frozen=True)
class _ClipEncoder:
    """(B,T,3,H,W) clips -> (B,T,D) per-frame features, the frames of a batch in one forward pass."""

    backbone: ImageEncoder

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        b, t = clips.shape[:2]
        return self.backbone.encode_image(clips.flatten(0, 1)).view(b, t, -1)


def extract_videos(
    backbone: ImageEncoder,
    data: ItemList,
    store_root: str | Path,
    preprocessing: str = "reference",
    sampling: str = "reference",
    num_segments: int = 16,
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: bool = True,
    strict: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> FeatureStore | None:
    """Per-frame CLIP features (N, T, D) of the clips of ``data`` into the store (resumes a partial one).

    T = ``num_segments`` frames per clip chosen by the ``sampling`` rule ("reference" or "edge", part of the key);
    ``batch_size`` counts frames per forward pass (clips per batch = batch_size // T, at least 1). Unreadable clips
    are recorded as failures; short clips and list counts above the real frame count are reported in meta.json.
    """
    if data.kind != "video":
        raise InputError(f"{data.name} is a {data.kind} dataset; use extract_images for it")
    data.validate(check_files=False)
    pre = backbone.preprocess(preprocessing)
    key = image_key(backbone.identity(), pre, data, compute_dtype_name(backbone.amp_dtype), sampling, num_segments)
    path, key = store_location(store_root, key)
    try:  # planning lists every clip: skip it when the store is already complete
        return FeatureStore.open(path, key)
    except StaleStoreError:
        raise
    except StoreError:
        pass
    items, report = plan_clips(data, num_segments, sampling)
    workers = default_num_workers() if num_workers is None else num_workers
    return run_extraction(
        path, key, items, ClipLoader.from_plan(data.root, items, pre), _ClipEncoder(backbone),
        (num_segments, backbone.embed_dim), batch_size=max(1, batch_size // num_segments), num_workers=workers,
        progress=progress, strict=strict, desc=f"CLIP {data.name} clips", shard=shard,
        pin_memory=backbone.device.type == "cuda", extra_meta={"logit_scale": backbone.logit_scale, "clips": report},
    )


def extract_features(backbone: ImageEncoder, data: ItemList, store_root: str | Path, preprocessing: str = "reference",
                     sampling: str = "reference", num_segments: int = 16, **kw: object) -> FeatureStore | None:
    """:func:`extract_images` or :func:`extract_videos`, by the kind of ``data``."""
    if data.kind == "video":
        return extract_videos(backbone, data, store_root, preprocessing, sampling, num_segments, **kw)
    return extract_images(backbone, data, store_root, preprocessing, **kw)


@dataclass(frozen=True)
class _TextLoader:
    texts: tuple[str, ...]

    def __call__(self, i: int) -> str:
        return self.texts[i]


def per_class(feats: torch.Tensor, unique: list[str], prompts: list[list[str]]) -> PromptFeatures:
    row = {t: i for i, t in enumerate(unique)}
    per_class = [feats[[row[p] for p in cls]] for cls in prompts]
    return torch.stack(per_class) if len({len(c) for c in prompts}) == 1 else per_class


def prompt_features(backbone: ImageEncoder, prompts: list[list[str]], store_root: str | Path | None = None,
                    progress: bool = False) -> PromptFeatures:
    """Text features of a prompt set: (C,P,D) when every class has P prompts, else a list of (P_c,D).

    Cached in the store (kind "text") when ``store_root`` is given; unique strings are encoded once.
    """
    unique = sorted({p for cls in prompts for p in cls})
    if store_root is None:
        return per_class(backbone.encode_text(unique), unique, prompts)
    rule = getattr(backbone, "text_rule", None)  # a backbone's family rule; other text encoders have none
    key = prompt_key(backbone.identity(), unique, compute_dtype_name(backbone.amp_dtype), rule() if rule else None)
    path, key = store_location(store_root, key)
    store = require_store(run_extraction(
        path, key, [{"path": None, "text": t} for t in unique], _TextLoader(tuple(unique)),
        backbone.encode_text, (backbone.embed_dim,), batch_size=256, progress=progress, desc="prompts",
    ), "prompts")
    if store.failures:  # a prompt's row would be zeros and silently skew its class
        bad = [store.items[f["index"]].get("text") for f in store.failures]
        raise StoreError(f"prompt features failed for {bad[:3]}: {store.failures[0]['reason']} (store {store.path})")
    return per_class(torch.from_numpy(store.features()[:].copy()), unique, prompts)


