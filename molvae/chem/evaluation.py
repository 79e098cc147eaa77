"""Evaluating a MolecularVAE end to end (``molvae evaluate``): recovery, prior samples, conditional control.

- **Recovery**: test molecules encoded to their means, decoded and searched in the library
  (which must contain them): top-1, top-k and the mean decode similarity.
- **Prior samples**: ``n_samples`` draws decoded to their nearest library molecule, or with
  the hubness correction (``hubness`` > 0, the default; :mod:`molvae.chem.hubness`) to the
  best by CSLS of their few nearest, computed over all the draws at once. Hubness shows in
  ``raw_unique_fraction``, counted before de-duplication. The MOSES set metrics of
  the raw hits are reported beside the same metrics for as many random library molecules,
  because a random draw from a real library already looks like real molecules.
  ``train_similarity`` (mean Tanimoto of each hit to its nearest training molecule) shows
  whether the model finds molecules like its training set in a library it was not trained
  on, where a random draw finds only the library's own resemblance to it.
- **Conditional control** (conditional models): each condition swept over five targets from
  the training set's 5th to 95th percentile, the others held at their medians; Spearman
  between target and achieved values, the fraction within tolerance, and uniqueness per target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from rdkit import Chem

from molvae.chem.candidates import in_training_set
from molvae.chem.generate import decoded_queries
from molvae.chem.guided import (
    LibraryProperties,
    PropertyGuide,
    check_guide,
    default_guide,
    guide_tolerances,
    kept_hits,
    search_width,
)
from molvae.chem.hubness import DEFAULT_HUB_NEIGHBOURS, check_hubness
from molvae.chem.metrics import PROPERTY_COLUMNS, condition_control, set_metrics
from molvae.chem.properties import compute_properties_frame
from molvae.chem.reconstruct import reconstruct, recovery
from molvae.chem.search import FingerprintLibrary, SearchResult
from molvae.data import MoleculeDataset
from molvae.models.core import VAE
from molvae.models.molecular import ConditionScaler

CONTROL_LEVELS = np.linspace(5, 95, 5)  # percentiles of the training set used as targets


@torch.no_grad()
def decode_prior(
    model: VAE,
    library: FingerprintLibrary,
    n: int,
    *,
    condition: torch.Tensor | None = None,
    temperature: float = 1.0,
    decode: str = "sample",
    prior: str = "fitted",
    similarity: str = "soft-tanimoto",
    device: str = "auto",
    seed: int = 0,
    batch_size: int = 4096,
    guide: PropertyGuide | None = None,
    hubness: int = DEFAULT_HUB_NEIGHBOURS,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Library rows and decode similarities of ``n`` prior draws (one hit each, duplicates kept).

    ``decode`` is as in :data:`~molvae.chem.generate.DECODES`, ``prior`` as in
    :data:`~molvae.models.core.PRIORS`; with a ``guide``, each draw's hit is the one of its
    ``guide.k`` nearest molecules closest to the guide's targets. The hubness correction
    (``hubness`` neighbours, 0 = off) is taken over all ``n`` draws together, as CSLS takes
    it over its whole query set; :func:`~molvae.chem.generate.generate_candidates` takes it
    per round. ``batch_size`` bounds memory, but it also changes which draws are made: each
    batch takes its latents (and, with ``decode="sample"``, its Bernoulli bits) from the
    random stream in turn, so results are reproducible for a given seed and batch size.
    ``exclude`` masks library rows never to return (the training set, for novel hits).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    model.eval()
    model_device = next(model.parameters()).device
    generator = torch.Generator(device=model_device).manual_seed(seed)
    width = search_width(guide, hubness)
    indices, scores = [], []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        z, cond = model.draw(size, temperature, None if condition is None else condition.to(model_device),
                             generator, prior)
        queries = decoded_queries(model, z, cond, decode, generator)
        hits = library.search(queries, width, similarity=similarity, exclude=exclude, device=device)
        indices.append(hits.indices)
        scores.append(hits.scores)
    return kept_hits(SearchResult(np.concatenate(indices), np.concatenate(scores)), guide, hubness=hubness)


def train_similarity(library: FingerprintLibrary, rows: np.ndarray, train_library: FingerprintLibrary,
                     device: str) -> float:
    """Mean Tanimoto of library ``rows`` to their nearest training molecule: how much like the
    training set the molecules found in another library are."""
    return float(train_library.search(np.asarray(library.packed[rows]), 1, device=device).scores[:, 0].mean())


def _set_metrics(
    rows: np.ndarray,
    library: FingerprintLibrary,
    train_smiles: set[str],
    train_library: FingerprintLibrary,
    reference: pd.DataFrame,
    reference_packed: np.ndarray,
    device: str,
) -> dict[str, float]:
    smiles = library.smiles_at(rows)
    unique_smiles = list(dict.fromkeys(smiles))
    # Computed once per molecule, weighted per hit: like every other set metric (and MOSES),
    # W1 counts a hub as often as draws landed on it.
    properties = compute_properties_frame([Chem.MolFromSmiles(s) for s in unique_smiles], PROPERTY_COLUMNS)
    properties = properties.set_axis(unique_smiles).loc[smiles].reset_index(drop=True)
    return {"train_similarity": train_similarity(library, rows, train_library, device)} | set_metrics(
        smiles,
        np.asarray(library.packed[rows]),
        train_smiles,
        reference["smiles"].tolist(),
        reference_packed,
        ks=(1000, 10000),
        gen_properties=properties,
        ref_properties=reference[list(PROPERTY_COLUMNS)],
        device=device,
    )


def eligible_rows(library: FingerprintLibrary, exclude: np.ndarray | None) -> np.ndarray:
    """The library rows a search may return: all, or those ``exclude`` leaves."""
    return np.arange(len(library)) if exclude is None else np.flatnonzero(~exclude)


def prior_metrics(
    model: VAE,
    library: FingerprintLibrary,
    train: MoleculeDataset,
    test: MoleculeDataset,
    *,
    n_samples: int = 10_000,
    reference_size: int = 10_000,
    prior: str = "fitted",
    hubness: int = DEFAULT_HUB_NEIGHBOURS,
    similarity: str = "soft-tanimoto",
    device: str = "auto",
    seed: int = 0,
    exclude: np.ndarray | None = None,
) -> dict[str, float]:
    """Hubness, decode similarity and MOSES metrics of prior samples, and of a random library draw.

    With the fitted density, hubness and decode similarity of N(0, I) draws are reported
    beside them (``standard_*``). Rows ``exclude`` masks are never hit nor drawn. SNN, Frag,
    Scaf, FCD and the W1 distances compare with a seeded sample of ``reference_size`` test
    molecules, where MOSES takes its whole test set: SNN, a mean of maxima over the reference,
    reads lower against a sample.
    """
    rows, scores = decode_prior(model, library, n_samples, prior=prior, similarity=similarity, device=device,
                                seed=seed, hubness=hubness, exclude=exclude)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(test), min(reference_size, len(test)), replace=False))
    reference = test.molecules(["smiles"]).iloc[pick].reset_index(drop=True)
    # Only the sampled rows: QED and SA of a whole 1.6M-molecule test set would take hours.
    reference = pd.concat(
        [
            reference,
            compute_properties_frame([Chem.MolFromSmiles(s) for s in reference["smiles"]], PROPERTY_COLUMNS),
        ],
        axis=1,
    )
    reference_packed = np.asarray(test.fingerprints[pick])
    train_smiles = set(train.molecules(["smiles"])["smiles"])
    train_library = FingerprintLibrary.from_packed(np.asarray(train.fingerprints))
    metrics = {
        "n_samples": n_samples,
        "prior_fitted": float(model.uses_fitted_prior(prior)),
        "hubness": hubness,
        "raw_unique_fraction": len(np.unique(rows)) / max(1, len(rows)),
        "median_decode_similarity": float(np.median(scores)),
    }
    if metrics["prior_fitted"]:
        standard_rows, standard_scores = decode_prior(model, library, n_samples, prior="standard",
                                                      similarity=similarity, device=device, seed=seed,
                                                      hubness=hubness, exclude=exclude)
        metrics |= {"standard_raw_unique_fraction": len(np.unique(standard_rows)) / len(standard_rows),
                    "standard_median_decode_similarity": float(np.median(standard_scores))}
    metrics |= _set_metrics(rows, library, train_smiles, train_library, reference, reference_packed, device)
    eligible = eligible_rows(library, exclude)
    random_rows = rng.choice(eligible, min(n_samples, len(eligible)), replace=False)
    metrics |= {
        f"random_{key}": value
        for key, value in _set_metrics(
            random_rows, library, train_smiles, train_library, reference, reference_packed, device
        ).items()
    }
    return metrics


def control_metrics(
    model: VAE,
    library: FingerprintLibrary,
    train: MoleculeDataset,
    *,
    samples_per_target: int = 1000,
    prior: str = "fitted",
    guide_k: int | None = None,
    guide_band: float | None = None,
    hubness: int = DEFAULT_HUB_NEIGHBOURS,
    similarity: str = "soft-tanimoto",
    device: str = "auto",
    seed: int = 0,
    exclude: np.ndarray | None = None,
) -> dict[str, float]:
    """Conditional control over targets spanning the training set's p5–p95 (see the module docstring).

    ``guide_k`` and ``guide_band`` default to :func:`~molvae.chem.guided.default_guide` of the
    number of library rows ``exclude`` leaves, as in generation. When ``guide_k`` > 1,
    each draw keeps the one of its ``guide_k`` nearest library molecules chosen by the
    targets (with ``guide_band`` and ``hubness``; :mod:`molvae.chem.guided`), and the same
    choice among ``guide_k`` random library molecules is reported beside it (``random_*``;
    random candidates have no similarity, so no hubness correction). A library filter alone
    also hits targets, so the model's part shows in ``train_similarity`` (mean Tanimoto of
    each hit to its nearest training molecule) against ``random_train_similarity``.
    """
    eligible = eligible_rows(library, exclude)
    default_k, default_band = default_guide(len(eligible))
    guide_k = default_k if guide_k is None else guide_k
    guide_band = default_band if guide_band is None else guide_band
    check_guide(guide_k, guide_band, hubness)
    scaler = ConditionScaler.from_config(model.config)
    names = list(scaler.names)
    train.ensure_properties(names)
    values = train.molecules(names)
    medians = values.median()
    tolerances = guide_tolerances(names, scaler.stds)
    properties = LibraryProperties(library, names)
    train_library = FingerprintLibrary.from_packed(np.asarray(train.fingerprints))
    rng = np.random.default_rng(seed)
    metrics: dict[str, float] = {"prior_fitted": float(model.uses_fitted_prior(prior)), "guide_k": guide_k,
                                 "guide_band": guide_band, "hubness": hubness}
    runs = ("", "random_") if guide_k > 1 else ("",)
    for name in names:
        found: dict[str, dict[str, list]] = {run: {"target": [], "rows": [], "group": []} for run in runs}
        for level in CONTROL_LEVELS:
            target = medians.to_dict() | {name: float(np.percentile(values[name], level))}
            guide = (PropertyGuide(properties, target, guide_k, tolerances, guide_band)
                     if guide_k > 1 else None)
            rows, _ = decode_prior(model, library, samples_per_target, condition=scaler.normalize(target),
                                   prior=prior, similarity=similarity, device=device, seed=seed, guide=guide,
                                   hubness=hubness, exclude=exclude)
            picked = {"": rows}
            if guide is not None:
                candidates = eligible[rng.integers(0, len(eligible), size=(samples_per_target, guide_k))]
                picked["random_"] = candidates[np.arange(samples_per_target), guide.choose(candidates)]
            for run, hit_rows in picked.items():
                found[run]["target"] += [target[name]] * len(hit_rows)
                found[run]["rows"].append(hit_rows)
                found[run]["group"] += [level] * len(hit_rows)
        for run, result in found.items():
            rows = np.concatenate(result["rows"])
            achieved = properties.values(rows)[:, names.index(name)]
            control = condition_control(pd.DataFrame({name: result["target"]}),
                                        pd.DataFrame({name: achieved}), library.smiles_at(rows),
                                        result["group"], {name: tolerances[name]})
            control[f"train_similarity_{name}"] = train_similarity(library, rows, train_library, device)
            metrics |= {run + (key if key.endswith(name) else f"{key}_{name}"): value
                        for key, value in control.items()}
    return metrics


def evaluate_model(
    model: VAE,
    library: FingerprintLibrary,
    train: MoleculeDataset,
    test: MoleculeDataset,
    *,
    k: int = 10,
    recovery_n: int = 1000,
    n_samples: int = 10_000,
    reference_size: int = 10_000,
    samples_per_target: int = 1000,
    similarities: Sequence[str] = ("soft-tanimoto",),
    prior: str = "fitted",
    guide_k: int | None = None,
    guide_band: float | None = None,
    hubness: int = DEFAULT_HUB_NEIGHBOURS,
    device: str = "auto",
    seed: int = 0,
    novel: bool = False,
) -> dict[str, float]:
    """Recovery for each similarity, then prior or conditional metrics with the first one.

    ``library`` should contain the test molecules for recovery to be meaningful
    (``recovery_in_library_fraction`` reports how many it holds). With ``novel``, prior and
    conditional draws never return the training molecules (matched by InChIKey), nor does
    the random draw beside them: what the model finds in a library beyond its training set.
    """
    # A bad prior or hubness fails here, not after the recovery step.
    model.uses_fitted_prior(prior)
    check_hubness(hubness)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(test), min(recovery_n, len(test)), replace=False))
    rows = test.molecules(["smiles", "inchikey"]).iloc[pick]
    test_smiles = rows["smiles"].tolist()
    # Recovery means something only for test molecules the library holds; say how many it does.
    metrics: dict[str, float] = {
        "recovery_in_library_fraction": float(in_training_set(rows["inchikey"].tolist(), library).mean())
    }
    for similarity in similarities:
        frame = reconstruct(model, library, test_smiles, k, similarity=similarity, device=device)
        suffix = "" if similarity == similarities[0] else f"_{similarity.replace('-', '_')}"
        metrics |= {f"recovery_{key}{suffix}": value for key, value in recovery(frame, k).items()}
    exclude = None
    if novel:
        exclude = library.rows_with_ids(pa.array(train.molecules(["inchikey"])["inchikey"], pa.string()))
        metrics["excluded_training_rows"] = int(exclude.sum())
    if model.condition_dim:
        metrics |= control_metrics(
            model,
            library,
            train,
            samples_per_target=samples_per_target,
            prior=prior,
            guide_k=guide_k,
            guide_band=guide_band,
            hubness=hubness,
            similarity=similarities[0],
            device=device,
            seed=seed,
            exclude=exclude,
        )
    else:
        metrics |= prior_metrics(
            model,
            library,
            train,
            test,
            n_samples=n_samples,
            reference_size=reference_size,
            prior=prior,
            hubness=hubness,
            similarity=similarities[0],
            device=device,
            seed=seed,
            exclude=exclude,
        )
    return metrics
