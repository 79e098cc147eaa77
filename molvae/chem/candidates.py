"""Scoring decoded candidates: what a chemist needs to judge each retrieved library molecule.

:func:`annotate_candidates` takes the frame that :func:`~molvae.chem.generate.generate_candidates`
returns (one row per unique library molecule, with its decode similarity) and adds

- identity: the InChIKey computed from the molecule;
- novelty: the nearest training molecule, its Tanimoto similarity, and ``novel`` (the InChIKey is
  not in the training set; Tanimoto 1.0 alone would call distinct molecules with equal
  fingerprints "not novel");
- properties and rules: QED, SA score, cLogP, MW, TPSA, HBD, HBA, rotatable bonds, Lipinski
  violations, the Veber rule, the PAINS/Brenk/NIH alert names (flags, not filters) and the
  Murcko scaffold;
- applicability domain: the model's anomaly score (−ELBO) of the retrieved molecule and its
  percentile among training molecules;
- conditioning: ``achieved_<name>`` beside each ``target_<name>``;
- provenance: the model and the run id.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rdkit import Chem

from molvae.chem.anomaly import REFERENCE_KEY, fingerprint_scores, percentile
from molvae.chem.properties import compute_properties_frame
from molvae.chem.search import FingerprintLibrary
from molvae.models.core import VAE
from molvae.models.molecular import ConditionScaler

# The property and rule columns of the export, in order.
PROPERTY_EXPORT_COLUMNS = ("qed", "sa_score", "clogp", "mw", "tpsa", "hbd", "hba", "rotb",
                           "lipinski_violations", "veber_pass", "alerts", "n_alerts", "scaffold")


def in_training_set(inchikeys: Sequence[str | None] | pa.ChunkedArray,
                    train: FingerprintLibrary) -> np.ndarray:
    """Whether each InChIKey is one of the training library's ids (InChIKeys for dataset libraries).

    An Arrow column (e.g. a library's ``names.column("id")``) is matched as it is, without
    turning 1.6M ids into Python strings.
    """
    keys = inchikeys if isinstance(inchikeys, pa.ChunkedArray) else pa.array(list(inchikeys), pa.string())
    found = pc.is_in(keys, value_set=train.names.column("id").combine_chunks())
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def training_rows(library: FingerprintLibrary, train: FingerprintLibrary) -> np.ndarray:
    """Mask of the library rows whose InChIKey is in ``train``: what ``--novel`` excludes."""
    return library.rows_with_ids(train.names.column("id").combine_chunks())


def novelty_columns(library: FingerprintLibrary, indices: np.ndarray, inchikeys: list[str],
                    train: FingerprintLibrary | None) -> pd.DataFrame:
    """Nearest training molecule (exact Tanimoto) and whether each candidate is absent from training."""
    n = len(indices)
    if train is None or len(train) == 0:
        return pd.DataFrame({"nearest_train_smiles": [""] * n,
                             "nearest_train_similarity": np.full(n, np.nan),
                             "novel": pd.array([pd.NA] * n, dtype="boolean")})
    if library.settings != train.settings:
        raise ValueError(f"the training set's fingerprints ({train.settings}) differ from the "
                         f"library's ({library.settings}); novelty needs the same settings")
    hits = train.search(np.asarray(library.packed[indices]), 1)
    nearest = hits.indices[:, 0]
    return pd.DataFrame({"nearest_train_smiles": train.smiles_at(nearest),
                         "nearest_train_similarity": hits.scores[:, 0],
                         "novel": ~in_training_set(inchikeys, train)})


def domain_columns(model: VAE, packed: np.ndarray, properties: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The model's anomaly score of each retrieved molecule and its training-set percentile."""
    quantiles = model.config.metadata.get(REFERENCE_KEY)
    if not quantiles:
        raise ValueError("this model has no training-set anomaly reference (train it with molvae train)")
    conditions = None
    if model.condition_dim:
        # A conditional model scores a molecule under its own properties, as in training.
        scaler = ConditionScaler.from_config(model.config)
        conditions = scaler.normalize(properties[list(scaler.names)].to_numpy(dtype=np.float64))
    scores = fingerprint_scores(model, packed, conditions, seed=seed)
    return pd.DataFrame({"ad_score": scores, "ad_percentile": percentile(scores, quantiles)})


def annotate_candidates(candidates: pd.DataFrame, library: FingerprintLibrary, model: VAE, *,
                        train: FingerprintLibrary | None = None, model_name: str = "",
                        run_id: str = "", seed: int = 0) -> pd.DataFrame:
    """All export columns for generated candidates, in export order.

    Parameters
    ----------
    candidates
        Rows with ``rank``, ``smiles``, ``library_id``, ``library_index`` and
        ``decode_similarity`` (plus ``seed_smiles`` and ``target_*`` where the mode sets them).
    library
        The library the candidates were decoded from.
    model
        The model that generated them; it gives the applicability-domain scores.
    train
        The training molecules as a library, for the novelty columns (empty when None).
    """
    indices = candidates["library_index"].to_numpy(dtype=np.int64)
    mols = [Chem.MolFromSmiles(s) for s in candidates["smiles"]]
    failed = [s for s, mol in zip(candidates["smiles"], mols, strict=True) if mol is None]
    if failed:
        raise ValueError(f"library SMILES that RDKit cannot parse: {failed[:3]}; rebuild the library")
    targets = [c.removeprefix("target_") for c in candidates.columns if c.startswith("target_")]
    extra = [t for t in targets if t not in PROPERTY_EXPORT_COLUMNS]
    scaler_names = list(ConditionScaler.from_config(model.config).names) if model.condition_dim else []
    wanted = list(dict.fromkeys([*PROPERTY_EXPORT_COLUMNS, *extra, *scaler_names]))
    properties = compute_properties_frame(mols, wanted)
    inchikeys = [Chem.MolToInchiKey(mol) for mol in mols]
    packed = np.asarray(library.packed[indices])
    frame = pd.DataFrame({"rank": candidates["rank"].to_numpy(), "smiles": candidates["smiles"].to_numpy(),
                          "inchikey": inchikeys, "library_id": candidates["library_id"].to_numpy(),
                          "library_index": indices,
                          "decode_similarity": candidates["decode_similarity"].to_numpy()})
    if "seed_smiles" in candidates:
        frame["seed_smiles"] = candidates["seed_smiles"].to_numpy()
    frame = pd.concat([frame, novelty_columns(library, indices, inchikeys, train),
                       properties[list(PROPERTY_EXPORT_COLUMNS)],
                       domain_columns(model, packed, properties, seed)], axis=1)
    for name in targets:
        frame[f"target_{name}"] = candidates[f"target_{name}"].to_numpy()
        frame[f"achieved_{name}"] = properties[name].to_numpy()
    frame["model"] = model_name
    frame["run_id"] = run_id
    return frame
