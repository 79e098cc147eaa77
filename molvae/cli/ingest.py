"""``molvae ingest``: standardize molecule files into a dataset folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from molvae.chem.fingerprints import FingerprintSettings
from molvae.chem.ingest import IngestSettings, ingest
from molvae.chem.molecules import StandardizeSettings
from molvae.cli.errors import user_errors

console = Console()


@user_errors
def ingest_command(
    inputs: list[Path] = typer.Argument(..., help="CSV/TSV/.smi/SDF/Parquet files, optionally .gz."),
    out: Path = typer.Option(..., "-o", "--out", help="Dataset folder to write."),
    smiles_col: str | None = typer.Option(None, "--smiles-col", help="Default: auto-detected."),
    id_col: str | None = typer.Option(None, "--id-col"),
    properties: str = typer.Option(
        "basic", "--properties",
        help="none, basic (cheap descriptors) or full (+QED, SA, scaffold, alerts)"),
    radius: int = typer.Option(2, "--radius", help="Morgan radius."),
    bits: int = typer.Option(2048, "--bits", help="Fingerprint size (multiple of 8)."),
    chirality: bool = typer.Option(False, "--chirality/--no-chirality"),
    tautomer: bool = typer.Option(False, "--tautomer/--no-tautomer", help="Canonical tautomer."),
    max_heavy_atoms: int | None = typer.Option(None, "--max-heavy-atoms"),
    elements: str | None = typer.Option(None, "--elements", help="Allowed elements, e.g. C,N,O,S,F,Cl,Br"),
    workers: int | None = typer.Option(None, "--workers", help="Processes (default: all CPUs)."),
    chunk_size: int = typer.Option(5_000, "--chunk-size"),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the dataset is up to date."),
) -> None:
    """Standardize, deduplicate and fingerprint molecules; every row is accepted or explained."""
    settings = IngestSettings(
        smiles_col=smiles_col, id_col=id_col, properties=properties,
        standardize=StandardizeSettings(tautomer=tautomer, max_heavy_atoms=max_heavy_atoms,
                                        allowed_elements=tuple(elements.split(",")) if elements else None),
        fingerprints=FingerprintSettings(radius=radius, n_bits=bits, chirality=chirality))
    columns = (SpinnerColumn(), TextColumn("{task.completed:,} rows"),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("ingest", total=None, rate="")

        def advance(rows: int) -> None:
            bar.advance(task, rows)
            speed = bar.tasks[task].speed
            bar.update(task, rate=f"{speed:,.0f} rows/s" if speed else "")

        manifest = ingest(inputs, out, settings, workers=workers, chunk_size=chunk_size, force=force,
                          progress=advance)
    counts = manifest["counts"]
    if manifest.get("up_to_date"):
        console.print(f"{out} is up to date (same inputs and settings); nothing to do.", markup=False)
    console.print(
        f"rows read {counts['rows_read']:,} = accepted {counts['accepted']:,} + duplicates "
        f"{counts['duplicates']:,} + rejected {counts['rejected']:,}", markup=False)
    for reason, n in counts["rejected_by_reason"].items():
        console.print(f"  {reason}: {n:,}", markup=False)
    console.print(f"dataset: {out}  (rejects: {out / 'rejects.csv'})", markup=False, soft_wrap=True)
