import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from rdkit import Chem
from scipy.stats import wasserstein_distance

from molvae.chem.evaluation import (
    CONTROL_LEVELS,
    _set_metrics,
    control_metrics,
    decode_prior,
    eligible_rows,
    evaluate_model,
    prior_metrics,
    train_similarity,
)
from molvae.chem.experiment import fit_latent_density
from molvae.chem.fingerprints import FingerprintSettings
from molvae.chem.ingest import IngestSettings, ingest
from molvae.chem.properties import compute_properties_frame
from molvae.chem.search import FingerprintLibrary
from molvae.data import MoleculeDataset
from molvae.models import VAE
from molvae.models.molecular import ConditionScaler, molecular_config

BUNDLED_TRAIN = Path(__file__).resolve().parents[3] / "data" / "moses" / "train.csv.gz"
SETTINGS = FingerprintSettings(n_bits=256)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    with gzip.open(BUNDLED_TRAIN, "rt") as handle:
        (folder / "mols.csv").write_text("".join(itertools.islice(handle, 121)))
    ingest([folder / "mols.csv"], folder / "ds", IngestSettings(properties="none", fingerprints=SETTINGS),
           workers=1)
    return MoleculeDataset(folder / "ds")


def test_prior_decoding_is_seeded_and_keeps_duplicates(dataset):
    torch.manual_seed(0)
    model = VAE(molecular_config("vae", SETTINGS, latent_dim=4, hidden_dims=(16,)))
    library = FingerprintLibrary.from_dataset(dataset.folder)
    rows, scores = decode_prior(model, library, 300, decode="mean", device="cpu", seed=3, batch_size=128)
    # Other batches, same draws: the hubness correction, taken over all draws, agrees too.
    again, _ = decode_prior(model, library, 300, decode="mean", device="cpu", seed=3)
    assert rows.shape == scores.shape == (300,) and (rows == again).all()
    # An untrained decoder emits ≈0.5 everywhere: by soft Tanimoto every draw lands on the same
    # dense hubs; Bernoulli-sampled bits spread over the library.
    sampled, _ = decode_prior(model, library, 300, decode="sample", device="cpu", seed=3)
    assert len(np.unique(rows)) < 10 < len(np.unique(sampled))


def test_the_hubness_correction_trades_a_little_similarity_for_distinct_hits(dataset):
    torch.manual_seed(0)
    model = VAE(molecular_config("vae", SETTINGS, latent_dim=4, hidden_dims=(16,)))
    library = FingerprintLibrary.from_dataset(dataset.folder)
    rows, scores = decode_prior(model, library, 300, device="cpu", seed=3, batch_size=64)
    nearest_rows, nearest_scores = decode_prior(model, library, 300, device="cpu", seed=3, batch_size=64,
                                                hubness=0)
    # The same draws (same seed): each corrected hit is one of the draw's nearest few, never
    # closer than its nearest, and together they cover more of the library.
    assert (scores <= nearest_scores + 1e-12).all() and (rows != nearest_rows).any()
    assert len(np.unique(rows)) > len(np.unique(nearest_rows))
    assert np.median(scores) >= np.median(nearest_scores) - 0.05
    with pytest.raises(ValueError, match="n must be >= 1"):
        decode_prior(model, library, 0, device="cpu")


def test_control_sweeps_each_condition_from_p5_to_p95(dataset):
    dataset.ensure_properties(["mw", "qed"])
    values = dataset.molecules(["mw", "qed"])
    scaler = ConditionScaler.fit(["mw", "qed"], values.to_numpy())
    torch.manual_seed(0)
    model = VAE(molecular_config("cvae", SETTINGS, latent_dim=4, hidden_dims=(16,), conditions=scaler))
    library = FingerprintLibrary.from_dataset(dataset.folder)
    metrics = control_metrics(model, library, dataset, samples_per_target=20, guide_k=1, device="cpu")
    assert metrics["n_groups_mw"] == len(CONTROL_LEVELS) == metrics["n_groups_qed"]
    for name in ("mw", "qed"):
        assert 0 <= metrics[f"within_tol_{name}"] <= 1
        assert 0 < metrics[f"uniqueness_group_min_{name}"] <= metrics[f"uniqueness_group_mean_{name}"] <= 1
        # The library is the training set: every hit is a training molecule.
        assert metrics[f"train_similarity_{name}"] == pytest.approx(1.0)
    assert not any(key.startswith("random_") for key in metrics)

    guided = control_metrics(model, library, dataset, samples_per_target=20, guide_k=len(library),
                             device="cpu")
    # Each draw weighs the whole library, which holds molecules within tolerance of every target.
    assert guided["within_tol_mw"] == guided["within_tol_qed"] == 1.0 > metrics["within_tol_mw"]
    # Targets span p5..p95, so achieved values that follow them rank with them.
    assert guided["spearman_mw"] > 0.6 and guided["spearman_qed"] > 0.6
    assert guided["guide_k"] == len(library)
    # The random baseline's k candidates per draw are drawn from the whole library, so the
    # guide finds an in-tolerance molecule among them nearly always.
    for name in ("mw", "qed"):
        assert guided[f"random_within_tol_{name}"] >= 0.9 and guided[f"random_n_groups_{name}"] == 5
    with pytest.raises(ValueError, match="guide_k must be >= 1"):
        control_metrics(model, library, dataset, samples_per_target=20, guide_k=0, device="cpu")


def test_prior_metrics_put_the_fitted_density_beside_standard_draws(dataset):
    torch.manual_seed(0)
    model = VAE(molecular_config("vae", SETTINGS, latent_dim=4, hidden_dims=(16,)))
    library = FingerprintLibrary.from_dataset(dataset.folder)
    standard = prior_metrics(model, library, dataset, dataset, n_samples=40, reference_size=40, device="cpu")
    assert standard["prior_fitted"] == 0 and "standard_raw_unique_fraction" not in standard
    model.latent_density = fit_latent_density(model, np.array(dataset.fingerprints), None, 1)
    fitted = prior_metrics(model, library, dataset, dataset, n_samples=40, reference_size=40, device="cpu")
    assert fitted["prior_fitted"] == 1
    # The N(0, I) numbers beside the fitted ones are those of the unfitted run, draw for draw.
    assert fitted["standard_raw_unique_fraction"] == standard["raw_unique_fraction"]
    assert fitted["standard_median_decode_similarity"] == standard["median_decode_similarity"]
    # The library is the training set here: every hit, model's or random, is a training molecule.
    assert fitted["train_similarity"] == fitted["random_train_similarity"] == 1.0


def test_train_similarity_is_the_mean_tanimoto_to_the_nearest_training_molecule():
    def packed(rows):
        bits = np.zeros((len(rows), 64), dtype=np.uint8)
        for i, on in enumerate(rows):
            bits[i, on] = 1
        return np.packbits(bits, axis=1)

    library = FingerprintLibrary.from_packed(packed([[0, 1], [2, 3], [9]]))
    train = FingerprintLibrary.from_packed(packed([[0, 1, 2], [3]]))
    # Row 0: 2/3 to {0,1,2}; row 1: 1/4 to {0,1,2} but 1/2 to {3}.
    assert train_similarity(library, np.array([0, 1]), train, "cpu") == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_a_bad_prior_fails_before_any_work(dataset, monkeypatch):
    import molvae.chem.evaluation as evaluation

    monkeypatch.setattr(evaluation, "reconstruct", lambda *a, **k: pytest.fail("recovery ran first"))
    model = VAE(molecular_config("vae", SETTINGS, latent_dim=4, hidden_dims=(16,)))
    library = FingerprintLibrary.from_dataset(dataset.folder)
    with pytest.raises(ValueError, match="prior must be one of"):
        evaluation.evaluate_model(model, library, dataset, dataset, prior="gmm", device="cpu")


def test_property_distances_count_a_hub_as_often_as_draws_hit_it(dataset):
    library = FingerprintLibrary.from_dataset(dataset.folder)
    smiles = library.smiles_at([0, 1, 2])
    reference = compute_properties_frame([Chem.MolFromSmiles(s) for s in smiles],
                                         ["clogp", "sa_score", "qed", "mw"])
    reference.insert(0, "smiles", smiles)
    hub = np.array([0, 0, 0, 1])  # three draws on row 0
    metrics = _set_metrics(hub, library, set(), library, reference, np.asarray(library.packed[:3]), "cpu")
    mw = reference["mw"].to_numpy()
    assert metrics["w1_mw"] == pytest.approx(wasserstein_distance(mw[[0, 0, 0, 1]], mw))
    assert metrics["w1_mw"] != pytest.approx(wasserstein_distance(mw[[0, 1]], mw))  # not once per molecule


def test_novel_evaluation_never_hits_nor_draws_training_molecules(dataset, tmp_path):
    torch.manual_seed(0)
    model = VAE(molecular_config("vae", SETTINGS, latent_dim=4, hidden_dims=(16,)))
    library = FingerprintLibrary.from_dataset(dataset.folder)
    exclude = np.zeros(len(library), bool)
    exclude[::2] = True
    rows, _ = decode_prior(model, library, 200, device="cpu", seed=1, exclude=exclude)
    assert not exclude[rows].any() and (eligible_rows(library, exclude) == np.flatnonzero(~exclude)).all()
    # A training set of the library's first 40 molecules: --novel leaves the other 80.
    with gzip.open(BUNDLED_TRAIN, "rt") as handle:
        (tmp_path / "train.csv").write_text("".join(itertools.islice(handle, 41)))
    ingest([tmp_path / "train.csv"], tmp_path / "train",
           IngestSettings(properties="none", fingerprints=SETTINGS), workers=1)
    train = MoleculeDataset(tmp_path / "train")
    metrics = evaluate_model(model, library, train, dataset, recovery_n=5, n_samples=40, reference_size=40,
                             similarities=["soft-tanimoto"], device="cpu", novel=True)
    assert metrics["excluded_training_rows"] == len(train) == 40
    assert metrics["novelty"] == metrics["random_novelty"] == 1.0  # no hit, drawn or random, is in training
