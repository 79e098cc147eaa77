"""Encode → decode → search: the evaluation primitive of a MolecularVAE (``molvae reconstruct``).

Each input molecule is standardized like an ingest, fingerprinted with the model's
settings, encoded to its posterior mean, decoded to bit probabilities and searched in a
library for its k nearest real molecules. Recovery is whether the input itself (same
InChIKey) comes back first (top-1) or among the k.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from molvae.chem.fingerprints import FingerprintSettings, morgan_packed
from molvae.chem.molecules import MoleculeError, StandardMolecule, standardize
from molvae.chem.properties import compute_properties_frame
from molvae.chem.records import RecordKind
from molvae.chem.search import FingerprintLibrary
from molvae.models.core import VAE
from molvae.models.molecular import ConditionScaler, fingerprint_data

RECONSTRUCTION_COLUMNS = ("input_row", "input_smiles", "input_inchikey", "rank", "library_index",
                          "library_id", "smiles", "decode_similarity", "is_input", "reason")


@dataclass
class PreparedInputs:
    """Inputs that standardized, in input order, and the reasons the others did not."""

    positions: list[int]
    molecules: list[StandardMolecule]
    packed: np.ndarray
    rejected: dict[int, str]


def prepare_inputs(smiles: Sequence[str], settings: FingerprintSettings,
                   read_errors: Mapping[int, str] | None = None,
                   kinds: Sequence[RecordKind] | None = None) -> PreparedInputs:
    """Standardize and fingerprint; ``read_errors`` are reasons a reader already gave by position,
    and ``kinds`` say which texts are SDF mol blocks (all are SMILES when not given)."""
    positions, molecules, rejected = [], [], dict(read_errors or {})
    for position, text in enumerate(smiles):
        if position in rejected:
            continue
        try:
            molecules.append(standardize(text, kinds[position] if kinds is not None else "smiles"))
            positions.append(position)
        except MoleculeError as error:
            rejected[position] = str(error)
    packed = morgan_packed([m.mol for m in molecules], settings)
    return PreparedInputs(positions, molecules, packed, rejected)


def model_fingerprint_settings(model: VAE) -> FingerprintSettings:
    info = model.config.metadata.get("fingerprint")
    if not info:
        raise ValueError("this model was not trained on fingerprints (no fingerprint settings in its config)")
    return FingerprintSettings.from_dict(info)


def check_compatible(model: VAE, library: FingerprintLibrary) -> FingerprintSettings:
    """The shared fingerprint settings; a mismatch would compare different bit meanings."""
    settings = model_fingerprint_settings(model)
    if settings != library.settings:
        raise ValueError(f"the model was trained on {settings} fingerprints but the library holds "
                         f"{library.settings}; rebuild the library with the model's settings")
    return settings


def own_conditions(model: VAE, inputs: PreparedInputs) -> tuple[PreparedInputs, torch.Tensor | None]:
    """For a conditional model, each input's own property values as its normalized condition.

    An input whose conditioning property RDKit cannot compute moves to ``rejected`` with that
    reason, rather than scoring NaN; the returned inputs are those left.
    """
    if not model.condition_dim:
        return inputs, None
    scaler = ConditionScaler.from_config(model.config)
    values = compute_properties_frame([m.mol for m in inputs.molecules], list(scaler.names))
    unknown = ~np.isfinite(values.to_numpy(dtype=np.float64))
    if unknown.any():
        rejected = dict(inputs.rejected)
        for j in np.flatnonzero(unknown.any(axis=1)):
            name = scaler.names[int(np.argmax(unknown[j]))]
            rejected[inputs.positions[j]] = f"{name} could not be computed, and the model conditions on it"
        keep = np.flatnonzero(~unknown.any(axis=1))
        inputs = PreparedInputs([inputs.positions[j] for j in keep], [inputs.molecules[j] for j in keep],
                                inputs.packed[keep], rejected)
        values = values.iloc[keep]
    return inputs, scaler.normalize(values.to_numpy(dtype=np.float64))


@torch.no_grad()
def decode_means(model: VAE, packed: np.ndarray, conditions: torch.Tensor | None = None,
                 batch_size: int = 2048) -> np.ndarray:
    """Bit probabilities decoded from each input's posterior mean, shape (n, n_bits)."""
    model.eval()
    device = next(model.parameters()).device
    data = fingerprint_data(packed, conditions).to(device)
    out = [model.mean_output(model.decode(model.encode(x, c)[0], c)).float().cpu().numpy()
           for x, c in data.batches(batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.config.input_dim), dtype=np.float32)


def reconstruct(model: VAE, library: FingerprintLibrary, smiles: Sequence[str], k: int = 10,
                similarity: str = "soft-tanimoto", device: str = "auto",
                read_errors: Mapping[int, str] | None = None,
                kinds: Sequence[RecordKind] | None = None) -> pd.DataFrame:
    """One row per (input, rank) in input order; a rejected input gets one row with its reason.
    ``read_errors`` and ``kinds`` are as for :func:`prepare_inputs`."""
    settings = check_compatible(model, library)
    if len(library) == 0:  # every input would come back without a row
        raise ValueError("the library is empty: nothing to decode into")
    inputs = prepare_inputs(smiles, settings, read_errors, kinds)
    inputs, conditions = own_conditions(model, inputs)
    probabilities = decode_means(model, inputs.packed, conditions)
    hits = library.search(probabilities, k, similarity=similarity, device=device)
    found = hits.indices[hits.indices >= 0]
    inchikeys = dict(zip(found.tolist(), library.ids_at(found), strict=True))
    source_ids = dict(zip(found.tolist(), library.source_ids_at(found), strict=True))
    names = dict(zip(found.tolist(), library.smiles_at(found), strict=True))
    rows: list[dict] = []
    by_position = dict(zip(inputs.positions, range(len(inputs.positions)), strict=True))
    for position, text in enumerate(smiles):
        if position in inputs.rejected:
            rows.append({"input_row": position + 1, "input_smiles": text,
                         "reason": inputs.rejected[position]})
            continue
        j = by_position[position]
        molecule = inputs.molecules[j]
        for rank, (index, score) in enumerate(zip(hits.indices[j], hits.scores[j], strict=True), start=1):
            if index < 0:
                break
            rows.append({"input_row": position + 1, "input_smiles": molecule.smiles,
                         "input_inchikey": molecule.inchikey, "rank": rank, "library_index": int(index),
                         "library_id": source_ids[int(index)], "smiles": names[int(index)],
                         "decode_similarity": float(score),
                         "is_input": inchikeys[int(index)] == molecule.inchikey,
                         "reason": ""})
    frame = pd.DataFrame(rows, columns=list(RECONSTRUCTION_COLUMNS))
    # A rejected input's row has no rank or match: nullable types keep the others' integers
    # and booleans (plain columns would turn into floats and objects).
    return frame.astype({"input_row": "int64", "rank": "Int64", "library_index": "Int64",
                         "is_input": "boolean"})


def recovery(frame: pd.DataFrame, k: int = 10) -> dict[str, float]:
    """Top-1 and top-k recovery over the inputs that standardized, the mean top-1 score, and how
    many inputs were rejected (``inputs`` counts those that were ranked)."""
    ranked = frame[frame["reason"] == ""]
    rejected = int(frame.loc[frame["reason"] != "", "input_row"].nunique())
    if ranked.empty:
        nan = float("nan")
        return {"inputs": 0, "rejected": rejected, "top1": nan, f"top{k}": nan, "mean_decode_similarity": nan}
    per_input = ranked.groupby("input_row")
    first = ranked[ranked["rank"] == 1]
    return {"inputs": int(per_input.ngroups), "rejected": rejected,
            "top1": float(first["is_input"].astype(bool).mean()),
            f"top{k}": float(per_input.apply(lambda g: bool(g.loc[g["rank"] <= k, "is_input"].any())).mean()),
            "mean_decode_similarity": float(first["decode_similarity"].mean())}
