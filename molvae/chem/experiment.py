"""Training a MolecularVAE on an ingested dataset (``molvae train``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from molvae.chem.anomaly import REFERENCE_KEY, fingerprint_scores, reference_quantiles
from molvae.data import MoleculeDataset
from molvae.io import write_json
from molvae.latent_density import GaussianMixture
from molvae.models.core import VAE
from molvae.models.molecular import ConditionScaler, fingerprint_data, latent_means, molecular_config
from molvae.models.persistence import save_model
from molvae.objectives import summarize_elbo
from molvae.training import Callback, TrainConfig, Trainer

METRICS_FILE = "metrics.json"
REFERENCE_ROWS = 20_000  # training molecules behind the anomaly reference and the latent density
# One full-covariance Gaussian: on the 380k MOSES model it raised the median decode similarity
# of 2,000 prior draws from 0.20 (N(0, I)) to 0.38 in 0.3 s; 16 components reached 0.40 in 46 s
# (BENCHMARKS.md, "Sampling from the fitted latent density").
DEFAULT_DENSITY_COMPONENTS = 1


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and validation row numbers from a seeded permutation."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(n * val_fraction)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@torch.no_grad()
def evaluate_fingerprints(model: VAE, packed: np.ndarray, conditions: torch.Tensor | None = None,
                          seed: int = 0, batch_size: int = 4096) -> dict[str, float]:
    """Mean −ELBO, reconstruction and KL (nats per molecule, 1 sample) and active units."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    batches = fingerprint_data(packed, conditions).to(device).batches(batch_size)
    summary = summarize_elbo(model, batches, gen)
    return {key: summary[key] for key in ("neg_elbo_nats", "recon_nats", "kl_nats", "active_units")}


def reference_sample(train_rows: np.ndarray) -> np.ndarray:
    """Up to :data:`REFERENCE_ROWS` training rows, evenly spaced: the anomaly reference and density fit."""
    picks = np.linspace(0, len(train_rows) - 1, min(len(train_rows), REFERENCE_ROWS)).astype(np.int64)
    return train_rows[picks]


def fit_latent_density(model: VAE, packed: np.ndarray, conditions: torch.Tensor | None,
                       n_components: int, seed: int = 0) -> GaussianMixture:
    """A mixture over the latent means of ``packed`` (joined with ``conditions`` when given)."""
    means = latent_means(model, packed, conditions)
    points = means if conditions is None else torch.cat([means, conditions.float().cpu()], dim=1)
    return GaussianMixture.fit(points, n_components, seed=seed)


def train_molecular_model(dataset_dir: str | Path, model_dir: str | Path, *, kind: str = "vae",
                          condition: Sequence[str] = (), train_config: TrainConfig | None = None,
                          latent_dim: int | None = None, hidden_dims: Sequence[int] | None = None,
                          beta: float | None = None, warmup_steps: int = 0, capacity: float | None = None,
                          capacity_steps: int = 10_000, val_fraction: float = 0.05, resume: bool = False,
                          density_components: int = DEFAULT_DENSITY_COMPONENTS,
                          callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train a MolecularVAE (or its conditional / β variant) and write ``metrics.json``.

    Condition columns missing from the dataset are computed and cached in it first; their
    normalization statistics come from the training rows and are saved in the model config.
    After training, a Gaussian mixture of ``density_components`` is fitted to the latent
    means of up to :data:`REFERENCE_ROWS` training molecules (joined with their normalized
    conditions for a cvae) and saved with the model; generation samples it by default.
    """
    train_config = train_config or TrainConfig()
    dataset = MoleculeDataset(dataset_dir)
    if len(dataset) < 2:
        raise ValueError(f"{dataset_dir} holds {len(dataset)} molecules; training needs at least 2")
    train_rows, val_rows = split_rows(len(dataset), val_fraction, train_config.seed)
    names = list(condition)
    scaler = values = None
    if names:
        if kind != "cvae":
            raise ValueError("--condition needs --kind cvae")
        dataset.ensure_properties(names)
        columns = dataset.molecules(names)
        text = [name for name in names if not pd.api.types.is_numeric_dtype(columns[name])]
        if text:
            example = columns[text[0]].iloc[0]
            raise ValueError(f"condition column {text[0]!r} is not numeric (e.g. {example!r}); a cvae "
                             "conditions on numeric properties such as qed, clogp, mw")
        values = columns.to_numpy(dtype=np.float64)
        scaler = ConditionScaler.fit(names, values[train_rows])
    elif kind == "cvae":
        raise ValueError("a cvae needs --condition (property columns, e.g. qed,clogp,mw)")
    options = {"latent_dim": latent_dim, "hidden_dims": hidden_dims}
    config = molecular_config(kind, dataset.fingerprint_settings, beta=beta, warmup_steps=warmup_steps,
                              capacity=capacity, capacity_steps=capacity_steps, conditions=scaler,
                              **{k: v for k, v in options.items() if v is not None})
    config.metadata |= {"dataset_content_hash": dataset.manifest["content_hash"],
                        "split": {"seed": train_config.seed, "val_fraction": val_fraction}}
    packed = np.asarray(dataset.fingerprints)

    def conditions_of(rows: np.ndarray) -> torch.Tensor | None:
        return None if scaler is None else scaler.normalize(values[rows])

    torch.manual_seed(train_config.seed)  # the initial weights are part of a seeded run
    trainer = Trainer(VAE(config), train_config, model_dir, callbacks)
    started = time.perf_counter()
    result = trainer.fit(fingerprint_data(packed[train_rows], conditions_of(train_rows)),
                         fingerprint_data(packed[val_rows], conditions_of(val_rows)), resume=resume)
    seconds = time.perf_counter() - started
    # The applicability-domain reference: where training molecules fall, saved with the model.
    reference_rows = reference_sample(train_rows)
    reference = fingerprint_scores(trainer.model, packed[reference_rows], conditions_of(reference_rows),
                                   seed=train_config.seed)
    trainer.model.config.metadata[REFERENCE_KEY] = reference_quantiles(reference)
    started = time.perf_counter()
    trainer.model.latent_density = fit_latent_density(
        trainer.model, packed[reference_rows], conditions_of(reference_rows), density_components,
        seed=train_config.seed)
    density_seconds = time.perf_counter() - started
    save_model(trainer.model, model_dir)
    metrics = {f"val_{k}": v for k, v in evaluate_fingerprints(
        trainer.model, packed[val_rows], conditions_of(val_rows), seed=train_config.seed).items()}
    metrics |= {"kind": kind, "conditions": names, "n_train": len(train_rows), "n_val": len(val_rows),
                "epochs_run": len(result.history), "best_epoch": result.best_epoch,
                "stopped_early": result.stopped_early,
                "density_components": trainer.model.latent_density.n_components,
                "density_fit_seconds": density_seconds,
                "device": str(trainer.device), "precision": trainer.precision,
                "seconds_per_epoch": seconds / max(1, result.epochs_this_fit),
                "samples_per_second": len(train_rows) * result.epochs_this_fit / seconds if seconds else None}
    write_json(Path(model_dir) / METRICS_FILE, metrics)
    return metrics
