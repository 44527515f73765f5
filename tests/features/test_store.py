"""The feature store: resume after a crash, stale keys, failures, and the teacher-runs-once guarantee."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from expclip.data.datasets import unlabelled_images
from expclip.features.extract import extract_images, extract_teacher
from expclip.features.extraction import run_extraction
from expclip.features.service import find_image_store, find_teacher_store
from expclip.features.store import FeatureStore, StaleStoreError, StoreError, store_path
from expclip.runs.fit import fit_heads
from expclip.train import TrainConfig

STORE_FILES = ("features.npy", "valid.npy", "meta.json", "items.json")


def _toy(n=50):
    items = [{"path": f"img{i:03d}.png", "label": i % 3} for i in range(n)]
    key = {"kind": "image", "model": {"id": "toy", "revision": "r1"}, "data": {"name": "toy", "n": n}}

    def load(i):
        if i in (7, 31):
            raise ValueError(f"img{i:03d}.png: corrupt")
        return torch.full((4,), float(i))

    return items, key, load


def _encode(batch):
    return torch.stack([batch[:, 0] * 2, batch.sum(1), torch.sin(batch[:, 0]), torch.ones(len(batch))], dim=1)


class Crash(Exception):
    pass


def test_resume_after_a_crash_gives_a_byte_identical_store(tmp_path):
    items, key, load = _toy()
    run_extraction(tmp_path / "ref", key, items, load, _encode, (4,), batch_size=4, chunk_size=8, progress=False)
    calls = {"n": 0}

    def crashing(batch):
        calls["n"] += 1
        if calls["n"] == 6:  # dies in the middle of the 3rd chunk
            raise Crash()
        return _encode(batch)

    with pytest.raises(Crash):
        run_extraction(tmp_path / "run", key, items, load, crashing, (4,), batch_size=4, chunk_size=8, progress=False)
    done = sorted(p.name for p in (tmp_path / "run" / "chunks").glob("*.npy"))
    assert done == ["00000.npy", "00001.npy"]  # finished chunks survive, the half chunk is not on disk
    with pytest.raises(StoreError, match="incomplete"):
        FeatureStore.open(tmp_path / "run")
    # A half-written temporary file from the crash must not be trusted either.
    (tmp_path / "run" / "chunks" / ".00002.npy.tmp-999").write_bytes(b"garbage")
    seen = []
    resumed = run_extraction(tmp_path / "run", key, items, load, lambda b: (seen.append(len(b)), _encode(b))[1], (4,),
                             batch_size=64, progress=False)  # another batch size asked: the store's is used
    assert sum(seen) == len(items) - 16 - 1  # only chunks 2.. recomputed (item 31 fails to load)
    for f in STORE_FILES:
        assert (tmp_path / "run" / f).read_bytes() == (tmp_path / "ref" / f).read_bytes(), f
    assert not (tmp_path / "run" / "chunks").exists()
    assert [f["index"] for f in resumed.failures] == [7, 31]
    assert resumed.valid().sum() == 48 and not resumed.features()[7].any()


def test_a_store_under_another_key_is_refused(tmp_path):
    items, key, load = _toy()
    run_extraction(tmp_path / "s", key, items, load, _encode, (4,), batch_size=5, progress=False)
    other = json.loads(json.dumps(key))
    other["model"]["revision"] = "r2"
    with pytest.raises(StaleStoreError, match="model.revision"):
        FeatureStore.open(tmp_path / "s", other)
    with pytest.raises(StaleStoreError):
        run_extraction(tmp_path / "s", other, items, load, _encode, (4,), batch_size=5, progress=False)
    with pytest.raises(StaleStoreError, match="item list"):
        run_extraction(tmp_path / "s", key, items[:-1], load, _encode, (4,), batch_size=5, progress=False)


def test_strict_mode_stops_at_the_first_bad_item(tmp_path):
    from expclip.features.extraction import ExtractionFailure

    items, key, load = _toy()
    with pytest.raises(ExtractionFailure, match="img007.png: corrupt"):
        run_extraction(tmp_path / "s", key, items, load, _encode, (4,), batch_size=4, strict=True, progress=False)


def test_non_finite_features_are_recorded_as_failures(tmp_path):
    items, key, load = _toy(10)

    def nan_for_3(batch):
        out = _encode(batch)
        out[batch[:, 0] == 3] = float("nan")
        return out

    s = run_extraction(tmp_path / "s", key, items, load, nan_for_3, (4,), batch_size=4, progress=False)
    assert {f["index"]: f["reason"] for f in s.failures}[3].startswith("non-finite")


def test_keys_separate_preprocessing_instruction_and_dtype(backbone, teacher, face_pool, tmp_path):
    data = unlabelled_images(face_pool)
    a = extract_images(backbone, data, tmp_path, "reference", num_workers=0, progress=False)
    b = extract_images(backbone, data, tmp_path, "clip", num_workers=0, progress=False)
    t1 = extract_teacher(teacher, data, tmp_path, "task", num_workers=0, progress=False)
    t2 = extract_teacher(teacher, data, tmp_path, "short", num_workers=0, progress=False)
    assert len({a.path, b.path, t1.path, t2.path}) == 4
    assert not np.allclose(a.features(), b.features())
    assert not np.allclose(t1.features(), t2.features())
    # Readers that run no encoder find each one by key.
    assert find_image_store(tmp_path, str(backbone.resolved.path), data, "clip").path == b.path
    assert find_teacher_store(tmp_path, str(teacher.info.resolved.path), data, "short").path == t2.path
    with pytest.raises(StoreError, match="expclip extract"):
        find_teacher_store(tmp_path, str(teacher.info.resolved.path), data, "unrelated")
    # A different dtype is a different key: never the same directory.
    key = dict(a.key, dtype="bfloat16-autocast")
    assert store_path(tmp_path, key) != a.path


def test_teacher_runs_once_per_image_whatever_the_epochs_and_seeds(teacher, backbone, face_pool, tmp_path,
                                                                   monkeypatch):
    data = unlabelled_images(face_pool)
    seen: list[int] = []
    original = type(teacher).encode

    def counting(self, pixel_values, instruction):
        seen.append(len(pixel_values))
        return original(self, pixel_values, instruction)

    monkeypatch.setattr(type(teacher), "encode", counting)
    img = extract_images(backbone, data, tmp_path, num_workers=0, progress=False)
    tgt = extract_teacher(teacher, data, tmp_path, num_workers=0, progress=False)
    assert sum(seen) == len(data)
    heads = fit_heads(img, tgt, tmp_path / "run", [1, 2, 3], TrainConfig(batch_size=16, epochs=5))
    assert len(heads) == 3 and all((h / "head.safetensors").is_file() for h in heads)
    extract_teacher(teacher, data, tmp_path, num_workers=0, progress=False)  # already complete: no work
    assert sum(seen) == len(data)  # 84 images, 1 pass each, not epochs × seeds = 15


def test_interrupted_multi_seed_training_resumes_per_seed(backbone, teacher, face_pool, tmp_path):
    data = unlabelled_images(face_pool)
    img = extract_images(backbone, data, tmp_path, num_workers=0, progress=False)
    tgt = extract_teacher(teacher, data, tmp_path, num_workers=0, progress=False)
    cfg = TrainConfig(batch_size=16)
    fit_heads(img, tgt, tmp_path / "run", [1], cfg)
    first = (tmp_path / "run" / "seed1" / "head.safetensors").read_bytes()
    fit_heads(img, tgt, tmp_path / "run", [1, 2], cfg)
    assert (tmp_path / "run" / "seed1" / "head.safetensors").read_bytes() == first  # kept, not retrained
    with pytest.raises(FileExistsError, match="another configuration"):
        fit_heads(img, tgt, tmp_path / "run", [1], TrainConfig(batch_size=16, lr=0.5))


def test_failed_images_are_skipped_and_summarized(backbone, face_pool, tmp_path):
    import shutil

    root = tmp_path / "pool"
    shutil.copytree(face_pool, root)
    files = sorted(root.glob("*.png"))
    files[3].write_bytes(b"")  # zero bytes
    files[5].write_bytes(files[5].read_bytes()[:100])  # truncated
    (root / "notes.jpg").write_text("not an image")
    data = unlabelled_images(root)
    s = extract_images(backbone, data, tmp_path / "store", num_workers=0, progress=False)
    reasons = {Path(f["path"]).name: f["reason"] for f in s.failures}
    assert set(reasons) == {files[3].name, files[5].name, "notes.jpg"}
    assert "empty" in reasons[files[3].name] and "not a recognised image" in reasons["notes.jpg"]
    assert int(s.valid().sum()) == len(data) - 3


def test_a_damaged_features_file_is_named_and_extract_recomputes_it(tmp_path, caplog):
    items, key, load = _toy()
    store = run_extraction(tmp_path / "s", key, items, load, _encode, (4,), batch_size=4, chunk_size=8, progress=False)
    good = (tmp_path / "s" / "features.npy").read_bytes()
    (tmp_path / "s" / "features.npy").write_bytes(good[: len(good) // 2])  # cut short (full disk, bad copy)
    with pytest.raises(StoreError, match=r"s/features.npy is damaged.*delete .* and rerun"):
        FeatureStore.open(tmp_path / "s", key).features()
    np.save(tmp_path / "s" / "features.npy", np.zeros((50, 3), dtype=np.float32))  # another shape
    with pytest.raises(StoreError, match=r"holds float32 \(50, 3\), meta.json says float32 \(50, 4\)"):
        store.features()
    with caplog.at_level("WARNING"):
        repaired = run_extraction(tmp_path / "s", key, items, load, _encode, (4,), batch_size=4, progress=False)
    assert "recomputing it" in caplog.text  # a rerun repairs the store instead of saying "nothing to do"
    assert (tmp_path / "s" / "features.npy").read_bytes() == good and repaired.valid().sum() == 48


def test_a_damaged_meta_json_is_named(tmp_path):
    items, key, load = _toy()
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "meta.json").write_text("{")
    with pytest.raises(StoreError, match=r"s/meta.json: the store meta.json is not valid JSON"):
        run_extraction(tmp_path / "s", key, items, load, _encode, (4,), progress=False)


def test_a_resumed_extraction_says_how_much_was_done(tmp_path, caplog):
    items, key, load = _toy()
    calls = {"n": 0}

    def crashing(batch):
        calls["n"] += 1
        if calls["n"] == 6:
            raise Crash()
        return _encode(batch)

    with pytest.raises(Crash):
        run_extraction(tmp_path / "s", key, items, load, crashing, (4,), batch_size=4, chunk_size=8, progress=False)
    with caplog.at_level("INFO"):
        run_extraction(tmp_path / "s", key, items, load, _encode, (4,), batch_size=4, progress=False)
    assert "resuming; 16 of 50 items were done by an earlier run" in caplog.text


def test_stores_of_a_local_model_are_found_whatever_the_spelling_of_its_path(backbone, face_pool, tmp_path,
                                                                             monkeypatch):
    data = unlabelled_images(face_pool)
    extract_images(backbone, data, tmp_path / "store", num_workers=0, progress=False)
    model_dir = Path(backbone.resolved.path)
    monkeypatch.chdir(model_dir.parent)
    for spelling in (f"./{model_dir.name}/", model_dir.name):
        assert find_image_store(tmp_path / "store", spelling, data).path.parent == tmp_path / "store"


def test_extract_reuses_the_store_of_a_local_model_named_another_way(tiny_clip_dir, face_pool, tmp_path, monkeypatch):
    """`extract --backbone models/clip` then `--backbone ./models/clip/` from elsewhere: the features are those of
    the same directory (same content fingerprint), so the second run finds the work done and encodes nothing."""
    from expclip.models.backbone import Backbone

    data, root = unlabelled_images(face_pool), tmp_path / "store"
    first = extract_images(Backbone.from_pretrained(str(tiny_clip_dir)), data, root, num_workers=0, progress=False)
    monkeypatch.chdir(tiny_clip_dir.parent)
    again = Backbone.from_pretrained(f"./{tiny_clip_dir.name}/")
    assert again.identity()["id"] != first.key["model"]["id"] and again.revision == first.key["model"]["revision"]
    monkeypatch.setattr(again, "encode_image", lambda x: pytest.fail("encoded again"))
    second = extract_images(again, data, root, num_workers=0, progress=False)
    assert second.path == first.path and len(list(root.iterdir())) == 1
