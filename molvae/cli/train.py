"""``molvae train``: fit a MolecularVAE (or its conditional / β variant) on an ingested dataset."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from molvae.cli.errors import user_errors
from molvae.cli.options import Precision, parse_widths

console = Console()


@user_errors
def train_command(
    dataset: Path = typer.Argument(..., help="Dataset folder written by 'molvae ingest'."),
    out: Path = typer.Option(..., "-o", "--out", help="Model folder to write."),
    kind: str = typer.Option("vae", "--kind", help="vae, cvae or beta-vae."),
    condition: str | None = typer.Option(
        None, "--condition", help="cvae: property columns, e.g. qed,clogp,mw (computed if missing)."),
    latent_dim: int | None = typer.Option(None, "--latent-dim", help="Default 128."),
    hidden: str | None = typer.Option(
        None, "--hidden", help="Comma-separated encoder widths (default 1024,512)."),
    epochs: int = typer.Option(10, "--epochs"),
    batch_size: int = typer.Option(128, "--batch-size",
                                   help="128: 4× the steps of 512 per epoch, which recovery needs."),
    lr: float = typer.Option(1e-3, "--lr"),
    beta: float | None = typer.Option(None, "--beta", help="KL weight (default 0.002; 4 for beta-vae)."),
    warmup_steps: int = typer.Option(0, "--warmup-steps"),
    capacity: float | None = typer.Option(None, "--capacity", help="Capacity C_max in nats (Burgess)."),
    capacity_steps: int = typer.Option(10_000, "--capacity-steps"),
    val_fraction: float = typer.Option(0.05, "--val-fraction"),
    density_components: int = typer.Option(
        1, "--density-components", min=1,
        help="Gaussians in the latent density fitted after training (generation samples it)."),
    patience: int = typer.Option(5, "--patience", help="Early-stopping patience (0 = off)."),
    resume: bool = typer.Option(False, "--resume"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    precision: str = Precision,
    seed: int = typer.Option(0, "--seed"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train on packed fingerprints (unpacked per batch); writes config.json, weights.pt, metrics.json."""
    from molvae.chem.experiment import train_molecular_model
    from molvae.training import TrainConfig

    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience or None,
                         device=device, precision=precision, seed=seed, progress=progress)
    metrics = train_molecular_model(
        dataset, out, kind=kind, condition=condition.split(",") if condition else (), train_config=config,
        latent_dim=latent_dim, hidden_dims=parse_widths(hidden) if hidden else None, beta=beta,
        warmup_steps=warmup_steps, capacity=capacity, capacity_steps=capacity_steps,
        val_fraction=val_fraction, resume=resume, density_components=density_components)
    console.print(f"wrote {out}", markup=False, soft_wrap=True)
    console.print_json(json.dumps(metrics))
