"""Molecular VAE benchmarks on MOSES; prints markdown tables, writes JSON.

Sections (run one at a time):

- ``speed``: training samples/s side by side in one run at the seed's architecture
  (2048→256→(μ, log σ²) of 128, 128→256→2048, batch 128, Adam 1e-3), one epoch each
  over ``--train-rows`` MOSES train molecules (default 100,000): the seed's loop (a torch
  DataLoader over a dense float32 tensor of unpacked bits, sigmoid then
  ``F.binary_cross_entropy``, plus KL), the same loop without the DataLoader, our Trainer on
  packed fingerprints (progress bar off and on), a bare loop on packed fingerprints (the
  floor) and the default model (hidden 1024,512, latent 128, batch 512), extrapolated to one
  epoch over all 1,584,399 MOSES train molecules. The machine is shared, so the epoch is cut
  into ``--rounds`` slices and the loops take turns on each; the fastest slice gives the
  quiet-machine rate. Then the per-step profile (below).
- ``profile``: median milliseconds per step in each phase (fetch, forward + loss, backward,
  optimizer, bookkeeping) of the seed's step and the Trainer's, interleaved step by step;
  also run at the end of ``speed``.
- ``sweep``: β and size grid. Each model is trained with ``train_molecular_model`` on a
  MOSES train sample (default 200,000 rows, 5% held out for validation) and evaluated on
  2,000 MOSES test molecules encoded → decoded → searched in a library of all MOSES test
  molecules (top-1, top-10 and mean decode similarity for both soft similarities), and on
  2,000 prior draws at temperature 1 decoded with k = 1 in that library (median decode
  similarity, unique fraction of raw hits before de-duplication). A time budget
  (``--budget-min``) drops the configurations that would not fit; dropped ones are listed.

Datasets are ingested once (``--properties none``) into ``benchmarks/results/cache``:
a seeded random sample of MOSES train (a smaller sample is a subset of a larger one) and
all of MOSES test, plus its fingerprint library. Sweep models are kept in
``benchmarks/results/models/molecular-sweep`` and reused by a re-run with the same
settings. Results go to ``benchmarks/results/molecular_<section>.json``. Usage::

    .venv/bin/python benchmarks/molecular.py speed --train-rows 100000 --rounds 25
    .venv/bin/python benchmarks/molecular.py profile --steps 300
    .venv/bin/python benchmarks/molecular.py sweep --train-rows 200000 --epochs 4 --budget-min 40
    .venv/bin/python benchmarks/molecular.py sweep --train-rows 100000 --batch-size 128 --betas 0.01,0.002

On a machine shared with other torch processes, prefix ``OMP_WAIT_POLICY=PASSIVE``: with
spinning OpenMP threads on both sides, steps here ran 4-15× slower.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from rdkit import RDLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from molvae.chem.experiment import evaluate_fingerprints, train_molecular_model
from molvae.chem.fingerprints import FingerprintSettings, unpack_bits
from molvae.chem.ingest import IngestSettings, ingest
from molvae.chem.reconstruct import reconstruct, recovery
from molvae.chem.search import SIMILARITIES, FingerprintLibrary
from molvae.data import MoleculeDataset
from molvae.io import write_json
from molvae.models import load_model
from molvae.models.core import VAE
from molvae.models.molecular import fingerprint_data, molecular_config
from molvae.objectives import elbo_loss
from molvae.training import TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "cache"
MODELS = RESULTS / "models" / "molecular-sweep"
MOSES_TRAIN_ROWS = 1_584_399  # accepted molecules of a full MOSES train ingest (BENCHMARKS.md)
K = 10


# -- data ------------------------------------------------------------------------------
def train_sample(moses_dir: Path, rows: int, seed: int = 0) -> Path:
    """Ingest a seeded random sample of ``rows`` MOSES train SMILES (kept in file order)."""
    source = CACHE / f"moses-train-sample-{rows}.csv"
    if not source.exists():
        smiles = pd.read_csv(moses_dir / "train.csv.gz")["SMILES"]
        chosen = np.sort(np.random.default_rng(seed).permutation(len(smiles))[:rows])
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = source.with_suffix(".tmp")
        smiles.iloc[chosen].to_frame().to_csv(tmp, index=False)
        tmp.rename(source)
    folder = CACHE / f"moses-train-sample-{rows}"
    ingest([source], folder, IngestSettings(properties="none"))
    return folder


def test_library(moses_dir: Path) -> tuple[MoleculeDataset, FingerprintLibrary]:
    """All of MOSES test, ingested, and its fingerprint library (built once)."""
    folder = CACHE / "moses-test"  # the same dataset benchmarks/search.py queries with
    ingest([moses_dir / "test.csv.gz"], folder, IngestSettings(properties="none"))
    library_dir = CACHE / "moses-test-library"
    if not (library_dir / "library.json").exists():
        FingerprintLibrary.from_dataset(folder).save(library_dir)
    return MoleculeDataset(folder), FingerprintLibrary.open(library_dir)


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
    """Our config of the seed's architecture: 2048→256→2×128, 128→256→2048."""
    return molecular_config("vae", settings, hidden_dims=(256,), latent_dim=128)


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
    """The floor: our VAE and loss on packed bits with nothing around them."""

    def __init__(self, config: Any, batch_size: int, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model, self.batch_size = VAE(config), batch_size
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)

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

    def __init__(self, config: Any, batch_size: int, progress: bool, folder: Path, seed: int = 0) -> None:
        self.config, self.batch_size, self.progress, self.folder, self.seed = (config, batch_size, progress,
                                                                               folder, seed)
        self.slices, self.model = 0, None

    def run(self, dense: torch.Tensor, packed: np.ndarray) -> float:
        self.slices += 1
        torch.manual_seed(self.seed)
        config = TrainConfig(epochs=self.slices, batch_size=self.batch_size, lr=1e-3, device="cpu",
                             patience=None, seed=self.seed, progress=self.progress)
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
    Adam as the Trainer builds it, and with ``fused=True``), interleaved step by step. Medians,
    because other processes' bursts slow some steps many times over."""
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

    def trainer_step(fused: bool) -> Callable[[dict[str, list[float]], int], None]:
        """What Trainer._train_epoch does in one step, phase by phase."""
        model = VAE(seed_config(settings))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused or None)
        sums = torch.zeros(3, dtype=torch.float64)

        def step(times: dict[str, list[float]], b: int) -> None:
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

    variants = {"seed": seed_step, "ours": trainer_step(False), "ours, fused Adam": trainer_step(True)}
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


def speed(args: argparse.Namespace) -> dict[str, Any]:
    rows = args.train_rows or 100_000
    dataset = MoleculeDataset(train_sample(args.moses_dir, rows))
    packed = np.array(dataset.fingerprints)  # a writable in-memory copy
    settings = dataset.fingerprint_settings
    n, batch, default_batch = len(packed), 128, 512
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
            "default model, molvae Trainer, batch 512": TrainerLoop(default, default_batch, False,
                                                                    Path(tmp) / "default"),
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

    name = "default model, molvae Trainer, batch 512"
    rate, quiet = n / total[name], fastest[name]
    print(f"\nDefault model (hidden {default.hidden_dims}, latent {default.latent_dim}, "
          f"batch {default_batch}): {quiet:,.0f} samples/s in its fastest slice ({rate:,.0f} over the "
          f"whole epoch) → one epoch over {MOSES_TRAIN_ROWS:,} MOSES train molecules ≈ "
          f"{MOSES_TRAIN_ROWS / quiet:.0f} s ({MOSES_TRAIN_ROWS / rate:.0f} s at the whole-epoch rate; "
          "target ≤ 600 s)")
    return {"train_rows": n, "batch_size": batch, "threads": torch.get_num_threads(), "rounds": args.rounds,
            "seconds_per_round": per_round, "seconds": total,
            "samples_per_second_fastest_slice": fastest,
            "samples_per_second_whole_epoch": {name: n / s for name, s in total.items()},
            "ratio_to_seed_fastest_slice": {name: r / fastest[SEED_DL] for name, r in fastest.items()},
            "ratio_to_seed_whole_epoch": {name: total[SEED_DL] / s for name, s in total.items()},
            "ratio_to_seed_median_of_slices": median_ratio,
            "test_neg_elbo_nats": quality, "profile_median_ms_per_step": profile,
            "default_model": {"hidden_dims": list(default.hidden_dims), "latent_dim": default.latent_dim,
                              "batch_size": default_batch, "samples_per_second_fastest_slice": quiet,
                              "samples_per_second_whole_epoch": rate,
                              "full_moses_epoch_seconds_fastest_slice": MOSES_TRAIN_ROWS / quiet,
                              "full_moses_epoch_seconds_whole_epoch": MOSES_TRAIN_ROWS / rate}}


# -- sweep -----------------------------------------------------------------------------
def grid(epochs: int, steps_per_epoch: int, betas: list[float]) -> list[dict[str, Any]]:
    """β runs at the default size (β = 1 with a warm-up over half the epochs); the larger model
    takes the β with the best top-1 (then mean decode similarity) among them."""
    runs = [{"name": "β=1, warm-up", "beta": 1.0, "warmup_steps": max(1, epochs // 2) * steps_per_epoch}
            for b in betas if b == 1.0]
    runs += [{"name": f"β={b}", "beta": b, "warmup_steps": 0} for b in betas if b != 1.0]
    for run in runs:
        run |= {"hidden_dims": [1024, 512], "latent_dim": 128, "epochs": epochs}
    return [*runs, {"name": "large (2048,1024)/256, best β", "beta": None, "warmup_steps": 0,
                    "hidden_dims": [2048, 1024], "latent_dim": 256, "epochs": epochs}]


def relative_cost(hidden: list[int], latent: int, n_bits: int = 2048) -> float:
    """Multiply-adds per molecule relative to the default (1024,512)/128 model."""
    def macs(h: list[int], d: int) -> int:
        widths = [n_bits, *h]
        enc = sum(a * b for a, b in zip(widths, [*h, 2 * d], strict=True))
        dec = sum(a * b for a, b in zip([d, *reversed(h)], [*reversed(h), n_bits], strict=True))
        return enc + dec
    return macs(hidden, latent) / macs([1024, 512], 128)


def model_folder(name: str) -> Path:
    return MODELS / name.replace(" ", "_").replace("/", "-").replace(",", "-")


def train_run(dataset_dir: Path, run: dict[str, Any], batch_size: int, seed: int) -> dict[str, Any]:
    """Train one configuration, or reuse the model a previous run with the same spec left."""
    folder = model_folder(run["name"])
    spec = {**run, "dataset": str(dataset_dir), "batch_size": batch_size, "seed": seed}
    spec_file = folder / "bench_spec.json"
    done = spec_file.exists() and (folder / "metrics.json").exists()
    if done and json.loads(spec_file.read_text()) == spec:
        print(f"{run['name']}: reusing {folder}", flush=True)
        return json.loads((folder / "metrics.json").read_text())
    config = TrainConfig(epochs=run["epochs"], batch_size=batch_size, lr=1e-3, patience=None, device="cpu",
                         seed=seed, progress=False)
    metrics = train_molecular_model(
        dataset_dir, folder, kind="vae" if run["beta"] == 1.0 else "beta-vae", train_config=config,
        latent_dim=run["latent_dim"], hidden_dims=run["hidden_dims"], beta=run["beta"],
        warmup_steps=run["warmup_steps"])
    write_json(spec_file, spec)
    return metrics


def evaluate(model: VAE, library: FingerprintLibrary, smiles: list[str], prior_samples: int,
             seed: int) -> dict[str, Any]:
    """Recovery of test molecules and decode similarity / uniqueness of prior draws."""
    out: dict[str, Any] = {}
    for similarity in SIMILARITIES:
        frame = reconstruct(model, library, smiles, k=K, similarity=similarity, device="cpu")
        out[similarity] = recovery(frame, K)
    probabilities = model.sample(prior_samples, 1.0, generator=torch.Generator().manual_seed(seed))
    for similarity in SIMILARITIES:
        hits = library.search(probabilities.numpy(), 1, similarity=similarity, device="cpu")
        rows = hits.indices[:, 0]
        out[similarity]["prior_median_decode_similarity"] = float(np.median(hits.scores[:, 0]))
        out[similarity]["prior_unique_fraction"] = len(np.unique(rows[rows >= 0])) / len(rows)
    return out


def sweep_results(batch: int, rows: int) -> Path:
    """The first sweep (batch 512) keeps its name; other batch sizes are named by batch and rows."""
    if batch == 512:
        return RESULTS / "molecular_sweep.json"
    return RESULTS / f"molecular_sweep_batch{batch}_rows{rows}.json"


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    rows = args.train_rows or 200_000
    dataset_dir = train_sample(args.moses_dir, rows)
    test, library = test_library(args.moses_dir)
    n_rows = len(MoleculeDataset(dataset_dir))
    n_train = n_rows - round(n_rows * 0.05)  # train_molecular_model holds out 5% for validation
    eval_rows = np.sort(np.random.default_rng(args.seed).choice(len(test), args.eval_rows, replace=False))
    smiles = test.molecules(["smiles"])["smiles"].iloc[eval_rows].tolist()
    batch = args.batch_size
    runs = grid(args.epochs, -(-n_train // batch), [float(b) for b in args.betas.split(",")])
    if batch != 512:  # other batch sizes keep their own models and results
        for run in runs:
            run["name"] += f", batch {batch}" + ("" if rows == 100_000 else f", {rows // 1000}k rows")
    print(f"{n_train:,} training molecules, {len(library):,} library molecules, {len(smiles):,} queries; "
          f"setup {time.perf_counter() - started:.0f} s", flush=True)
    results: dict[str, Any] = {"train_rows": rows, "n_train": n_train, "library_rows": len(library),
                               "eval_molecules": len(smiles), "prior_samples": args.prior_samples,
                               "batch_size": batch, "epochs": args.epochs, "runs": {}, "cut": []}
    budget = args.budget_min * 60
    per_epoch_default = None
    for run in runs:
        if run["beta"] is None:  # the larger model takes the β with the best top-1 recovery
            best = max(results["runs"].values(), key=lambda r: (r["soft-tanimoto"]["top1"],
                                                                r["soft-tanimoto"]["mean_decode_similarity"]))
            run["beta"], run["warmup_steps"] = best["beta"], best["warmup_steps"]
            run["name"] = f"large (2048,1024)/256, β={run['beta']}"
        elapsed = time.perf_counter() - started
        if per_epoch_default is not None:
            estimate = (per_epoch_default * relative_cost(run["hidden_dims"], run["latent_dim"])
                        * run["epochs"] * 1.1)
            if elapsed + estimate > budget:
                print(f"cut {run['name']}: needs ≈{estimate / 60:.0f} min, "
                      f"{(budget - elapsed) / 60:.0f} min left of the budget", flush=True)
                results["cut"].append({"name": run["name"], "estimated_seconds": estimate})
                continue
        t0 = time.perf_counter()
        metrics = train_run(dataset_dir, run, batch, args.seed)
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        model = load_model(model_folder(run["name"]))
        scores = evaluate(model, library, smiles, args.prior_samples, args.seed)
        eval_s = time.perf_counter() - t1
        if per_epoch_default is None and run["hidden_dims"] == [1024, 512]:
            per_epoch_default = (train_s + eval_s) / run["epochs"]  # everything a run costs, per epoch
        results["runs"][run["name"]] = {**run, **scores, "val_kl_nats": metrics["val_kl_nats"],
                                        "val_recon_nats": metrics["val_recon_nats"],
                                        "val_neg_elbo_nats": metrics["val_neg_elbo_nats"],
                                        "active_units": metrics["val_active_units"],
                                        "seconds_per_epoch": metrics["seconds_per_epoch"],
                                        "train_seconds": train_s, "eval_seconds": eval_s}
        soft = scores["soft-tanimoto"]
        print(f"{run['name']}: top-1 {soft['top1']:.3f}, top-10 {soft['top10']:.3f}, val KL "
              f"{metrics['val_kl_nats']:.1f}, prior median {soft['prior_median_decode_similarity']:.3f}, "
              f"unique {soft['prior_unique_fraction']:.3f}; train {train_s:.0f} s, eval {eval_s:.0f} s",
              flush=True)
        write_json(sweep_results(batch, rows), {"result": results, "partial": True})

    recovery_rows, prior_rows = [], []
    for name, r in results["runs"].items():
        cells = []
        for s in SIMILARITIES:
            cells += [f"{r[s]['top1']:.3f}", f"{r[s]['top10']:.3f}", f"{r[s]['mean_decode_similarity']:.3f}"]
        recovery_rows.append([name, f"{r['val_kl_nats']:.1f}", f"{r['val_recon_nats']:.1f}",
                              r["active_units"], *cells, f"{r['seconds_per_epoch']:.0f}"])
        prior_rows.append([name, *(f"{r[s]['prior_median_decode_similarity']:.3f} / "
                                   f"{r[s]['prior_unique_fraction']:.3f}" for s in SIMILARITIES)])
    print_table(f"Recovery of {len(smiles):,} MOSES test molecules in all {len(library):,} "
                f"({n_train:,} training molecules, {args.epochs} epochs, batch {batch})",
                ["run", "val KL", "val recon", "active", "top-1 soft", "top-10 soft", "mean sim soft",
                 "top-1 sq", "top-10 sq", "mean sim sq", "s/epoch"], recovery_rows)
    print_table(f"{args.prior_samples:,} prior draws (temperature 1), k = 1: median decode similarity / "
                "unique fraction of raw hits", ["run", *SIMILARITIES], prior_rows)
    if results["cut"]:
        print("\ncut for time: " + ", ".join(c["name"] for c in results["cut"]))
    return results


SECTIONS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {"speed": speed, "profile": profile,
                                                                        "sweep": sweep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=list(SECTIONS))
    parser.add_argument("--moses-dir", type=Path, default=ROOT.parent / "shared" / "datasets" / "moses")
    parser.add_argument("--train-rows", type=int, default=None,
                        help="MOSES train rows sampled (default: speed 100,000, sweep 200,000).")
    parser.add_argument("--rounds", type=int, default=25, help="speed: interleaved slices of the epoch.")
    parser.add_argument("--steps", type=int, default=300, help="profile: training steps profiled.")
    parser.add_argument("--epochs", type=int, default=4, help="sweep: epochs per configuration.")
    parser.add_argument("--eval-rows", type=int, default=2000, help="sweep: test molecules to recover.")
    parser.add_argument("--prior-samples", type=int, default=2000, help="sweep: prior draws.")
    parser.add_argument("--budget-min", type=float, default=40.0,
                        help="sweep: skip configurations that would end past this many minutes.")
    parser.add_argument("--batch-size", type=int, default=512, help="sweep: training batch size.")
    parser.add_argument("--betas", default="1,0.05,0.01,0.002", help="sweep: β values (1 warms up).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    RDLogger.DisableLog("rdApp.*")
    started = time.perf_counter()
    result = SECTIONS[args.section](args)
    out = RESULTS / f"molecular_{args.section}.json"
    if args.section == "sweep":
        out = sweep_results(args.batch_size, args.train_rows or 200_000)
    write_json(out, {"result": result, "seconds": time.perf_counter() - started,
                "command": " ".join(sys.argv[1:])})


if __name__ == "__main__":
    main()
