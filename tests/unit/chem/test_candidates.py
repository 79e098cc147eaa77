import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem

from molvae.chem.anomaly import REFERENCE_KEY, fingerprint_scores, percentile, reference_quantiles
from molvae.chem.candidates import annotate_candidates, in_training_set
from molvae.chem.fingerprints import FingerprintSettings, morgan_packed
from molvae.chem.search import FingerprintLibrary
from molvae.models import VAE
from molvae.models.molecular import ConditionScaler, molecular_config

SETTINGS = FingerprintSettings(n_bits=512)
SMILES = ["CCO", "CCN", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "O=C1C=CC(=O)C=C1", "CCCCCC", "c1ccncc1"]


def library(smiles):
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    keys = [Chem.MolToInchiKey(m) for m in mols]
    return FingerprintLibrary.from_packed(morgan_packed(mols, SETTINGS), keys,
                                          [Chem.MolToSmiles(m) for m in mols], SETTINGS)


def model(conditions=None):
    torch.manual_seed(0)
    vae = VAE(molecular_config("cvae" if conditions else "vae", SETTINGS, latent_dim=4, hidden_dims=(16,),
                               conditions=conditions))
    lib = library(SMILES)
    cond = None if conditions is None else torch.zeros(len(lib), len(conditions.names))
    scores = fingerprint_scores(vae, np.asarray(lib.packed), cond)
    vae.config.metadata[REFERENCE_KEY] = reference_quantiles(scores)
    return vae


def generated(indices, lib):
    return pd.DataFrame({"rank": np.arange(1, len(indices) + 1), "smiles": lib.smiles_at(indices),
                         "library_id": lib.ids_at(indices), "library_index": indices,
                         "decode_similarity": np.linspace(0.9, 0.5, len(indices))})


def test_annotation_adds_novelty_properties_domain_and_provenance():
    lib, train, vae = library(SMILES), library(SMILES[:3]), model()
    frame = annotate_candidates(generated(np.array([2, 3, 4]), lib), lib, vae, train=train,
                                model_name="m", run_id="r")
    assert frame["novel"].tolist() == [False, True, True]
    assert frame["nearest_train_similarity"].iloc[0] == 1.0
    assert frame["nearest_train_smiles"].iloc[0] == lib.smiles_at([2])[0]
    assert frame["nearest_train_similarity"].iloc[1:].lt(1.0).all()
    assert frame["inchikey"].tolist() == lib.ids_at([2, 3, 4])
    paracetamol = frame.iloc[1]
    assert paracetamol["mw"] == pytest.approx(151.165, abs=0.01) and paracetamol["hbd"] == 2
    assert "Brenk" in frame["alerts"].iloc[2]  # a quinone
    # Each candidate's domain score is the model's score of that retrieved molecule.
    expected = fingerprint_scores(vae, np.asarray(lib.packed[[2, 3, 4]]))
    np.testing.assert_allclose(frame["ad_score"], expected, rtol=1e-6)
    reference = vae.config.metadata[REFERENCE_KEY]
    np.testing.assert_allclose(frame["ad_percentile"], percentile(expected, reference))
    assert len(set(expected.round(3))) == 3
    assert (frame["model"] == "m").all() and (frame["run_id"] == "r").all()


def test_without_a_training_set_novelty_is_unknown_not_false():
    lib = library(SMILES)
    frame = annotate_candidates(generated(np.array([0, 1]), lib), lib, model())
    assert frame["novel"].isna().all() and frame["nearest_train_similarity"].isna().all()


def test_conditioned_candidates_report_target_and_achieved():
    lib = library(SMILES)
    scaler = ConditionScaler(("mw", "clogp"), (100.0, 1.0), (30.0, 1.0))
    request = generated(np.array([3, 6]), lib).assign(target_mw=150.0, target_clogp=1.0)
    frame = annotate_candidates(request, lib, model(scaler))
    assert frame["target_mw"].tolist() == [150.0, 150.0]
    assert frame["achieved_mw"].iloc[0] == pytest.approx(151.165, abs=0.01)
    assert frame["achieved_clogp"].tolist() == frame["clogp"].tolist()


def test_training_membership_is_by_inchikey():
    train = library(SMILES[:2])
    found = in_training_set([*train.ids_at([1, 0]), "NOTAKEY", None], train)
    assert found.tolist() == [True, True, False, False]
