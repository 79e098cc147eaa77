"""``molvae interpolate``: the path of distinct library molecules between two molecules."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from molvae.cli.errors import user_errors

console = Console()


@user_errors
def interpolate_command(
    model_dir: Path = typer.Argument(..., help="Model folder written by 'molvae train'."),
    start: str = typer.Argument(..., help="SMILES of the first molecule."),
    end: str = typer.Argument(..., help="SMILES of the last molecule."),
    library: Path = typer.Option(..., "--library", help="Library folder from 'molvae library build'."),
    steps: int = typer.Option(10, "--steps"),
    method: str = typer.Option("slerp", "--method", help="slerp or lerp."),
    out: Path | None = typer.Option(None, "-o", "--out",
                                    help="CSV, with a PNG of the path beside it (printed when omitted)."),
    train: Path | None = typer.Option(None, "--train", help="Training dataset, for --novel."),
    novel: bool = typer.Option(
        False, "--novel", help="Exclude the training set (needs --train); the two end molecules may then "
                               "be absent from the path."),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Decode points along the latent path; each library molecule is listed once, with its steps."""
    from molvae.chem.candidates import training_rows
    from molvae.chem.export import draw_grid, write_csv
    from molvae.chem.generate import interpolation_path
    from molvae.chem.search import FingerprintLibrary
    from molvae.device import resolve_device
    from molvae.models import load_model

    if novel and train is None:
        raise ValueError("--novel needs --train DATASET_DIR (the dataset the model was trained on)")
    if train is not None and not novel:  # unlike generate, the path has no novelty columns to fill
        raise ValueError("--train is only used with --novel here")
    lib = FingerprintLibrary.open(library)
    exclude = None
    if novel:
        exclude = training_rows(lib, FingerprintLibrary.from_dataset(train))
    model = load_model(model_dir, resolve_device(device))
    frame = interpolation_path(model, lib, start, end, steps, method, device=device, exclude=exclude)
    if out is None:
        console.print(frame.to_string(index=False), markup=False, soft_wrap=True)
        return
    write_csv(frame, out)
    legends = [f"{r.steps} of steps {r.first_step}-{r.last_step}  sim {r.decode_similarity:.2f}"
               for r in frame.itertuples()]
    picture = draw_grid(frame["smiles"].tolist(), legends, out.with_suffix(".png"))
    console.print(f"wrote {len(frame)} distinct molecules on the path to {out} and {picture}", markup=False,
                  soft_wrap=True)
