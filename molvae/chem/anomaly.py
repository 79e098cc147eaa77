"""How unusual a molecule is for a MolecularVAE: its −ELBO, and the percentile among training molecules.

The training-set reference is a list of 101 quantiles (0th to 100th percentile) of the
training molecules' scores, computed after training and stored in the model config, so a
model folder scores new molecules on its own. This is the applicability-domain signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from molvae.chem.reconstruct import model_fingerprint_settings, own_conditions, prepare_inputs
from molvae.chem.records import RecordKind
from molvae.chem.selection import DOMAIN_PERCENTILES
from molvae.latent import anomaly_score
from molvae.models.core import VAE
from molvae.models.molecular import fingerprint_data

REFERENCE_KEY = "anomaly_reference"
N_SAMPLES = 10


@torch.no_grad()
def fingerprint_scores(model: VAE, packed: np.ndarray, conditions: torch.Tensor | None = None,
                       seed: int = 0, batch_size: int = 4096) -> np.ndarray:
    """Mean −ELBO over :data:`N_SAMPLES` seeded draws for each packed fingerprint (nats)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    data = fingerprint_data(packed, conditions).to(device)
    scores = [anomaly_score(model, x, c, n_samples=N_SAMPLES, generator=generator).cpu().numpy()
              for x, c in data.batches(batch_size)]
    return np.concatenate(scores) if scores else np.zeros(0)


def reference_quantiles(scores: np.ndarray) -> list[float]:
    if len(scores) == 0:
        raise ValueError("no training scores to build the anomaly reference from")
    return np.quantile(scores, np.linspace(0, 1, 101)).tolist()


def percentile(scores: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Percent of training molecules scoring lower (interpolated between the stored quantiles)."""
    q = np.asarray(quantiles, dtype=np.float64)
    # Ties in the quantiles (discrete scores) would make np.interp ill-defined; nudge them apart.
    q = q + np.arange(len(q)) * 1e-12
    return np.interp(scores, q, np.linspace(0, 100, len(q)))


def domain(percentiles: np.ndarray) -> np.ndarray:
    """``"typical"`` within :data:`~molvae.chem.selection.DOMAIN_PERCENTILES`, else which tail:
    ``"low (simpler than training)"`` or ``"high (unlike training)"``; ``""`` where NaN.

    Both tails are out of domain: −ELBO grows with a fingerprint's on-bits, so molecules much
    simpler than the training set's score unusually low, larger or stranger ones high.
    """
    low, high = DOMAIN_PERCENTILES
    p = np.asarray(percentiles, dtype=np.float64)
    return np.select([np.isnan(p), p < low, p > high],
                     ["", "low (simpler than training)", "high (unlike training)"], "typical")


def score_smiles(model: VAE, smiles: Sequence[str], read_errors: Mapping[int, str] | None = None,
                 seed: int = 0, kinds: Sequence[RecordKind] | None = None) -> pd.DataFrame:
    """One row per input in input order; inputs that fail carry their reason instead of scores.
    ``read_errors`` and ``kinds`` are as for :func:`~molvae.chem.reconstruct.prepare_inputs`."""
    quantiles = model.config.metadata.get(REFERENCE_KEY)
    if not quantiles:
        raise ValueError("this model has no training-set anomaly reference (train it with molvae train)")
    inputs = prepare_inputs(smiles, model_fingerprint_settings(model), read_errors, kinds)
    inputs, conditions = own_conditions(model, inputs)
    scores = fingerprint_scores(model, inputs.packed, conditions, seed)
    ranks = percentile(scores, quantiles)
    found = dict(zip(inputs.positions, range(len(inputs.positions)), strict=True))
    rows = []
    for position, text in enumerate(smiles):
        if position in found:
            j = found[position]
            molecule = inputs.molecules[j]
            rows.append({"input_row": position + 1, "input_smiles": text, "smiles": molecule.smiles,
                         "inchikey": molecule.inchikey, "anomaly_score": float(scores[j]),
                         "anomaly_percentile": float(ranks[j]), "reason": ""})
        else:
            rows.append({"input_row": position + 1, "input_smiles": text, "smiles": "", "inchikey": "",
                         "anomaly_score": np.nan, "anomaly_percentile": np.nan,
                         "reason": inputs.rejected[position]})
    frame = pd.DataFrame(rows)
    frame.insert(frame.columns.get_loc("reason"), "domain", domain(frame["anomaly_percentile"].to_numpy()))
    return frame
