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
        raise RuntimeError(f"device {name!r} was requested but torch sees no CUDA device")
    return torch.device(name)


# How training computes. "auto": bf16 autocast on CUDA, float32 on the CPU. "fp32": float32
# everywhere. "bf16": bf16 autocast on CUDA; on the CPU, float32 tensors whose matmuls
# (forward and backward) round their inputs to bfloat16 and accumulate in float32 through
# oneDNN, the CPU's counterpart of TF32. That is fast only on CPUs with bf16 units (AMX,
# AVX512-BF16), hence opt-in: 2.5× faster matmuls there (BENCHMARKS.md, "Training speed
# against the seed's loop").
PRECISION_CHOICES = ("auto", "fp32", "bf16")
PRECISION_HELP = ("auto (bf16 autocast on CUDA, float32 on the CPU), fp32, or bf16 (on the CPU: bf16 "
                  "matmuls, fast on CPUs with AMX).")


def check_precision(precision: str) -> str:
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {precision!r}")
    return precision


def forward_autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """The autocast of forward passes: bf16 on CUDA unless ``precision`` is fp32 (no loss
    scaling needed), none on the CPU."""
    import torch

    if device.type == "cuda" and check_precision(precision) != "fp32":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def cpu_matmul_precision(device: torch.device, precision: str) -> Iterator[None]:
    """While open, float32 CPU matmuls run in bf16 if ``precision`` is bf16 (see
    :data:`PRECISION_CHOICES`); the previous setting comes back on exit."""
    import torch

    if device.type != "cpu" or check_precision(precision) != "bf16":
        yield
        return
    matmul = getattr(torch.backends.mkldnn, "matmul", None)
    if matmul is None or not hasattr(matmul, "fp32_precision"):
        raise RuntimeError(f"precision bf16 on the CPU needs torch >= 2.9 (this is {torch.__version__}); "
                           "use precision fp32")
    previous = matmul.fp32_precision
    matmul.fp32_precision = "bf16"
    try:
        yield
    finally:
        matmul.fp32_precision = previous
