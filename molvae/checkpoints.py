"""Training checkpoints: everything needed to resume a run bit-for-bit.

A checkpoint holds only tensors, numbers and strings, so it loads with
``torch.load(weights_only=True)``; configs travel as JSON strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from molvae.io import atomic_path

CHECKPOINT_FILE = "checkpoint.pt"
_FORMAT_VERSION = 1
_JSON_FIELDS = ("model_config", "history", "training")


@dataclass
class TrainingState:
    """The resumable state of a run after ``epoch`` completed epochs."""

    model_config: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    epoch: int
    step: int
    torch_rng: torch.Tensor
    shuffle_rng: torch.Tensor
    history: list[dict[str, Any]] = field(default_factory=list)
    best_model: dict[str, torch.Tensor] | None = None
    best_val: float = float("inf")
    best_epoch: int = -1
    bad_epochs: int = 0
    cuda_rng: list[torch.Tensor] = field(default_factory=list)
    # The settings a resume must keep (learning rate, batch size, ...); empty in checkpoints
    # written before they were recorded.
    training: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(state: TrainingState, directory: str | Path) -> Path:
    """Atomically write ``state`` to ``directory/checkpoint.pt``."""
    path = Path(directory) / CHECKPOINT_FILE
    payload = {
        "format_version": _FORMAT_VERSION,
        **{k: v for k, v in state.__dict__.items() if k not in _JSON_FIELDS},
        **{k: json.dumps(getattr(state, k)) for k in _JSON_FIELDS},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(directory: str | Path) -> TrainingState:
    """Read a checkpoint written by :func:`save_checkpoint` (no unpickling of objects)."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    version = payload.pop("format_version", None)
    if version != _FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported checkpoint format_version {version}")
    for key in _JSON_FIELDS:
        if key in payload:
            payload[key] = json.loads(payload[key])
    return TrainingState(**payload)
