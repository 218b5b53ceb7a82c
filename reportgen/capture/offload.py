"""Weights that accelerate offloaded (``device: auto`` with GPUs and RAM full): such a
parameter sits on the meta device, and its value lives in the weights map of the module's
hook (CPU memory, or the offload folder on disk), moved in for each forward. Whatever reads
or changes weights outside a forward (the finiteness check, the int8 floor's round-trip, the
embedding matrix of the capture) goes through here, so an offloaded model is treated as the
same model in memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


def _hooks(module: Any) -> list[Any]:
    """The module's accelerate hooks (several when they were chained: a SequentialHook)."""
    hook = getattr(module, "_hf_hook", None)
    return [] if hook is None else list(getattr(hook, "hooks", None) or [hook])


def _weights_map(module: Any) -> Any:
    return next((wm for h in _hooks(module)
                 if (wm := getattr(h, "weights_map", None)) is not None), None)


def value(module: Any, attr: str) -> torch.Tensor:
    """The value of ``module.<attr>``: the parameter itself, or its offloaded copy."""
    p = getattr(module, attr)
    if p.device.type != "meta":
        return p
    wm = _weights_map(module)
    if wm is None:
        raise RuntimeError(f"{attr} of {type(module).__name__} is on the meta device with no "
                           "offloaded copy")
    return wm[attr]


def execution_device(module: Any) -> torch.device:
    """Where ``module`` computes: its (or a submodule's) accelerate hook's execution device
    (an offloaded module's parameters sit on ``meta``), else its first parameter's device."""
    dev = next((d for m in module.modules() for h in _hooks(m)
                if (d := getattr(h, "execution_device", None)) is not None), None)
    if dev is not None:
        return torch.device(dev if not isinstance(dev, int) else f"cuda:{dev}")
    return next(module.parameters()).device


def write(module: Any, attr: str, tensor: torch.Tensor) -> None:
    """Set ``module.<attr>`` to ``tensor``: in place, or, offloaded, in the in-memory state
    dict accelerate's loader reads before its index (the value then stays in CPU memory)."""
    p = getattr(module, attr)
    if p.device.type != "meta":
        p.copy_(tensor)
        return
    wm = _weights_map(module)
    loader, key = getattr(wm, "dataset", None), f"{getattr(wm, 'prefix', '')}{attr}"
    state = getattr(loader, "state_dict", None)
    if isinstance(state, dict):
        state[key] = tensor.detach().to("cpu")
    elif isinstance(wm, dict):
        wm[attr] = tensor.detach().to("cpu")
    else:
        raise RuntimeError(f"cannot change the offloaded {attr} of {type(module).__name__}")


def named_values(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, value) of every parameter, offloaded ones read from where they live."""
    for mod_name, module in model.named_modules():
        for attr, _ in module.named_parameters(recurse=False):
            yield (f"{mod_name}.{attr}" if mod_name else attr), value(module, attr)
