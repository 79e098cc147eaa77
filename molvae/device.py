"""The torch device (``--device auto|cpu|cuda``) and the training precision (``--precision``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where used, so the CLI's option help loads without it
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is an error."""
    import torch

    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICE_CHOICES} (or cuda:N), got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but torch sees no CUDA device")
    return torch.device(name)


# How training computes. "auto": bf16 autocast on CUDA, float32 on the CPU. "fp32": float32
# everywhere. "bf16": bf16 autocast on CUDA (the same as auto there); on the CPU, float32
# tensors whose matmuls (forward and backward) round their inputs to bfloat16 and accumulate
# in float32 through oneDNN, the CPU's counterpart of TF32. That is fast only on CPUs with
# bf16 units (measured on AMX: 2.2–2.9× faster matmuls; BENCHMARKS.md, "Training speed
# against the seed's loop"), hence opt-in.
PRECISION_CHOICES = ("auto", "fp32", "bf16")
PRECISION_HELP = ("auto (bf16 autocast on CUDA, float32 on the CPU), fp32, or bf16 (the same as auto on "
                  "CUDA; on the CPU, bf16 matmuls: fast on CPUs with AMX).")


def check_precision(precision: str) -> str:
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {precision!r}")
    return precision


def effective_precision(device: torch.device, precision: str) -> str:
    """What ``precision`` means on ``device``: ``bf16-autocast``, ``bf16-matmul`` or ``fp32``."""
    check_precision(precision)
    if device.type == "cuda":
        return "fp32" if precision == "fp32" else "bf16-autocast"
    if precision != "bf16":
        return "fp32"
    import torch

    if not hasattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision"):
        raise ValueError(f"precision bf16 on the CPU needs torch >= 2.9 (this is {torch.__version__}); "
                         "use precision fp32")
    return "bf16-matmul"


def forward_autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """The autocast of forward passes: bf16 on CUDA unless ``precision`` is fp32 (no loss
    scaling needed), none on the CPU."""
    import torch

    if effective_precision(device, precision) == "bf16-autocast":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def cpu_matmul_precision(device: torch.device, precision: str) -> Iterator[None]:
    """While open, float32 CPU matmuls run in bf16 if ``precision`` is bf16 (see
    :data:`PRECISION_CHOICES`); the previous setting comes back on exit, errors included.

    The setting is torch's process-wide ``torch.backends.mkldnn.matmul.fp32_precision``: it
    reaches every thread, and while it is set ``torch.get_float32_matmul_precision()`` raises
    (torch refuses to mix that legacy API with the new one).
    """
    if effective_precision(device, precision) != "bf16-matmul":
        yield
        return
    import torch

    matmul = torch.backends.mkldnn.matmul
    previous = matmul.fp32_precision
    matmul.fp32_precision = "bf16"
    try:
        yield
    finally:
        matmul.fp32_precision = previous
