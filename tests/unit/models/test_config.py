import json

import pytest

from molvae.models.config import ObjectiveConfig, VAEConfig


def test_round_trip_through_json(tmp_path):
    config = VAEConfig(input_dim=784, latent_dim=8, hidden_dims=(64, 32), kind="cvae", condition_dim=10,
                       objective=ObjectiveConfig(beta=2.0, warmup_steps=50),
                       metadata={"class_names": ["a", "b"]})
    config.save(tmp_path / "config.json")
    loaded = VAEConfig.load(tmp_path / "config.json")
    assert loaded == config
    assert isinstance(loaded.objective, ObjectiveConfig)
    assert loaded.hidden_dims == (64, 32)
    assert json.loads((tmp_path / "config.json").read_text())["format_version"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "gan"}, "kind must be one of"),
        ({"kind": "cvae"}, "needs condition_dim"),
        ({"condition_dim": 3}, "needs condition_dim"),
        ({"activation": "swish"}, "activation"),
        ({"latent_dim": 0}, "positive"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_invalid_configs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VAEConfig(input_dim=10, **kwargs)


def test_unknown_keys_and_versions_are_rejected():
    data = VAEConfig(input_dim=4).to_dict()
    with pytest.raises(ValueError, match="unknown config keys"):
        VAEConfig.from_dict({**data, "colour": "red"})
    with pytest.raises(ValueError, match="format_version"):
        VAEConfig.from_dict({**data, "format_version": 99})


def test_objective_validation_and_schedule_length():
    with pytest.raises(ValueError, match="likelihood"):
        ObjectiveConfig(likelihood="poisson")
    with pytest.raises(ValueError, match="beta"):
        ObjectiveConfig(beta=-1)
    assert ObjectiveConfig(warmup_steps=7).schedule_steps == 7
    assert ObjectiveConfig(warmup_steps=7, capacity_max=5, capacity_steps=30).schedule_steps == 30
