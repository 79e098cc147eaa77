"""The ``molecular_generation`` flow: ingest → featurize → build library → train → evaluate →
generate, score and export, tracked as one MLflow run.

Run it once with ``molvae run`` (or ``make demo``), on a schedule with ``molvae serve --cron``,
or through a work pool with ``prefect.yaml``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from molvae.download import sha256_file
from pipelines import tasks, tracking
from pipelines.config import MolecularRunConfig, load_config


def _cached(task: Any, still_valid: Callable[[Path], bool], *args: Any) -> str:
    """Run a cached task; if the folder its cached result names no longer holds what these
    inputs made (deleted, or rebuilt since by a run with other inputs into the same folder),
    run it afresh."""
    folder = task(*args)
    if not still_valid(Path(folder)):
        folder = task.with_options(refresh_cache=True)(*args)
    return folder


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def ingested_from(source_sha256: str, properties: str) -> Callable[[Path], bool]:
    """Whether a dataset folder holds the ingest of that one input with that property level, by
    this ingest format and RDKit (whose standardization an upgrade may change)."""
    import rdkit

    from molvae.chem.ingest import INGEST_FORMAT
    from molvae.data import files_intact, read_manifest

    def check(folder: Path) -> bool:
        try:
            manifest = read_manifest(folder)
        except (FileNotFoundError, ValueError):
            return False
        identity = manifest.get("identity", {})
        return ([i.get("sha256") for i in identity.get("inputs", [])] == [source_sha256]
                and identity.get("settings", {}).get("properties") == properties
                and identity.get("ingest_format") == INGEST_FORMAT
                and identity.get("rdkit_version") == rdkit.__version__
                and files_intact(folder, manifest))
    return check


def built_from(content_hash: str) -> Callable[[Path], bool]:
    """Whether a library folder was built from the dataset with that content hash, in the
    current format (an older one is rebuilt, e.g. to gain source ids)."""
    from molvae.chem.search import LIBRARY_FORMAT_VERSION

    def check(folder: Path) -> bool:
        info = _json(folder / "library.json") or {}
        return (info.get("dataset_content_hash") == content_hash
                and info.get("format_version") == LIBRARY_FORMAT_VERSION)
    return check


def _dataset(source: Path, out_dir: Path, properties: str, workers: int | None) -> tuple[str, dict[str, Any]]:
    """An ingested dataset, cached by the file's content hash and the settings."""
    from molvae.data import read_manifest

    source_sha256 = sha256_file(source)
    folder = _cached(
        tasks.ingest_task,
        ingested_from(source_sha256, properties),
        str(source.resolve()),
        source_sha256,
        str(out_dir.resolve()),
        properties,
        workers,
    )
    return folder, read_manifest(folder) | {"folder": folder}


@flow(name="molecular_generation", log_prints=True)
def molecular_generation(
    config: MolecularRunConfig | None = None, config_path: str | None = None
) -> dict[str, Any]:
    """Train a MolecularVAE on ``config.train`` and export ranked candidates from ``config.library``.

    ``config_path`` (YAML) is read when ``config`` is not given; returns the candidates path,
    the MLflow run id and link, and the key metrics.
    """
    config = config or load_config(MolecularRunConfig, config_path)
    logger = get_run_logger()
    out = config.out.resolve()
    run_id = tracking.start_run(
        config.experiment,
        run_name=f"{config.kind}-{config.mode}",
        tags={"molvae.flow": "molecular_generation"},
    )
    try:
        with tracking.system_metrics(run_id):
            result = _run(config, out, run_id, config_path)
    except BaseException:
        tracking.end_run(run_id, failed=True)
        raise
    tracking.end_run(run_id)
    logger.info("candidates: %s; MLflow run %s", result["candidates"], run_id)
    return result


def _run(config: MolecularRunConfig, out: Path, run_id: str, config_path: str | None) -> dict[str, Any]:
    settings = config.model_dump(mode="json")
    tracking.log_params(run_id, settings)
    if config_path:
        tracking.log_artifact(run_id, config_path, "config")

    train_dir, train_manifest = _dataset(config.train, out / "train-ds", "basic", config.workers)
    library_dataset, library_manifest = _dataset(config.library, out / "library-ds", "none", config.workers)
    tracking.log_dataset(run_id, train_manifest, "train", "training")
    tracking.log_dataset(run_id, library_manifest, "library", "library")
    for name, manifest in (("train", train_manifest), ("library", library_manifest)):
        rejects = Path(manifest["folder"]) / "rejects.csv"
        if rejects.is_file():
            tracking.log_artifact(run_id, rejects, f"rejects/{name}")
    if config.condition:
        tasks.featurize_task(train_dir, train_manifest["content_hash"], config.condition)
    library_dir = _cached(
        tasks.library_task,
        built_from(library_manifest["content_hash"]),
        library_dataset,
        library_manifest["content_hash"],
        str(out / "library"),
    )

    model_dir = str(out / "model")
    trained = tasks.train_task(train_dir, model_dir, settings, run_id)
    figures = tasks.figures_task.submit(
        model_dir, train_dir, trained["history"], str(out / "figures"), run_id, config.device
    )
    metrics = tasks.evaluate_task(model_dir, library_dir, train_dir, library_dataset, settings, run_id)
    exported = tasks.candidates_task(
        model_dir, library_dir, train_dir, str(out / "candidates.csv"), settings, run_id
    )
    registered = tasks.model_task(run_id, model_dir, library_dir, config.model_name)
    figures.result()

    url = tracking.run_url(run_id)
    create_table_artifact(exported["top"], key="top-candidates", description="The 20 best-ranked candidates")
    create_markdown_artifact(
        _summary(config, train_manifest, library_manifest, metrics, exported, registered, run_id, url),
        key="run-summary",
    )
    return {
        "candidates": exported["csv"],
        "run_id": run_id,
        "run_url": url,
        "model_version": registered["version"],
        "champion": registered["champion"],
        "metrics": metrics,
        "generation": exported["stats"],
    }


def _summary(
    config: MolecularRunConfig,
    train: dict,
    library: dict,
    metrics: dict,
    exported: dict,
    registered: dict,
    run_id: str,
    url: str,
) -> str:
    counts = train["counts"]
    keys = (
        "recovery_top1",
        "recovery_top10",
        "raw_unique_fraction",
        "median_decode_similarity",
        "novelty",
        "intdiv1",
        "snn",
    )
    lines = [
        "# molecular_generation",
        f"- training molecules: {counts['rows_read']:,} read = {counts['accepted']:,} accepted + "
        f"{counts['duplicates']:,} duplicates + {counts['rejected']:,} rejected",
        f"- library molecules: {library['counts']['accepted']:,}",
        f"- candidates: {exported['stats']['exported']} exported, {exported['stats']['left_out']} left out "
        f"with reasons → `{exported['csv']}`",
        f"- model `{config.model_name}` version {registered['version']}"
        f"{' (new champion)' if registered['champion'] else ''}",
        f"- MLflow run [{run_id}]({url})",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {key} | {metrics[key]:.4f} |" for key in keys if key in metrics),
    ]
    return "\n".join(lines)
