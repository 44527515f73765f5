"""Integrity, stale or mixed results and full disks (issue 14): what a store or results file holds is what its key
or run record says, one process writes it at a time, and a write that does not fit is reported as a full disk
naming the file, leaving nothing torn behind."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from expclip.api import ExpCLIP
from expclip.cli import main
from expclip.data.datasets import unlabelled_images
from expclip.data.synthetic import draw_face
from expclip.features.extract import extract_images
from expclip.features.extraction import run_extraction
from expclip.features.store import FeatureStore, StoreError
from expclip.models.hub import directory_fingerprint, resolve_model
from expclip.predict.rowfile import RowFileError, RowWriter
from expclip.predict.run import predict_to_file

from support.integrity import MeanColour
from support.kill import driver_argv, driver_env, predict_argv


@pytest.fixture(autouse=True)
def own_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPCLIP_CACHE_DIR", str(tmp_path / "hash-cache"))


# ------------------------------------------------------------------------------------------------ 1, 2: fingerprints
def _colour_folder(root: Path, colours: list[tuple[int, int, int]]) -> Path:
    root.mkdir(parents=True)
    for i, c in enumerate(colours):
        Image.new("RGB", (16, 16), c).save(root / f"{i}.bmp")  # BMP: the same size whatever the pixels
    return root


def test_an_image_replaced_by_one_of_the_same_size_and_time_gets_a_new_key_and_feature(tmp_path):
    root = _colour_folder(tmp_path / "faces", [(200, 0, 0), (0, 200, 0)])
    data = unlabelled_images(root)
    before = data.fingerprint()
    first = extract_images(MeanColour(), data, tmp_path / "s", num_workers=0, progress=False)
    assert np.allclose(first.features()[0], [200 / 255, 0, 0], atol=1e-3)
    old = (root / "0.bmp").stat()
    Image.new("RGB", (16, 16), (0, 0, 200)).save(root / "0.bmp")
    os.utime(root / "0.bmp", ns=(old.st_atime_ns, old.st_mtime_ns))  # even the modification time is the old one
    assert (root / "0.bmp").stat().st_size == old.st_size
    again = unlabelled_images(root)
    assert again.fingerprint() != before
    second = extract_images(MeanColour(), again, tmp_path / "s", num_workers=0, progress=False)
    assert second.path != first.path  # a new store: the old one is never reused for the new content
    assert np.allclose(second.features()[0], [0, 0, 200 / 255], atol=1e-3)


def test_content_hashes_are_cached_by_path_size_and_times_so_reruns_read_nothing(tmp_path, monkeypatch):
    import expclip.hashes as hashes

    root = _colour_folder(tmp_path / "faces", [(i, i, i) for i in range(20)])
    monkeypatch.setattr(hashes, "RECENT_NS", 0)  # files this young would be re-hashed (their times may not move yet)
    reads = []
    real = hashes.file_sha256
    monkeypatch.setattr(hashes, "file_sha256", lambda p: reads.append(p) or real(p))
    fp = unlabelled_images(root).fingerprint()
    assert len(reads) == 20
    assert unlabelled_images(root).fingerprint() == fp and len(reads) == 20  # from the cache
    Image.new("RGB", (16, 16), (9, 9, 99)).save(root / "3.bmp")
    assert unlabelled_images(root).fingerprint() != fp and len(reads) == 21  # only the changed file is read


def test_a_change_anywhere_in_a_model_file_changes_its_revision(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    for size, offset in [(1_500_000, 1_480_000), (5_000_000, 2_500_000), (5_000_000, 1_048_576)]:
        weights = bytearray(size)
        (model / "model.safetensors").write_bytes(weights)
        before, revision = directory_fingerprint(model), resolve_model(model).revision
        weights[offset] = 1
        (model / "model.safetensors").write_bytes(weights)
        assert directory_fingerprint(model) != before, (size, offset)
        assert resolve_model(model).revision != revision


# ------------------------------------------------------------------------------------------------ 3: run identity
@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for i, expr in enumerate(["happiness", "sadness", "anger"]):
        draw_face(expr, 40, seed=i).save(root / f"p{i}.png")
    return root


@pytest.fixture(scope="module")
def clip_model(tiny_clip_dir):
    return ExpCLIP.from_pretrained(tiny_clip_dir, "cpu")


@pytest.fixture(scope="module")
def head_model(tiny_head_dir):
    return ExpCLIP.from_pretrained(tiny_head_dir, "cpu")


def _predict(model, inputs, out, **kw):
    return predict_to_file(model, inputs, out, progress=False, **{"faces": "none", "resume": True, **kw})


def test_resume_refuses_a_file_written_by_another_model_prompts_or_options_naming_the_difference(
        photos, clip_model, head_model, tmp_path):
    out = tmp_path / "rows.csv"
    first = [photos / "p0.png", photos / "p1.png"]
    _predict(clip_model, first, out, resume=False)
    written = out.read_bytes()
    everything = sorted(photos.glob("*.png"))
    for model, kw, says in [
        (head_model, {}, "model."),  # Exp-CLIP rows after CLIP rows
        (clip_model, {"prompts": ["a photo of a {} face."]}, "prompts"),
        (clip_model, {"labels": ["happy", "sad", "angry", "scared", "surprised", "neutral", "disgusted"]}, "labels"),
        (clip_model, {"margin": 0.5, "faces": "detect"}, "options.faces"),
        (clip_model, {"num_frames": 8}, "options.num_frames"),
    ]:
        with pytest.raises(RowFileError, match="another run") as e:
            _predict(model, everything, out, **kw)
        assert str(out) in str(e.value) and says in str(e.value) and "--overwrite" in str(e.value), str(e.value)
        assert out.read_bytes() == written  # nothing appended
    record = json.loads((tmp_path / "rows.csv.run.json").read_text())
    assert record["model"]["name"] == "CLIP" and record["labels"][0] == "happiness"
    s = _predict(clip_model, everything, out, batch_size=2, num_workers=1)  # speed options may change
    assert s.already_done == 2 and s.rows == 1
    _predict(head_model, everything, out, resume=False, overwrite=True)  # --overwrite starts a new record
    assert json.loads((tmp_path / "rows.csv.run.json").read_text())["model"]["head"] is not None


def test_resume_refuses_rows_without_a_run_record(photos, clip_model, tmp_path):
    out = tmp_path / "rows.jsonl"
    _predict(clip_model, [photos / "p0.png"], out, resume=False)
    (tmp_path / "rows.jsonl.run.json").unlink()  # an older expclip wrote it, or the record was deleted
    with pytest.raises(RowFileError, match="no run record"):
        _predict(clip_model, [photos], out)


# ------------------------------------------------------------------------------------------------ 4: one writer
KEY = {"kind": "image", "model": {"id": "toy", "revision": "r"}, "data": {"name": "toy"}}


def test_a_second_extraction_into_a_store_being_written_is_refused_and_the_first_finishes(tmp_path):
    items = [{"path": f"{i}.png"} for i in range(8)]
    started, release, done = threading.Event(), threading.Event(), []

    def slow(batch):
        started.set()
        release.wait(30)
        return batch

    first = threading.Thread(target=lambda: done.append(run_extraction(
        tmp_path / "s", KEY, items, lambda i: torch.full((2,), float(i)), slow, (2,), batch_size=4, progress=False)))
    first.start()
    try:
        assert started.wait(30)
        with pytest.raises(StoreError, match="another process") as e:
            run_extraction(tmp_path / "s", KEY, items, lambda i: torch.full((2,), float(i)), lambda b: b, (2,),
                           batch_size=2, progress=False)
        assert str(tmp_path / "s") in str(e.value) and "\n" not in str(e.value)
    finally:
        release.set()
        first.join(30)
    store = FeatureStore.open(tmp_path / "s", KEY)
    assert np.array_equal(store.features()[:, 0], np.arange(8)) and store.valid().all()
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.startswith(".")]  # no lock file left behind
    again = run_extraction(tmp_path / "s", KEY, items, lambda i: torch.zeros(2), lambda b: b, (2,), batch_size=4,
                           progress=False)
    assert again.path == store.path  # the lock was released: a rerun finds the work done


def test_a_results_file_has_one_writer(tmp_path):
    cols = ["input", "kind", "num_faces", "face", "error"]
    with RowWriter(tmp_path / "rows.csv", cols) as w:
        with pytest.raises(RowFileError, match="another process") as e:
            RowWriter(tmp_path / "rows.csv", cols, resume=True)
        assert str(tmp_path / "rows.csv") in str(e.value)
        w.write([{"input": "a.png", "kind": "image", "num_faces": 1, "face": 0}])
    with RowWriter(tmp_path / "rows.csv", cols, resume=True) as w:  # released on close
        assert w.done == {"a.png"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_two_predict_resume_processes_on_one_file_the_second_is_refused(photos, tiny_head_dir, tmp_path, capsys):
    spec = {"inputs": [str(photos)], "head": str(tiny_head_dir), "path": str(tmp_path / "rows.csv")}
    ref = {**spec, "path": str(tmp_path / "ref.csv")}
    assert main(predict_argv(ref)) == 0
    proc = subprocess.Popen(driver_argv("lines", {**spec, "sleep": 1.5}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=driver_env())
    try:
        t0 = time.monotonic()
        while not (tmp_path / "rows.csv").exists() and proc.poll() is None and time.monotonic() - t0 < 120:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert main([*predict_argv(spec), "--batch-size", "2"]) == 2
        err = capsys.readouterr().err
        assert "another process" in err and str(tmp_path / "rows.csv") in err and err.count("\n") == 1, err
    finally:
        proc.wait(120)
    assert proc.returncode == 0
    assert (tmp_path / "rows.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()


# ------------------------------------------------------------------------------------------------ 14: disk full
def test_a_short_write_of_numpy_is_reported_as_a_full_disk_naming_the_file(tmp_path):
    """A real short write: the file size limit stops numpy's fwrite part way ('400000 requested and N written')."""
    code = ("import resource, signal, sys, numpy as np; from pathlib import Path; "
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000)); "
            "from expclip.files import atomic_save_npy\n"
            "try:\n    atomic_save_npy(Path(sys.argv[1]), np.zeros(100_000, np.float32))\n"
            "except OSError as e:\n    print(e.errno, e.filename)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy")], capture_output=True, text=True,
                         timeout=120, env=driver_env())
    assert out.stdout.split() == [str(errno.ENOSPC), str(tmp_path / "x.npy")], out.stdout + out.stderr
    assert list(tmp_path.iterdir()) == []  # the temporary file went too


def test_extract_reports_every_short_write_as_a_full_disk_and_the_rerun_finishes(face_pool, tiny_clip_dir, tmp_path,
                                                                                  monkeypatch, capsys):
    argv = ["extract", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--store", str(tmp_path / "s"),
            "--num-workers", "0", "--no-progress", "--batch-size", "4"]
    real, calls = np.save, {"n": 0}

    def short(f, arr, *a, **k):  # what numpy raises when fwrite stops short: no errno, no file name
        calls["n"] += 1
        if calls["n"] == 1:
            f.write(b"\x93NUMPY partial")
            raise OSError("32768 requested and 3040 written")
        return real(f, arr, *a, **k)

    monkeypatch.setattr(np, "save", short)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: disk full while writing ") and str(tmp_path / "s") in err and ".npy" in err, err
    assert "requested and" not in err.split(";")[0] and err.count("\n") == 1
    assert main(argv) == 0 and "84 of 84 items" in capsys.readouterr().out


def test_predict_on_a_full_disk_keeps_no_torn_row_and_says_how_to_resume(tiny_head_dir, tmp_path):
    """A real short write (the file size limit cuts a row in two); the message is true: the file ends at the last
    whole row, and --resume finishes it."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(12):
        draw_face("happiness", 32, seed=i).save(photos / f"p{i:02d}.png")
    out = tmp_path / "rows.csv"

    def argv(path: Path) -> list[str]:  # a small run record (two labels, one template); batches of 1: same bytes
        return ["predict", str(photos), "--out", str(path), "--resume", "--head", str(tiny_head_dir), "--faces",
                "none", "--labels", "happy,sad", "--template", "a {} face.", "--batch-size", "1", "--num-workers",
                "0", "--no-progress", "--device", "cpu"]

    assert main(argv(tmp_path / "ref.csv")) == 0
    want = (tmp_path / "ref.csv").read_bytes()
    lines = want.splitlines(keepends=True)
    ends = np.cumsum([len(line) for line in lines])
    rec = tmp_path / "ref.csv.run.json"
    record = rec.stat().st_size if rec.exists() else 0  # the limit is per file: the run record must fit
    k = max(1, int(np.argmax(ends > record + 100)))
    assert 0 < k < len(lines) - 1
    limit = int(ends[k - 1]) + len(lines[k]) // 2  # the disk fills in the middle of row k

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(driver_argv("cli", {"argv": argv(out)}), capture_output=True, text=True, timeout=300,
                          env=driver_env(), preexec_fn=small_disk)
    assert proc.returncode == 1, proc.stderr[-3000:]
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith(f"error: file too large while writing {out};") and "--resume" in err, err
    assert "Traceback" not in proc.stderr and "cut row was removed" in err
    assert out.read_bytes() == want[: ends[k - 1]]  # whole rows only
    assert main(argv(out)) == 0
    assert out.read_bytes() == want
    assert {p.name for p in tmp_path.iterdir() if p.is_file()} == {"ref.csv", "ref.csv.run.json", "rows.csv",
                                                                    "rows.csv.run.json"}
