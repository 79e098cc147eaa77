"""``molvae images …``: train the core's models on 28×28 images and draw what they learned."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from molvae.cli.errors import user_errors
from molvae.cli.options import Precision, parse_widths

# torch-backed modules are imported inside the commands: `molvae` starts fast, and worker
# processes that re-import the entry point (multiprocessing spawn) do not load torch.

app = typer.Typer(help="Image VAE, CVAE and β-VAE on 28×28 images (IDX files or PNG folders).",
                  no_args_is_help=True)
console = Console()

SOURCE_HELP = "'bundled' (Fashion-MNIST test split in data/), an IDX directory or file, or a PNG folder."
ModelDir = typer.Argument(..., help="Model folder written by 'molvae images train'.", exists=True,
                          file_okay=False)
Source = typer.Argument("bundled", help=SOURCE_HELP)
Out = typer.Option(..., "-o", "--out", help="PNG file to write (a JSON file is written beside it).")
Device = typer.Option("auto", "--device", help="auto, cpu or cuda.")
Seed = typer.Option(0, "--seed")


def _load(model_dir: Path, device: str):
    from molvae.device import resolve_device
    from molvae.models import load_model

    return load_model(model_dir, resolve_device(device))


def _with_held_out(model_dir: Path, source: str, device: str):
    """The model and the held-out images it was evaluated on."""
    from molvae.images.experiment import held_out_images

    model = _load(model_dir, device)
    return model, held_out_images(model.config, source)


def _report(out: Path, data: dict) -> None:
    console.print(f"wrote {out}", markup=False, soft_wrap=True)
    console.print_json(json.dumps(data))


@app.command()
@user_errors
def train(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    out: Path = typer.Option(..., "-o", "--out", help="Model folder to write."),
    kind: str = typer.Option("vae", "--kind", help="vae, cvae or beta-vae."),
    latent_dim: int = typer.Option(20, "--latent-dim"),
    hidden: str = typer.Option("512", "--hidden", help="Comma-separated encoder widths."),
    epochs: int = typer.Option(20, "--epochs"),
    batch_size: int = typer.Option(128, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr"),
    beta: float | None = typer.Option(None, "--beta", help="KL weight (default 1; 4 for beta-vae)."),
    warmup_steps: int = typer.Option(0, "--warmup-steps", help="Linear KL warm-up steps."),
    capacity: float | None = typer.Option(None, "--capacity", help="Capacity C_max in nats (Burgess)."),
    capacity_steps: int = typer.Option(10_000, "--capacity-steps"),
    gamma: float = typer.Option(100.0, "--gamma", help="Weight of |KL - C| with --capacity."),
    val_fraction: float = typer.Option(0.1, "--val-fraction"),
    test_fraction: float = typer.Option(0.1, "--test-fraction",
                                        help="Held out when the source has no test split."),
    patience: int = typer.Option(5, "--patience", help="Early-stopping patience (0 = off)."),
    exclude_class: int | None = typer.Option(None, "--exclude-class",
                                             help="Train without this label (anomaly studies)."),
    iwae_k: int = typer.Option(100, "--iwae-k", help="Samples for the test IWAE NLL (0 = skip)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the folder's checkpoint."),
    device: str = Device,
    precision: str = Precision,
    seed: int = Seed,
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train, then write config.json, weights.pt, checkpoint.pt and metrics.json to OUT."""
    from molvae.images.experiment import train_image_model
    from molvae.training import TrainConfig

    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience or None,
                         device=device, precision=precision, seed=seed, progress=progress)
    metrics = train_image_model(
        source, out, kind=kind, train_config=config, latent_dim=latent_dim,
        hidden_dims=parse_widths(hidden), beta=beta, warmup_steps=warmup_steps,
        capacity=capacity, capacity_steps=capacity_steps, gamma=gamma,
        val_fraction=val_fraction, test_fraction=test_fraction, exclude_class=exclude_class,
        iwae_k=iwae_k, resume=resume)
    _report(out / "metrics.json", metrics)


@app.command()
@user_errors
def sample(model_dir: Path = ModelDir, out: Path = Out, n: int = typer.Option(64, "-n"),
           temperature: float = typer.Option(1.0, "--temperature"),
           label: str | None = typer.Option(None, "--label", help="CVAE class (name or index)."),
           device: str = Device, seed: int = Seed) -> None:
    """Decode draws from the prior (a CVAE draws a row per class)."""
    from molvae.images import figures

    _report(out, figures.sample_figure(_load(model_dir, device), out, n, temperature, label, seed))


@app.command()
@user_errors
def interpolate(model_dir: Path = ModelDir, source: str = Source, out: Path = Out,
                pairs: int = typer.Option(6, "--pairs"), steps: int = typer.Option(10, "--steps"),
                method: str = typer.Option("lerp", "--method", help="lerp or slerp."),
                device: str = Device, seed: int = Seed) -> None:
    """Paths between random pairs of held-out images."""
    from molvae.images import figures

    model, images = _with_held_out(model_dir, source, device)
    _report(out, figures.interpolation_figure(model, images, out, pairs, steps, method, seed))


@app.command()
@user_errors
def variations(model_dir: Path = ModelDir, source: str = Source, out: Path = Out,
               index: list[int] = typer.Option([0, 1, 2, 3], "--index", help="Held-out image index."),
               n: int = typer.Option(10, "-n"), spread: float = typer.Option(0.5, "--spread"),
               device: str = Device, seed: int = Seed) -> None:
    """Variations around held-out images: z = μ + spread·ε."""
    from molvae.images import figures

    model, images = _with_held_out(model_dir, source, device)
    _report(out, figures.variations_figure(model, images, out, list(index), n, spread, seed))


@app.command()
@user_errors
def inpaint(model_dir: Path = ModelDir, source: str = Source, out: Path = Out,
            n: int = typer.Option(8, "-n"),
            mask: str = typer.Option("right", "--mask",
                                     help="Hidden part: right, left, top, bottom, center or random."),
            iterations: int = typer.Option(20, "--iterations"),
            device: str = Device, seed: int = Seed) -> None:
    """Fill masked parts of held-out images, one pass against iterated passes."""
    from molvae.images import figures

    model, images = _with_held_out(model_dir, source, device)
    _report(out, figures.inpainting_figure(model, images, out, n, mask, iterations, seed))


@app.command()
@user_errors
def anomaly(model_dir: Path = ModelDir, source: str = Source,
            out: Path = typer.Option(..., "-o", "--out", help="CSV of scores (PNG and JSON beside it)."),
            method: str = typer.Option("elbo", "--method", help="elbo (−ELBO) or iwae (IWAE NLL)."),
            device: str = Device, seed: int = Seed) -> None:
    """Score held-out images: higher = more unusual for this model."""
    from molvae.images import figures

    model, images = _with_held_out(model_dir, source, device)
    _report(out, figures.anomaly_report(model, images, out, method, seed=seed))
