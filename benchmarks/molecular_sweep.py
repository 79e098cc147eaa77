"""The sweep section of ``benchmarks/molecular.py`` (see its docstring for the commands)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molvae.chem.experiment import train_molecular_model
from molvae.chem.reconstruct import reconstruct, recovery
from molvae.chem.search import SIMILARITIES, FingerprintLibrary
from molvae.data import MoleculeDataset
from molvae.io import write_json
from molvae.models import load_model
from molvae.models.core import VAE
from molvae.training import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table
from molecular_data import MODELS, RESULTS, K, test_library, train_sample


# -- sweep -----------------------------------------------------------------------------
def grid(epochs: int, steps_per_epoch: int, betas: list[float], latent_dims: list[int] = (),
         large: bool = True, capacities: list[float] = ()) -> list[dict[str, Any]]:
    """β runs at the default size (β = 1 with a warm-up over half the epochs); capacity runs
    (Burgess et al.: KL held at C nats, C rising over half the steps) at the default size;
    then the default hidden layers at each of ``latent_dims`` and, with ``large``, the larger
    model, which take the β with the best top-1 (then mean decode similarity) among the β runs."""
    runs = [{"name": "β=1, warm-up", "beta": 1.0, "warmup_steps": max(1, epochs // 2) * steps_per_epoch}
            for b in betas if b == 1.0]
    runs += [{"name": f"β={b}", "beta": b, "warmup_steps": 0} for b in betas if b != 1.0]
    runs += [{"name": f"C={c:g} nats", "beta": 1.0, "warmup_steps": 0, "capacity": c,
              "capacity_steps": max(1, epochs // 2) * steps_per_epoch} for c in capacities]
    for run in runs:
        run |= {"hidden_dims": [1024, 512], "latent_dim": 128, "epochs": epochs}
    runs += [{"name": f"(1024,512)/{d}, best β", "beta": None, "warmup_steps": 0, "hidden_dims": [1024, 512],
              "latent_dim": d, "epochs": epochs} for d in latent_dims]
    if large:
        runs.append({"name": "large (2048,1024)/256, best β", "beta": None, "warmup_steps": 0,
                     "hidden_dims": [2048, 1024], "latent_dim": 256, "epochs": epochs})
    return runs


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
                         seed=seed, progress=False, precision=run.get("precision", "auto"))
    metrics = train_molecular_model(
        dataset_dir, folder, kind="vae" if run["beta"] == 1.0 else "beta-vae", train_config=config,
        latent_dim=run["latent_dim"], hidden_dims=run["hidden_dims"], beta=run["beta"],
        warmup_steps=run["warmup_steps"], capacity=run.get("capacity"),
        capacity_steps=run.get("capacity_steps", 10_000))
    write_json(spec_file, spec)
    return metrics


def evaluate(model: VAE, library: FingerprintLibrary, smiles: list[str], prior_samples: int,
             seed: int, prior: str = "standard") -> dict[str, Any]:
    """Recovery of test molecules and decode similarity / uniqueness of draws from ``prior``."""
    out: dict[str, Any] = {}
    for similarity in SIMILARITIES:
        frame = reconstruct(model, library, smiles, k=K, similarity=similarity, device="cpu")
        out[similarity] = recovery(frame, K)
    probabilities = model.sample(prior_samples, 1.0, generator=torch.Generator().manual_seed(seed),
                                 prior=prior)
    for similarity in SIMILARITIES:
        hits = library.search(probabilities.numpy(), 1, similarity=similarity, device="cpu")
        rows = hits.indices[:, 0]
        out[similarity]["prior_median_decode_similarity"] = float(np.median(hits.scores[:, 0]))
        out[similarity]["prior_unique_fraction"] = len(np.unique(rows[rows >= 0])) / len(rows)
    return out


def sweep_results(batch: int, rows: int, latent_dims: str = "", capacities: str = "",
                  precision: str = "auto", prior: str = "standard") -> Path:
    """The first sweep (batch 512) keeps its name; others are named by batch and rows, and by
    latent sizes, capacities, a training precision other than auto or the fitted prior when
    they ran some."""
    if batch == 512 and not latent_dims and not capacities and precision == "auto" and prior == "standard":
        return RESULTS / "molecular_sweep.json"
    latent = f"_latent{latent_dims.replace(',', '-')}" if latent_dims else ""
    capacity = f"_capacity{capacities.replace(',', '-')}" if capacities else ""
    trained_in = "" if precision == "auto" else f"_{precision}"
    drawn_from = "" if prior == "standard" else f"_{prior}-prior"
    return RESULTS / f"molecular_sweep_batch{batch}_rows{rows}{latent}{capacity}{trained_in}{drawn_from}.json"


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
    runs = grid(args.epochs, -(-n_train // batch), [float(b) for b in args.betas.split(",")],
                [int(d) for d in args.latent_dims.split(",") if d], not args.no_large,
                [float(c) for c in args.capacities.split(",") if c])
    if batch != 512:  # other batch sizes keep their own models and results
        for run in runs:
            run["name"] += f", batch {batch}" + ("" if rows == 100_000 else f", {rows // 1000}k rows")
    if args.precision != "auto":  # a model of its own, named after how it was trained
        for run in runs:
            run["name"] += f", {args.precision}"
            run["precision"] = args.precision
    print(f"{n_train:,} training molecules, {len(library):,} library molecules, {len(smiles):,} queries; "
          f"setup {time.perf_counter() - started:.0f} s", flush=True)
    results: dict[str, Any] = {"train_rows": rows, "n_train": n_train, "library_rows": len(library),
                               "eval_molecules": len(smiles), "prior_samples": args.prior_samples,
                               "prior": args.prior,
                               "batch_size": batch, "epochs": args.epochs, "runs": {}, "cut": []}
    budget = args.budget_min * 60
    per_epoch_default = None
    for run in runs:
        if run["beta"] is None:  # size runs take the β with the best top-1 recovery
            best = max((r for r in results["runs"].values() if "capacity" not in r
                        and r["latent_dim"] == 128 and r["hidden_dims"] == [1024, 512]),
                       key=lambda r: (r["soft-tanimoto"]["top1"],
                                      r["soft-tanimoto"]["mean_decode_similarity"]))
            run["beta"], run["warmup_steps"] = best["beta"], best["warmup_steps"]
            # The large model's name predates latent runs; its trained folder is reused by it.
            run["name"] = (f"large (2048,1024)/256, β={run['beta']}" if run["hidden_dims"] == [2048, 1024]
                           else run["name"].replace("best β", f"β={run['beta']}"))
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
        scores = evaluate(model, library, smiles, args.prior_samples, args.seed, args.prior)
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
        write_json(sweep_results(batch, rows, args.latent_dims, args.capacities, args.precision, args.prior),
                   {"result": results, "partial": True})

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
