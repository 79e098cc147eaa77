"""``molvae reconstruct``: encode → decode → search each input, the evaluation primitive."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from molvae.cli.errors import user_errors

console = Console()


@user_errors
def reconstruct_command(
    model_dir: Path = typer.Argument(..., help="Model folder written by 'molvae train'."),
    library: Path = typer.Option(..., "--library", help="Library folder from 'molvae library build'."),
    smiles: Path = typer.Option(..., "--smiles", help="Molecules to reconstruct (any format ingest reads)."),
    out: Path = typer.Option(..., "-o", "--out", help="CSV: one row per input and rank."),
    k: int = typer.Option(10, "--k"),
    similarity: str = typer.Option("soft-tanimoto", "--similarity",
                                   help="soft-tanimoto or soft-tanimoto-sq."),
    smiles_col: str | None = typer.Option(None, "--smiles-col"),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """For each input molecule, the top-k decoded library molecules with scores, and recovery."""
    from molvae.chem.export import write_csv
    from molvae.chem.readers import read_texts
    from molvae.chem.reconstruct import reconstruct, recovery
    from molvae.chem.search import FingerprintLibrary
    from molvae.device import resolve_device
    from molvae.models import load_model

    inputs = read_texts(smiles, smiles_col=smiles_col)
    model = load_model(model_dir, resolve_device(device))
    frame = reconstruct(model, FingerprintLibrary.open(library), inputs.texts, k, similarity, device,
                        inputs.errors, inputs.kinds)
    write_csv(frame, out)  # input_smiles echoes unparseable text verbatim: neutralized
    console.print(f"wrote {out}", markup=False, soft_wrap=True)
    console.print_json(json.dumps(recovery(frame, k)))
