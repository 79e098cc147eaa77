"""MolecularVAE choices measured on the bundled data alone (no ../shared needed).

The bundled training set (20,000 MOSES molecules) and library (100,000 others) are what
``make demo`` runs on. One run trains a β = 0.05 model at each batch size, side by side,
and reports for each:

- recovery of 500 library molecules the model never saw (encode → decode → search in the
  library, soft Tanimoto), top-1 and top-10;
- 2,000 prior draws decoded both ways (``--decode mean``: soft Tanimoto on the probabilities;
  ``--decode sample``: Bernoulli bits, exact Tanimoto): unique library molecules among the
  raw hits (before de-duplication, so hubness shows) and the median decode similarity.

With ``--control``, it instead trains a conditional model on QED, cLogP and MW (batch 128)
for each of ``--betas`` and measures property control for each of ``--priors`` (latents
from N(0, I), or from the fitted density conditioned on the targets) and each of
``--guide-ks`` (1: the nearest library molecule, or with ``--hubness K`` the
hubness-corrected choice; k > 1: property-guided decoding, see ``molvae.chem.guided``): each
condition swept over five targets from the training set's 5th to 95th percentile (others at
their medians), 1,000 draws per target decoded into the library, Spearman between target and
achieved values, the fraction within tolerance (cLogP ±0.5, MW ±25 Da, QED ±0.1) and
uniqueness per target. Guided runs also report the same
choice among k random library molecules, and the mean Tanimoto of the hits to their nearest
training molecule for both.

Usage::

    .venv/bin/python benchmarks/bundled.py [--epochs 10] [--batch-sizes 512,128]
    .venv/bin/python benchmarks/bundled.py --control [--epochs 10] [--betas 0.05,0.5,2] \
        [--priors standard,fitted] [--guide-ks 1] [--guide-band 0.5] [--hubness 0]

``--hubness`` (CSLS neighbours, :mod:`molvae.chem.hubness`) defaults to 0 here, the nearest
molecule, as when the results in BENCHMARKS.md were measured.

Results go to ``benchmarks/results/bundled.json`` (``--control``: ``bundled_control.json``, or
``bundled_control_guided.json`` when any guide k is above 1).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import print_table

from molvae.chem.evaluation import control_metrics, decode_prior
from molvae.chem.experiment import train_molecular_model
from molvae.chem.ingest import IngestSettings, ingest
from molvae.chem.reconstruct import reconstruct, recovery
from molvae.chem.search import FingerprintLibrary
from molvae.data import MoleculeDataset
from molvae.models import load_model
from molvae.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "cache" / "bundled"


def prepare() -> tuple[Path, FingerprintLibrary, list[str]]:
    """The ingested training set, the library, and 500 library SMILES for recovery (cached)."""
    train = CACHE / "train-ds"
    ingest([ROOT / "data" / "moses" / "train.csv.gz"], train, IngestSettings(properties="none"))
    library_ds = CACHE / "library-ds"
    ingest([ROOT / "data" / "moses" / "library.csv.gz"], library_ds, IngestSettings(properties="none"))
    if not (CACHE / "library" / "library.json").is_file():
        FingerprintLibrary.from_dataset(library_ds).save(CACHE / "library")
    smiles = MoleculeDataset(library_ds).molecules(["smiles"])["smiles"]
    picks = np.sort(np.random.default_rng(0).choice(len(smiles), 500, replace=False))
    return train, FingerprintLibrary.open(CACHE / "library"), smiles.iloc[picks].tolist()


def measure(
    train: Path, library: FingerprintLibrary, queries: list[str], batch_size: int, epochs: int, hubness: int
) -> dict[str, float]:
    model_dir = RESULTS / "models" / f"bundled-b{batch_size}-e{epochs}"
    started = time.perf_counter()
    metrics = train_molecular_model(
        train,
        model_dir,
        beta=0.05,
        train_config=TrainConfig(epochs=epochs, batch_size=batch_size, progress=False, device="cpu", seed=0),
    )
    seconds = time.perf_counter() - started
    model = load_model(model_dir)
    found = recovery(reconstruct(model, library, queries, 10, device="cpu"), 10)
    row = {
        "batch_size": batch_size,
        "epochs": epochs,
        "train_seconds": seconds,
        "val_kl_nats": metrics["val_kl_nats"],
        "val_recon_nats": metrics["val_recon_nats"],
        "top1": found["top1"],
        "top10": found["top10"],
    }
    for decode in ("mean", "sample"):
        rows, scores = decode_prior(model, library, 2000, decode=decode, device="cpu", seed=0,
                                    hubness=hubness)
        row[f"{decode}_unique"] = len(np.unique(rows)) / len(rows)
        row[f"{decode}_median_similarity"] = float(np.median(scores))
    return row


def control(train: Path, library: FingerprintLibrary, epochs: int, betas: list[float], priors: list[str],
            guide_ks: list[int], band: float, hubness: int) -> dict[str, dict]:
    """Control of a cvae per β, prior and guide k (with the random-library baseline when guided)."""
    names = ["qed", "clogp", "mw"]
    results: dict[str, dict] = {}
    for beta in betas:
        model_dir = RESULTS / "models" / f"bundled-cvae-e{epochs}-beta{beta:g}"
        fit = train_molecular_model(
            train, model_dir, kind="cvae", condition=names, beta=beta,
            train_config=TrainConfig(epochs=epochs, batch_size=128, progress=False, device="cpu", seed=0))
        for prior in priors:
            for k in guide_ks:
                measured = control_metrics(load_model(model_dir), library, MoleculeDataset(train),
                                           samples_per_target=1000, prior=prior, guide_k=k, guide_band=band,
                                           hubness=hubness, device="cpu")
                results[f"β {beta:g}, {prior}, k {k}"] = {"val_kl_nats": fit["val_kl_nats"]} | measured
    rows = []
    for run, m in results.items():
        for source in ("", "random_") if m["guide_k"] > 1 else ("",):
            rows.append([run if not source else f"{run}: random library draws", f"{m['val_kl_nats']:.1f}",
                         *(f"{m[f'{source}spearman_{n}']:.3f} / {m[f'{source}within_tol_{n}']:.1%} / "
                           f"{m[f'{source}uniqueness_group_mean_{n}']:.3f} / "
                           f"{m[f'{source}train_similarity_{n}']:.3f}" for n in names)])
    print_table(
        f"Property control, cvae on QED/cLogP/MW, {epochs} epochs, guide band {band:g}, 5 targets × 1,000 "
        "draws each "
        "(Spearman / within tolerance / mean unique per target / mean Tanimoto to the nearest training "
        "molecule)",
        ["β, prior, guide k", "val KL (nats)", *names], rows)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-sizes", default="512,128")
    parser.add_argument("--control", action="store_true", help="Measure a conditional model's control.")
    parser.add_argument("--betas", default="0.05,0.5,2", help="--control: the cvae's β values.")
    parser.add_argument("--priors", default="standard,fitted", help="--control: latent priors to compare.")
    parser.add_argument("--guide-ks", default="1", help="--control: property-guide k values (1 = none).")
    parser.add_argument("--guide-band", type=float, default=0.5, help="--control: the guide's band.")
    parser.add_argument("--hubness", type=int, default=0, help="CSLS neighbours of the hubness correction.")
    args = parser.parse_args()
    train, library, queries = prepare()
    if args.control:
        metrics = control(train, library, args.epochs, [float(b) for b in args.betas.split(",")],
                          args.priors.split(","), [int(k) for k in args.guide_ks.split(",")], args.guide_band,
                          args.hubness)
        guided = any(int(k) > 1 for k in args.guide_ks.split(","))
        (RESULTS / f"bundled_control{'_guided' if guided else ''}.json").write_text(
            json.dumps({"args": vars(args), "metrics": metrics}, indent=2) + "\n"
        )
        return
    rows = [measure(train, library, queries, int(b), args.epochs, args.hubness)
            for b in args.batch_sizes.split(",")]
    print_table(
        f"β 0.05, {args.epochs} epochs on the bundled 20k; 500 unseen library molecules; 2,000 prior draws",
        [
            "batch",
            "train s",
            "val KL",
            "val recon",
            "top-1",
            "top-10",
            "mean: unique",
            "mean: median sim",
            "sample: unique",
            "sample: median sim",
        ],
        [
            [
                r["batch_size"],
                f"{r['train_seconds']:.0f}",
                f"{r['val_kl_nats']:.1f}",
                f"{r['val_recon_nats']:.1f}",
                f"{r['top1']:.1%}",
                f"{r['top10']:.1%}",
                f"{r['mean_unique']:.1%}",
                f"{r['mean_median_similarity']:.3f}",
                f"{r['sample_unique']:.1%}",
                f"{r['sample_median_similarity']:.3f}",
            ]
            for r in rows
        ],
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bundled.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
