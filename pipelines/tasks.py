"""Prefect tasks of the molecular flow. Each passes paths and ids, never large objects.

Ingest, featurize and library building are cached across runs by their inputs (which include
the input file's sha256 and the settings) and by the task's source, with persisted results, so
a re-run on the same data skips them. File-reading tasks retry on OS errors (a busy network
share, a file still being copied); bad data fails at once with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from pipelines import tracking

CACHED = {"cache_policy": INPUTS + TASK_SOURCE, "persist_result": True}


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only OS-level failures; a ValueError (bad data) will not get better by retrying."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


RETRY = {"retries": 2, "retry_delay_seconds": 2, "retry_condition_fn": _transient}


@task(name="ingest", **CACHED, **RETRY)
def ingest_task(source: str, source_sha256: str, out_dir: str, properties: str, workers: int | None) -> str:
    """Standardize ``source`` into a dataset folder (``source_sha256`` keys the cache)."""
    from molvae.chem.ingest import IngestSettings, ingest

    ingest([source], out_dir, IngestSettings(properties=properties), workers=workers)
    return out_dir


@task(name="featurize", **CACHED, **RETRY)
def featurize_task(dataset_dir: str, content_hash: str, columns: list[str]) -> str:
    """Compute the property columns the model conditions on (cached in the dataset)."""
    from molvae.data import MoleculeDataset

    MoleculeDataset(dataset_dir).ensure_properties(columns)
    return dataset_dir


@task(name="build-library", **CACHED, **RETRY)
def library_task(dataset_dir: str, content_hash: str, out_dir: str) -> str:
    from molvae.chem.search import FingerprintLibrary

    FingerprintLibrary.from_dataset(dataset_dir).save(out_dir)
    return out_dir


@task(name="train")
def train_task(dataset_dir: str, model_dir: str, settings: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Train, logging each epoch to the run; returns the metrics and the history."""
    from molvae.chem.experiment import train_molecular_model
    from molvae.training import TrainConfig

    config = TrainConfig(
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        device=settings["device"],
        precision=settings["precision"],
        seed=settings["seed"],
        progress=False,
    )
    epochs = tracking.EpochLogger(run_id)
    metrics = train_molecular_model(
        dataset_dir,
        model_dir,
        kind=settings["kind"],
        condition=settings["condition"],
        train_config=config,
        latent_dim=settings["latent_dim"],
        hidden_dims=settings["hidden"],
        beta=settings["beta"],
        warmup_steps=settings["warmup_steps"],
        density_components=settings["density_components"],
        callbacks=[epochs],
    )
    tracking.log_metrics(run_id, metrics)
    return metrics | {"history": epochs.history}


@task(name="evaluate")
def evaluate_task(
    model_dir: str,
    library_dir: str,
    train_dir: str,
    library_dataset: str,
    settings: dict[str, Any],
    run_id: str,
) -> dict[str, float]:
    """Recovery of held-out library molecules, hubness and set metrics (or conditional control)."""
    from molvae.chem.evaluation import evaluate_model
    from molvae.chem.search import FingerprintLibrary
    from molvae.data import MoleculeDataset
    from molvae.models import load_model

    model = load_model(model_dir, _device(settings["device"]))
    metrics = evaluate_model(
        model,
        FingerprintLibrary.open(library_dir),
        MoleculeDataset(train_dir),
        MoleculeDataset(library_dataset),
        recovery_n=settings["eval_molecules"],
        n_samples=settings["eval_samples"],
        reference_size=settings["eval_samples"],
        samples_per_target=max(50, settings["eval_samples"] // 5),
        prior=settings["prior"],
        guide_k=settings["guide_k"],
        guide_band=settings["guide_band"],
        hubness=settings["hubness"],
        device=settings["device"],
        seed=settings["seed"],
    )
    tracking.log_metrics(run_id, metrics)
    return metrics


@task(name="generate-score-export", **RETRY)
def candidates_task(
    model_dir: str, library_dir: str, train_dir: str, out_csv: str, settings: dict[str, Any], run_id: str
) -> dict[str, Any]:
    """Generate exactly N unique library molecules, score them, filter/rank/pick, and write the export."""
    from molvae.chem.candidate_run import generate_and_export
    from molvae.chem.generate import GenerationRequest
    from molvae.chem.search import FingerprintLibrary
    from molvae.models import load_model

    request = GenerationRequest(
        n=settings["n_candidates"],
        mode=settings["mode"],
        temperature=settings["temperature"],
        seeds=settings["around"],
        spread=settings["spread"],
        include_seeds=settings["include_seeds"],
        targets=settings["targets"],
        decode=settings["decode"],
        prior=settings["prior"],
        guide_k=settings["guide_k"],
        guide_band=settings["guide_band"],
        hubness=settings["hubness"],
    )
    paths, selected, stats = generate_and_export(
        load_model(model_dir, _device(settings["device"])),
        FingerprintLibrary.open(library_dir),
        request,
        out_csv,
        train=FingerprintLibrary.from_dataset(train_dir),
        novel=settings["novel"],
        max_alerts=settings["max_alerts"],
        ranges={name: (-np.inf if low is None else low, np.inf if high is None else high)
                for name, (low, high) in settings["ranges"].items()},
        rank_by=settings["rank_by"],
        diverse=settings["diverse"],
        device=settings["device"],
        seed=settings["seed"],
        model_name=settings["model_name"],
        run_id=run_id,
    )
    tracking.log_metrics(run_id, stats, prefix="generation_")
    tracking.log_params(run_id, {"generation_prior": stats["prior"]})  # text, so a param
    for path in (paths.csv, paths.sdf, paths.png, paths.rejects):
        if path.exists():
            tracking.log_artifact(run_id, path, "candidates")
    return {
        "csv": str(paths.csv),
        "stats": stats,
        "top": selected.head(20)[
            ["rank", "smiles", "score", "qed", "sa_score", "decode_similarity", "novel", "alerts"]
        ].to_dict("records"),
    }


@task(name="figures")
def figures_task(
    model_dir: str,
    train_dir: str,
    history: list[dict[str, float]],
    out_dir: str,
    run_id: str,
    device: str,
    n: int = 5000,
) -> list[str]:
    """The loss curves and a latent PCA coloured by cLogP, logged to the run."""
    from molvae.data import MoleculeDataset
    from molvae.models import load_model
    from molvae.models.molecular import ConditionScaler, latent_means
    from pipelines.plots import latent_pca, loss_curves

    model = load_model(model_dir, _device(device))
    scaler = ConditionScaler.from_config(model.config) if model.condition_dim else None
    names = list(scaler.names) if scaler else []
    dataset = MoleculeDataset(train_dir)
    dataset.ensure_properties(["clogp", *names])
    rows = np.linspace(0, len(dataset) - 1, min(n, len(dataset))).astype(np.int64)
    values = dataset.molecules(list(dict.fromkeys(["clogp", *names]))).iloc[rows]
    # A conditional model encodes each molecule under its own properties, as in training.
    conditions = scaler.normalize(values[names].to_numpy(np.float64)) if scaler else None
    means = latent_means(model, np.asarray(dataset.fingerprints[rows]), conditions).numpy()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [
        loss_curves(history, out / "loss_curves.png"),
        latent_pca(means, values["clogp"].to_numpy(), "cLogP", out / "latent_pca.png"),
    ]
    for figure in figures:
        tracking.log_artifact(run_id, figure, "figures")
    return [str(f) for f in figures]


@task(name="log-model", **RETRY)
def model_task(run_id: str, model_dir: str, library_dir: str, registered_name: str) -> dict[str, Any]:
    """Log the pyfunc, register a version, and move the champion alias if it recovers better."""
    version = tracking.log_model(run_id, model_dir, library_dir, registered_name)
    return {"version": version, "champion": tracking.promote_if_better(registered_name, version, run_id)}


def _device(name: str) -> str:
    from molvae.device import resolve_device

    return str(resolve_device(name))
