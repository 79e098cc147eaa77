"""``molvae evaluate``: recovery, prior-sample and conditional-control metrics of a MolecularVAE."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from molvae.chem.hubness import DEFAULT_HUB_NEIGHBOURS
from molvae.cli.errors import user_errors

console = Console()


@user_errors
def evaluate_command(
    model_dir: Path = typer.Argument(..., help="Model folder written by 'molvae train'."),
    library: Path = typer.Option(..., "--library", help="Library folder; it should hold the test molecules."),
    train: Path = typer.Option(..., "--train", help="The training dataset (novelty, control targets)."),
    test: Path = typer.Option(..., "--test", help="A held-out dataset from 'molvae ingest'."),
    out: Path = typer.Option(..., "-o", "--out", help="Metrics JSON."),
    k: int = typer.Option(10, "--k"),
    recovery_n: int = typer.Option(1000, "--recovery-n", help="Test molecules to reconstruct."),
    n_samples: int = typer.Option(10_000, "--n-samples", help="Prior draws (unconditional models)."),
    per_target: int = typer.Option(1000, "--per-target", help="Draws per condition target (cvae)."),
    prior: str = typer.Option("fitted", "--prior", help="fitted (the model's latent density) or standard."),
    guide_k: int | None = typer.Option(None, "--guide-k",
                                       help="cvae control: each draw keeps the one of its K nearest library "
                                            "molecules chosen by the targets (default by library size: 24, "
                                            "or 48 above ~500k molecules; 1: no guide)."),
    guide_band: float | None = typer.Option(None, "--guide-band",
                                            help="cvae control: as in 'molvae generate' (default 0.85, or "
                                                 "0.5 above ~500k molecules)."),
    hubness: int = typer.Option(DEFAULT_HUB_NEIGHBOURS, "--hubness",
                                help="As in 'molvae generate': CSLS neighbours of the hubness correction of "
                                     "prior and control draws (0: plain nearest neighbour)."),
    similarity: list[str] = typer.Option(["soft-tanimoto", "soft-tanimoto-sq"], "--similarity",
                                         help="Similarities for recovery; the first decodes samples."),
    novel: bool = typer.Option(False, "--novel",
                               help="Prior and conditional draws (and the random draw) leave the training "
                                    "molecules out of the library."),
    device: str = typer.Option("auto", "--device"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Recovery (top-1, top-k), hubness and MOSES set metrics beside a random library draw, control."""
    from molvae.chem.evaluation import evaluate_model
    from molvae.chem.search import FingerprintLibrary
    from molvae.data import MoleculeDataset
    from molvae.device import resolve_device
    from molvae.io import write_json
    from molvae.models import load_model

    model = load_model(model_dir, resolve_device(device))
    metrics = evaluate_model(model, FingerprintLibrary.open(library), MoleculeDataset(train),
                             MoleculeDataset(test),
                             k=k, recovery_n=recovery_n, n_samples=n_samples, samples_per_target=per_target,
                             similarities=similarity, prior=prior, guide_k=guide_k, guide_band=guide_band,
                             hubness=hubness, device=device, seed=seed, novel=novel)
    write_json(out, metrics)
    console.print(f"wrote {out}", markup=False, soft_wrap=True)
    console.print_json(json.dumps(metrics))
