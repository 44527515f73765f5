"""A model folder checked before anything is allocated: its ``config.json`` through one schema (sizes bounded and
consistent), its safetensors headers (size, dtypes, shapes, offsets) and the config's tensor shapes against the
weights', so that a damaged or hostile folder is one line naming the file and the value instead of a huge
allocation or a ``size mismatch`` traceback from transformers.

:func:`check_model` is what every command runs on each model it names before its first encoder runs (it needs
only the config files and the weights' headers).
"""

from __future__ import annotations

import json
import logging
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelNotAvailableError
from ..schema import is_int, read_json, show

log = logging.getLogger(__name__)

# Upper bounds of the sizes a transformers config may declare (the largest real models stay well below); a larger
# value is a damaged file, refused before transformers would try to allocate it.
SIZE_LIMITS: dict[str, int] = {
    "hidden_size": 1 << 16, "intermediate_size": 1 << 18, "projection_dim": 1 << 16, "d_model": 1 << 16,
    "d_ff": 1 << 18, "d_kv": 1 << 14, "encoder_hidden_size": 1 << 16, "num_hidden_layers": 1024, "num_layers": 1024,
    "num_decoder_layers": 1024, "num_attention_heads": 1024, "num_heads": 1024, "image_size": 1 << 14,
    "patch_size": 1 << 14, "num_channels": 64, "vocab_size": 1 << 24, "max_position_embeddings": 1 << 20,
    "num_query_tokens": 1 << 12,
}
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as a safetensors header declares it."""

    dtype: str
    shape: tuple[int, ...]
    file: Path


def check_config(path: str | Path) -> dict:
    """A model's ``config.json``, read and checked: an object whose size fields (at any depth: ``text_config``,
    ``vision_config``...) are integers within :data:`SIZE_LIMITS`, with ``hidden_size`` divisible by
    ``num_attention_heads`` and ``patch_size`` at most ``image_size``. Returns the parsed config."""
    path = Path(path)
    cfg = read_json(path, ModelNotAvailableError, "model config")
    if not isinstance(cfg, dict):
        raise ModelNotAvailableError(f"{path}: a model config must be a JSON object, got {show(cfg)}")

    def walk(node: dict, where: str) -> None:
        for k, v in node.items():
            name = f"{where}{k}"
            if isinstance(v, dict):
                walk(v, f"{name}.")
            elif k.endswith("_config") and v is not None:
                raise ModelNotAvailableError(f"{path}: {name} must be an object, got {show(v)}")
            elif k in SIZE_LIMITS and v is not None and not (is_int(v) and 0 < v <= SIZE_LIMITS[k]):
                raise ModelNotAvailableError(f"{path}: {name} must be an integer in 1..{SIZE_LIMITS[k]}, got "
                                             f"{show(v)}")
        hidden, heads = node.get("hidden_size"), node.get("num_attention_heads")
        if is_int(hidden) and is_int(heads) and hidden % heads:
            raise ModelNotAvailableError(f"{path}: {where}hidden_size {hidden} is not divisible by "
                                         f"{where}num_attention_heads {heads}")
        image, patch = node.get("image_size"), node.get("patch_size")
        if is_int(image) and is_int(patch) and patch > image:
            raise ModelNotAvailableError(f"{path}: {where}patch_size {patch} is larger than {where}image_size {image}")

    mt = cfg.get("model_type")
    if mt is not None and not isinstance(mt, str):
        raise ModelNotAvailableError(f"{path}: model_type must be a string, got {show(mt)}")
    walk(cfg, "")
    return cfg


def read_header(path: str | Path) -> dict[str, TensorInfo]:
    """The tensors a safetensors file declares, from its header alone: a header larger than the file (or than
    safetensors' 100 MB), not JSON, or with shapes, dtypes or offsets that do not fit the file is refused."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 0 < n <= min(MAX_HEADER_BYTES, size - 8):
                raise ModelNotAvailableError(f"{path}: not a safetensors file (its header declares {n:,} bytes in a "
                                             f"file of {size:,}); the download is damaged")
            raw = f.read(n)
    except OSError as e:
        raise ModelNotAvailableError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ModelNotAvailableError(f"{path}: the safetensors header is not JSON; the file is damaged") from None
    if not isinstance(header, dict):
        raise ModelNotAvailableError(f"{path}: the safetensors header is not an object; the file is damaged")
    body = size - 8 - n
    out: dict[str, TensorInfo] = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        ok = (isinstance(t, dict) and t.get("dtype") in DTYPE_BYTES and isinstance(t.get("shape"), list)
              and all(is_int(d) and d >= 0 for d in t["shape"]) and isinstance(t.get("data_offsets"), list)
              and len(t["data_offsets"]) == 2 and all(is_int(o) for o in t["data_offsets"]))
        if ok:
            a, b = t["data_offsets"]
            ok = 0 <= a <= b <= body and b - a == math.prod(t["shape"]) * DTYPE_BYTES[t["dtype"]]
        if not ok:
            raise ModelNotAvailableError(f"{path}: tensor {name[:80]!r} has a damaged header entry ({show(t, 120)})")
        out[name] = TensorInfo(t["dtype"], tuple(t["shape"]), path)
    return out


def weight_headers(files: list[Path]) -> dict[str, TensorInfo]:
    """The tensors of all of a model's safetensors files (:func:`read_header` of each)."""
    out: dict[str, TensorInfo] = {}
    for f in files:
        out.update(read_header(f))
    return out


def check_shapes(expected: dict[str, tuple[int, ...]], weights: dict[str, TensorInfo], config: str | Path,
                 rename: Any = None) -> None:
    """Refuse weights whose shapes differ from what ``config`` builds (``expected``: name -> shape, from a model
    built on the meta device), naming the first tensor, both shapes and the files. ``rename``: checkpoint name ->
    model name (None: the same)."""
    for name, info in weights.items():
        target = rename(name) if rename else name
        want = expected.get(target)
        if want is not None and tuple(want) != info.shape:
            raise ModelNotAvailableError(
                f"{config} does not match the weights: {target} is {list(want)} by the config but {list(info.shape)} "
                f"in {info.file.name}; the config or the weights belong to another model")


def meta_shapes(build: Any) -> dict[str, tuple[int, ...]] | None:
    """name -> shape of the module ``build()`` makes on the meta device (nothing allocated); None when it cannot be
    built that way (the check is then left to transformers)."""
    import torch

    try:
        with torch.device("meta"):
            model = build()
    except Exception as e:  # a family transformers cannot build on meta: not the user's problem, just no pre-check
        log.debug("no meta-device shape check: %s: %s", type(e).__name__, e)
        return None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
