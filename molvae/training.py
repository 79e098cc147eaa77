"""The Trainer: device and AMP, validation, early stopping, checkpoint/resume, NaN guard.

Data is held in memory in its compact form (uint8 pixels, packed fingerprint bytes) and
converted to float one batch at a time, so no DataLoader or dense float copy is needed.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from molvae.checkpoints import TrainingState, load_checkpoint, save_checkpoint
from molvae.device import (
    check_precision,
    cpu_matmul_precision,
    effective_precision,
    forward_autocast,
    resolve_device,
)
from molvae.errors import NonFiniteLossError
from molvae.models.config import VAEConfig
from molvae.models.core import VAE
from molvae.models.persistence import save_model
from molvae.objectives import beta_at, capacity_at, elbo_loss, weighted_loss


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """Default batch conversion: cast stored values to float32."""
    return batch.float()


def adam(params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has one for the parameters' device.

    The fused step is the same update in one pass over each parameter. It cut the
    default MolecularVAE's optimizer step from 22 to 5 ms on 2 CPU cores (1.6× the whole
    step; BENCHMARKS.md, "Training speed against the seed's loop").
    """
    params = list(params)
    try:
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except RuntimeError:  # e.g. torch < 2.4 has no fused CPU kernel
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if any(p.device.type == "cpu" for p in params):  # GPUs handle subnormals at full speed
        optimizer.register_step_post_hook(_flush_tiny_moments)
    return optimizer


# Adam's moments of a weight whose gradient stays zero (a fingerprint bit absent from the
# batches, a dead ReLU unit) decay geometrically into the subnormal range, where CPU
# arithmetic is about 10× slower. In MOSES training a fifth of the first layer's first
# moments were subnormal after 700 steps, and an epoch ran 1.23× slower without this flush
# (BENCHMARKS.md, "Training speed against the seed's loop"). torch.set_flush_denormal cannot
# help: once torch's OpenMP workers exist it reaches only the calling thread. So moments
# below _TINY_MOMENT are set to zero every _FLUSH_EVERY steps: from 1e-30, β₁ = 0.9 needs
# 175 steps to reach the subnormal range (1.2e-38), and such a moment moves a weight by
# less than lr · 1e-22 a step (its denominator is at least ε = 1e-8).
_TINY_MOMENT = 1e-30
_FLUSH_EVERY = 100


@torch.no_grad()
def _flush_tiny_moments(optimizer: torch.optim.Optimizer, *_: object) -> None:
    """Step post-hook: zero negligible Adam moments on the CPU every ``_FLUSH_EVERY`` steps."""
    # Adam's own step count, so the rhythm survives a resumed checkpoint; from a CPU state,
    # since reading a CUDA one would synchronize every step.
    states = [s for s in optimizer.state.values()
              if "step" in s and (not torch.is_tensor(s["step"]) or s["step"].device.type == "cpu")]
    if not states or int(states[0]["step"]) % _FLUSH_EVERY:
        return
    for state in states:
        for key in ("exp_avg", "exp_avg_sq"):
            moment = state.get(key)
            if moment is not None and moment.device.type == "cpu":
                moment.masked_fill_(moment.abs() < _TINY_MOMENT, 0.0)


@dataclass
class TrainingData:
    """Model inputs kept compact, with optional conditions, converted per batch.

    Parameters
    ----------
    inputs
        One row per sample, in any dtype (e.g. uint8 pixels or packed bits).
    conditions
        Optional float condition vectors, one row per sample.
    transform
        Turns a batch of ``inputs`` rows into float model inputs of width ``input_dim``.
    """

    inputs: torch.Tensor
    conditions: torch.Tensor | None = None
    transform: Callable[[torch.Tensor], torch.Tensor] = to_float

    def __post_init__(self) -> None:
        if self.conditions is not None and len(self.conditions) != len(self.inputs):
            raise ValueError(f"{len(self.conditions)} conditions for {len(self.inputs)} inputs")

    def __len__(self) -> int:
        return len(self.inputs)

    def to(self, device: torch.device) -> TrainingData:
        conditions = None if self.conditions is None else self.conditions.to(device)
        return TrainingData(self.inputs.to(device), conditions, self.transform)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.transform(self.inputs[index])
        c = None if self.conditions is None else self.conditions[index]
        return x, c

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """All rows in order, in batches (for evaluation)."""
        for start in range(0, len(self), batch_size):
            yield self.batch(torch.arange(start, min(start + batch_size, len(self)),
                                          device=self.inputs.device))


@dataclass
class TrainConfig:
    """How to train; ``patience=None`` disables early stopping."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int | None = 5
    min_delta: float = 0.0
    grad_clip: float | None = None
    device: str = "auto"
    precision: str = "auto"  # see molvae.device.PRECISION_CHOICES
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        check_precision(self.precision)


class Callback:
    """Hook into training; override what you need (e.g. MLflow logging)."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """Called after each epoch's validation and checkpoint."""

    def on_fit_end(self, result: TrainResult) -> None:
        """Called once when training stops, after the final model is saved."""


@dataclass
class TrainResult:
    """What a fit did; ``history`` includes epochs run before a resume."""

    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    model_dir: Path
    seconds: float
    resumed_from_epoch: int = 0

    @property
    def epochs_this_fit(self) -> int:
        return len(self.history) - self.resumed_from_epoch


class Trainer:
    """Fits a :class:`VAE` and writes the model folder plus a per-epoch checkpoint."""

    def __init__(self, model: VAE, config: TrainConfig, model_dir: str | Path,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.model_dir = Path(model_dir)
        self.callbacks = list(callbacks)
        self.optimizer = adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        # Resolved here, so an unsupported setting fails before any data is read.
        self.precision = effective_precision(self.device, config.precision)
        self._autocast = forward_autocast(self.device, config.precision)

    # -- state -------------------------------------------------------------------------
    def _fresh_state(self) -> TrainingState:
        torch.manual_seed(self.config.seed)
        shuffle = torch.Generator().manual_seed(self.config.seed)
        return TrainingState(self.model.config.to_dict(), {}, {}, 0, 0,
                             torch.get_rng_state(), shuffle.get_state(), training=self._kept_settings())

    def _kept_settings(self) -> dict[str, float | int | None]:
        # What a resumed run must share with the run it continues: the optimizer state would
        # restore the old learning rate silently, and another batch size shifts the schedules.
        cfg = self.config
        return {"lr": cfg.lr, "batch_size": cfg.batch_size, "weight_decay": cfg.weight_decay,
                "grad_clip": cfg.grad_clip}

    def _resume_state(self) -> TrainingState:
        state = load_checkpoint(self.model_dir)
        saved = VAEConfig.from_dict(state.model_config)
        if saved.to_dict() != self.model.config.to_dict():
            raise ValueError(f"{self.model_dir}: the checkpoint was made for a different model config")
        changed = {k: (v, state.training[k]) for k, v in self._kept_settings().items()
                   if k in state.training and state.training[k] != v}
        if changed:
            raise ValueError(f"{self.model_dir}: the checkpoint was trained with "
                             + ", ".join(f"{k}={old}" for k, (_, old) in changed.items())
                             + "; resume with the same settings (got "
                             + ", ".join(f"{k}={new}" for k, (new, _) in changed.items())
                             + ") or train into a new folder")
        state.training = self._kept_settings()  # a checkpoint from before they were recorded gains them
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        torch.set_rng_state(state.torch_rng)
        if state.cuda_rng and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state.cuda_rng)
        return state

    def _snapshot(self, state: TrainingState, shuffle: torch.Generator) -> None:
        state.model = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        state.optimizer = self.optimizer.state_dict()
        state.torch_rng = torch.get_rng_state()
        state.shuffle_rng = shuffle.get_state()
        if self.device.type == "cuda":
            state.cuda_rng = torch.cuda.get_rng_state_all()
        save_checkpoint(state, self.model_dir)

    # -- loops -------------------------------------------------------------------------
    def _train_epoch(self, data: TrainingData, state: TrainingState, shuffle: torch.Generator,
                     progress: Progress | None) -> dict[str, float]:
        cfg, objective = self.config, self.model.config.objective
        self.model.train()
        order = torch.randperm(len(data), generator=shuffle).to(self.device)
        task = None
        n_batches = math.ceil(len(data) / cfg.batch_size)
        if progress is not None:
            task = progress.add_task(f"epoch {state.epoch + 1}/{cfg.epochs}", total=n_batches, loss="")
        sums = torch.zeros(3, dtype=torch.float64)
        for b in range(n_batches):
            x, c = data.batch(order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
            with self._autocast:
                terms = elbo_loss(self.model(x, c), x, objective, state.step)
            loss = terms.loss.item()
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    f"non-finite loss ({loss}) at epoch {state.epoch + 1}, step {state.step}; "
                    f"stopped, last good checkpoint kept at {self.model_dir / 'checkpoint.pt'} "
                    "(try a lower --lr or check the inputs for NaN)")
            self.optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            state.step += 1
            n = len(x)
            sums += torch.tensor([loss * n, terms.recon.sum().item(), terms.kl.sum().item()],
                                 dtype=torch.float64)
            if task is not None:
                progress.update(task, advance=1, loss=f"loss {loss:.2f}")
        if task is not None:
            progress.remove_task(task)
        loss_sum, recon, kl = (sums / len(data)).tolist()
        return {"train_loss": loss_sum, "train_recon": recon, "train_kl": kl}

    @torch.no_grad()
    def evaluate(self, data: TrainingData, step: int) -> dict[str, float]:
        """Mean objective, reconstruction, KL and −ELBO (β = 1) over ``data``."""
        self.model.eval()
        objective = self.model.config.objective
        recon_sum = kl_sum = 0.0
        for x, c in data.batches(max(self.config.batch_size, 1024)):
            with self._autocast:
                terms = elbo_loss(self.model(x, c), x, objective, step)
            recon_sum += terms.recon.sum().item()
            kl_sum += terms.kl.sum().item()
        recon, kl = recon_sum / len(data), kl_sum / len(data)
        return {"val_loss": float(weighted_loss(objective, recon, kl, step)),
                "val_recon": recon, "val_kl": kl, "val_neg_elbo": recon + kl}

    def fit(self, train: TrainingData, val: TrainingData | None = None,
            resume: bool = False) -> TrainResult:
        """Train for ``config.epochs`` (or until early stopping) and save the model folder.

        The final model holds the weights of the best validation epoch once the β /
        capacity schedule has finished (earlier epochs optimize a different objective).
        """
        if len(train) == 0:
            raise ValueError("no training data")
        self.model_dir.mkdir(parents=True, exist_ok=True)
        state = self._resume_state() if resume else self._fresh_state()
        resumed_from = state.epoch
        shuffle = torch.Generator().manual_seed(self.config.seed)
        shuffle.set_state(state.shuffle_rng)
        train = train.to(self.device)
        val = val.to(self.device) if val is not None and len(val) else None
        schedule_done_at = self.model.config.objective.schedule_steps
        started = time.perf_counter()
        stopped_early = False
        progress = self._progress()
        with progress or contextlib.nullcontext(), cpu_matmul_precision(self.device, self.config.precision):
            while state.epoch < self.config.epochs:
                if self._patience_out(state):
                    stopped_early = True
                    break
                t0 = time.perf_counter()
                metrics = self._train_epoch(train, state, shuffle, progress)
                if val is not None:
                    metrics |= self.evaluate(val, state.step)
                state.epoch += 1
                metrics |= {"epoch": state.epoch, "step": state.step,
                            "seconds": time.perf_counter() - t0, **self._schedule(state.step)}
                state.history.append(metrics)
                if val is not None and state.step >= schedule_done_at:
                    self._track_best(state, metrics["val_loss"])
                self._snapshot(state, shuffle)
                for callback in self.callbacks:
                    callback.on_epoch_end(state.epoch, metrics)
                if progress is not None:
                    progress.console.log(_epoch_line(metrics))
        if state.best_model is not None:
            self.model.load_state_dict(state.best_model)
        save_model(self.model, self.model_dir)
        best = state.best_epoch if state.best_model is not None else state.epoch
        result = TrainResult(state.history, best, stopped_early, self.model_dir,
                             time.perf_counter() - started, resumed_from)
        for callback in self.callbacks:
            callback.on_fit_end(result)
        return result

    def _patience_out(self, state: TrainingState) -> bool:
        # Checked before each epoch, so a resumed run that had already stopped stays stopped.
        return self.config.patience is not None and state.bad_epochs >= self.config.patience

    def _schedule(self, step: int) -> dict[str, float]:
        objective = self.model.config.objective
        capacity = capacity_at(objective, step)
        return {"beta": beta_at(objective, step)} | ({} if capacity is None else {"capacity": capacity})

    def _track_best(self, state: TrainingState, val_loss: float) -> None:
        if val_loss < state.best_val - self.config.min_delta:
            state.best_val, state.best_epoch, state.bad_epochs = val_loss, state.epoch, 0
            state.best_model = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        else:
            state.bad_epochs += 1

    def _progress(self) -> Progress | None:
        if not self.config.progress:
            return None
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[loss]}"), TimeElapsedColumn())


def _epoch_line(metrics: dict[str, float]) -> str:
    parts = [f"epoch {metrics['epoch']}", f"train {metrics['train_loss']:.2f}"]
    if "val_loss" in metrics:
        parts.append(f"val {metrics['val_loss']:.2f} (−ELBO {metrics['val_neg_elbo']:.2f})")
    parts.append(f"KL {metrics['train_kl']:.2f}")
    parts.append(f"{metrics['seconds']:.1f}s")
    return " · ".join(parts)
