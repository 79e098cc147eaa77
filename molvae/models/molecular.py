"""MolecularVAE: the shared core on packed Morgan fingerprints, optionally property-conditioned.

The model is the core :class:`~molvae.models.core.VAE` with a Bernoulli likelihood over the
fingerprint bits; what makes it molecular is its config: the fingerprint settings it was
trained on and, for a conditional model, the condition columns with the mean and standard
deviation used to normalize them. Targets are given in real units (e.g. ``mw=350``) and
normalized with those saved statistics, so a reloaded model conditions exactly as trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from molvae.chem.fingerprints import FingerprintSettings, unpack_bits
from molvae.models.config import ObjectiveConfig, VAEConfig
from molvae.models.core import VAE
from molvae.training import TrainingData

DEFAULT_HIDDEN = (1024, 512)
DEFAULT_LATENT = 128
# β of the plain and conditional MolecularVAE. Decoding by nearest-neighbour search needs rate:
# trained on 380k MOSES molecules (2 epochs, batch 128), β = 0.002 recovered 99.3% of held-out
# test molecules at top-1 among all 176k (on 95k molecules: 95.1%, against 93.9% at β = 0.01),
# where β = 1 collapses (KL 1.5 nats, nothing recovered). See BENCHMARKS.md, "MolecularVAE on
# MOSES". ``beta-vae`` keeps the disentangling β = 4.
DEFAULT_BETA = 0.002


@dataclass(frozen=True)
class ConditionScaler:
    """Normalization of condition columns: z = (value − mean) / std, per column."""

    names: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]

    @classmethod
    def fit(cls, names: Sequence[str], values: np.ndarray) -> ConditionScaler:
        """Statistics of ``values`` (n × len(names)); NaN rows are not allowed."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(names):
            raise ValueError(f"expected values of shape (n, {len(names)}), got {values.shape}")
        if len(values) == 0 or not np.isfinite(values).all():
            raise ValueError(f"condition columns {list(names)} must be finite and non-empty")
        std = values.std(axis=0)
        # A constant column carries no information; unit scale keeps it harmless.
        std = np.where(std > 0, std, 1.0)
        return cls(tuple(names), tuple(values.mean(axis=0).tolist()), tuple(std.tolist()))

    def normalize(self, values: np.ndarray | Mapping[str, float], partial: bool = False) -> torch.Tensor:
        """Real units → model inputs. A mapping must name every condition unless ``partial``,
        which leaves the unnamed ones free (NaN; see :meth:`~molvae.models.core.VAE.draw`)."""
        if isinstance(values, Mapping):
            missing = [n for n in self.names if n not in values]
            unknown = [n for n in values if n not in self.names]
            if unknown:
                raise ValueError(f"unknown condition {unknown}: this model's conditions are "
                                 f"{list(self.names)}")
            if (missing and not partial) or not values:
                raise ValueError(f"conditions are {list(self.names)}; missing {missing}"
                                 + (" (name at least one)" if partial else ""))
            bad = [n for n, v in values.items() if not np.isfinite(v)]
            if bad:  # NaN marks a free condition; a given one must be a number
                raise ValueError(f"condition {bad[0]!r} must be a finite number, got {values[bad[0]]}")
            values = np.array([[values.get(n, np.nan) for n in self.names]], dtype=np.float64)
        values = np.asarray(values, dtype=np.float64).reshape(-1, len(self.names))
        return torch.from_numpy((values - np.array(self.means)) / np.array(self.stds)).float()

    def denormalize(self, z: torch.Tensor) -> np.ndarray:
        return z.detach().cpu().double().numpy() * np.array(self.stds) + np.array(self.means)

    def to_metadata(self) -> list[dict[str, float | str]]:
        return [{"name": n, "mean": m, "std": s}
                for n, m, s in zip(self.names, self.means, self.stds, strict=True)]

    @classmethod
    def from_config(cls, config: VAEConfig) -> ConditionScaler:
        entries = config.metadata.get("conditions") or []
        if not entries:
            raise ValueError("this model is not conditional")
        return cls(tuple(e["name"] for e in entries), tuple(e["mean"] for e in entries),
                   tuple(e["std"] for e in entries))


def molecular_config(kind: str, fingerprint: FingerprintSettings, *, latent_dim: int = DEFAULT_LATENT,
                     hidden_dims: Sequence[int] = DEFAULT_HIDDEN, dropout: float = 0.0,
                     beta: float | None = None, warmup_steps: int = 0, capacity: float | None = None,
                     capacity_steps: int = 10_000, gamma: float = 100.0,
                     conditions: ConditionScaler | None = None) -> VAEConfig:
    """The config of a MolecularVAE; ``beta-vae`` defaults to β = 4, the others to :data:`DEFAULT_BETA`."""
    if (kind == "cvae") != (conditions is not None):
        raise ValueError("a cvae needs condition columns, and only a cvae takes them")
    if beta is None:
        beta = 4.0 if kind == "beta-vae" else DEFAULT_BETA
    objective = ObjectiveConfig(likelihood="bernoulli", beta=beta, warmup_steps=warmup_steps,
                                capacity_max=capacity, capacity_steps=capacity_steps, gamma=gamma)
    return VAEConfig(
        input_dim=fingerprint.n_bits, latent_dim=latent_dim, hidden_dims=tuple(hidden_dims), dropout=dropout,
        condition_dim=0 if conditions is None else len(conditions.names), kind=kind, objective=objective,
        metadata={"domain": "molecules", "fingerprint": fingerprint.to_dict(),
                  "conditions": [] if conditions is None else conditions.to_metadata()})


def fingerprint_data(packed: np.ndarray, conditions: torch.Tensor | None = None) -> TrainingData:
    """Packed fingerprints kept packed (256 B a molecule at 2048 bits), unpacked per batch."""
    inputs = torch.from_numpy(np.ascontiguousarray(packed, dtype=np.uint8))
    return TrainingData(inputs, conditions, unpack_bits)


@torch.no_grad()
def latent_means(model: VAE, packed: np.ndarray, conditions: torch.Tensor | None = None,
                 batch_size: int = 4096) -> torch.Tensor:
    """Posterior means μ(x, c) of packed fingerprints, float32 on the CPU, shape (n, latent_dim)."""
    model.eval()
    data = fingerprint_data(packed, conditions).to(next(model.parameters()).device)
    means = [model.encode(x, c)[0].float().cpu() for x, c in data.batches(batch_size)]
    return torch.cat(means) if means else torch.zeros((0, model.latent_dim))
