"""Where and in which precision the models compute: the device, and mixed-precision autocast.

One place decides both for fine-tuning, prediction, pretraining and the benchmarks:

* :func:`resolve_device`: ``None`` = the GPU when there is one, else the CPU;
* :func:`resolve_precision`: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"``, checked against the
  device (fp16 autocast is a GPU feature; bf16 runs on both);
* :func:`autocast`: the ``torch.autocast`` context of a precision (a no-op for fp32);
* :func:`grad_scaler`: the loss scaler fp16 training needs (disabled otherwise).

Weights, optimiser state and every output stay float32; only the matrix work inside the context
runs in the lower precision.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, ContextManager

import torch

if TYPE_CHECKING:
    import argparse

__all__ = ["PRECISIONS", "add_device_arguments", "autocast", "grad_scaler", "resolve_device",
           "resolve_precision"]

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16,
                                             "fp16": torch.float16}
_ALIASES = {"float32": "fp32", "32": "fp32", "full": "fp32", "bfloat16": "bf16",
            "float16": "fp16", "half": "fp16", "16": "fp16"}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to compute on: ``None`` = the GPU when there is one, else the CPU.

    Raises:
        ValueError: a CUDA device asked for on a machine without one.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={str(device)[:60]!r} is not a device hsizoo computes on; pass "
                         "'cpu', 'cuda' or 'cuda:N' (CLI: --device cpu), or leave it out for the "
                         "GPU when there is one.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was asked for but this PyTorch sees no CUDA "
                         "GPU; pass device='cpu' (CLI: --device cpu), or install a CUDA build "
                         "of PyTorch on a machine with a GPU.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={str(device)!r} was asked for but this machine has "
                         f"{torch.cuda.device_count()} GPU(s), numbered from 0; pass "
                         "'cuda' or 'cuda:0'.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={str(device)!r} was asked for but this PyTorch has no MPS "
                         "(Apple GPU) support; pass device='cpu' (CLI: --device cpu).")
    return dev


def resolve_precision(precision: str | None, device: torch.device | str | None = None) -> str:
    """The canonical precision name (``"fp32"``, ``"bf16"``, ``"fp16"``) for a device.

    Args:
        precision: A name or alias (``"bfloat16"``, ``"half"``...); None = ``"fp32"``.
        device: Where it will run; fp16 needs a CUDA device.

    Raises:
        ValueError: an unknown name, or fp16 on a device that is not a GPU.
    """
    name = "fp32" if precision is None else str(precision).strip().lower()
    name = _ALIASES.get(name, name)
    if name not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of fp32, bf16, fp16 (CLI: "
                         "--precision); fp32 is the default, bf16 the usual choice on a GPU.")
    dev_type = torch.device(device).type if device is not None else None
    if name == "fp16" and dev_type not in (None, "cuda"):
        raise ValueError(f"precision='fp16' needs a CUDA device, and this work runs on "
                         f"{dev_type!r}; use precision='bf16' there (or fp32).")
    return name


def autocast(device: torch.device | str, precision: str | None) -> ContextManager[Any]:
    """``torch.autocast`` for ``precision`` on ``device``; a no-op context for fp32."""
    name = resolve_precision(precision, device)
    dtype = PRECISIONS[name]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def grad_scaler(device: torch.device | str, precision: str | None) -> torch.amp.GradScaler:
    """A loss scaler, enabled only for fp16 (bf16 and fp32 have float32's exponent range)."""
    dev = torch.device(device)
    name = resolve_precision(precision, dev)
    return torch.amp.GradScaler(dev.type, enabled=name == "fp16")


def add_device_arguments(p: "argparse.ArgumentParser", what: str = "the network") -> None:
    """``--device`` and ``--precision``, the same on every command that runs a network."""
    p.add_argument("--device", default=None,
                   help=f"where {what} runs: cuda or cpu (default: the GPU when there is one)")
    p.add_argument("--precision", default="fp32", choices=tuple(PRECISIONS),
                   help=f"autocast of {what} (default fp32; bf16 is faster on a GPU; fp16 is "
                        "GPU only)")
