"""Get or extract: the one place a store is found by key or, when missing, made (loading the model only then).

Evaluation, training, ablations and video extraction all ask here: :func:`image_store`, :func:`teacher_store` and
:func:`prompt_features_for` find the finished store by key (no model loaded), else extract it through a
:class:`LazyModel`; the ``find_*`` functions only look.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Callable, Generic, TypeVar

import torch

from ..data.datasets import ItemList
from ..data.images import Preprocess
from ..errors import StaleStoreError, StoreError
from ..models.checks import check_config
from ..models import families
from ..zeroshot import PromptFeatures
from .extract import TextEncoder, extract_features, extract_teacher, per_class, prompt_features
from .extraction import check_strict, require_store
from .keys import data_args, find_keyed, image_key, lookup_model, model_preprocess, prompt_key, teacher_key
from .store import FeatureStore, find_store

log = logging.getLogger(__name__)

M = TypeVar("M")


class LazyModel(Generic[M]):
    """A model named by id and revision, loaded by ``load()`` on first :meth:`get` — only when a store it would
    fill is missing. ``check()`` (optional) makes sure, without loading it, that it can be: its files are there and
    sound (e.g. :func:`~expclip.models.backbone.check_backbone`)."""

    def __init__(self, name: str, revision: str | None, load: Callable[[], M],
                 check: Callable[[], object] | None = None):
        self.name, self.revision, self._load, self._check = name, revision, load, check
        self._model: M | None = None
        self._checked = False

    def check(self) -> None:
        """Resolve and check the model's files (once) without loading it; a missing or damaged model raises here."""
        if not self._checked and self._model is None and self._check is not None:
            self._check()
        self._checked = True

    def get(self) -> M:
        if self._model is None:
            log.info("loading %s", self.name)
            self._model = self._load()
        return self._model

    def use(self, model: M) -> "LazyModel[M]":
        """Hand over a model that is already loaded (it must be the one named)."""
        self._model = model
        return self


def find_image_store(store_root: str | Path, backbone: str, data: ItemList, preprocessing: str = "reference",
                     revision: str | None = None, sampling: str = "reference", num_segments: int = 16) -> FeatureStore:
    """The finished image (or video) feature store of ``backbone`` on ``data``, found by key; no model is loaded.

    For video data the key includes the frame sampling (``sampling`` rule, ``num_segments`` frames per clip).
    """
    lk = lookup_model(backbone, revision)
    pre = model_preprocess(lk.resolved, preprocessing) if lk.resolved else Preprocess(preprocessing)
    key = image_key(lk.identity, pre, data, "float32", sampling, num_segments)
    q = shlex.quote
    video = f" --sampling {sampling} --segments {num_segments}" if data.kind == "video" else ""
    how = (f"Extract it first: expclip extract {data_args(data)} --backbone {q(str(backbone))}"
           + (f" --revision {q(revision)}" if revision else "")
           + f" --preprocessing {preprocessing}{video} --store {q(str(store_root))}")
    return find_keyed(Path(store_root), key, lk.free, lk.resolved, preprocessing, how)


def find_teacher_store(store_root: str | Path, teacher: str, data: ItemList, instruction: str = "task",
                       preprocessing: str = "reference", revision: str | None = None) -> FeatureStore:
    """The finished teacher-target store of ``teacher`` on ``data`` for ``instruction``; no model is loaded."""
    lk = lookup_model(teacher, revision)
    pre = model_preprocess(lk.resolved, preprocessing) if lk.resolved else Preprocess(preprocessing)
    key = teacher_key(lk.identity, pre, data, instruction, "float32")
    q = shlex.quote
    how = (f"Extract it first: expclip extract {data_args(data)} --no-backbone --teacher {q(str(teacher))}"
           + (f" --teacher-revision {q(revision)}" if revision else "")
           + f" --instruction {q(instruction)} --preprocessing {preprocessing} --store {q(str(store_root))}")
    return find_keyed(Path(store_root), key, lk.free, lk.resolved, preprocessing, how)


def find_prompt_features(store_root: str | Path, backbone: str, prompts: list[list[str]],
                         revision: str | None = None) -> PromptFeatures | None:
    """Cached prompt features of ``backbone`` (no model loaded), or None when they were never computed."""
    unique = sorted({p for cls in prompts for p in cls})
    lk = lookup_model(backbone, revision)
    rule = families.text_rule(check_config(lk.resolved.path / "config.json")) if lk.resolved else None
    key = prompt_key(lk.identity, unique, "float32", rule)
    try:  # without the model's config, its family's text rule is unknown: any matches
        store = find_store(store_root, key, lk.free if lk.resolved else lk.free + ("text",))
    except StoreError:
        return None
    return per_class(torch.from_numpy(store.features()[:].copy()), unique, prompts)


def check_needed(find: Callable[[], FeatureStore], model: LazyModel) -> None:
    """Before any encoder runs: when the store ``find()`` looks for is missing, the model that would fill it must be
    there and sound (:meth:`LazyModel.check`), so that a missing or wrong model fails in seconds, not after another
    model's pass. A store under another key raises StaleStoreError now too."""
    try:
        find()
    except StaleStoreError:
        raise
    except StoreError:
        model.check()


def check_prompts_needed(model: LazyModel, prompts: list[list[str]], store_root: str | Path) -> None:
    """:func:`check_needed` for the prompt features of ``prompts``."""
    if find_prompt_features(store_root, model.name, prompts, model.revision) is None:
        model.check()


def get_or_extract(find: Callable[[], FeatureStore], extract: Callable[[], FeatureStore | None], what: str,
                   strict: bool = False) -> FeatureStore:
    """``find()`` the finished store, else ``extract()`` it; a store under another key is never replaced silently
    (StaleStoreError propagates). ``strict``: a store with failed items is refused (:func:`check_strict`)."""
    try:
        store = find()
    except StaleStoreError:
        raise
    except StoreError:
        return require_store(extract(), what)
    return check_strict(store) if strict else store


def image_store(data: ItemList, backbone: LazyModel, preprocessing: str, store_root: str | Path, *,
                sampling: str = "reference", num_segments: int = 16, strict: bool = False,
                extract: Callable | None = None, **run: object) -> FeatureStore:
    """The image (or video) feature store of ``data`` for ``backbone``: found by key, else extracted now.

    ``run``: batch_size, num_workers, progress (passed to the extraction). ``extract``: replaces
    :func:`~expclip.features.extract.extract_features` (benchmarks time it).
    """
    if data.kind == "video":
        run = {**run, "sampling": sampling, "num_segments": num_segments}
    return get_or_extract(
        lambda: find_image_store(store_root, backbone.name, data, preprocessing, backbone.revision, sampling,
                                 num_segments),
        lambda: (extract or extract_features)(backbone.get(), data, store_root, preprocessing, strict=strict, **run),
        f"features of {data.name}", strict)


def teacher_store(data: ItemList, teacher: LazyModel, instruction: str, preprocessing: str, store_root: str | Path, *,
                  strict: bool = False, **run: object) -> FeatureStore:
    """Teacher targets of ``data`` for ``instruction``: found by key, else computed now."""
    return get_or_extract(
        lambda: find_teacher_store(store_root, teacher.name, data, instruction, preprocessing, teacher.revision),
        lambda: extract_teacher(teacher.get(), data, store_root, instruction, preprocessing, strict=strict, **run),
        f"teacher targets of {data.name}", strict)


def prompt_features_for(encoder: LazyModel[TextEncoder], prompts: list[list[str]],
                        store_root: str | Path) -> PromptFeatures:
    """Text features of a prompt set through ``encoder``: cached ones (no model loaded), else computed and cached."""
    cached = find_prompt_features(store_root, encoder.name, prompts, encoder.revision)
    return cached if cached is not None else prompt_features(encoder.get(), prompts, store_root)
