"""Self-describing model hyperparameters, saved as ``config.json`` beside the weights.

A model folder must be loadable without the code that trained it knowing anything
beyond this file, so everything needed to rebuild the network (and to interpret its
inputs, e.g. image shape or fingerprint settings) lives here as plain JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

CONFIG_FORMAT_VERSION = 1
MODEL_KINDS = ("vae", "cvae", "beta-vae")
ACTIVATIONS = ("relu", "gelu", "silu", "elu", "tanh", "leaky_relu")
Likelihood = Literal["bernoulli", "gaussian"]


@dataclass
class ObjectiveConfig:
    """How the ELBO is weighted.

    Parameters
    ----------
    likelihood
        ``"bernoulli"`` (decoder emits logits; data in [0, 1]) or ``"gaussian"``
        (decoder emits means; fixed standard deviation ``gaussian_std``).
    beta
        Weight of the KL term (β-VAE). Reached after ``warmup_steps`` training steps
        when warm-up is on.
    warmup_steps
        Linear KL warm-up from 0 to ``beta`` over this many optimizer steps (0 = off).
    capacity_max
        Burgess et al. (2018) capacity annealing: when set, the loss is
        ``recon + gamma * |KL - C|`` with ``C`` rising linearly from 0 to ``capacity_max``
        nats over ``capacity_steps``; ``beta`` and warm-up are then unused.
    """

    likelihood: Likelihood = "bernoulli"
    gaussian_std: float = 1.0
    beta: float = 1.0
    warmup_steps: int = 0
    capacity_max: float | None = None
    capacity_steps: int = 10_000
    gamma: float = 100.0

    def __post_init__(self) -> None:
        if self.likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {self.likelihood!r}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.warmup_steps < 0 or self.capacity_steps < 1:
            raise ValueError("warmup_steps must be >= 0 and capacity_steps >= 1")
        if self.capacity_max is not None and self.capacity_max < 0:
            raise ValueError(f"capacity_max must be >= 0, got {self.capacity_max}")
        if self.gaussian_std <= 0:
            raise ValueError(f"gaussian_std must be > 0, got {self.gaussian_std}")

    @property
    def schedule_steps(self) -> int:
        """Steps after which β and capacity stop changing."""
        return self.capacity_steps if self.capacity_max is not None else self.warmup_steps


@dataclass
class VAEConfig:
    """Architecture and objective of a VAE of the shared core.

    ``metadata`` holds domain facts that are not architecture (image shape and class
    names, fingerprint radius and bits, condition names with normalization statistics).
    """

    input_dim: int
    latent_dim: int = 20
    hidden_dims: tuple[int, ...] = (512,)
    activation: str = "relu"
    dropout: float = 0.0
    condition_dim: int = 0
    kind: str = "vae"
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hidden_dims = tuple(int(h) for h in self.hidden_dims)
        if isinstance(self.objective, dict):
            self.objective = ObjectiveConfig(**self.objective)
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.input_dim < 1 or self.latent_dim < 1 or any(h < 1 for h in self.hidden_dims):
            raise ValueError("input_dim, latent_dim and hidden_dims must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if (self.kind == "cvae") != (self.condition_dim > 0):
            raise ValueError("a 'cvae' needs condition_dim > 0, and only a 'cvae' may have one")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden_dims"] = list(self.hidden_dims)
        return {"format_version": CONFIG_FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VAEConfig:
        data = dict(data)
        version = data.pop("format_version", CONFIG_FORMAT_VERSION)
        if version != CONFIG_FORMAT_VERSION:
            raise ValueError(f"unsupported config format_version {version}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> VAEConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
