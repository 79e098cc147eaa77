import pytest
import torch

from molvae.checkpoints import CHECKPOINT_FILE, TrainingState, load_checkpoint, save_checkpoint


def state(**overrides):
    values = {"model_config": {"latent_dim": 2}, "model": {"w": torch.arange(3.0)},
              "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0]}]}, "epoch": 2,
              "step": 40, "torch_rng": torch.get_rng_state(), "shuffle_rng": torch.Generator().get_state(),
              "history": [{"epoch": 1, "train_loss": 3.5}, {"epoch": 2, "train_loss": 2.5}],
              "best_val": 2.25, "best_epoch": 2, "bad_epochs": 0,
              "training": {"lr": 0.01, "batch_size": 16, "weight_decay": 0.0, "grad_clip": None}}
    return TrainingState(**(values | overrides))


def test_a_checkpoint_round_trips_without_unpickling_objects(tmp_path):
    saved = state(best_model={"w": torch.ones(3)})
    path = save_checkpoint(saved, tmp_path)
    assert path == tmp_path / CHECKPOINT_FILE
    torch.load(path, weights_only=True)  # tensors, numbers and strings only
    loaded = load_checkpoint(tmp_path)
    assert loaded.model_config == saved.model_config and loaded.history == saved.history
    assert loaded.training == saved.training and loaded.optimizer == saved.optimizer
    assert (loaded.epoch, loaded.step, loaded.best_val, loaded.best_epoch) == (2, 40, 2.25, 2)
    assert torch.equal(loaded.model["w"], saved.model["w"])
    assert torch.equal(loaded.best_model["w"], torch.ones(3))
    assert torch.equal(loaded.torch_rng, saved.torch_rng)
    assert torch.equal(loaded.shuffle_rng, saved.shuffle_rng)


def test_a_checkpoint_from_before_the_training_settings_loads_without_them(tmp_path):
    save_checkpoint(state(), tmp_path)
    payload = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    del payload["training"]
    torch.save(payload, tmp_path / CHECKPOINT_FILE)
    assert load_checkpoint(tmp_path).training == {}


def test_missing_and_foreign_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        load_checkpoint(tmp_path)
    save_checkpoint(state(), tmp_path)
    payload = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    torch.save(payload | {"format_version": 99}, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(ValueError, match="unsupported checkpoint format_version 99"):
        load_checkpoint(tmp_path)
