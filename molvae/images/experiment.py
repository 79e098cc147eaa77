"""Training and evaluating the core's models on 28×28 images.

Splits are reproducible from the seed recorded in the model config, so every later
command (sampling, inpainting, anomaly scoring) can find the same held-out images.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from molvae.images.datasets import IMAGE_SHAPE, ImageSet, load_image_source
from molvae.io import write_json
from molvae.models.config import ObjectiveConfig, VAEConfig
from molvae.models.core import VAE
from molvae.objectives import summarize_elbo
from molvae.training import Callback, TrainConfig, Trainer, TrainingData

N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
METRICS_FILE = "metrics.json"


@dataclass
class ImageSplits:
    train: ImageSet
    val: ImageSet
    test: ImageSet


def split_images(sets: dict[str, ImageSet], val_fraction: float, test_fraction: float,
                 seed: int) -> ImageSplits:
    """Train / validation / test sets from loaded splits.

    A ``"test"`` split is used as the test set when there is also a ``"train"`` split;
    otherwise ``test_fraction`` of the only split is held out. Validation is always
    carved from the training part. Both carves are seeded permutations.
    """
    rng = np.random.default_rng(seed)
    if "train" in sets and "test" in sets:
        pool, test = sets["train"], sets["test"]
    else:
        (only,) = sets.values()
        order = rng.permutation(len(only))
        n_test = round(len(only) * test_fraction)
        pool, test = only.subset(order[n_test:]), only.subset(order[:n_test])
    order = rng.permutation(len(pool))
    n_val = round(len(pool) * val_fraction)
    return ImageSplits(pool.subset(order[n_val:]), pool.subset(order[:n_val]), test)


def pixels(images: ImageSet | np.ndarray) -> torch.Tensor:
    """uint8 images → float pixels in [0, 1], shape (n, 784)."""
    array = images.images if isinstance(images, ImageSet) else images
    return torch.from_numpy(np.ascontiguousarray(array)).reshape(len(array), -1).float().div_(255.0)


def one_hot(labels: np.ndarray | Sequence[int], n_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(np.asarray(labels), dtype=torch.long),
                                       n_classes).float()


def _uint8_to_unit(batch: torch.Tensor) -> torch.Tensor:
    return batch.float().div_(255.0)


def training_data(images: ImageSet, config: VAEConfig) -> TrainingData:
    """Compact uint8 pixels, one-hot labels as conditions for a CVAE."""
    return image_data(images, config.condition_dim)


def image_data(images: ImageSet, condition_dim: int) -> TrainingData:
    """Images as model inputs for a model with ``condition_dim`` classes (0: unconditional)."""
    inputs = torch.from_numpy(np.ascontiguousarray(images.images)).reshape(len(images), -1)
    conditions = None
    if condition_dim:
        if images.labels is None:
            raise ValueError("a cvae needs labelled images (labels are the condition)")
        conditions = one_hot(images.labels, condition_dim)
    return TrainingData(inputs, conditions, _uint8_to_unit)


def image_config(kind: str, class_names: Sequence[str], *, latent_dim: int = 20,
                 hidden_dims: Sequence[int] = (512,), dropout: float = 0.0, beta: float | None = None,
                 warmup_steps: int = 0, capacity: float | None = None, capacity_steps: int = 10_000,
                 gamma: float = 100.0, split: dict | None = None) -> VAEConfig:
    """The config of an image VAE; ``beta-vae`` defaults to β = 4 as in Higgins et al."""
    if beta is None:
        beta = 4.0 if kind == "beta-vae" else 1.0
    if kind == "cvae" and not class_names:
        raise ValueError("a cvae needs class names (labelled images)")
    objective = ObjectiveConfig(likelihood="bernoulli", beta=beta, warmup_steps=warmup_steps,
                                capacity_max=capacity, capacity_steps=capacity_steps, gamma=gamma)
    return VAEConfig(
        input_dim=N_PIXELS, latent_dim=latent_dim, hidden_dims=tuple(hidden_dims), dropout=dropout,
        condition_dim=len(class_names) if kind == "cvae" else 0, kind=kind, objective=objective,
        metadata={"domain": "image", "image_shape": list(IMAGE_SHAPE),
                  "class_names": list(class_names), "split": split or {}},
    )


@torch.no_grad()
def evaluate_images(model: VAE, images: ImageSet, iwae_k: int = 100, seed: int = 0,
                    batch_size: int = 1000) -> dict[str, float]:
    """Test-set −ELBO (1 sample; BCE on [0, 1] pixels plus KL) and IWAE NLL, nats/image."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    batches = image_data(images, model.condition_dim).to(device).batches(batch_size)
    summary = summarize_elbo(model, batches, gen, iwae_k)
    metrics = {"test_neg_elbo_nats": summary["neg_elbo_nats"], "test_recon_nats": summary["recon_nats"],
               "test_kl_nats": summary["kl_nats"], "active_units": summary["active_units"],
               "n_test": summary["n"]}
    if iwae_k:
        metrics |= {"test_iwae_nll_nats": summary["iwae_nll_nats"], "iwae_k": iwae_k}
    return metrics


def train_image_model(source: str | Path, model_dir: str | Path, *, kind: str = "vae",
                      train_config: TrainConfig | None = None, latent_dim: int = 20,
                      hidden_dims: Sequence[int] = (512,), beta: float | None = None,
                      warmup_steps: int = 0, capacity: float | None = None,
                      capacity_steps: int = 10_000, gamma: float = 100.0,
                      val_fraction: float = 0.1, test_fraction: float = 0.1,
                      exclude_class: int | None = None, iwae_k: int = 100, resume: bool = False,
                      callbacks: Sequence[Callback] = ()) -> dict[str, float]:
    """Train an image VAE/CVAE/β-VAE on ``source``, evaluate it, write ``metrics.json``.

    ``exclude_class`` drops one label from training and validation (the test set keeps
    it), which is how anomaly detection of an unseen class is measured.
    """
    train_config = train_config or TrainConfig()
    split = {"seed": train_config.seed, "val_fraction": val_fraction, "test_fraction": test_fraction,
             "exclude_class": exclude_class}
    splits = split_images(load_image_source(source), val_fraction, test_fraction, train_config.seed)
    train, val = splits.train, splits.val
    if exclude_class is not None:
        if train.labels is None:
            raise ValueError("exclude_class needs labelled images")
        train = train.subset(train.labels != exclude_class)
        val = val.subset(val.labels != exclude_class)
    config = image_config(kind, train.class_names, latent_dim=latent_dim, hidden_dims=hidden_dims,
                          beta=beta, warmup_steps=warmup_steps, capacity=capacity,
                          capacity_steps=capacity_steps, gamma=gamma, split=split)
    torch.manual_seed(train_config.seed)  # the initial weights are part of a seeded run
    trainer = Trainer(VAE(config), train_config, model_dir, callbacks)
    started = time.perf_counter()
    result = trainer.fit(training_data(train, config), training_data(val, config), resume=resume)
    seconds = time.perf_counter() - started
    metrics = evaluate_images(trainer.model, splits.test, iwae_k=iwae_k, seed=train_config.seed)
    metrics |= {
        "kind": kind, "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "device": str(trainer.device), "precision": trainer.precision,
        # Wall time of this fit (validation, checkpoints, progress, final save) per epoch run.
        "seconds_per_epoch": seconds / max(1, result.epochs_this_fit),
        "train_seconds": seconds, "n_train": len(train), "n_val": len(val),
        "final_val_neg_elbo": result.history[-1].get("val_neg_elbo"),
    }
    write_json(Path(model_dir) / METRICS_FILE, metrics)
    return metrics


def held_out_images(config: VAEConfig, source: str | Path) -> ImageSet:
    """The test set a model was evaluated on, rebuilt from the split in its config."""
    split = config.metadata.get("split") or {}
    splits = split_images(load_image_source(source), split.get("val_fraction", 0.1),
                          split.get("test_fraction", 0.1), split.get("seed", 0))
    return splits.test
