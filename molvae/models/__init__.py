"""Models of the shared VAE core and their persistence."""

from molvae.models.config import ObjectiveConfig, VAEConfig
from molvae.models.core import VAE, VAEOutput
from molvae.models.persistence import load_model, save_model

__all__ = ["VAE", "ObjectiveConfig", "VAEConfig", "VAEOutput", "load_model", "save_model"]
