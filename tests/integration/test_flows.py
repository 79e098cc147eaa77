"""The molecular and image flows end to end on tiny data (temporary Prefect server, sqlite MLflow)."""

import gzip
import itertools
import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness

from pipelines import tracking
from pipelines.config import MolecularRunConfig
from pipelines.molecules import molecular_generation

DATA = Path(__file__).resolve().parents[2] / "data" / "moses"


def head(source: Path, rows: int, out: Path) -> Path:
    with gzip.open(source, "rt") as handle:
        out.write_text("".join(itertools.islice(handle, rows + 1)))
    return out


@pytest.fixture(scope="module")
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_flow_trains_exports_tracks_and_caches_ingest(prefect_server, tmp_path, monkeypatch, cpu_bf16):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = MolecularRunConfig(
        train=head(DATA / "train.csv.gz", 300, tmp_path / "train.csv"),
        library=head(DATA / "library.csv.gz", 1200, tmp_path / "library.csv"),
        out=tmp_path / "run",
        epochs=2,
        hidden=[128],
        latent_dim=16,
        n_candidates=10,
        eval_molecules=40,
        eval_samples=200,
        workers=1,
        device="cpu",
        precision=cpu_bf16[0],
        experiment="test-molecular",
        model_name="test-model",
    )
    first = molecular_generation(config=config)

    candidates = pd.read_csv(first["candidates"])
    assert len(candidates) == 10 and candidates["novel"].all()
    assert (candidates["run_id"] == first["run_id"]).all()
    client = tracking.client()
    run = client.get_run(first["run_id"])
    assert run.info.status == "FINISHED" and run.data.params["epochs"] == "2"
    assert run.data.params["precision"] == cpu_bf16[0]
    assert json.loads((tmp_path / "run" / "model" / "metrics.json").read_text())["precision"] == cpu_bf16[1]
    assert run.data.params["generation_prior"] == "fitted"  # the model was trained with a density
    assert {"recovery_top1", "raw_unique_fraction", "intdiv1", "generation_exported"} <= set(run.data.metrics)
    assert len(client.get_metric_history(first["run_id"], "val_loss")) == 2  # one point per epoch
    logged = {
        f.path for folder in ("candidates", "figures") for f in client.list_artifacts(first["run_id"], folder)
    }
    assert {
        "candidates/candidates.csv",
        "candidates/candidates.sdf",
        "candidates/candidates.png",
        "figures/loss_curves.png",
        "figures/latent_pca.png",
    } <= logged
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {"train", "library"}
    assert first["model_version"] == "1" and first["champion"]

    # The registered pyfunc reloads from config + state_dict and decodes SMILES.
    model = mlflow.pyfunc.load_model("models:/test-model@champion")
    decoded = model.predict(pd.DataFrame({"smiles": ["CCOC(=O)c1ccccc1"], "k": [3]}))
    assert decoded["rank"].tolist() == [1, 2, 3]
    # ... and takes a generation request row, its options passed through.
    generated = model.predict(pd.DataFrame({"n": [4], "hubness": [0]}))
    assert len(generated) == 4 and generated["library_index"].is_unique
    with pytest.raises(ValueError, match="hubness >= 0"):
        model.predict(pd.DataFrame({"n": [4], "hubness": [-1]}))

    # A second run on the same data takes ingest and the library from the cache: ingest never runs.
    def no_ingest(*args, **kwargs):
        raise AssertionError("ingest ran although its inputs were cached")

    monkeypatch.setattr("molvae.chem.ingest.ingest", no_ingest)
    second = molecular_generation(config=config)
    assert second["run_id"] != first["run_id"] and len(pd.read_csv(second["candidates"])) == 10
    assert second["model_version"] == "2"


def test_image_flow_writes_and_logs_its_grids(prefect_server, idx_dir_factory, tmp_path, monkeypatch,
                                              cpu_bf16):
    from pipelines.config import ImageRunConfig
    from pipelines.images import image_vae

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = ImageRunConfig(
        source=str(idx_dir_factory(n_train=200, n_test=40)),
        out=tmp_path / "img",
        epochs=1,
        latent_dim=4,
        iwae_k=5,
        device="cpu",
        precision=cpu_bf16[0],
        experiment="test-images",
    )
    result = image_vae(config=config)
    assert json.loads((tmp_path / "img" / "model" / "metrics.json").read_text())["precision"] == cpu_bf16[1]
    figures = Path(result["figures"])
    assert {"samples.png", "interpolation.png", "inpainting.png", "anomaly.csv"} <= {
        p.name for p in figures.iterdir()
    }
    client = tracking.client()
    logged = {f.path for f in client.list_artifacts(result["run_id"], "figures")}
    assert "figures/samples.png" in logged and "figures/anomaly.csv" in logged
    metrics = client.get_run(result["run_id"]).data.metrics
    assert "test_neg_elbo_nats" in metrics and "hidden_mse_iterative" in metrics
