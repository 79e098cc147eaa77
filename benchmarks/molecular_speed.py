"""The speed and profile sections of ``benchmarks/molecular.py`` (see its docstring for the commands)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from molvae.chem.experiment import evaluate_fingerprints
from molvae.chem.fingerprints import FingerprintSettings, unpack_bits
from molvae.data import MoleculeDataset
from molvae.device import cpu_matmul_precision
from molvae.models.core import VAE
from molvae.models.molecular import fingerprint_data, molecular_config
from molvae.objectives import elbo_loss
from molvae.training import TrainConfig, Trainer, adam

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table
from molecular_data import MOSES_TRAIN_ROWS, test_library, train_sample


# -- speed -----------------------------------------------------------------------------
class SeedVAE(nn.Module):
    """The seed's network: 2048→256→(μ, log σ²) of 128; 128→256→2048 then a sigmoid."""

    def __init__(self, n_bits: int = 2048, hidden: int = 256, latent: int = 128) -> None:
        super().__init__()
        self.fc1, self.fc_mu, self.fc_logvar = (nn.Linear(n_bits, hidden), nn.Linear(hidden, latent),
                                                nn.Linear(hidden, latent))
        self.fc3, self.fc4 = nn.Linear(latent, hidden), nn.Linear(hidden, n_bits)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def seed_loss(output: tuple[torch.Tensor, torch.Tensor, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """BCE on sigmoid outputs plus KL, summed, per molecule (nats)."""
    recon, mu, logvar = output
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kl) / len(x)


def seed_config(settings: FingerprintSettings) -> Any:
    """Our config of the seed's architecture and loss: 2048→256→2×128, 128→256→2048, β = 1."""
    return molecular_config("vae", settings, hidden_dims=(256,), latent_dim=128, beta=1.0)


class SeedLoop:
    """The seed's loop on a dense float32 tensor; ``run`` trains one pass over the rows given."""

    def __init__(self, batch_size: int, dataloader: bool = True, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model, self.batch_size, self.dataloader = SeedVAE(), batch_size, dataloader
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def run(self, dense: torch.Tensor, packed: np.ndarray) -> float:
        if self.dataloader:
            loader = DataLoader(TensorDataset(dense), batch_size=self.batch_size, shuffle=True)
            batches = (x for (x,) in loader)
        else:
            batches = (dense[idx] for idx in torch.randperm(len(dense)).split(self.batch_size))
        started = time.perf_counter()
        total = 0.0
        for x in batches:
            loss = seed_loss(self.model(x), x)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total += loss.item()  # the seed logs its running loss: one sync a step
        return time.perf_counter() - started

    @torch.no_grad()
    def test_neg_elbo(self, packed: np.ndarray) -> float:
        dense = unpack_bits(torch.from_numpy(packed))
        return sum(seed_loss(self.model(x), x).item() * len(x) for x in dense.split(4096)) / len(dense)


class BareLoop:
    """The floor: our VAE and loss on packed bits with nothing around them. With
    ``flush=False`` its fused Adam lacks the Trainer's flush of negligible moments
    (``molvae.training.adam``), which shows what subnormal moments cost."""

    def __init__(self, config: Any, batch_size: int, seed: int = 0, flush: bool = True) -> None:
        torch.manual_seed(seed)
        self.model, self.batch_size = VAE(config), batch_size
        self.opt = (adam(self.model.parameters(), lr=1e-3) if flush
                    else torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=True))

    def run(self, dense: torch.Tensor, packed: np.ndarray) -> float:
        stored = torch.from_numpy(packed)
        started = time.perf_counter()
        for idx in torch.randperm(len(stored)).split(self.batch_size):
            x = unpack_bits(stored[idx])
            loss = elbo_loss(self.model(x), x, self.model.config.objective, 0).loss
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return time.perf_counter() - started

    def test_neg_elbo(self, packed: np.ndarray) -> float:
        return evaluate_fingerprints(self.model, packed)["neg_elbo_nats"]


class TrainerLoop:
    """Our Trainer on packed fingerprints; each slice is one Trainer epoch, resumed from the last.

    The time is the epoch's own (``history[-1]["seconds"]``): resuming and checkpointing
    between slices are kept out, as they happen once per real epoch, not per slice.
    """

    def __init__(self, config: Any, batch_size: int, progress: bool, folder: Path, seed: int = 0,
                 precision: str = "auto") -> None:
        self.config, self.batch_size, self.progress, self.folder, self.seed = (config, batch_size, progress,
                                                                               folder, seed)
        self.precision = precision
        self.slices, self.model = 0, None

    def run(self, dense: torch.Tensor, packed: np.ndarray) -> float:
        self.slices += 1
        torch.manual_seed(self.seed)
        config = TrainConfig(epochs=self.slices, batch_size=self.batch_size, lr=1e-3, device="cpu",
                             patience=None, seed=self.seed, progress=self.progress,
                             precision=self.precision)
        trainer = Trainer(VAE(self.config), config, self.folder)
        result = trainer.fit(fingerprint_data(packed), resume=self.slices > 1)
        self.model = trainer.model
        return result.history[-1]["seconds"]

    def test_neg_elbo(self, packed: np.ndarray) -> float:
        return evaluate_fingerprints(self.model, packed)["neg_elbo_nats"]


def _phase(times: dict[str, list[float]], name: str, started: float) -> float:
    now = time.perf_counter()
    times.setdefault(name, []).append(now - started)
    return now


def profile_steps(packed: np.ndarray, settings: FingerprintSettings, batch_size: int, steps: int = 300,
                  seed: int = 0) -> dict[str, dict[str, float]]:
    """Median milliseconds per step in each phase: the seed's step and the Trainer's step (with
    Adam as the Trainer builds it, fused, with torch's default multi-tensor Adam, and with
    ``--precision bf16``), interleaved step by step. Medians, because other processes' bursts
    slow some steps many times over."""
    steps = min(steps, len(packed) // batch_size)
    torch.manual_seed(seed)
    dense = unpack_bits(torch.from_numpy(packed[:steps * batch_size]))
    seed_model = SeedVAE()
    seed_opt = torch.optim.Adam(seed_model.parameters(), lr=1e-3)
    loader = iter(DataLoader(TensorDataset(dense), batch_size=batch_size, shuffle=True))

    def seed_step(times: dict[str, list[float]], _: int) -> None:
        t = time.perf_counter()
        (x,) = next(loader)
        t = _phase(times, "fetch batch (DataLoader + collate / index + unpack)", t)
        loss = seed_loss(seed_model(x), x)
        t = _phase(times, "forward + loss", t)
        seed_opt.zero_grad()
        loss.backward()
        t = _phase(times, "backward", t)
        seed_opt.step()
        t = _phase(times, "optimizer step", t)
        loss.item()
        _phase(times, "bookkeeping (.item() / 3×.item() + sums)", t)

    stored = torch.from_numpy(packed)
    order = torch.randperm(len(stored))

    def trainer_step(fused: bool, precision: str = "auto") -> Callable[[dict[str, list[float]], int], None]:
        """What Trainer._train_epoch does in one step, phase by phase."""
        model = VAE(seed_config(settings))
        opt = (adam(model.parameters(), lr=1e-3) if fused
               else torch.optim.Adam(model.parameters(), lr=1e-3))
        sums = torch.zeros(3, dtype=torch.float64)

        def step(times: dict[str, list[float]], b: int) -> None:
            with cpu_matmul_precision(torch.device("cpu"), precision):
                timed_step(times, b)

        def timed_step(times: dict[str, list[float]], b: int) -> None:
            nonlocal sums
            t = time.perf_counter()
            x = unpack_bits(stored[order[b * batch_size:(b + 1) * batch_size]])
            t = _phase(times, "fetch batch (DataLoader + collate / index + unpack)", t)
            terms = elbo_loss(model(x), x, model.config.objective, b)
            t = _phase(times, "forward + loss", t)
            value = terms.loss.item()
            opt.zero_grad(set_to_none=True)
            terms.loss.backward()
            t = _phase(times, "backward", t)
            opt.step()
            t = _phase(times, "optimizer step", t)
            sums += torch.tensor([value * len(x), terms.recon.sum().item(), terms.kl.sum().item()],
                                 dtype=torch.float64)
            _phase(times, "bookkeeping (.item() / 3×.item() + sums)", t)
        return step

    variants = {"seed": seed_step, "ours (fused Adam)": trainer_step(True),
                "ours, default multi-tensor Adam": trainer_step(False),
                "ours, --precision bf16": trainer_step(True, "bf16")}
    times: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    for b in range(steps):
        for name, step in variants.items():
            step(times[name], b)
    return {name: {phase: 1e3 * float(np.median(s)) for phase, s in phases.items()}
            for name, phases in times.items()}


def print_profile(profile: dict[str, dict[str, float]], batch: int) -> dict[str, dict[str, float]]:
    phases = list(dict.fromkeys(p for times in profile.values() for p in times))
    print_table(f"Per-step profile, batch {batch} (median ms per step, interleaved step by step)",
                ["phase", *profile],
                [[p, *(f"{times[p]:.2f}" if p in times else "–" for times in profile.values())]
                 for p in phases] + [["total", *(f"{sum(t.values()):.2f}" for t in profile.values())]])
    return profile


def profile(args: argparse.Namespace) -> dict[str, Any]:
    """The per-step profile of ``speed`` on its own, for re-running it on a quieter machine."""
    dataset = MoleculeDataset(train_sample(args.moses_dir, args.train_rows or 100_000))
    batch = 128
    steps = print_profile(profile_steps(np.array(dataset.fingerprints), dataset.fingerprint_settings, batch,
                                        steps=args.steps), batch)
    return {"batch_size": batch, "steps": args.steps, "threads": torch.get_num_threads(),
            "profile_median_ms_per_step": steps}


SEED_DL = "seed loop (DataLoader over dense float32)"
BF16 = "molvae Trainer, packed, --precision bf16"
DEFAULT = "default model, molvae Trainer, batch 128"
DEFAULT_BF16 = "default model, molvae Trainer, batch 128, --precision bf16"


def speed(args: argparse.Namespace) -> dict[str, Any]:
    rows = args.train_rows or 100_000
    dataset = MoleculeDataset(train_sample(args.moses_dir, rows))
    packed = np.array(dataset.fingerprints)  # a writable in-memory copy
    settings = dataset.fingerprint_settings
    n, batch = len(packed), 128
    dense = unpack_bits(torch.from_numpy(packed))  # the seed's dense float32 copy
    test, _ = test_library(args.moses_dir)
    test_packed = np.array(test.fingerprints[:5000])
    default = molecular_config("vae", settings)
    print(f"{n:,} MOSES train molecules; dense float32 copy {dense.numel() * 4 / 1e6:.0f} MB, "
          f"packed {packed.nbytes / 1e6:.0f} MB; {args.rounds} interleaved rounds", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        warm = packed[:2048]  # first calls (allocator, oneDNN kernels) stay out of the timings
        for loop in (SeedLoop(batch), BareLoop(seed_config(settings), batch),
                     TrainerLoop(seed_config(settings), batch, False, Path(tmp) / "warm")):
            loop.run(unpack_bits(torch.from_numpy(warm)), warm)
        loops = {
            SEED_DL: SeedLoop(batch),
            "seed loop, index tensors instead of DataLoader": SeedLoop(batch, dataloader=False),
            "molvae Trainer, packed (progress bar off)": TrainerLoop(seed_config(settings), batch, False,
                                                                     Path(tmp) / "off"),
            "molvae Trainer, packed (progress bar on)": TrainerLoop(seed_config(settings), batch, True,
                                                                    Path(tmp) / "on"),
            "bare loop on packed (floor)": BareLoop(seed_config(settings), batch),
            "bare loop on packed, Adam's moments not flushed": BareLoop(seed_config(settings), batch,
                                                                        flush=False),
            BF16: TrainerLoop(seed_config(settings), batch, False, Path(tmp) / "bf16", precision="bf16"),
            DEFAULT: TrainerLoop(default, batch, False, Path(tmp) / "default"),
            DEFAULT_BF16: TrainerLoop(default, batch, False, Path(tmp) / "default-bf16", precision="bf16"),
        }
        # The machine is shared: every loop runs a slice of the epoch in turn (in a rotating
        # order), so load from other processes falls on all of them alike.
        per_round: dict[str, list[float]] = {name: [] for name in loops}
        names = list(loops)
        parts = np.array_split(np.random.default_rng(args.seed).permutation(n), args.rounds)
        for r, part in enumerate(parts):
            part = np.sort(part)
            slice_packed, slice_dense = packed[part], dense[torch.from_numpy(part)]
            for name in names[r % len(names):] + names[:r % len(names)]:
                per_round[name].append(loops[name].run(slice_dense, slice_packed))
            latest = ", ".join(f"{times[-1]:.1f}" for times in per_round.values())
            print(f"round {r + 1}/{args.rounds} (load {os.getloadavg()[0]:.1f}): {latest} s", flush=True)
        quality = {name: loop.test_neg_elbo(test_packed) for name, loop in loops.items()
                   if not name.startswith(("seed loop,", "default"))}

    sizes = np.array([len(part) for part in parts])
    total = {name: sum(times) for name, times in per_round.items()}
    # Other processes only ever slow a slice down, so the fastest slice is the quiet-machine rate.
    fastest = {name: float(max(sizes / np.array(times))) for name, times in per_round.items()}
    seed_rounds = np.array(per_round[SEED_DL])
    median_ratio = {name: float(np.median(seed_rounds / np.array(times)))
                    for name, times in per_round.items()}
    compared = [name for name in loops if not name.startswith("default")]
    print_table(f"Training speed, seed architecture, batch {batch}, 1 epoch over {n:,} molecules in "
                f"{args.rounds} interleaved slices", ["loop", "samples/s, fastest slice", "× seed loop",
                                                      "samples/s, whole epoch", "× seed loop",
                                                      "× seed loop, median of slices",
                                                      "test −ELBO (5,000 mol., nats)"],
                [[name, f"{fastest[name]:,.0f}", f"{fastest[name] / fastest[SEED_DL]:.2f}×",
                  f"{n / total[name]:,.0f}", f"{total[SEED_DL] / total[name]:.2f}×",
                  f"{median_ratio[name]:.2f}×", f"{quality[name]:.1f}" if name in quality else "–"]
                 for name in compared])

    profile = print_profile(profile_steps(packed, settings, batch), batch)

    full_epoch = {}
    for name in (DEFAULT, DEFAULT_BF16):
        rate, quiet = n / total[name], fastest[name]
        full_epoch[name] = {"samples_per_second_fastest_slice": quiet, "samples_per_second_whole_epoch": rate,
                            "full_moses_epoch_seconds_fastest_slice": MOSES_TRAIN_ROWS / quiet,
                            "full_moses_epoch_seconds_whole_epoch": MOSES_TRAIN_ROWS / rate}
        print(f"\n{name} (hidden {default.hidden_dims}, latent {default.latent_dim}): {quiet:,.0f} "
              f"samples/s in its fastest slice ({rate:,.0f} over the whole epoch) → one epoch over "
              f"{MOSES_TRAIN_ROWS:,} MOSES train molecules ≈ {MOSES_TRAIN_ROWS / quiet:.0f} s "
              f"({MOSES_TRAIN_ROWS / rate:.0f} s at the whole-epoch rate; target ≤ 600 s)")
    return {"train_rows": n, "batch_size": batch, "threads": torch.get_num_threads(), "rounds": args.rounds,
            "seconds_per_round": per_round, "seconds": total,
            "samples_per_second_fastest_slice": fastest,
            "samples_per_second_whole_epoch": {name: n / s for name, s in total.items()},
            "ratio_to_seed_fastest_slice": {name: r / fastest[SEED_DL] for name, r in fastest.items()},
            "ratio_to_seed_whole_epoch": {name: total[SEED_DL] / s for name, s in total.items()},
            "ratio_to_seed_median_of_slices": median_ratio,
            "test_neg_elbo_nats": quality, "profile_median_ms_per_step": profile,
            "default_model": {"hidden_dims": list(default.hidden_dims), "latent_dim": default.latent_dim,
                              "batch_size": batch, **full_epoch}}
