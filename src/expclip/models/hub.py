"""Resolving a model name (hub id or local directory) to a local directory and a revision that identifies it.

The revision goes into every feature-store key and head config, so that other weights can never silently reuse
features computed with these.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotAvailableError
from ..hashes import ContentHashes
from .presets import resolve_preset

log = logging.getLogger(__name__)

# What a model directory may hold that we need; weights only as safetensors (never pickles).
MODEL_FILE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken"]


@dataclass(frozen=True)
class ResolvedModel:
    """A model name resolved to files on disk."""

    name: str  # as the user gave it
    path: Path  # local directory holding config.json and weights
    revision: str  # hub commit hash, or "local-<fingerprint>" for a directory


RANDOM_WEIGHTS_NOTE = "RANDOM WEIGHTS: tiny models built offline for testing the mechanics; numbers mean nothing"
RANDOM_WEIGHTS_MARK = "EXPCLIP_RANDOM_WEIGHTS.json"  # in a model folder: its weights are random, say so in results


def mark_random_weights(folder: str | os.PathLike) -> None:
    """Record in a saved model folder that its weights are random (results of it then carry a banner)."""
    (Path(folder) / RANDOM_WEIGHTS_MARK).write_text(json.dumps({"note": RANDOM_WEIGHTS_NOTE}) + "\n")


def declares_random_weights(name: str | os.PathLike) -> bool:
    """True for a local model folder marked by :func:`mark_random_weights`; a hub model never is."""
    return Path(name).is_dir() and (Path(name) / RANDOM_WEIGHTS_MARK).is_file()


def offline_help(name: str) -> str:
    """Our remedy in one sentence (the details: README, "Using real weights")."""
    return (f"run `hf download {name}` with internet and copy ~/.cache/huggingface (or $HF_HOME) here, or pass a "
            "folder saved with save_pretrained() (-v: details)")


def _is_auth_error(e: BaseException) -> bool:
    return type(e).__name__ in ("GatedRepoError", "HfHubHTTPError") and "401" in str(e)


def directory_fingerprint(path: Path) -> str:
    """A content fingerprint of a model directory: the names and sha256 of its files (hidden ones left out).

    Every byte counts (a tensor changed in the middle of a shard is another model). Hashing costs about a second
    per GB the first time; the hashes are cached by path, size and times (:class:`~expclip.hashes.ContentHashes`),
    so later runs only stat the files.
    """
    h = hashlib.sha256()
    with ContentHashes() as hashes:
        hashes.preload(path)
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = f.relative_to(path).as_posix()
            if rel.startswith(".") or "/." in rel:
                continue
            h.update(f"{rel}\0{hashes.file(f)}\0".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def model_name(name: str | os.PathLike) -> str:
    """How a head config names its model: a local directory by its absolute path (so that a head trained from one
    folder loads from any other, and ``./clip``, ``clip/`` and ``/abs/clip`` compare equal), a hub id as given, a
    preset (``siglip2-so400m``) by its hub id."""
    return os.path.abspath(name) if Path(name).is_dir() else resolve_preset(name)


def resolve_model(name: str | os.PathLike, revision: str | None = None, local_files_only: bool | None = None) -> ResolvedModel:
    """Find ``name`` as a local directory, else (a preset name first becoming its hub id) in the Hugging Face cache
    or hub.

    Raises:
        ModelNotAvailableError: naming the model and how to make it available offline.
    """
    if not isinstance(name, os.PathLike):
        name = resolve_preset(name)  # the one place preset names are resolved: everything below sees the hub id
    p = Path(name)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelNotAvailableError(f"{p} is a directory but has no config.json: not a saved model directory")
        return ResolvedModel(str(name), p, f"local-{directory_fingerprint(p)}")
    name = str(name)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:  # a path, not an "owner/name" hub id
        raise ModelNotAvailableError(f"model directory not found: {name}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        path = Path(
            snapshot_download(
                repo_id=name, revision=revision, allow_patterns=MODEL_FILE_PATTERNS, local_files_only=local_files_only
            )
        )
    except HFValidationError as e:
        raise ModelNotAvailableError(f"{name!r} is neither a local directory nor a valid hub id ({e})") from e
    except Exception as e:  # network errors, offline mode, missing repo: all end the same way for the user
        # Hugging Face's own message (kept as the cause: -v shows it) advises options of its API, not ours.
        log.debug("snapshot_download(%r) failed: %s: %s", name, type(e).__name__, e)
        why = ("offline mode is on (HF_HUB_OFFLINE=1)" if local_files_only else
               "it cannot be downloaded (" + ("the repository needs a login" if _is_auth_error(e) else
                                              "no network, or no such repository") + ")")
        raise ModelNotAvailableError(f"model {name!r} is not in the Hugging Face cache and {why}: "
                                     f"{offline_help(name)}") from e
    if not (path / "config.json").is_file():
        raise ModelNotAvailableError(f"{name!r} resolved to {path}, which has no config.json. {offline_help(name)}")
    return ResolvedModel(name, path, path.name)


def weight_files(path: Path) -> list[Path]:
    """The safetensors weight files of a model directory (sharded or not)."""
    files = sorted(path.glob("*.safetensors"))
    if not files:
        bins = sorted(path.glob("*.bin")) + sorted(path.glob("*.pt*"))
        hint = (
            f" It holds pickled weights ({bins[0].name}), which expclip does not load because unpickling can run "
            "code; convert them with save_pretrained(..., safe_serialization=True)." if bins else ""
        )
        raise ModelNotAvailableError(f"no .safetensors weights in {path}.{hint}")
    return files
