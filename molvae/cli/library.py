"""``molvae library``: build fingerprint search libraries from datasets."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from molvae.chem.search import FingerprintLibrary
from molvae.cli.errors import user_errors

app = typer.Typer(help="Fingerprint libraries for exact Tanimoto top-k search.", no_args_is_help=True)
console = Console()


@app.callback()
def library() -> None:
    """Fingerprint libraries for exact Tanimoto top-k search."""
    # A callback keeps `build` a named subcommand (typer collapses one-command apps).


@app.command()
@user_errors
def build(dataset: Path = typer.Argument(..., help="Dataset folder written by 'molvae ingest'."),
          out: Path = typer.Option(..., "-o", "--out", help="Library folder to write.")) -> None:
    """Build a search library (on-bit lists, packed bits, ids, SMILES) from a dataset."""
    library = FingerprintLibrary.from_dataset(dataset)
    library.save(out)
    console.print(f"library of {len(library):,} molecules ({library.n_bits} bits, "
                  f"mean {library.popcounts.mean():.1f} on-bits) written to {out}",
                  markup=False, soft_wrap=True)
