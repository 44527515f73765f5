"""Scale-out: a 2-process gloo extraction (torchrun) writes the same store, byte for byte, as one process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

STORE_FILES = ("features.npy", "valid.npy", "meta.json", "items.json")

# Extraction with many small chunks (the CLI's are 2048 items), so that both ranks have work.
SCRIPT = r"""
import sys
from pathlib import Path
from expclip.data.datasets import unlabelled_images
from expclip.devices import distributed_session
from expclip.features.extract import image_key
from expclip.data.loaders import ImageLoader
from expclip.features.extraction import run_extraction
from expclip.models.backbone import Backbone

data_dir, model_dir, out = sys.argv[1:4]
data = unlabelled_images(data_dir)
with distributed_session("cpu") as ctx:
    bb = Backbone.from_pretrained(model_dir, device="cpu")
    pre = bb.preprocess("reference")
    key = image_key(bb.identity(), pre, data, "float32")
    load = ImageLoader(str(data.root), tuple(it["path"] for it in data.items), pre)
    store = ctx.run(lambda shard: run_extraction(out, key, data.items, load, bb.encode_image, (bb.embed_dim,),
                                                 batch_size=4, chunk_size=8, shard=shard, progress=False))
    assert store is not None and (Path(out) / "features.npy").is_file()
    print(f"rank {ctx.rank}/{ctx.world_size}: {len(store)} items, {len(store.failures)} failed")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args: list[str], nproc: int, cwd: Path) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
                     "--master-port", str(_free_port())]
    out = subprocess.run(launcher + args, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def _same_store(a: Path, b: Path) -> None:
    for f in STORE_FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f"{a.name}/{f} differs"
    assert not (a / "chunks").exists() and not (b / "chunks").exists()


@pytest.mark.slow
def test_two_gloo_processes_write_the_single_process_store_byte_for_byte(face_pool, tiny_clip_dir, tmp_path):
    pool = tmp_path / "pool"
    shutil.copytree(face_pool, pool)
    (pool / "broken.png").write_bytes(b"not a png")  # failures are merged across ranks too
    script = tmp_path / "shard_extract.py"
    script.write_text(SCRIPT)
    one = _run([str(script), str(pool), str(tiny_clip_dir), str(tmp_path / "one")], 1, tmp_path)
    two = _run([str(script), str(pool), str(tiny_clip_dir), str(tmp_path / "two")], 2, tmp_path)
    assert "rank 0/1: 85 items, 1 failed" in one
    assert "rank 0/2: 85 items, 1 failed" in two and "rank 1/2: 85 items, 1 failed" in two  # 11 chunks over 2 ranks
    _same_store(tmp_path / "one", tmp_path / "two")


@pytest.mark.slow
def test_torchrun_extract_command_equals_the_single_process_command(face_pool, tiny_clip_dir, tiny_blip2_dir,
                                                                    tmp_path):
    def extract(store: Path, nproc: int) -> str:
        return _run(["-m", "expclip", "extract", "--data", str(face_pool), "--backbone", str(tiny_clip_dir),
                     "--teacher", str(tiny_blip2_dir), "--store", str(store), "--device", "cpu", "--no-progress"],
                    nproc, tmp_path)

    one, two = extract(tmp_path / "one", 1), extract(tmp_path / "two", 2)
    assert "CLIP: 84 of 84 items" in one and "teacher [task]: 84 of 84 items" in one
    assert two.count("CLIP: 84 of 84 items") == 1  # reported once, by rank 0
    stores = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert stores == sorted(p.name for p in (tmp_path / "two").iterdir()) and len(stores) == 2
    for name in stores:  # same key -> same directory name
        _same_store(tmp_path / "one" / name, tmp_path / "two" / name)
