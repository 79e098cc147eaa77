import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from molvae.chem import experiment
from molvae.chem.anomaly import REFERENCE_KEY
from molvae.chem.experiment import reference_sample, split_rows, train_molecular_model
from molvae.chem.fingerprints import FingerprintSettings
from molvae.chem.ingest import IngestSettings, ingest
from molvae.data import MoleculeDataset
from molvae.models import load_model
from molvae.models.molecular import ConditionScaler
from molvae.training import TrainConfig

BUNDLED_TRAIN = Path(__file__).resolve().parents[3] / "data" / "moses" / "train.csv.gz"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("experiment")
    with gzip.open(BUNDLED_TRAIN, "rt") as handle:
        (folder / "mols.csv").write_text("".join(itertools.islice(handle, 81)))  # header + 80
    ingest([folder / "mols.csv"], folder / "ds",
           IngestSettings(properties="none", fingerprints=FingerprintSettings(n_bits=256)), workers=1)
    return folder / "ds"


def quick(epochs=2):
    return TrainConfig(epochs=epochs, batch_size=16, device="cpu", progress=False, patience=None)


def test_split_rows_is_a_seeded_partition():
    train, val = split_rows(100, 0.1, seed=3)
    assert len(val) == 10 and len(train) == 90
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()
    assert np.array_equal(split_rows(100, 0.1, seed=3)[1], val)
    assert not np.array_equal(split_rows(100, 0.1, seed=4)[1], val)
    assert len(split_rows(5, 0.0, seed=0)[1]) == 0
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        split_rows(10, 1.0, seed=0)


def test_reference_sample_spreads_over_the_training_rows(monkeypatch):
    rows = np.arange(100, 200)
    assert np.array_equal(reference_sample(rows), rows)  # fewer than REFERENCE_ROWS: all of them
    monkeypatch.setattr(experiment, "REFERENCE_ROWS", 5)
    picked = reference_sample(rows)
    assert picked.tolist() == [100, 124, 149, 174, 199]


def test_a_trained_model_carries_its_domain_reference_density_and_metrics(dataset, tmp_path):
    metrics = train_molecular_model(dataset, tmp_path / "m", train_config=quick(), latent_dim=4,
                                    hidden_dims=(32,), val_fraction=0.25)
    assert (metrics["n_train"], metrics["n_val"]) == (60, 20) and metrics["epochs_run"] == 2
    assert metrics["kind"] == "vae" and metrics["precision"] == "fp32" and metrics["device"] == "cpu"
    assert json.loads((tmp_path / "m" / "metrics.json").read_text()) == metrics
    model = load_model(tmp_path / "m")
    reference = model.config.metadata[REFERENCE_KEY]
    assert len(reference) == 101 and reference == sorted(reference)
    assert model.latent_density is not None and model.latent_density.dim == 4
    assert model.config.metadata["split"] == {"seed": 0, "val_fraction": 0.25}
    assert model.config.metadata["dataset_content_hash"] == MoleculeDataset(dataset).manifest["content_hash"]
    assert model.config.metadata["fingerprint"]["n_bits"] == 256


def test_a_cvae_normalizes_its_conditions_with_the_training_rows_only(dataset, tmp_path):
    train_molecular_model(dataset, tmp_path / "c", kind="cvae", condition=["mw"], train_config=quick(1),
                          latent_dim=4, hidden_dims=(32,), val_fraction=0.25)
    scaler = ConditionScaler.from_config(load_model(tmp_path / "c").config)
    mw = MoleculeDataset(dataset).molecules(["mw"])["mw"].to_numpy()
    train_rows, _ = split_rows(len(mw), 0.25, seed=0)
    assert scaler.names == ("mw",)
    assert scaler.means[0] == pytest.approx(mw[train_rows].mean())
    assert scaler.stds[0] == pytest.approx(mw[train_rows].std())
    assert scaler.means[0] != pytest.approx(mw.mean())  # the validation rows are left out


@pytest.mark.parametrize(("kind", "condition", "message"), [
    ("cvae", [], "a cvae needs --condition"),
    ("vae", ["mw"], "--condition needs --kind cvae"),
    ("cvae", ["alerts"], "condition column 'alerts' is not numeric"),
])
def test_bad_requests_are_named_before_training(dataset, tmp_path, kind, condition, message):
    with pytest.raises(ValueError, match=message):
        train_molecular_model(dataset, tmp_path / "x", kind=kind, condition=condition, train_config=quick(1))
    assert not (tmp_path / "x" / "weights.pt").exists()
