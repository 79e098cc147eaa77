import numpy as np
import pytest
from rdkit import Chem

from molvae.chem import reconstruct
from molvae.chem.anomaly import domain, fingerprint_scores, percentile, reference_quantiles, score_smiles
from molvae.chem.fingerprints import FingerprintSettings, morgan_packed
from molvae.models import VAE
from molvae.models.molecular import ConditionScaler, molecular_config


def test_percentiles_against_the_reference():
    reference = reference_quantiles(np.arange(1, 101, dtype=float))  # 1..100
    assert len(reference) == 101
    np.testing.assert_allclose(percentile(np.array([1.0, 50.5, 100.0, 500.0, -5.0]), reference),
                               [0.0, 50.0, 100.0, 100.0, 0.0], atol=1e-6)
    # Discrete scores (ties between quantiles) still give a defined percentile.
    tied = reference_quantiles(np.array([1.0, 1.0, 1.0, 2.0]))
    assert 0 <= percentile(np.array([1.0]), tied)[0] <= 100
    with pytest.raises(ValueError, match="no training scores"):
        reference_quantiles(np.array([]))


def test_scoring_needs_a_reference_and_keeps_input_order():
    model = VAE(molecular_config("vae", FingerprintSettings(n_bits=256), latent_dim=2, hidden_dims=(8,)))
    with pytest.raises(ValueError, match="no training-set anomaly reference"):
        score_smiles(model, ["CCO"])
    model.config.metadata["anomaly_reference"] = list(np.linspace(10, 200, 101))
    frame = score_smiles(model, ["CCO", "C1CC(", "c1ccccc1O"], read_errors=None)
    assert frame["input_row"].tolist() == [1, 2, 3]
    assert frame["reason"].tolist()[1].startswith("unparseable") and frame["reason"][0] == ""
    # Each accepted row carries its own molecule's score and percentile, in input order.
    settings = FingerprintSettings(n_bits=256)
    packed = morgan_packed([Chem.MolFromSmiles("CCO"), Chem.MolFromSmiles("c1ccccc1O")], settings)
    expected = fingerprint_scores(model, packed)
    assert expected[0] != pytest.approx(expected[1])
    np.testing.assert_allclose(frame["anomaly_score"][[0, 2]].astype(float), expected, rtol=1e-6)
    np.testing.assert_allclose(frame["anomaly_percentile"][[0, 2]].astype(float),
                               percentile(expected, model.config.metadata["anomaly_reference"]))


def test_a_conditional_model_rejects_an_input_whose_condition_cannot_be_computed(monkeypatch):
    scaler = ConditionScaler.fit(["mw"], np.array([[16.0], [100.0]]))
    model = VAE(molecular_config("cvae", FingerprintSettings(n_bits=256), latent_dim=2, hidden_dims=(8,),
                                 conditions=scaler))
    model.config.metadata["anomaly_reference"] = list(np.linspace(10, 200, 101))
    real = reconstruct.compute_properties_frame

    def mw_unknown_for_phenol(mols, names):  # as RDKit leaves a property it cannot compute
        frame = real(mols, names)
        frame.loc[[Chem.MolToSmiles(m) == "Oc1ccccc1" for m in mols], "mw"] = np.nan
        return frame

    monkeypatch.setattr(reconstruct, "compute_properties_frame", mw_unknown_for_phenol)
    frame = score_smiles(model, ["CCO", "c1ccccc1O", "C1CC(", "CCN"])
    assert frame["reason"].tolist()[1] == "mw could not be computed, and the model conditions on it"
    assert frame["reason"].tolist()[2].startswith("unparseable") and np.isnan(frame["anomaly_score"][1])
    assert np.isfinite(frame["anomaly_score"][[0, 3]]).all() and frame["input_row"].tolist() == [1, 2, 3, 4]


def test_domain_names_the_tail_a_percentile_falls_in():
    labels = domain(np.array([0.0, 4.9, 5.0, 50.0, 95.0, 99.5, np.nan]))
    low, high = "low (simpler than training)", "high (unlike training)"
    assert labels.tolist() == [low, low, "typical", "typical", "typical", high, ""]
