"""MLflow tracking with explicit run ids.

MLflow's active run is per thread, and Prefect runs tasks in worker threads, so nothing here
relies on ``mlflow.start_run`` context: every call names its run id.

Without ``MLFLOW_TRACKING_URI`` tracking goes to ``./mlruns.db`` (sqlite; MLflow 3.13+ refuses
the plain file store) with artifacts under ``./mlartifacts``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus

from molvae.training import Callback

EMBEDDED_DB = "mlruns.db"
EMBEDDED_ARTIFACTS = "mlartifacts"
CHAMPION = "champion"
# The metric that decides the champion alias: recovery top-1 of held-out library molecules
# (encode → decode → search). Higher is better.
CHAMPION_METRIC = "recovery_top1"
# MLflow's limits per log_batch call.
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the embedded sqlite store in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(EMBEDDED_DB).resolve()}"


def client() -> MlflowClient:
    return MlflowClient(tracking_uri())


def experiment_id(name: str) -> str:
    """The experiment's id, created on first use.

    A sqlite store keeps its artifacts in ``mlartifacts/`` beside the database file; a server
    decides for itself (``--artifacts-destination``).
    """
    mlflow_client = client()
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    uri = tracking_uri()
    location = None
    if uri.startswith("sqlite:///"):
        location = str(Path(uri.removeprefix("sqlite:///")).parent / EMBEDDED_ARTIFACTS)
    return mlflow_client.create_experiment(name, artifact_location=location)


def start_run(experiment: str, run_name: str, tags: Mapping[str, str] | None = None) -> str:
    """A new run in ``experiment``; returns its id."""
    run = client().create_run(experiment_id(experiment), run_name=run_name, tags=dict(tags or {}))
    return run.info.run_id


def end_run(run_id: str, failed: bool = False) -> None:
    client().set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED))


def log_params(run_id: str, params: Mapping[str, Any]) -> None:
    """All parameters in batched calls; lists and dicts as JSON, cut to MLflow's value limit."""
    entries = [
        Param(key, (json.dumps(value) if isinstance(value, (list, dict, tuple)) else str(value))[:6000])
        for key, value in params.items()
    ]
    for start in range(0, len(entries), _PARAMS_PER_BATCH):
        client().log_batch(run_id, params=entries[start : start + _PARAMS_PER_BATCH])


def log_metrics(run_id: str, metrics: Mapping[str, Any], step: int | None = None, prefix: str = "") -> None:
    """Numeric, finite values only (MLflow rejects NaN in some stores; absent beats misleading), batched."""
    now = int(time.time() * 1000)
    entries = [
        Metric(f"{prefix}{key}", float(value), now, step or 0)
        for key, value in metrics.items()
        if not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
    ]
    for start in range(0, len(entries), _METRICS_PER_BATCH):
        client().log_batch(run_id, metrics=entries[start : start + _METRICS_PER_BATCH])


def log_artifact(run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
    client().log_artifact(run_id, str(path), artifact_path)


def log_dataset(run_id: str, manifest: Mapping[str, Any], name: str, context: str) -> None:
    """A dataset manifest as an MLflow input: its folder as source, its content hash as digest."""
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    with warnings.catch_warnings():
        # MLflow registers two local-file source classes and warns that it picks one of them.
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(manifest.get("folder", name)))
    dataset = MetaDataset(source, name=name, digest=str(manifest["content_hash"])[:36])
    tag = InputTag("mlflow.data.context", context)
    client().log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), [tag])])


@contextmanager
def _global_tracking_uri() -> Iterator[None]:
    """MLflow's process-wide URI set to ours for APIs that read it, and the environment put back.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``, which would otherwise
    outlive the call and pin every later run of the process to this store.
    """
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@contextmanager
def system_metrics(run_id: str) -> Iterator[None]:
    """CPU, memory (and GPU when present) sampled into the run while the block runs."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    with _global_tracking_uri():
        monitor = SystemMetricsMonitor(run_id, sampling_interval=5, samples_before_logging=1)
        monitor.start()
        try:
            yield
        finally:
            monitor.finish()


class EpochLogger(Callback):
    """Per-epoch training and validation losses and KL, logged to one run."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.history: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.history.append(dict(metrics))
        log_metrics(self.run_id, metrics, step=epoch)


def log_model(run_id: str, model_dir: str | Path, library_dir: str | Path, registered_name: str) -> str:
    """Log the pyfunc model (from code: config + state_dict, no pickles) and register it; its version."""
    from molvae import __version__

    code = Path(__file__).with_name("pyfunc_model.py")
    # log_model needs an active run; it is set here, in this thread, from the explicit id.
    with _global_tracking_uri(), mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            artifacts={"model": str(model_dir), "library": str(library_dir)},
            pip_requirements=[f"molvae=={__version__}"],
        )
        version = mlflow.register_model(info.model_uri, registered_name)
    # Leaving start_run's block marked the run FINISHED while the flow still logs to it;
    # the flow's end_run sets the real outcome.
    client().update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
    return str(version.version)


def promote_if_better(registered_name: str, version: str, run_id: str) -> bool:
    """Give ``version`` the champion alias when its :data:`CHAMPION_METRIC` beats the current champion's."""
    mlflow_client = client()
    ours = mlflow_client.get_run(run_id).data.metrics.get(CHAMPION_METRIC)
    if ours is None:
        return False
    try:
        current = mlflow_client.get_model_version_by_alias(registered_name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        current = None
    if current is not None:
        theirs = mlflow_client.get_run(current.run_id).data.metrics.get(CHAMPION_METRIC)
        if theirs is not None and theirs >= ours:
            return False
    mlflow_client.set_registered_model_alias(registered_name, CHAMPION, version)
    return True


def run_url(run_id: str) -> str:
    """Where to see the run: the server's page, or the UI command for the embedded store."""
    run = client().get_run(run_id)
    uri = tracking_uri()
    base = uri if uri.startswith("http") else "http://127.0.0.1:5000"
    return f"{base.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
