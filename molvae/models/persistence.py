"""A model is a folder: ``config.json`` (hyperparameters), ``weights.pt`` (a state_dict) and,
once fitted, ``latent_density.pt`` (the latent density's tensors).

Loading rebuilds the network from the config and reads tensors with
``weights_only=True``; no Python objects are ever unpickled.
"""

from __future__ import annotations

from pathlib import Path

import torch

from molvae.io import atomic_path
from molvae.latent_density import DENSITY_FILE, GaussianMixture
from molvae.models.config import VAEConfig
from molvae.models.core import VAE

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"


def save_model(model: VAE, directory: str | Path) -> Path:
    """Write ``model`` to ``directory`` (created if needed) and return the folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        torch.save(state, tmp)
    with atomic_path(directory / CONFIG_FILE) as tmp:
        model.config.save(tmp)
    if model.latent_density is not None:
        model.latent_density.save(directory / DENSITY_FILE)
    else:
        # A density fitted to earlier weights in this folder no longer describes these.
        (directory / DENSITY_FILE).unlink(missing_ok=True)
    return directory


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> VAE:
    """Rebuild a model saved by :func:`save_model`, in eval mode on ``device``."""
    directory = Path(directory)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not a model folder: {name} is missing")
    model = VAE(VAEConfig.load(directory / CONFIG_FILE))
    state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    if (directory / DENSITY_FILE).is_file():
        model.latent_density = GaussianMixture.load(directory / DENSITY_FILE)
    return model.to(device).eval()
