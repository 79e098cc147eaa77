import math
import types

import pytest
import torch

from molvae.checkpoints import load_checkpoint
from molvae.models import VAE, ObjectiveConfig, VAEConfig, load_model
from molvae.objectives import beta_at
from molvae.training import Callback, NonFiniteLossError, TrainConfig, Trainer, TrainingData, adam


def toy_data(n=96, seed=0):
    gen = torch.Generator().manual_seed(seed)
    prototypes = (torch.rand(3, 16, generator=gen) > 0.5).float()
    labels = torch.randint(0, 3, (n,), generator=gen)
    flips = torch.rand(n, 16, generator=gen) < 0.05
    x = (prototypes[labels] + flips.float()) % 2
    return TrainingData((x * 255).to(torch.uint8), transform=lambda b: b.float() / 255)


def model(seed=0, **objective):
    torch.manual_seed(seed)
    return VAE(VAEConfig(input_dim=16, latent_dim=2, hidden_dims=(12,), dropout=0.2,
                         objective=ObjectiveConfig(**objective)))


def config(**kwargs):
    return TrainConfig(**{"epochs": 3, "batch_size": 16, "device": "cpu", "progress": False,
                          "patience": None, **kwargs})


def test_training_lowers_the_loss_and_writes_the_model_folder(tmp_path):
    result = Trainer(model(), config(epochs=8, lr=1e-2), tmp_path).fit(toy_data(), toy_data(seed=1))
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert {"config.json", "weights.pt", "checkpoint.pt"} <= {p.name for p in tmp_path.iterdir()}
    assert load_model(tmp_path).config.latent_dim == 2


def test_schedules_advance_only_on_training_steps(tmp_path):
    trainer = Trainer(model(beta=2.0, warmup_steps=20), config(epochs=2), tmp_path)
    # A validation set 10x the training set must not move the step or β.
    result = trainer.fit(toy_data(n=32), toy_data(n=320, seed=1))
    assert [h["step"] for h in result.history] == [2, 4]
    assert [h["beta"] for h in result.history] == [beta_at(trainer.model.config.objective, s)
                                                   for s in (2, 4)] == [0.2, 0.4]
    assert load_checkpoint(tmp_path).step == 4


class Interrupt(Callback):
    def __init__(self, at_epoch):
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, metrics):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    full = Trainer(model(), config(), tmp_path / "full").fit(toy_data(), toy_data(seed=1))
    with pytest.raises(KeyboardInterrupt):
        Trainer(model(), config(), tmp_path / "cut", [Interrupt(1)]).fit(toy_data(), toy_data(seed=1))
    assert load_checkpoint(tmp_path / "cut").epoch == 1
    # A different initialization proves the weights come from the checkpoint.
    resumed = Trainer(model(seed=99), config(), tmp_path / "cut").fit(toy_data(), toy_data(seed=1),
                                                                      resume=True)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    assert (resumed.resumed_from_epoch, resumed.epochs_this_fit) == (1, 2)
    a, b = load_model(tmp_path / "full").state_dict(), load_model(tmp_path / "cut").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_different_model(tmp_path):
    Trainer(model(), config(epochs=1), tmp_path).fit(toy_data())
    other = VAE(VAEConfig(input_dim=16, latent_dim=3, hidden_dims=(12,)))
    with pytest.raises(ValueError, match="different model config"):
        Trainer(other, config(), tmp_path).fit(toy_data(), resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(model(), config(), tmp_path / "empty").fit(toy_data(), resume=True)


def test_resume_refuses_other_optimizer_settings_and_accepts_more_epochs(tmp_path):
    Trainer(model(), config(epochs=1), tmp_path).fit(toy_data())
    assert load_checkpoint(tmp_path).training["lr"] == config().lr
    # The optimizer state would bring back the old rate silently; another batch size would
    # shift the β schedule's steps.
    changed = r"trained with lr=0\.001, batch_size=16; .*got lr=0\.01, batch_size=8"
    with pytest.raises(ValueError, match=changed):
        Trainer(model(), config(epochs=2, lr=1e-2, batch_size=8), tmp_path).fit(toy_data(), resume=True)
    resumed = Trainer(model(), config(epochs=2, patience=3), tmp_path).fit(toy_data(), resume=True)
    assert resumed.epochs_this_fit == 1
    # A checkpoint from before the settings were recorded resumes, and records them from then on.
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del payload["training"]
    torch.save(payload, tmp_path / "checkpoint.pt")
    Trainer(model(), config(epochs=3), tmp_path).fit(toy_data(), resume=True)
    assert load_checkpoint(tmp_path).training["batch_size"] == 16


class Poison(Callback):
    def __init__(self, trainer):
        self.trainer = trainer

    def on_epoch_end(self, epoch, metrics):
        with torch.no_grad():
            self.trainer.model.encoder[0].weight.fill_(float("nan"))


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = Trainer(model(), config(), tmp_path)
    trainer.callbacks.append(Poison(trainer))
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 6.*checkpoint"):
        trainer.fit(toy_data(), toy_data(seed=1))
    state = load_checkpoint(tmp_path)
    assert state.epoch == 1
    assert all(torch.isfinite(v).all() for v in state.model.values())


def test_early_stopping_waits_for_the_schedule_and_keeps_the_best_epoch(tmp_path):
    # min_delta so large that no epoch counts as an improvement after the first armed one.
    trainer = Trainer(model(warmup_steps=12), config(epochs=10, patience=2, min_delta=1e9), tmp_path)
    result = trainer.fit(toy_data(), toy_data(seed=1))
    # 6 steps per epoch: the schedule ends after epoch 2, which becomes the best; 2 more epochs.
    assert result.stopped_early and result.best_epoch == 2 and len(result.history) == 4
    state = load_checkpoint(tmp_path)
    saved = load_model(tmp_path).state_dict()
    assert all(torch.equal(saved[k], state.best_model[k]) for k in saved)


def test_resuming_a_run_that_stopped_early_trains_no_more(tmp_path):
    config_ = config(epochs=10, patience=2, min_delta=1e9)
    first = Trainer(model(), config_, tmp_path).fit(toy_data(), toy_data(seed=1))
    assert first.stopped_early and len(first.history) == 3
    again = Trainer(model(), config_, tmp_path).fit(toy_data(), toy_data(seed=1), resume=True)
    assert again.stopped_early and len(again.history) == 3 and again.epochs_this_fit == 0


def test_seeded_runs_are_deterministic(tmp_path):
    a = Trainer(model(), config(epochs=2), tmp_path / "a").fit(toy_data(), toy_data(seed=1))
    b = Trainer(model(), config(epochs=2), tmp_path / "b").fit(toy_data(), toy_data(seed=1))
    assert [h["val_loss"] for h in a.history] == [h["val_loss"] for h in b.history]
    assert all(math.isfinite(h["val_neg_elbo"]) for h in a.history)


def test_conditions_must_match_inputs():
    with pytest.raises(ValueError, match="conditions for"):
        TrainingData(torch.zeros(3, 2), torch.zeros(2, 1))


def test_adam_is_fused_where_torch_can_and_plain_where_it_cannot(monkeypatch):
    params = [torch.nn.Parameter(torch.zeros(3))]
    assert adam(params, lr=1e-3).param_groups[0]["fused"]
    real = torch.optim.Adam

    def torch_without_fused_cpu_adam(p, **kwargs):
        if kwargs.get("fused"):
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of "
                               "supported devices: ['cuda']")
        return real(p, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", torch_without_fused_cpu_adam)
    # An iterator, as model.parameters() is: the failed attempt must not use it up.
    fallback = adam(iter(params), lr=1e-3)
    assert not fallback.param_groups[0]["fused"] and len(fallback.param_groups[0]["params"]) == 1


def run_adam(optimizer, param, steps, start=0):
    # Entry 0 gets a gradient once, then none, so its moments decay towards the subnormal
    # range: 0.9ᵏ · 1e-21 drops below the flush threshold (1e-30) at step 198. Entry 1 keeps
    # a real gradient.
    for step in range(start, start + steps):
        param.grad = torch.tensor([1e-20 if step == 0 else 0.0, 0.5])
        optimizer.step()


@pytest.mark.parametrize("fused", [True, False])
def test_adam_flushes_tiny_moments_every_100_steps(fused, monkeypatch):
    if not fused:  # the plain Adam a torch without the fused CPU kernel falls back to
        real = torch.optim.Adam
        monkeypatch.setattr(torch.optim, "Adam", lambda p, **kw: real(p, **{**kw, "fused": False}))
    flushed, plain = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    ours, reference = adam([flushed], lr=1e-3), torch.optim.Adam([plain], lr=1e-3)
    assert ours.param_groups[0]["fused"] == fused
    run_adam(ours, flushed, 199)
    run_adam(reference, plain, 199)
    # Below the threshold since step 198, but kept until the step count reaches 200.
    assert 0 < ours.state[flushed]["exp_avg"][0] < 1e-30
    run_adam(ours, flushed, 1, start=199)
    run_adam(reference, plain, 1, start=199)
    state = ours.state[flushed]
    assert state["exp_avg"][0] == 0 and reference.state[plain]["exp_avg"][0] != 0
    assert state["exp_avg"][1] != 0 and state["exp_avg_sq"][1] != 0
    torch.testing.assert_close(flushed.detach(), plain.detach(), rtol=0, atol=1e-7)


def test_the_flush_rhythm_survives_a_resumed_optimizer():
    param = torch.nn.Parameter(torch.ones(2))
    first = adam([param], lr=1e-3)
    run_adam(first, param, 150)
    resumed = adam([param], lr=1e-3)
    resumed.load_state_dict(first.state_dict())
    run_adam(resumed, param, 49, start=150)
    assert resumed.state[param]["exp_avg"][0] != 0  # step 199: not yet
    run_adam(resumed, param, 1, start=199)
    assert resumed.state[param]["exp_avg"][0] == 0  # step 200 counts from the first optimizer


def test_the_flush_skips_parameters_without_state():
    used, unused = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = adam([unused, used], lr=1e-3)
    assert optimizer.state[unused] == {}  # read before any step: an empty state comes first
    run_adam(optimizer, used, 200)
    assert optimizer.state[used]["exp_avg"][0] == 0


class MatmulPrecision(Callback):
    def __init__(self):
        self.seen = []

    def on_epoch_end(self, epoch, metrics):
        self.seen.append(torch.backends.mkldnn.matmul.fp32_precision)


@pytest.mark.skipif(not hasattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision"),
                    reason="torch < 2.9 has no bf16 matmul setting")
def test_bf16_precision_trains_in_bf16_matmuls_on_the_cpu_and_restores_the_setting(tmp_path):
    before = torch.backends.mkldnn.matmul.fp32_precision
    seen = MatmulPrecision()
    result = Trainer(model(), config(epochs=8, lr=1e-2, precision="bf16"), tmp_path, [seen]).fit(
        toy_data(), toy_data(seed=1))
    assert seen.seen == ["bf16"] * 8 and torch.backends.mkldnn.matmul.fp32_precision == before
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="precision must be one of"):
        config(precision="half")


def test_an_unsupported_precision_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.backends, "mkldnn", types.SimpleNamespace())  # as on torch < 2.9
    with pytest.raises(ValueError, match="needs torch >= 2"):
        Trainer(model(), config(precision="bf16"), tmp_path)
    assert not tmp_path.joinpath("checkpoint.pt").exists()
