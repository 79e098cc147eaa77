import pickle

import pytest
import torch

from molvae.latent_density import GaussianMixture
from molvae.models import VAE, VAEConfig, load_model, save_model


def test_save_and_load_rebuilds_the_same_model(tmp_path):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_dim=10, latent_dim=2, hidden_dims=(7,), dropout=0.1,
                          metadata={"note": "x"}))
    save_model(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "weights.pt"]
    loaded = load_model(tmp_path / "m")
    assert loaded.config == model.config and not loaded.training
    z = torch.randn(4, 2)
    model.eval()
    assert torch.equal(loaded.decode(z), model.decode(z))


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing"):
        load_model(tmp_path)


class Payload:
    def __reduce__(self):
        return (print, ("unpickled!",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_weights_are_loaded_without_unpickling_objects(tmp_path):
    model = VAE(VAEConfig(input_dim=4, latent_dim=2, hidden_dims=(3,)))
    save_model(model, tmp_path)
    with (tmp_path / "weights.pt").open("wb") as handle:
        pickle.dump({"evil": Payload()}, handle)
    with pytest.raises(pickle.UnpicklingError):
        load_model(tmp_path)


def test_the_latent_density_is_saved_and_a_stale_one_removed(tmp_path):
    model = VAE(VAEConfig(input_dim=10, latent_dim=2, hidden_dims=(7,)))
    model.latent_density = GaussianMixture.fit(torch.randn(50, 2), 1)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert torch.equal(loaded.latent_density.means, model.latent_density.means)
    model.latent_density = None  # e.g. retrained in the same folder: the old density no longer applies
    save_model(model, tmp_path / "m")
    assert not (tmp_path / "m" / "latent_density.pt").exists()
    assert load_model(tmp_path / "m").latent_density is None
