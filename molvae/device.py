"""Choosing the torch device from the ``--device auto|cpu|cuda`` option."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is an error."""
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICE_CHOICES} (or cuda:N), got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was requested but torch sees no CUDA device")
    return torch.device(name)
