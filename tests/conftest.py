"""Shared fixtures: tiny random models written to disk once per session, synthetic face folders, a headless browser;
the ``gpu`` marker's skip. Shared helpers that are not fixtures live in tests/support/."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("EXPCLIP_CACHE_DIR", tempfile.mkdtemp(prefix="expclip-test-cache-"))  # not the user's cache


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` are skipped, with the reason, where there is no CUDA GPU."""
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")
    for item in gpu:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    from expclip.models.tiny import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip", seed=0)


@pytest.fixture(scope="session")
def tiny_blip2_dir(tmp_path_factory):
    from expclip.models.tiny import build_tiny_blip2

    return build_tiny_blip2(tmp_path_factory.mktemp("models") / "tiny-blip2", seed=0)


@pytest.fixture(scope="session")
def backbone(tiny_clip_dir):
    from expclip.models.backbone import Backbone

    return Backbone.from_pretrained(tiny_clip_dir, device="cpu")


@pytest.fixture(scope="session")
def teacher(tiny_blip2_dir):
    from expclip.models.teacher import Teacher

    return Teacher.from_pretrained(tiny_blip2_dir, device="cpu")


@pytest.fixture(scope="session")
def face_pool(tmp_path_factory):
    """An unlabelled folder of 7 × 12 synthetic faces."""
    from expclip.data.synthetic import write_face_folder
    from expclip.labels import classes_for

    return write_face_folder(tmp_path_factory.mktemp("data") / "pool", classes_for(7), 12, seed=1, labelled=False)


@pytest.fixture(scope="session")
def face_test(tmp_path_factory):
    """A labelled folder (class subfolders with mixed synonyms) of 7 × 6 synthetic faces."""
    from expclip.data.synthetic import write_face_folder
    from expclip.labels import classes_for

    root = write_face_folder(tmp_path_factory.mktemp("data") / "test", classes_for(7), 6, seed=2, labelled=True)
    # People name folders their own way: the reader must map them.
    for old, new in [("happiness", "Happy"), ("anger", "3_angry"), ("surprise", "Surprised")]:
        (root / old).rename(root / new)
    return root


@pytest.fixture(scope="session")
def tiny_head_dir(tmp_path_factory, backbone):
    """A random linear head for the tiny CLIP, saved as a trained one would be (clip preprocessing)."""
    import torch

    from expclip.checkpoint import save_head
    from expclip.models.heads import build_head

    torch.manual_seed(0)
    head = build_head("linear", backbone.embed_dim, 24)
    cfg = {"head": {"type": "linear", "in_dim": backbone.embed_dim, "out_dim": 24},
           "backbone": {"id": str(backbone.resolved.path), "revision": backbone.revision},
           "preprocessing": backbone.preprocess("clip").describe(), "name": "Exp-CLIP tiny"}
    return save_head(tmp_path_factory.mktemp("heads") / "seed1", head, cfg)


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium (support.browser); mark the test ``@needs_chromium``."""
    from support.browser import Chromium

    b = Chromium(tmp_path / "profile")
    yield b
    b.close()
