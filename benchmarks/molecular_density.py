"""The ``density`` section of ``benchmarks/molecular.py``: prior draws from N(0, I) against fitted densities.

A sweep model (``--model``, default the 380k one) is refitted here the way ``molvae train``
fits it: latent means of the same evenly spaced training rows, for each ``--components``.
Each prior draws ``--prior-samples`` latents, decoded with ``sample`` and ``mean`` and
searched in all MOSES test molecules, or with ``--library train`` all 1.58M MOSES train
molecules (k = 1): median decode similarity and the unique
fraction of raw hits. The posterior means of training molecules are the reference a
perfect density would approach. With ``--library train`` it also measures what novel
generation could reach there: the latent means of held-out MOSES test molecules (absent from
that library), and, with the model's training molecules excluded from the library, the
fitted draws, draws from the aggregate posterior and the training fingerprints themselves.
The first of ``--components`` is saved with the model, so ``molvae evaluate`` samples it
afterwards.

The ``hubness`` section draws ``--prior-samples`` latents from that saved density once,
decodes them with ``sample``, searches their 10 nearest molecules once, and keeps one hit
per draw with the hubness correction (:mod:`molvae.chem.hubness`) at each CSLS neighbour
count of ``--neighbours`` (0: the nearest) and each candidate count of 3, 5 and 10, all
draws at once as ``molvae evaluate`` takes them; then at the defaults in rounds of 512 draws
as ``molvae generate`` takes them, each round's hub terms counting the earlier rounds' hits.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import print_table
from molecular_data import test_library, train_library
from molecular_sweep import model_folder

from molvae.chem.candidates import training_rows
from molvae.chem.experiment import fit_latent_density, reference_sample, split_rows
from molvae.chem.fingerprints import unpack_bits
from molvae.chem.generate import DECODES, decoded_queries
from molvae.chem.guided import joined_hits, kept_hits
from molvae.chem.hubness import DEFAULT_HUB_NEIGHBOURS, HUB_CANDIDATES
from molvae.chem.search import FingerprintLibrary, SearchResult
from molvae.data import MoleculeDataset
from molvae.models import load_model, save_model
from molvae.models.core import VAE
from molvae.models.molecular import latent_means

DEFAULT_MODEL = "β=0.002, batch 128, 400k rows"


def _sweep_model(name: str) -> tuple[Path, dict[str, Any], VAE, MoleculeDataset]:
    """A sweep model's folder, its training spec, the model and its training dataset."""
    folder = model_folder(name)
    spec = json.loads((folder / "bench_spec.json").read_text())
    return folder, spec, load_model(folder), MoleculeDataset(spec["dataset"])


def _decoded_hits(model: VAE, library: FingerprintLibrary, z: torch.Tensor, seed: int,
                  exclude: np.ndarray | None = None) -> dict[str, float]:
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, float] = {}
    for decode in DECODES:
        hits = library.search(decoded_queries(model, z, None, decode, generator), 1, exclude=exclude,
                              device="cpu")
        out |= _nearest(hits, decode)
    return out


def _nearest(hits: SearchResult, name: str) -> dict[str, float]:
    rows = hits.indices[:, 0]
    return {f"median_similarity_{name}": float(np.median(hits.scores[:, 0])),
            f"unique_fraction_{name}": len(np.unique(rows)) / len(rows)}


def _novel_references(model: VAE, library: FingerprintLibrary, train_folder: Path, packed: np.ndarray,
                      fitted: torch.Tensor, test: MoleculeDataset, n: int,
                      seed: int) -> dict[str, dict[str, float]]:
    """In the train library: what draws reach among the molecules the model never saw.

    The reference for novel generation is the latent means of held-out MOSES test
    molecules (absent from the library). Beside it, with the training molecules excluded:
    the fitted draws; draws from the aggregate posterior (z ~ q(z | x) of random training
    molecules); and, without the model, the training fingerprints themselves.
    """
    held_out = np.sort(np.random.default_rng(seed).choice(len(test), n, replace=False))
    exclude = training_rows(library, FingerprintLibrary.from_dataset(train_folder))
    rows = np.random.default_rng(seed).choice(len(packed), n, replace=len(packed) < n)
    x = unpack_bits(torch.from_numpy(packed[rows]))
    with torch.no_grad():
        mu, logvar = model.encode(x)
        posterior = model.reparameterize(mu, logvar, torch.Generator().manual_seed(seed))
    copied = library.search(packed[rows], 1, exclude=exclude, device="cpu")
    return {
        "held-out test molecules' latent means": _decoded_hits(
            model, library, latent_means(model, np.array(test.fingerprints[held_out])), seed),
        "fitted draws, training molecules excluded": _decoded_hits(model, library, fitted, seed, exclude),
        "aggregate posterior draws, training molecules excluded": _decoded_hits(
            model, library, posterior, seed, exclude) | {
                "posterior_sigma_median": float(torch.exp(0.5 * logvar).median()),
                "latent_mean_spread_median": float(mu.std(dim=0).median())},
        "training fingerprints themselves (no model), training molecules excluded": (
            _nearest(copied, "sample") | _nearest(copied, "mean"))}


def density(args: argparse.Namespace) -> dict[str, Any]:
    folder, spec, model, train = _sweep_model(args.model)
    test, library = test_library(args.moses_dir)
    if args.library == "train":
        library = FingerprintLibrary.open(train_library(args.moses_dir))
    train_rows, _ = split_rows(len(train), 0.05, spec["seed"])
    packed = np.array(train.fingerprints[reference_sample(train_rows)])
    n = args.prior_samples
    gen = torch.Generator().manual_seed(args.seed)
    results: dict[str, dict[str, float]] = {
        "N(0, I)": _decoded_hits(model, library, torch.randn((n, model.latent_dim), generator=gen),
                                 args.seed)}
    fitted, draws = {}, {}
    for k in [int(c) for c in args.components.split(",")]:
        started = time.perf_counter()
        fitted[k] = fit_latent_density(model, packed, None, k, seed=args.seed)
        seconds = time.perf_counter() - started
        draws[k] = fitted[k].sample(n, generator=torch.Generator().manual_seed(args.seed))
        results[f"fitted, {k} component{'s' if k > 1 else ''}"] = (
            _decoded_hits(model, library, draws[k], args.seed) | {"fit_seconds": seconds})
    means = latent_means(model, packed[:n])
    results["training molecules' posterior means"] = _decoded_hits(model, library, means, args.seed)
    if args.library == "train":
        results |= _novel_references(model, library, Path(spec["dataset"]), packed, draws[next(iter(draws))],
                                     test, n, args.seed)
    print_table(f"{n:,} latent draws of '{args.model}', decoded into all {len(library):,} MOSES "
                f"{args.library} molecules (k = 1)",
                ["latents", "median sim (sample)", "unique (sample)", "median sim (mean)", "unique (mean)",
                 "fit s"],
                [[name, f"{r['median_similarity_sample']:.3f}", f"{r['unique_fraction_sample']:.3f}",
                  f"{r['median_similarity_mean']:.3f}", f"{r['unique_fraction_mean']:.3f}",
                  f"{r['fit_seconds']:.1f}" if "fit_seconds" in r else "–"] for name, r in results.items()])
    first = next(iter(fitted))
    model.latent_density = fitted[first]
    save_model(model, folder)
    print(f"saved the {first}-component density with {folder}")
    return {"model": args.model, "library": args.library, "fit_rows": len(packed), "prior_samples": n,
            "results": results}


def hubness(args: argparse.Namespace, candidates: tuple[int, ...] = (3, 5, 10)) -> dict[str, Any]:
    _, _, model, _ = _sweep_model(args.model)
    _, library = test_library(args.moses_dir)
    if args.library == "train":
        library = FingerprintLibrary.open(train_library(args.moses_dir))
    generator = torch.Generator().manual_seed(args.seed)
    n = args.prior_samples
    z = model.draw_latents(n, generator=generator, prior="fitted")
    hits = library.search(decoded_queries(model, z, None, "sample", generator), max(candidates), device="cpu")
    results: dict[str, dict[str, float]] = {}
    for neighbours in [int(k) for k in args.neighbours.split(",")]:
        for width in candidates if neighbours else (1,):
            rows, scores = kept_hits(SearchResult(hits.indices[:, :width], hits.scores[:, :width]), None,
                                     hubness=neighbours)
            results[f"K {neighbours}, {width} candidates" if neighbours else "nearest (K 0)"] = {
                "neighbours": neighbours, "candidates": width, "unique_fraction": len(np.unique(rows)) / n,
                "median_similarity": float(np.median(scores))}
    kept, earlier = [], None
    for start in range(0, n, 512):  # generate's default --batch-size
        round_hits = SearchResult(hits.indices[start:start + 512, :HUB_CANDIDATES],
                                  hits.scores[start:start + 512, :HUB_CANDIDATES])
        kept.append(kept_hits(round_hits, None, hubness=DEFAULT_HUB_NEIGHBOURS, earlier=earlier))
        earlier = round_hits if earlier is None else joined_hits(earlier, round_hits)
    rows, scores = (np.concatenate(part) for part in zip(*kept, strict=True))
    results[f"K {DEFAULT_HUB_NEIGHBOURS}, {HUB_CANDIDATES} candidates, rounds of 512"] = {
        "neighbours": DEFAULT_HUB_NEIGHBOURS, "candidates": HUB_CANDIDATES, "rounds_of": 512,
        "unique_fraction": len(np.unique(rows)) / n, "median_similarity": float(np.median(scores))}
    print_table(f"{n:,} fitted-density draws of '{args.model}' (`sample`), one hit each in all "
                f"{len(library):,} MOSES {args.library} molecules", ["decoding", "unique", "median sim"],
                [[name, f"{r['unique_fraction']:.4f}", f"{r['median_similarity']:.4f}"]
                 for name, r in results.items()])
    return {"model": args.model, "library": args.library, "prior_samples": n, "results": results}


def latent_properties(args: argparse.Namespace, rows: int = 24_000, held_out: int = 4_000) -> dict[str, Any]:
    """How much of QED, cLogP and MW the latent means hold: held-out R² of a linear map and an MLP."""
    from rdkit import Chem

    from molvae.chem.properties import compute_properties_frame

    _, _, model, train = _sweep_model(args.model)
    picks = np.sort(np.random.default_rng(args.seed).choice(len(train), min(rows, len(train)), replace=False))
    names = ["qed", "clogp", "mw"]
    smiles = train.molecules(["smiles"])["smiles"].to_numpy()[picks]
    props = compute_properties_frame([Chem.MolFromSmiles(s) for s in smiles], names).to_numpy()
    mu = latent_means(model, np.array(train.fingerprints[picks]))
    fit, test = slice(0, len(picks) - held_out), slice(len(picks) - held_out, None)
    y = torch.from_numpy((props - props[fit].mean(0)) / props[fit].std(0)).float()
    x = (mu - mu[fit].mean(0)) / mu[fit].std(0)

    def r2(predicted: torch.Tensor) -> list[float]:
        truth = y[test]
        return (1 - ((predicted - truth) ** 2).mean(0) / truth.var(0)).tolist()

    design = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    linear = r2(design[test] @ torch.linalg.lstsq(design[fit], y[fit]).solution)
    torch.manual_seed(args.seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                              torch.nn.ReLU(), torch.nn.Linear(256, len(names)))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(40):
        for batch in torch.randperm(fit.stop).split(128):
            loss = ((net(x[batch]) - y[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        mlp = r2(net(x[test]))
    print_table(f"Held-out R² of properties from the latent means of '{args.model}' "
                f"({fit.stop:,} fit, {held_out:,} held out)", ["map", *names],
                [["linear", *(f"{v:.2f}" for v in linear)], ["MLP 256-256", *(f"{v:.2f}" for v in mlp)]])
    return {"model": args.model, "rows": len(picks), "held_out": held_out,
            "r2_linear": dict(zip(names, linear, strict=True)), "r2_mlp": dict(zip(names, mlp, strict=True))}
