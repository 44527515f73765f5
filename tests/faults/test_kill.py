"""Fault injection, interrupted work: SIGKILL at every commit point of extraction and training, a real `expclip
extract` killed mid-run, a full disk at every write, a real `expclip predict --out` killed mid-run and its results
file cut anywhere. Nothing half-written is ever trusted, and rerunning ends byte-identical to an uninterrupted
run."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expclip.api import ExpCLIP
from expclip.checkpoint import expand_head_dirs
from expclip.cli import main
from expclip.data.synthetic import draw_face
from expclip.features.extraction import run_extraction
from expclip.features.store import FeatureStore, StoreError
from expclip.predict.rowfile import RowFileError, RowWriter
from expclip.predict.run import predict_to_file
from expclip.predict.table import result_columns

from support.kill import (
    TMP_NAME, check_chunks, count_events, driver_argv, job_extract, job_fit, kill_points, patch_cli_for_kill_tests,
    predict_argv, run_and_kill, tree_bytes,
)
from support.media import write_face_video

STORE_FILES = ("features.npy", "valid.npy", "meta.json", "items.json")


def _assert_trusted_or_refused(store_dir: Path, want: dict[str, bytes]) -> None:
    """What a reader accepts after a crash is exactly the finished store; anything else is refused."""
    try:
        FeatureStore.open(store_dir)
    except StoreError:
        return
    got = tree_bytes(store_dir)
    assert all(got[f] == want[f] for f in STORE_FILES), "a reader trusted a store that differs from the finished one"


def test_sigkill_at_every_commit_point_of_an_extraction_loses_nothing(tmp_path):
    spec = {"n": 20}
    job_extract({**spec, "dir": str(tmp_path / "ref")})
    want = tree_bytes(tmp_path / "ref")
    assert sorted(want) == sorted(STORE_FILES)
    points = 2 * count_events(job_extract, {**spec, "dir": str(tmp_path / "count")})
    assert points >= 30  # items, meta, 3 chunks x 2 files, features, valid, final meta, chunk removal
    specs = [{**spec, "dir": str(tmp_path / f"k{k}"), "kill_at": k} for k in range(points)]
    assert kill_points("extract", specs) == [-signal.SIGKILL] * points
    for s in specs:
        d = Path(s["dir"])
        if d.exists():
            _assert_trusted_or_refused(d, want)
        job_extract(s)  # the rerun
        assert tree_bytes(d) == want, f"killed at point {s['kill_at']}: the resumed store differs"


@pytest.fixture(scope="module")
def toy_stores(tmp_path_factory):
    """An image store (N,6) and a teacher store (N,5) of 40 toy items."""
    import torch

    root = tmp_path_factory.mktemp("toy")
    items = [{"path": f"{i:03d}.png", "label": None} for i in range(40)]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 6, generator=g), torch.randn(40, 5, generator=g)
    data = {"name": "toy", "sha256": "toy"}
    img = run_extraction(root / "img", {"kind": "image", "model": {"id": "a"}, "data": data,
                                        "preprocessing": {"mode": "reference"}}, items, lambda i: x[i],
                         lambda b: b, (6,), batch_size=8, progress=False)
    tgt = run_extraction(root / "tgt", {"kind": "teacher", "model": {"id": "b"}, "data": data, "instruction": "t",
                                        "preprocessing": {"mode": "reference"}}, items, lambda i: y[i],
                         lambda b: b, (5,), batch_size=8, progress=False)
    return {"image": str(img.path), "teacher": str(tgt.path)}


def test_sigkill_at_every_commit_point_of_training_loses_nothing(toy_stores, tmp_path):
    job_fit({**toy_stores, "dir": str(tmp_path / "ref")})
    want = tree_bytes(tmp_path / "ref")
    assert sorted(want) == [f"seed{s}/{f}" for s in (1, 2) for f in ("config.json", "head.safetensors", "history.json")]
    points = 2 * count_events(job_fit, {**toy_stores, "dir": str(tmp_path / "count")})
    specs = [{**toy_stores, "dir": str(tmp_path / f"k{k}"), "kill_at": k} for k in range(points)]
    assert kill_points("fit", specs) == [-signal.SIGKILL] * points
    for s in specs:
        d = Path(s["dir"])
        if d.exists():  # a head that eval would pick up (config.json present) is the finished one
            trusted = [h for h in d.glob("seed*") if (h / "config.json").is_file()]
            for h in trusted:
                rel = h.relative_to(d).as_posix()
                assert (h / "head.safetensors").read_bytes() == want[f"{rel}/head.safetensors"], s["kill_at"]
            assert len(expand_head_dirs([d]) if trusted else []) == len(trusted)
        job_fit(s)
        assert tree_bytes(d) == want, f"killed at point {s['kill_at']}: the resumed heads differ"


@pytest.mark.slow
def test_extract_killed_mid_run_by_sigkill_resumes_to_an_identical_store(tiny_clip_dir, tiny_blip2_dir, face_pool,
                                                                         tmp_path, monkeypatch, capsys):
    def argv(store):
        return ["extract", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--teacher", str(tiny_blip2_dir),
                "--store", str(store), "--device", "cpu", "--num-workers", "0", "--no-progress", "--batch-size", "4",
                "--teacher-batch-size", "4"]

    store = tmp_path / "killed"
    run_and_kill(driver_argv("cli", {"argv": argv(store), "sleep": 0.05}),
                 until=lambda: any(store.glob("image-*/chunks/00000.npy")))
    check_chunks(store)  # the driver's patch took effect: the killed store is in small chunks
    image_dir = next(store.glob("image-*"))
    assert not (image_dir / "features.npy").exists() and not list(store.glob("teacher-*/features.npy"))
    with pytest.raises(StoreError, match="incomplete"):
        FeatureStore.open(image_dir)
    assert main(["list", "--store", str(store)]) == 0 and "INCOMPLETE" in capsys.readouterr().out

    patch = patch_cli_for_kill_tests(setattr=monkeypatch.setattr)  # the same chunk size as the killed run
    assert main(argv(store)) == 0  # the rerun finishes the job
    assert main(argv(tmp_path / "clean")) == 0  # an uninterrupted run
    patch.check(tmp_path / "clean")
    out = capsys.readouterr().out
    assert out.count("84 of 84 items") == 4
    assert tree_bytes(store) == tree_bytes(tmp_path / "clean")
    assert sorted(p.name for p in store.iterdir()) == sorted(p.name for p in (tmp_path / "clean").iterdir())


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("job,where", [("extract", "fsync"), ("extract", "np.save"), ("fit", "fsync")])
def test_a_full_disk_at_any_write_is_reported_and_nothing_half_written_is_kept(job, where, toy_stores, tmp_path,
                                                                               monkeypatch):
    run, spec = {"extract": (job_extract, {"n": 20}), "fit": (job_fit, toy_stores)}[job]
    run({**spec, "dir": str(tmp_path / "ref")})
    want = tree_bytes(tmp_path / "ref")
    real = {"fsync": os.fsync, "np.save": np.save}[where]
    calls = {"n": 0, "fail_at": -1}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] - 1 == calls["fail_at"]:
            if where == "np.save":  # a short write first: the disk fills in the middle of the array
                args[0].write(b"\x93NUMPY partial")
            _enospc()
        return real(*args, **kwargs)

    monkeypatch.setattr(os if where == "fsync" else np, where.split(".")[-1], flaky)
    run({**spec, "dir": str(tmp_path / "count")})
    total = calls["n"]
    assert total >= {"extract": 11 if where == "fsync" else 4, "fit": 6}[job]
    for k in range(total):
        d = tmp_path / f"k{k}"
        calls.update(n=0, fail_at=k)
        with pytest.raises(OSError) as e:
            run({**spec, "dir": str(d)})
        assert e.value.errno == errno.ENOSPC
        assert not [p for p in d.rglob("*") if TMP_NAME.match(p.name)], "a temporary file was left behind"
        if job == "extract":
            _assert_trusted_or_refused(d, want)
        else:  # no head that eval would pick up is damaged
            assert all((h / "head.safetensors").read_bytes() == want[f"{h.name}/head.safetensors"]
                       for h in d.glob("seed*") if (h / "config.json").is_file())
        calls["fail_at"] = -1  # space freed: the rerun completes
        run({**spec, "dir": str(d)})
        assert tree_bytes(d, skip_tmp=False) == want, f"disk full at write {k}: the rerun's result differs"


def test_the_cli_reports_a_full_disk_in_one_line_and_the_rerun_finishes(tiny_clip_dir, face_pool, tmp_path,
                                                                        monkeypatch, capsys):
    argv = ["extract", "--data", str(face_pool), "--backbone", str(tiny_clip_dir), "--store", str(tmp_path / "s"),
            "--num-workers", "0", "--no-progress", "--batch-size", "4"]
    patch = patch_cli_for_kill_tests(setattr=monkeypatch.setattr)
    real, calls = os.fsync, {"n": 0}

    def fill_up(fd):
        calls["n"] += 1
        if calls["n"] == 5:  # inside the chunks
            _enospc()
        return real(fd)

    monkeypatch.setattr(os, "fsync", fill_up)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: disk full") and "rerun" in err and "Traceback" not in err
    monkeypatch.setattr(os, "fsync", real)
    assert main(argv) == 0 and "84 of 84 items" in capsys.readouterr().out
    patch.check(tmp_path / "s")


@pytest.fixture(scope="module")
def predict_inputs(tmp_path_factory):
    """What `expclip predict` reads: a 12-frame video (first, by name) and six photos of faces."""
    root = tmp_path_factory.mktemp("predict_inputs")
    write_face_video(root / "clip.mp4", n=12, face_until=12)
    for i, expr in enumerate(["happiness", "sadness", "anger", "fear", "surprise", "neutral"]):
        draw_face(expr, 48, seed=i).save(root / f"p{i}.png")
    return root


def _predict_spec(inputs: Path, head: Path, out: Path, **kw) -> dict:
    return {"inputs": [str(inputs)], "head": str(head), "path": str(out), **kw}


@pytest.mark.slow
def test_a_predict_killed_mid_run_resumes_to_the_same_file(predict_inputs, tiny_head_dir, tmp_path, capsys):
    ref = tmp_path / "ref.jsonl"
    assert main(predict_argv(_predict_spec(predict_inputs, tiny_head_dir, ref))) == 0  # uninterrupted
    want = ref.read_bytes()
    assert want.count(b"\n") == 4 + 1 + 6  # 4 frames and the clip row, then the photos
    out = tmp_path / "out.jsonl"
    spec = _predict_spec(predict_inputs, tiny_head_dir, out)
    run_and_kill(driver_argv("lines", {**spec, "sleep": 0.05}),
                 until=lambda: out.exists() and out.read_bytes().count(b"\n") >= 2)  # mid-video, most often
    kept = out.read_bytes()
    assert kept and want.startswith(kept[: kept.rfind(b"\n") + 1])  # every finished row is kept, as written
    with open(out, "ab") as f:
        f.write(b'{"input": "p9.png", "ki')  # a row torn by the kill
    assert main(predict_argv(spec)) == 0  # the same command: it always has --resume
    assert out.read_bytes() == want
    cols = list(json.loads(want.splitlines()[0]))
    with pytest.raises(RowFileError, match="--resume"):
        RowWriter(out, cols)
    with pytest.raises(RowFileError, match="different labels"):
        RowWriter(out, cols[:-2] + ["p_bored", "error"], resume=True)
    with RowWriter(tmp_path / "new.jsonl", cols) as w:
        w.write([{"input": "two\nlines.png", "kind": "image", "num_faces": 1, "face": 0}])
    assert (tmp_path / "new.jsonl").read_bytes().count(b"\n") == 1  # a row is one line, whatever its values
    assert RowWriter(tmp_path / "new.jsonl", cols, resume=True).done == {"two\nlines.png"}


@pytest.fixture(scope="module")
def predictor(tiny_head_dir):
    return ExpCLIP.from_pretrained(tiny_head_dir, "cpu")


def _predict_to(model: ExpCLIP, inputs: Path, out: Path) -> None:
    predict_to_file(model, [inputs], out, resume=True, faces="none", num_frames=4, batch_size=1, progress=False)


@pytest.fixture(scope="module")
def uninterrupted(predictor, predict_inputs, tmp_path_factory):
    """The results file of an uninterrupted run, in each format."""
    d = tmp_path_factory.mktemp("uninterrupted")
    for fmt in ("jsonl", "csv"):
        _predict_to(predictor, predict_inputs, d / f"ref.{fmt}")
    # A crash leaves the run record (written before the first row) beside the rows: the cut test copies both.
    return {**{fmt: (d / f"ref.{fmt}").read_bytes() for fmt in ("jsonl", "csv")},
            **{f"{fmt}.run.json": (d / f"ref.{fmt}.run.json").read_bytes() for fmt in ("jsonl", "csv")}}


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=100_000), fmt=st.sampled_from(["jsonl", "csv"]))
def test_a_predict_output_cut_anywhere_resumes_to_the_same_file(predictor, predict_inputs, uninterrupted,
                                                                tmp_path_factory, cut, fmt):
    """Whatever prefix a crash leaves (mid-row, mid-video, mid-header), --resume ends with the uninterrupted file."""
    want = uninterrupted[fmt]
    out = tmp_path_factory.mktemp("cut") / f"out.{fmt}"
    out.write_bytes(want[: cut % (len(want) + 1)])
    out.with_name(f"{out.name}.run.json").write_bytes(uninterrupted[f"{fmt}.run.json"])
    _predict_to(predictor, predict_inputs, out)
    assert out.read_bytes() == want
    with RowWriter(out, result_columns(predictor.label_prompts().labels), resume=True) as w:
        assert w.done == {str(predict_inputs / n) for n in ("clip.mp4", *(f"p{i}.png" for i in range(6)))}
        assert w.kept_rows == 11
