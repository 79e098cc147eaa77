"""Image VAE benchmarks on Fashion-MNIST; prints markdown tables, writes JSON and PNGs.

Sections (run one, or ``all``):

- ``speed``: seconds per epoch and test −ELBO after 2 epochs, side by side in one run:
  a bare training loop over pre-loaded float tensors, our Trainer (validation,
  checkpoints and progress on) and pythae 0.1.2's TrainingPipeline, all with pythae's
  default MLP (784→512→(μ, log σ²), 20→512→784), latent 20, batch 128, Adam 1e-3.
- ``default``: the default image VAE after 20 epochs (test −ELBO, IWAE NLL K=100) and
  the README grids (samples, interpolation, inpainting).
- ``cvae``: class-conditioned samples labelled by a logistic-regression classifier
  trained on real images; agreement with the requested class.
- ``anomaly``: one model per class trained without it; AUROC of −ELBO for detecting it.
- ``beta``: KL and reconstruction for β ∈ {0.5, 1, 4} and a capacity-annealed run.

Usage::

    .venv/bin/python benchmarks/image_vae.py all --data ../shared/datasets/fashion-mnist
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from molvae.images import figures
from molvae.images.datasets import ImageSet, load_image_source
from molvae.images.experiment import one_hot, pixels, train_image_model
from molvae.io import write_json
from molvae.models import load_model
from molvae.models.core import mlp
from molvae.objectives import kl_standard_normal
from molvae.training import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PICTURES = ROOT / "docs" / "images"
VAL_FRACTION = 5_000 / 60_000  # pythae's side holds out 5,000 training images too


def _train(data: Path, out: Path, epochs: int, **kwargs) -> dict:
    config = TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, device=kwargs.pop("device", "cpu"),
                         seed=kwargs.pop("seed", 0), progress=kwargs.pop("progress", False),
                         patience=kwargs.pop("patience", None))
    return train_image_model(data, out, train_config=config, val_fraction=VAL_FRACTION, **kwargs)


def bare_loop(train: ImageSet, test: ImageSet, epochs: int, seed: int = 0) -> dict:
    """The floor: the same network and loss with nothing around it (no validation etc.)."""
    torch.manual_seed(seed)
    encoder, decoder = mlp(784, (512,), 40, "relu", 0.0), mlp(20, (512,), 784, "relu", 0.0)
    params = [*encoder.parameters(), *decoder.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    x_all = pixels(train)
    started = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(x_all)).split(128):
            x = x_all[idx]
            mu, logvar = encoder(x).chunk(2, dim=1)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            recon = F.binary_cross_entropy_with_logits(decoder(z), x, reduction="none").sum(1)
            loss = (recon + kl_standard_normal(mu, logvar).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = (time.perf_counter() - started) / epochs
    with torch.no_grad():
        x = pixels(test)
        mu, logvar = encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = F.binary_cross_entropy_with_logits(decoder(z), x, reduction="none").sum(1)
        neg_elbo = (recon + kl_standard_normal(mu, logvar).sum(1)).mean().item()
    return {"seconds_per_epoch": seconds, "test_neg_elbo_nats": neg_elbo}


def speed(data: Path, epochs: int = 2) -> dict:
    sets = load_image_source(data)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows["bare loop (floor)"] = bare_loop(sets["train"], sets["test"], epochs)
        ours = _train(data, Path(tmp) / "ours", epochs, progress=True, iwae_k=0)
        rows["molvae Trainer"] = {"seconds_per_epoch": ours["seconds_per_epoch"],
                                  "test_neg_elbo_nats": ours["test_neg_elbo_nats"]}
        from pythae_baseline import load_fashion_mnist, run_pythae

        train_x, eval_x, test_x = load_fashion_mnist(data)
        theirs = run_pythae(train_x, eval_x, test_x, epochs=epochs, output_dir=str(Path(tmp) / "pythae"))
        rows["pythae 0.1.2 TrainingPipeline"] = {k: theirs[k] for k in rows["molvae Trainer"]}
    pythae_s = rows["pythae 0.1.2 TrainingPipeline"]["seconds_per_epoch"]
    for row in rows.values():
        row["ratio_to_pythae"] = row["seconds_per_epoch"] / pythae_s
    print_table(f"Training speed, {epochs} epochs, latent 20, batch 128",
                ["loop", "s/epoch", "× pythae", "test −ELBO (nats)"],
                [[name, f"{r['seconds_per_epoch']:.2f}", f"{r['ratio_to_pythae']:.3f}",
                  f"{r['test_neg_elbo_nats']:.1f}"] for name, r in rows.items()])
    return rows


def default(data: Path, epochs: int = 20) -> dict:
    out = RESULTS / "models" / "default-vae"
    metrics = _train(data, out, epochs, iwae_k=100)
    model = load_model(out)
    test = load_image_source(data)["test"]
    PICTURES.mkdir(parents=True, exist_ok=True)
    figures.sample_figure(model, PICTURES / "vae_samples.png", n=64)
    figures.interpolation_figure(model, test, PICTURES / "vae_interpolation.png", pairs=6, steps=10,
                                 method="slerp")
    inpainting = figures.inpainting_figure(model, test, PICTURES / "vae_inpainting.png", n=10,
                                           mask="right", iterations=20)
    figures.variations_figure(model, test, PICTURES / "vae_variations.png", [0, 1, 2, 3], n=10, spread=0.7)
    metrics["inpainting"] = inpainting
    print(f"\n### Default image VAE, {epochs} epochs\n")
    print(f"test −ELBO {metrics['test_neg_elbo_nats']:.1f} nats (recon {metrics['test_recon_nats']:.1f}"
          f", KL {metrics['test_kl_nats']:.1f}), IWAE NLL (K=100) {metrics['test_iwae_nll_nats']:.1f} nats,"
          f" {metrics['seconds_per_epoch']:.2f} s/epoch")
    print(f"inpainting (right half hidden) MSE: mean fill {inpainting['hidden_mse_mean_fill']:.4f}, "
          f"1 pass {inpainting['hidden_mse_one_pass']:.4f}, "
          f"20 passes {inpainting['hidden_mse_iterative']:.4f}")
    return metrics


def logistic_regression(train: ImageSet, epochs: int = 30, seed: int = 0) -> torch.nn.Linear:
    """Multinomial logistic regression on pixels (full-batch L-BFGS, small L2)."""
    torch.manual_seed(seed)
    x, y = pixels(train), torch.from_numpy(train.labels)
    clf = torch.nn.Linear(784, 10)
    opt = torch.optim.LBFGS(clf.parameters(), lr=1.0, max_iter=epochs * 10, history_size=20)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(clf(x), y) + 1e-4 * clf.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return clf


def cvae(data: Path, epochs: int = 20, per_class: int = 1000) -> dict:
    sets = load_image_source(data)
    out = RESULTS / "models" / "cvae"
    metrics = _train(data, out, epochs, kind="cvae", iwae_k=0)
    model = load_model(out)
    clf = logistic_regression(sets["train"])
    with torch.no_grad():
        accuracy = (clf(pixels(sets["test"])).argmax(1).numpy() == sets["test"].labels).mean()
        gen = torch.Generator().manual_seed(0)
        per = {}
        for c, name in enumerate(sets["train"].class_names):
            samples = model.sample(per_class, 1.0, one_hot([c], 10)[0], gen)
            per[name] = float((clf(samples).argmax(1) == c).float().mean())
    figures.sample_figure(model, PICTURES / "cvae_samples.png", n=100)
    agreement = float(np.mean(list(per.values())))
    print_table(f"CVAE control, {epochs} epochs, {per_class} samples per class",
                ["class", "agreement"], [[name, f"{value:.3f}"] for name, value in per.items()])
    print(f"\nclassifier accuracy on real test images: {accuracy:.3f}; agreement on CVAE samples: "
          f"{agreement:.3f}")
    return {"classifier_test_accuracy": float(accuracy), "agreement": agreement, "per_class": per,
            "test_neg_elbo_nats": metrics["test_neg_elbo_nats"]}


def anomaly(data: Path, epochs: int = 10) -> dict:
    test = load_image_source(data)["test"]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c, name in enumerate(test.class_names):
            _train(data, Path(tmp) / str(c), epochs, exclude_class=c, iwae_k=0)
            report = figures.anomaly_report(load_model(Path(tmp) / str(c)), test, Path(tmp) / f"{c}.csv")
            rows[name] = report["auroc_excluded_class"]
            print(f"held out {name}: AUROC {rows[name]:.3f}", flush=True)
    table = [[name, f"{value:.3f}"] for name, value in rows.items()]
    print_table(f"Anomaly: train without one class ({epochs} epochs), score the test set by −ELBO",
                ["held-out class", "AUROC"], [*table, ["mean", f"{np.mean(list(rows.values())):.3f}"]])
    return rows


def beta(data: Path, epochs: int = 20) -> dict:
    runs = {f"β = {b}": {"beta": b} for b in (0.5, 1.0, 4.0)}
    runs["capacity C→15 nats, γ = 100"] = {"beta": 1.0, "capacity": 15.0, "capacity_steps": 6000}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, kwargs) in enumerate(runs.items()):
            kind = "beta-vae" if "capacity" in kwargs or kwargs["beta"] != 1.0 else "vae"
            m = _train(data, Path(tmp) / str(i), epochs, kind=kind, iwae_k=0, **kwargs)
            rows[name] = {k: m[k] for k in ("test_recon_nats", "test_kl_nats", "test_neg_elbo_nats",
                                            "active_units")}
    print_table(f"β-VAE and capacity, {epochs} epochs (test set, nats/image)",
                ["run", "reconstruction", "KL", "−ELBO", "active units"],
                [[name, f"{r['test_recon_nats']:.1f}", f"{r['test_kl_nats']:.1f}",
                  f"{r['test_neg_elbo_nats']:.1f}", r["active_units"]] for name, r in rows.items()])
    return rows


SECTIONS = {"speed": speed, "default": default, "cvae": cvae, "anomaly": anomaly, "beta": beta}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=[*SECTIONS, "all"])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "fashion-mnist",
                        help="Directory with the four Fashion-MNIST IDX files.")
    args = parser.parse_args()
    for name in SECTIONS if args.section == "all" else [args.section]:
        started = time.perf_counter()
        result = SECTIONS[name](args.data)
        write_json(RESULTS / f"image_vae_{name}.json",
                   {"result": result, "seconds": time.perf_counter() - started})


if __name__ == "__main__":
    main()
