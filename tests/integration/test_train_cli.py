import gzip
import itertools
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from molvae.checkpoints import load_checkpoint
from molvae.cli.main import app
from molvae.models import load_model
from molvae.models.molecular import ConditionScaler

BUNDLED_TRAIN = Path(__file__).resolve().parents[2] / "data" / "moses" / "train.csv.gz"


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    with gzip.open(BUNDLED_TRAIN, "rt") as handle:
        (folder / "mols.csv").write_text("".join(itertools.islice(handle, 401)))
    assert run("ingest", folder / "mols.csv", "-o", folder / "ds", "--workers", "1",
               "--properties", "none", "--bits", "512").exit_code == 0
    return folder / "ds"


def test_a_fingerprint_vae_trains_and_its_loss_falls(dataset, tmp_path):
    result = run("train", dataset, "-o", tmp_path / "vae", "--epochs", "6", "--batch-size", "64",
                 "--latent-dim", "8", "--hidden", "64", "--lr", "3e-3", "--no-progress", "--device", "cpu")
    assert result.exit_code == 0, result.output
    history = load_checkpoint(tmp_path / "vae").history
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]
    metrics = json.loads((tmp_path / "vae" / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_val"] == 400 and metrics["val_neg_elbo_nats"] > 0
    assert (metrics["device"], metrics["precision"]) == ("cpu", "fp32")  # auto on the CPU
    model = load_model(tmp_path / "vae")
    assert model.config.input_dim == 512
    # The latent density is fitted to where training molecules fall, not left at N(0, I).
    assert model.latent_density.dim == 8 and metrics["density_components"] == 1
    assert model.latent_density.means.abs().max() > 0.01


def test_a_conditional_model_keeps_its_normalization(dataset, tmp_path, cpu_bf16):
    result = run("train", dataset, "-o", tmp_path / "cvae", "--kind", "cvae", "--condition", "mw,clogp",
                 "--epochs", "1", "--latent-dim", "4", "--hidden", "32", "--no-progress", "--device", "cpu",
                 "--density-components", "2", "--precision", cpu_bf16[0])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cvae" / "metrics.json").read_text())["precision"] == cpu_bf16[1]
    model = load_model(tmp_path / "cvae")
    scaler = ConditionScaler.from_config(model.config)
    assert scaler.names == ("mw", "clogp") and 200 < scaler.means[0] < 400 and scaler.stds[0] > 10
    # A conditional model's density spans latent and normalized conditions, to be conditioned on targets.
    assert model.latent_density.dim == 4 + 2 and model.latent_density.n_components == 2

    # Guided decoding over the whole 400-molecule library: every candidate within tolerance
    # (MW ± 25 Da, cLogP ± 0.5) of the targets; nearest-neighbour decoding alone is not.
    assert run("library", "build", dataset, "-o", tmp_path / "lib").exit_code == 0
    achieved = {}
    for k, hubness in ((400, 3), (1, 0)):
        out = tmp_path / f"guided-{k}.csv"
        result = run("generate", tmp_path / "cvae", "--library", tmp_path / "lib", "-n", "8", "-o", out,
                     "--condition", "mw=300,clogp=2.5", "--guide-k", k, "--hubness", hubness,
                     "--device", "cpu")
        assert result.exit_code == 0, result.output
        stats = json.loads(result.output[result.output.index("{"):])
        assert stats["guide_k"] == k and stats["hubness"] == hubness
        achieved[k] = pd.read_csv(out)
    guided = achieved[400]
    assert len(guided) == 8 and ((guided["achieved_mw"] - 300).abs() <= 25).all()
    assert ((guided["achieved_clogp"] - 2.5).abs() <= 0.5).all()
    plain = achieved[1]
    within = ((plain["achieved_mw"] - 300).abs() <= 25) & ((plain["achieved_clogp"] - 2.5).abs() <= 0.5)
    assert not within.all()


def test_bad_kind_and_condition_combinations_are_clear_errors(dataset, tmp_path):
    no_condition = run("train", dataset, "-o", tmp_path / "m", "--kind", "cvae", "--epochs", "1",
                       "--no-progress")
    assert no_condition.exit_code == 1 and "needs --condition" in no_condition.output
    stray = run("train", dataset, "-o", tmp_path / "m", "--condition", "qed", "--epochs", "1",
                "--no-progress")
    assert stray.exit_code == 1 and "--kind cvae" in stray.output
    text = run("train", dataset, "-o", tmp_path / "m", "--kind", "cvae", "--condition", "scaffold",
               "--epochs", "1", "--no-progress")
    assert text.exit_code == 1 and "condition column 'scaffold' is not numeric" in text.output
