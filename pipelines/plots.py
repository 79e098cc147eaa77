"""Figures logged with each molecular run: the loss curves and a PCA of the latent space."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and workers
import matplotlib.pyplot as plt
import numpy as np


def loss_curves(history: list[dict[str, float]], out: str | Path) -> Path:
    """Training and validation loss and KL per epoch."""
    epochs = np.arange(1, len(history) + 1)
    figure, (loss_axis, kl_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for key, axis in (("loss", loss_axis), ("kl", kl_axis)):
        for prefix in ("train_", "val_"):
            values = [row.get(prefix + key, np.nan) for row in history]
            if np.isfinite(values).any():
                axis.plot(epochs, values, marker="o", label=prefix.rstrip("_"))
        axis.set_xlabel("epoch")
        axis.set_ylabel(f"{key} (nats per molecule)")
        axis.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return Path(out)


def latent_pca(means: np.ndarray, values: np.ndarray, label: str, out: str | Path) -> Path:
    """The first two principal components of posterior means, coloured by a property."""
    centred = means - means.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ axes[:2].T
    explained = singular[:2] ** 2 / max(float((singular**2).sum()), 1e-12)
    figure, axis = plt.subplots(figsize=(6, 5))
    points = axis.scatter(projected[:, 0], projected[:, 1], c=values, s=4, cmap="viridis")
    figure.colorbar(points, label=label)
    axis.set_xlabel(f"PC1 ({explained[0]:.0%})")
    axis.set_ylabel(f"PC2 ({explained[1]:.0%})")
    axis.set_title(f"latent means of {len(means):,} training molecules")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return Path(out)
