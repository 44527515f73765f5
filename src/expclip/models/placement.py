"""Placing a model too large for one device over several: a device map and the hooks that move activations.

A device map is ``{module or parameter prefix: device}`` (e.g. ``{"vision_model": "cuda:0", "t5.encoder.block.12":
"cuda:1"}``); each tensor goes to the device of the longest prefix that names it. :func:`plan_teacher_map` splits
the teacher in execution order: vision encoder, query tokens, Q-Former, projector and the shared embedding on the
first device, then the T5 encoder blocks as contiguous runs balanced by bytes, the final layer norm with the last
block. :func:`attach_input_movers` makes every mapped module move its tensor inputs to its own device, so that
activations follow the weights (the same idea as accelerate's dispatch, in a few lines and without the dependency).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import InputError

log = logging.getLogger(__name__)

DeviceMap = dict[str, str]


def device_of(name: str, device_map: DeviceMap, default: str | torch.device) -> torch.device:
    """The device of tensor/module ``name``: the longest matching prefix's, else ``default``."""
    best = ""
    for prefix in device_map:
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return torch.device(device_map[best] if best else default)


def _nbytes(module: nn.Module | nn.Parameter) -> int:
    if isinstance(module, nn.Parameter):
        return module.numel() * module.element_size()
    return sum(p.numel() * p.element_size() for p in module.parameters())


def teacher_units(teacher: nn.Module) -> tuple[list[str], list[str]]:
    """(units that stay on the first device, T5 encoder block units in order) of a Teacher."""
    first = ["vision_model", "query_tokens", "qformer", "language_projection", "t5.shared"]
    blocks = [f"t5.encoder.block.{i}" for i in range(len(teacher.t5.encoder.block))]
    return first, blocks


def plan_teacher_map(teacher: nn.Module, devices: Sequence[str | torch.device]) -> DeviceMap:
    """Split a Teacher (may be on the meta device) over ``devices``, balancing parameter bytes.

    The first device holds the image path and the embeddings; T5 encoder blocks follow in order, each device
    taking a contiguous run, so activations cross devices only len(devices) - 1 times per forward.
    """
    devs = [str(torch.device(d)) for d in devices]
    if not devs:
        raise InputError("plan_teacher_map needs at least one device")
    first, blocks = teacher_units(teacher)
    sizes = {u: _nbytes(teacher.get_submodule(u) if u != "query_tokens" else teacher.query_tokens) for u in first}
    sizes.update({b: _nbytes(teacher.get_submodule(b)) for b in blocks})
    total = sum(sizes.values())
    out: DeviceMap = {u: devs[0] for u in first}
    used, k = sum(sizes[u] for u in first), 0
    for b in blocks:
        # Device k's share ends at total·(k+1)/n bytes: a block whose middle lies past it goes to the next device.
        while k < len(devs) - 1 and used + sizes[b] / 2 > total * (k + 1) / len(devs):
            k += 1
        out[b] = devs[k]
        used += sizes[b]
    out["t5.encoder.final_layer_norm"] = out[blocks[-1]] if blocks else devs[0]
    return out


def _move(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True) if obj.device != device else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_move(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _move(v, device) for k, v in obj.items()}
    return obj


def attach_input_movers(model: nn.Module, device_map: DeviceMap) -> list[torch.utils.hooks.RemovableHandle]:
    """Make every mapped submodule move its tensor arguments to its device before running; returns the handles."""
    handles = []
    for prefix, dev in device_map.items():
        try:
            module = model.get_submodule(prefix)
        except AttributeError:
            continue  # a parameter (query_tokens): nothing runs there
        target = torch.device(dev)

        def pre_hook(_mod, args, kwargs, target=target):
            return _move(args, target), _move(kwargs, target)

        handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
    return handles


def _devices(device_map: str | Sequence) -> list[torch.device]:
    if device_map == "auto":
        from ..devices import local_devices

        return local_devices()
    if isinstance(device_map, str) or not device_map:
        raise InputError(f"unknown device_map {device_map!r}: use 'auto', a list of devices or "
                         "a {prefix: device} dict")
    return [torch.device(d) for d in device_map]


def primary_device(device_map: str | Sequence | DeviceMap) -> torch.device:
    """The first device of a device map (where the image path runs): "auto"'s first GPU, a list's first entry."""
    if isinstance(device_map, dict):
        if not device_map:
            raise InputError("the device map is empty")
        return torch.device(device_map.get("vision_model", next(iter(device_map.values()))))
    return _devices(device_map)[0]


def resolve_device_map(device_map: str | Sequence | DeviceMap, teacher: nn.Module) -> DeviceMap:
    """"auto" (this process's GPUs, see :func:`expclip.devices.local_devices`), a list of devices to plan
    over, or an explicit ``{prefix: device}`` map (returned as is)."""
    if isinstance(device_map, dict):
        return {str(k): str(v) for k, v in device_map.items()}
    plan = plan_teacher_map(teacher, _devices(device_map))
    log.info("teacher placement: %s", ", ".join(f"{d}: {sum(v == d for v in plan.values())} units"
                                                   for d in dict.fromkeys(plan.values())))
    return plan
