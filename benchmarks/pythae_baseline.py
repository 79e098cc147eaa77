"""The pythae 0.1.2 side of the "our VAE vs pythae" Fashion-MNIST benchmark.

pythae's vanilla :class:`pythae.models.VAE` is trained with its *default* MLP networks, which for
``input_dim=(1, 28, 28)`` and ``latent_dim=20`` are (``pythae/models/nn/default_architectures.py``):

* encoder ``Encoder_VAE_MLP``: flatten 784 -> Linear(784, 512) -> ReLU, then two heads
  Linear(512, 20) for mu (``embedding``) and Linear(512, 20) for log sigma^2 (``log_covariance``);
* decoder ``Decoder_AE_MLP``: Linear(20, 512) -> ReLU -> Linear(512, 784) -> Sigmoid, reshaped to
  (1, 28, 28), i.e. the decoder emits Bernoulli probabilities.

Training goes through pythae's own :class:`pythae.pipelines.TrainingPipeline` and
:class:`pythae.trainers.BaseTrainerConfig` (Adam, shuffled batches of 128, one pass over the
validation set per epoch, best-on-validation model kept and saved as ``final_model`` under
``output_dir``), so pythae's overhead is part of the measured time.

The test score is *not* pythae's loss: it is recomputed here from the saved model's encoder and
decoder as a one-sample negative ELBO in nats per image (Bernoulli reconstruction term summed over
the 784 pixels plus the analytic KL to N(0, I)), so it can be compared like for like with our VAE.

Run as a script (prints the JSON result, optionally writes it to ``--json``)::

    python benchmarks/pythae_baseline.py --epochs 2 --json out.json

pythae is installed into the project venv with ``.venv/bin/pip install pythae==0.1.2`` (adds only
pythae, dataclasses, imageio and tqdm; no installed version changes).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from molvae.images.idx import read_idx

__all__ = ["load_fashion_mnist", "neg_elbo", "run_pythae"]

# ../shared beside the checkout, as in CI.
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fashion-mnist"
INPUT_DIM = (1, 28, 28)
LATENT_DIM = 20
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
N_VALID = 5_000
SPLIT_SEED = 0
PROB_EPS = 1e-7


def load_fashion_mnist(
    data_dir: str | Path = DEFAULT_DATA_DIR,
    *,
    n_valid: int = N_VALID,
    split_seed: int = SPLIT_SEED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load Fashion-MNIST as float32 arrays in [0, 1] of shape (N, 1, 28, 28).

    Returns ``(train, valid, test)``: ``valid`` is ``n_valid`` images drawn from the 60k training
    split by a permutation seeded with ``split_seed``, ``train`` is the rest (55k by default), and
    ``test`` is the 10k ``t10k`` split. Labels are not needed and not read.
    """
    data_dir = Path(data_dir)
    full_train = read_idx(data_dir / "train-images-idx3-ubyte.gz")
    test = read_idx(data_dir / "t10k-images-idx3-ubyte.gz")

    perm = np.random.default_rng(split_seed).permutation(len(full_train))
    valid_idx, train_idx = np.sort(perm[:n_valid]), np.sort(perm[n_valid:])

    def to_float(images: np.ndarray) -> np.ndarray:
        return (images.astype(np.float32) / 255.0)[:, None, :, :]

    return to_float(full_train[train_idx]), to_float(full_train[valid_idx]), to_float(test)


@torch.no_grad()
def neg_elbo(
    encoder: torch.nn.Module,
    decoder: torch.nn.Module,
    x: np.ndarray,
    *,
    seed: int = 0,
    batch_size: int = 1_000,
) -> tuple[float, float, float]:
    """One-sample negative ELBO of a pythae encoder/decoder pair, in nats per image.

    For each image: z = mu + sigma * eps with eps ~ N(0, I) drawn from a ``torch.Generator``
    seeded with ``seed``; reconstruction = sum over the 784 pixels of the binary cross entropy
    between the pixel value and the decoder's probability clamped to [1e-7, 1 - 1e-7];
    KL = 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2). Returns the test-set means of
    ``(reconstruction + KL, reconstruction, KL)``.
    """
    encoder.eval()
    decoder.eval()
    gen = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    recon_sum = 0.0
    kl_sum = 0.0
    for start in range(0, len(data), batch_size):
        xb = data[start : start + batch_size]
        enc = encoder(xb)
        mu, log_var = enc["embedding"], enc["log_covariance"]
        std = torch.exp(0.5 * log_var)
        eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype)
        z = mu + std * eps
        probs = decoder(z)["reconstruction"].reshape(len(xb), -1).clamp(PROB_EPS, 1.0 - PROB_EPS)
        target = xb.reshape(len(xb), -1)
        bce = -(target * torch.log(probs) + (1.0 - target) * torch.log1p(-probs))
        kl = 0.5 * (mu.pow(2) + log_var.exp() - 1.0 - log_var).sum(dim=1)
        recon_sum += bce.sum(dim=1).double().sum().item()
        kl_sum += kl.double().sum().item()
    n = len(data)
    return (recon_sum + kl_sum) / n, recon_sum / n, kl_sum / n


def _check_images(name: str, x: np.ndarray) -> None:
    if x.ndim != 4 or x.shape[1:] != INPUT_DIM:
        raise ValueError(f"{name} must have shape (N, 1, 28, 28), got {x.shape}")
    if x.dtype != np.float32:
        raise ValueError(f"{name} must be float32, got {x.dtype}")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(f"{name} must lie in [0, 1]")


def run_pythae(
    train_x: np.ndarray,
    eval_x: np.ndarray,
    test_x: np.ndarray,
    *,
    epochs: int,
    seed: int = 0,
    output_dir: str,
) -> dict:
    """Train pythae's default-MLP VAE through ``TrainingPipeline`` on CPU and score it on test.

    Args:
        train_x: training images, float32 in [0, 1], shape (N, 1, 28, 28).
        eval_x: validation images (pythae's ``eval_data``: evaluated every epoch, selects the
            best model that pythae saves as ``final_model``).
        test_x: test images for the negative ELBO.
        epochs: number of training epochs (``BaseTrainerConfig.num_epochs``).
        seed: seeds the weight initialisation (``torch.manual_seed``), pythae's trainer
            (``BaseTrainerConfig.seed``, which pythae re-applies before training) and the
            evaluation noise.
        output_dir: where pythae writes its ``VAE_training_<timestamp>`` folder.

    Returns:
        ``{"seconds_per_epoch", "epochs", "test_neg_elbo_nats", "test_recon_nats",
        "test_kl_nats"}``; seconds per epoch is the wall time of the pipeline call (pythae's
        preprocessing, sanity check, training, validation and model saving) divided by
        ``epochs``; the test numbers are nats per image from :func:`neg_elbo` applied to the
        model pythae saved as ``final_model``.
    """
    from pythae.models import VAE, VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    if epochs < 1:
        raise ValueError("epochs must be >= 1")
    for name, arr in (("train_x", train_x), ("eval_x", eval_x), ("test_x", test_x)):
        _check_images(name, arr)

    torch.manual_seed(seed)
    model_config = VAEConfig(input_dim=INPUT_DIM, latent_dim=LATENT_DIM, reconstruction_loss="bce")
    model = VAE(model_config=model_config)
    training_config = BaseTrainerConfig(
        output_dir=str(output_dir),
        num_epochs=epochs,
        learning_rate=LEARNING_RATE,
        per_device_train_batch_size=BATCH_SIZE,
        per_device_eval_batch_size=BATCH_SIZE,
        seed=seed,
        no_cuda=True,
    )
    pipeline = TrainingPipeline(model=model, training_config=training_config)

    start = time.perf_counter()
    pipeline(train_data=train_x, eval_data=eval_x)
    elapsed = time.perf_counter() - start

    final_dir = Path(pipeline.trainer.training_dir) / "final_model"
    trained = VAE.load_from_folder(str(final_dir))
    total, recon, kl = neg_elbo(trained.encoder, trained.decoder, test_x, seed=seed)
    return {
        "seconds_per_epoch": elapsed / epochs,
        "epochs": epochs,
        "test_neg_elbo_nats": total,
        "test_recon_nats": recon,
        "test_kl_nats": kl,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: load Fashion-MNIST, run :func:`run_pythae`, print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where pythae saves its model (default: a temporary directory, removed afterwards)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)

    train_x, eval_x, test_x = load_fashion_mnist(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="pythae_baseline_") as tmp:
        output_dir = args.output_dir if args.output_dir is not None else Path(tmp)
        result = run_pythae(
            train_x, eval_x, test_x, epochs=args.epochs, seed=args.seed, output_dir=str(output_dir)
        )

    text = json.dumps(result, indent=2)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
