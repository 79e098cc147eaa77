"""The ``guide`` section of ``benchmarks/molecular.py``: property-guided decoding over a grid of settings.

A cvae (``--cvae``, default the one trained on the 100k MOSES sample; BENCHMARKS.md has its
command) is swept as ``molvae evaluate`` sweeps it: each condition over five targets from
the training p5 to p95, the others at their medians, ``--per-target`` fitted-density draws
per target, decoded with ``sample`` into all MOSES test molecules. Each target's draws are
searched once at the largest ``--guide-ks``; every (k, band, ``--neighbours``) setting then
keeps one hit per draw from the first k of those hits, so all settings see the same draws,
which are also those of ``molvae evaluate`` with the same seed.

``--density-components 1,8`` refits the cvae's latent density with each number of Gaussians,
as ``molvae train --density-components`` would (the same training rows, the same reference
sample), and runs the grid once per density: how finely p(z | c) is modelled against the
guide.
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from common import print_table
from molecular_data import RESULTS, test_library, train_library, train_sample

from molvae.chem.candidates import training_rows
from molvae.chem.evaluation import CONTROL_LEVELS
from molvae.chem.experiment import fit_latent_density, reference_sample, split_rows
from molvae.chem.generate import decoded_queries
from molvae.chem.guided import LibraryProperties, PropertyGuide, guide_tolerances, kept_hits
from molvae.chem.metrics import condition_control
from molvae.chem.search import FingerprintLibrary, SearchResult
from molvae.data import MoleculeDataset
from molvae.models import load_model
from molvae.models.molecular import ConditionScaler

DEFAULT_CVAE = RESULTS / "models" / "moses-cvae-100k"


class Decoding(NamedTuple):
    """Where draws are decoded: a library, its properties, and the rows never returned."""

    library: FingerprintLibrary
    properties: LibraryProperties
    exclude: np.ndarray | None


def guide_grid(args: argparse.Namespace) -> dict[str, Any]:
    model = load_model(args.cvae)
    train_folder = train_sample(args.moses_dir, args.train_rows or 100_000)
    train = MoleculeDataset(train_folder)
    scaler = ConditionScaler.from_config(model.config)
    names = list(scaler.names)
    if args.library == "train":  # the 1.58M MOSES train molecules the cvae was not trained on
        library = FingerprintLibrary.open(train_library(args.moses_dir))
        exclude = training_rows(library, FingerprintLibrary.from_dataset(train_folder))
    else:
        library, exclude = test_library(args.moses_dir)[1], None
    decoding = Decoding(library, LibraryProperties(library, names), exclude)
    train.ensure_properties(names)
    values = train.molecules(names)
    settings = list(itertools.product([int(k) for k in args.guide_ks.split(",")],
                                      [float(b) for b in args.guide_bands.split(",")],
                                      [int(h) for h in args.neighbours.split(",")]))
    results: dict[str, dict[str, float]] = {}
    if not args.density_components:  # the density saved with the cvae
        results = _grid(args, model, scaler, values, decoding, settings, "")
    else:
        split = model.config.metadata["split"]
        reference = reference_sample(split_rows(len(train), split["val_fraction"], split["seed"])[0])
        packed = np.asarray(train.fingerprints)[reference]
        conditions = scaler.normalize(values.to_numpy()[reference])
        for components in [int(c) for c in args.density_components.split(",")]:
            model.latent_density = fit_latent_density(model, packed, conditions, components,
                                                      seed=split["seed"])
            results |= _grid(args, model, scaler, values, decoding, settings, f"{components} Gaussians, ")
    return {"cvae": str(args.cvae), "library": args.library, "library_rows": len(library),
            "excluded_rows": 0 if exclude is None else int(exclude.sum()), "per_target": args.per_target,
            "results": results}


def _grid(args: argparse.Namespace, model: Any, scaler: ConditionScaler, values: pd.DataFrame,
          decoding: Decoding, settings: list[tuple[int, float, int]], prefix: str
          ) -> dict[str, dict[str, float]]:
    """Every setting's control over the same draws of the cvae as it stands (its density included)."""
    names = list(scaler.names)
    library, properties = decoding.library, decoding.properties
    tolerances = guide_tolerances(names, scaler.stds)
    widest, n = max(k for k, _, _ in settings), args.per_target
    results: dict[str, dict[str, float]] = {f"{prefix}k {k}, band {b}, hubness {h}": {}
                                            for k, b, h in settings}
    for name in names:
        kept: dict[str, list[np.ndarray]] = {label: [] for label in results}
        targets, groups = [], []
        for level in CONTROL_LEVELS:
            target = values.median().to_dict() | {name: float(np.percentile(values[name], level))}
            generator = torch.Generator().manual_seed(args.seed)  # the draws of molvae evaluate
            condition = scaler.normalize(target).expand(n, -1)
            z = model.draw_latents(n, 1.0, condition, generator, "fitted")
            queries = decoded_queries(model, z, condition, "sample", generator)
            hits = library.search(queries, widest, exclude=decoding.exclude, device="cpu")
            for (k, band, hubness), label in zip(settings, results, strict=True):
                guide = PropertyGuide(properties, target, k, tolerances, band)
                first_k = SearchResult(hits.indices[:, :k], hits.scores[:, :k])
                kept[label].append(kept_hits(first_k, guide, hubness=hubness)[0])
            targets += [target[name]] * n
            groups += [level] * n
        for label, rows in kept.items():
            rows = np.concatenate(rows)
            achieved = properties.values(rows)[:, names.index(name)]
            control = condition_control(pd.DataFrame({name: targets}), pd.DataFrame({name: achieved}),
                                        library.smiles_at(rows), groups, {name: tolerances[name]})
            results[label] |= {f"{key}_{name}" if not key.endswith(name) else key: value
                               for key, value in control.items()}
    print_table(f"Guided control of '{args.cvae.name}', {n:,} draws per target, 5 targets per property: "
                "Spearman / within tolerance / unique per target, mean (min)", ["setting", *names],
                [[label, *(f"{r[f'spearman_{p}']:.3f} / {r[f'within_tol_{p}']:.1%} / "
                           f"{r[f'uniqueness_group_mean_{p}']:.3f} ({r[f'uniqueness_group_min_{p}']:.3f})"
                           for p in names)] for label, r in results.items()])
    return results
