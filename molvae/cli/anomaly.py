"""``molvae anomaly``: how unusual each input molecule is for a MolecularVAE."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from molvae.cli.errors import user_errors

console = Console()


@user_errors
def anomaly_command(
    model_dir: Path = typer.Argument(..., help="Model folder written by 'molvae train'."),
    smiles: Path = typer.Option(..., "--smiles", help="Molecules to score (any format ingest reads)."),
    out: Path = typer.Option(..., "-o", "--out", help="CSV, one row per input in input order."),
    smiles_col: str | None = typer.Option(None, "--smiles-col"),
    device: str = typer.Option("auto", "--device"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Score = mean −ELBO (higher = more unusual) and its percentile among training molecules."""
    from molvae.chem.anomaly import score_smiles
    from molvae.chem.export import write_csv
    from molvae.chem.readers import read_texts
    from molvae.device import resolve_device
    from molvae.models import load_model

    inputs = read_texts(smiles, smiles_col=smiles_col)
    frame = score_smiles(load_model(model_dir, resolve_device(device)), inputs.texts, inputs.errors, seed,
                         inputs.kinds)
    write_csv(frame, out)  # input_smiles echoes unparseable text verbatim: neutralized
    scored = int((frame["reason"] == "").sum())
    console.print(f"wrote {out}: {scored} scored, {len(frame) - scored} with a reason", markup=False,
                  soft_wrap=True)
