import numpy as np
import pytest
import torch

from molvae.chem.fingerprints import FingerprintSettings
from molvae.models import VAE, load_model, save_model
from molvae.models.molecular import DEFAULT_BETA, ConditionScaler, fingerprint_data, molecular_config


def test_condition_scaler_round_trip_and_errors():
    values = np.array([[300.0, 2.0], [400.0, 4.0], [500.0, 6.0]])
    scaler = ConditionScaler.fit(["mw", "clogp"], values)
    assert scaler.means == (400.0, 4.0)
    z = scaler.normalize(values)
    assert torch.allclose(z.mean(0), torch.zeros(2), atol=1e-6)
    np.testing.assert_allclose(scaler.denormalize(z), values, rtol=1e-6)
    assert torch.allclose(scaler.normalize({"clogp": 4.0, "mw": 400.0}), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"unknown condition \['qed'\]: this model's conditions are "
                                         r"\['mw', 'clogp'\]"):
        scaler.normalize({"mw": 1.0, "qed": 0.5})
    with pytest.raises(ValueError, match=r"missing \['clogp'\]$"):
        scaler.normalize({"mw": 400.0})
    partial = scaler.normalize({"mw": 500.0}, partial=True)  # clogp left free
    assert partial[0, 0].item() == pytest.approx(100.0 / scaler.stds[0]) and torch.isnan(partial[0, 1])
    with pytest.raises(ValueError, match=r"unknown condition \['qed'\]"):
        scaler.normalize({"qed": 0.5}, partial=True)
    with pytest.raises(ValueError, match=r"conditions are .*\(name at least one\)"):
        scaler.normalize({}, partial=True)
    with pytest.raises(ValueError, match="'mw' must be a finite number"):
        scaler.normalize({"mw": float("nan")}, partial=True)
    with pytest.raises(ValueError, match="finite"):
        ConditionScaler.fit(["mw"], np.array([[np.nan]]))
    constant = ConditionScaler.fit(["x"], np.ones((4, 1)))
    assert constant.stds == (1.0,)


def test_config_describes_fingerprints_and_conditions(tmp_path):
    scaler = ConditionScaler.fit(["qed"], np.array([[0.2], [0.8]]))
    config = molecular_config("cvae", FingerprintSettings(radius=3, n_bits=1024), latent_dim=8,
                              hidden_dims=(32,), conditions=scaler)
    assert (config.input_dim, config.condition_dim, config.kind) == (1024, 1, "cvae")
    assert config.metadata["fingerprint"] == {"radius": 3, "n_bits": 1024, "chirality": False}
    # A saved and reloaded conditional model normalizes targets exactly as trained.
    save_model(VAE(config), tmp_path)
    reloaded = ConditionScaler.from_config(load_model(tmp_path).config)
    assert reloaded == scaler
    assert torch.equal(reloaded.normalize({"qed": 0.9}), scaler.normalize({"qed": 0.9}))
    assert molecular_config("beta-vae", FingerprintSettings()).objective.beta == 4.0
    assert molecular_config("vae", FingerprintSettings()).objective.beta == DEFAULT_BETA == 0.002
    with pytest.raises(ValueError, match="cvae needs condition"):
        molecular_config("cvae", FingerprintSettings())
    with pytest.raises(ValueError, match="not conditional"):
        ConditionScaler.from_config(molecular_config("vae", FingerprintSettings()))


def test_fingerprints_stay_packed_and_unpack_per_batch():
    packed = np.random.default_rng(0).integers(0, 256, size=(5, 32), dtype=np.uint8)
    data = fingerprint_data(packed)
    assert data.inputs.dtype == torch.uint8 and data.inputs.shape == (5, 32)
    x, c = data.batch(torch.tensor([3, 1]))
    assert c is None and torch.equal(x, torch.from_numpy(np.unpackbits(packed[[3, 1]], axis=1)).float())
