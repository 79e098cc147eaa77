"""``molvae run``, ``molvae serve`` and ``molvae ui``: the Prefect/MLflow pipelines from the command line.

The ``pipelines`` package (Prefect, MLflow) is imported inside each command, so the rest of
the CLI, and the library, never load it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console

from molvae.cli.errors import user_errors
from molvae.cli.options import FlowPrecision

console = Console()


def _quiet_prefect() -> None:
    # There is no network: Prefect's analytics would only time out.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary local server takes ~15 s to start on 2 cores; Prefect's default limit of
    # 20 s is too close on a busier machine (its first start also creates the database).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _print_run(result: dict) -> None:
    console.print(f"MLflow run: {result['run_id']}  ({result['run_url']}; start the UI with: molvae ui)",
                  markup=False, soft_wrap=True)


@user_errors
def run_command(
    config: Path | None = typer.Option(None, "--config", help="YAML file of flow parameters."),
    train: Path | None = typer.Option(
        None, "--train", help="Training molecules (default: bundled MOSES 20k)."
    ),
    library: Path | None = typer.Option(None, "--library", help="Library molecules (default: bundled 100k)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default runs/molecular)."),
    kind: str | None = typer.Option(None, "--kind", help="vae, cvae or beta-vae."),
    condition: str | None = typer.Option(None, "--condition", help="cvae columns, e.g. qed,clogp,mw"),
    epochs: int | None = typer.Option(None, "--epochs"),
    n_candidates: int | None = typer.Option(None, "--n-candidates"),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    precision: str | None = FlowPrecision,
    seed: int | None = typer.Option(None, "--seed"),
) -> None:
    """Run the molecular flow once (ingest → … → export) and print where the results are."""
    _quiet_prefect()
    from pipelines.config import MolecularRunConfig, load_config
    from pipelines.molecules import molecular_generation

    overrides = {
        "train": train,
        "library": library,
        "out": out,
        "kind": kind,
        "epochs": epochs,
        "n_candidates": n_candidates,
        "device": device,
        "precision": precision,
        "seed": seed,
        "condition": condition.split(",") if condition else None,
    }
    settings = load_config(MolecularRunConfig, config, overrides)
    result = molecular_generation(config=settings, config_path=str(config) if config else None)
    console.print_json(json.dumps({key: result[key] for key in ("metrics", "generation")}, default=str))
    console.print(f"candidates: {result['candidates']}", markup=False, soft_wrap=True)
    _print_run(result)


@user_errors
def images_run_command(
    config: Path | None = typer.Option(None, "--config", help="YAML file of flow parameters."),
    source: str | None = typer.Option(None, "--source", help="bundled, an IDX folder or a PNG folder."),
    out: Path | None = typer.Option(None, "--out"),
    kind: str | None = typer.Option(None, "--kind"),
    epochs: int | None = typer.Option(None, "--epochs"),
    device: str | None = typer.Option(None, "--device"),
    precision: str | None = FlowPrecision,
    seed: int | None = typer.Option(None, "--seed"),
) -> None:
    """Run the image flow once: train, then sample/interpolation/inpainting/anomaly grids."""
    _quiet_prefect()
    from pipelines.config import ImageRunConfig, load_config
    from pipelines.images import image_vae

    overrides = {"source": source, "out": out, "kind": kind, "epochs": epochs, "device": device,
                 "precision": precision, "seed": seed}
    result = image_vae(
        config=load_config(ImageRunConfig, config, overrides), config_path=str(config) if config else None
    )
    console.print(f"figures: {result['figures']}", markup=False, soft_wrap=True)
    _print_run(result)


@user_errors
def serve_command(
    cron: str = typer.Option("0 2 * * *", "--cron", help="When to run, as a cron expression (UTC)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file of flow parameters."),
    name: str = typer.Option("molecular-generation-scheduled", "--name", help="Deployment name."),
) -> None:
    """Serve the molecular flow as a Prefect deployment on a cron schedule (runs until stopped)."""
    _quiet_prefect()
    from pipelines.config import MolecularRunConfig, load_config
    from pipelines.molecules import molecular_generation

    if config is not None:
        load_config(MolecularRunConfig, config)  # fail now, not at 2 a.m.
    parameters = {"config_path": str(config.resolve())} if config else {}
    molecular_generation.serve(name=name, cron=cron, parameters=parameters)


@user_errors
def ui_command(
    port: int = typer.Option(5000, "--port"),
) -> None:
    """Start the MLflow UI on 127.0.0.1 against the same store the flows log to."""
    from pipelines.tracking import tracking_uri

    uri = tracking_uri()
    console.print(f"MLflow UI on http://127.0.0.1:{port} for {uri}", markup=False, soft_wrap=True)
    raise typer.Exit(
        subprocess.call(
            [
                sys.executable,
                "-m",
                "mlflow",
                "ui",
                "--backend-store-uri",
                uri,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
        )
    )
