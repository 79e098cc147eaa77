"""Set-level metrics of generated molecules (MOSES) and of conditional generation.

The distribution metrics follow the MOSES benchmark (Polykovskiy et al. 2020, the ``molsets``
package): unique@k, novelty, internal diversity, SNN, Frag, Scaf, FCD and the Wasserstein-1
distances of property distributions. Where this module differs from ``molsets``:

- Generated and training molecules are compared as SMILES strings, so both must come from
  the same canonicalization (the project's canonical SMILES); ``molsets`` re-canonicalizes.
- Fingerprints are the packed Morgan bits given (the project default is radius 2, 2048 bits;
  MOSES uses 1024 bits, so IntDiv and SNN match published tables only for
  ``FingerprintSettings(n_bits=1024)``).
- IntDiv_p is the paper's ``1 − (mean over ordered pairs of T^p)^(1/p)``; the ``molsets`` code
  takes the p-th root per molecule before averaging, which differs for p ≠ 1.
- SNN uses the exact search of :class:`~molvae.chem.search.FingerprintLibrary`, which scores
  two empty fingerprints 0 where ``molsets`` scores them 1.
- The reference set is whatever the caller passes; ``molvae evaluate`` passes a seeded sample
  of 10,000 test molecules (``reference_size``), not the whole test set.

Every function expects valid molecules: filter invalid ones (and report validity) first.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold
from scipy.stats import spearmanr, wasserstein_distance

from molvae.chem.search import FingerprintLibrary

# How far an achieved property may be from its target and still count as controlled, in the
# property's own units (log units, g/mol, QED score). Properties not listed need a tolerance
# passed to :func:`condition_control`.
TOLERANCES: dict[str, float] = {"clogp": 0.5, "mw": 25.0, "qed": 0.1}

# The property distributions MOSES compares (its logP, SA, QED and weight).
PROPERTY_COLUMNS = ("clogp", "sa_score", "qed", "mw")

# MOSES Scaf counts only scaffolds with at least this many rings.
SCAFFOLD_MIN_RINGS = 2

_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1, dtype=np.uint8)

# Rows per block of the all-pairs Tanimoto in internal_diversity: a block pair holds two
# unpacked (rows × n_bits) float32 blocks and one (rows × rows) similarity block, 48 MB at
# 2048 bits, whatever the number of molecules.
_BLOCK = 2048


def _packed(packed: np.ndarray, name: str) -> np.ndarray:
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise ValueError(f"{name} must be packed uint8 fingerprints of shape (n, n_bytes), "
                         f"got {packed.dtype} {packed.shape}")
    if len(packed) == 0:
        raise ValueError(f"{name} is empty")
    return packed


def _mols(smiles: Sequence[str], name: str) -> list[Chem.Mol]:
    if len(smiles) == 0:
        raise ValueError(f"{name} is empty")
    mols = []
    for position, text in enumerate(smiles):
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            raise ValueError(f"{name}[{position}] is not a valid SMILES: {text!r}")
        mols.append(mol)
    return mols


def uniqueness_at_k(smiles: Sequence[str], k: int) -> float:
    """MOSES unique@k: the fraction of distinct SMILES among the first ``k``.

    Raises
    ------
    ValueError
        If ``k`` < 1 or fewer than ``k`` SMILES are given (MOSES only warns, and then reports
        a fraction over fewer molecules under the name unique@k).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(smiles) < k:
        raise ValueError(f"unique@{k} needs at least {k} molecules, got {len(smiles)}")
    return len(set(smiles[:k])) / k


def novelty(smiles: Sequence[str], train_smiles: Iterable[str]) -> float:
    """MOSES novelty: the fraction of distinct generated SMILES absent from the training set."""
    unique = set(smiles)
    if not unique:
        raise ValueError("no generated molecules")
    # difference() streams train_smiles (1.6M for MOSES) without building a second set.
    return len(unique.difference(train_smiles)) / len(unique)


def _tanimoto(common: np.ndarray, counts_a: np.ndarray, counts_b: np.ndarray) -> np.ndarray:
    union = counts_a[:, None] + counts_b[None, :] - common
    # As in MOSES, two empty fingerprints (0/0) count as identical.
    return np.divide(common, union, out=np.ones_like(common), where=union > 0)


def internal_diversity(packed: np.ndarray, p: float = 1) -> float:
    """MOSES IntDiv_p = 1 − (mean of T(x, y)^p over all ordered pairs, x = y included)^(1/p).

    Parameters
    ----------
    packed
        (n, n_bytes) uint8 packed fingerprints of the generated molecules.
    p
        The power; MOSES reports IntDiv (p = 1) and IntDiv2 (p = 2).

    Notes
    -----
    Computed in blocks of ``_BLOCK`` rows, so memory stays bounded for any n; each block pair
    is a float32 matrix product of unpacked bits, exact for counts below 2^24. Only blocks on
    or above the diagonal are computed, the matrix being symmetric.
    """
    packed = _packed(packed, "packed")
    if p <= 0:
        raise ValueError(f"p must be > 0, got {p}")
    counts = _POPCOUNT[packed].sum(axis=1, dtype=np.int64).astype(np.float32)
    n = len(packed)
    total = 0.0
    for i in range(0, n, _BLOCK):
        rows = np.unpackbits(packed[i:i + _BLOCK], axis=1).astype(np.float32)
        for j in range(i, n, _BLOCK):
            cols = rows if j == i else np.unpackbits(packed[j:j + _BLOCK], axis=1).astype(np.float32)
            similarity = _tanimoto(rows @ cols.T, counts[i:i + _BLOCK], counts[j:j + _BLOCK])
            block_sum = float((similarity**p).sum(dtype=np.float64))
            total += block_sum if j == i else 2 * block_sum
    return 1 - (total / n**2) ** (1 / p)


def snn(gen_packed: np.ndarray, ref_packed: np.ndarray, *, device: str = "auto") -> float:
    """MOSES SNN: the mean over generated molecules of the highest Tanimoto to any reference molecule.

    ``device`` is as in :meth:`FingerprintLibrary.search` (``auto``, ``cpu`` or ``cuda``).
    """
    gen_packed = _packed(gen_packed, "gen_packed")
    ref_packed = _packed(ref_packed, "ref_packed")
    if gen_packed.shape[1] != ref_packed.shape[1]:
        raise ValueError(f"generated fingerprints have {gen_packed.shape[1]} bytes, "
                         f"reference ones {ref_packed.shape[1]}")
    _, scores = FingerprintLibrary.from_packed(ref_packed).search(gen_packed, k=1, device=device)
    return float(scores[:, 0].mean())


def _count_cosine(gen_counts: Counter[str], ref_counts: Counter[str]) -> float:
    # As in MOSES: undefined (NaN) when either side has nothing to count.
    if not gen_counts or not ref_counts:
        return float("nan")
    keys = list(gen_counts.keys() | ref_counts.keys())
    gen = np.array([gen_counts[key] for key in keys], dtype=np.float64)
    ref = np.array([ref_counts[key] for key in keys], dtype=np.float64)
    return float(gen @ ref / (np.linalg.norm(gen) * np.linalg.norm(ref)))


def _fragment_counts(mols: Iterable[Chem.Mol]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for mol in mols:
        counts.update(Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split("."))
    return counts


def _scaffold_counts(mols: Iterable[Chem.Mol], min_rings: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    for mol in mols:
        scaffold = MurckoScaffold.GetScaffoldForMol(mol)
        # Acyclic molecules have an empty scaffold; MOSES also skips scaffolds below min_rings.
        if scaffold.GetRingInfo().NumRings() >= max(min_rings, 1):
            counts[Chem.MolToSmiles(scaffold)] += 1
    return counts


def fragment_similarity(gen_smiles: Sequence[str], ref_smiles: Sequence[str]) -> float:
    """MOSES Frag: cosine similarity of the BRICS fragment count vectors of the two sets.

    Fragments are the canonical SMILES of the pieces left by cutting every BRICS bond
    (attachment points kept as labelled dummy atoms).
    """
    return _count_cosine(_fragment_counts(_mols(gen_smiles, "gen_smiles")),
                         _fragment_counts(_mols(ref_smiles, "ref_smiles")))


def scaffold_similarity(gen_smiles: Sequence[str], ref_smiles: Sequence[str], *,
                        min_rings: int = SCAFFOLD_MIN_RINGS) -> float:
    """MOSES Scaf: cosine similarity of the Bemis–Murcko scaffold count vectors of the two sets.

    Scaffolds with fewer than ``min_rings`` rings are not counted; NaN when
    either set has no scaffold left.
    """
    return _count_cosine(_scaffold_counts(_mols(gen_smiles, "gen_smiles"), min_rings),
                         _scaffold_counts(_mols(ref_smiles, "ref_smiles"), min_rings))


def property_wasserstein(gen_frame: pd.DataFrame, ref_frame: pd.DataFrame,
                         columns: Sequence[str] = PROPERTY_COLUMNS) -> dict[str, float]:
    """Wasserstein-1 distance between the generated and reference distributions of each property.

    Frames are as returned by :func:`~molvae.chem.properties.compute_properties_frame`;
    missing values (an SA score of an atomless molecule) are dropped.
    """
    distances = {}
    for column in columns:
        values = []
        for name, frame in (("gen_frame", gen_frame), ("ref_frame", ref_frame)):
            if column not in frame.columns:
                raise ValueError(f"{name} has no {column!r} column")
            present = frame[column].dropna()
            if present.empty:
                raise ValueError(f"{name} has no {column!r} values")
            values.append(present)
        distances[column] = float(wasserstein_distance(*values))
    return distances


def fcd(gen_smiles: Sequence[str], ref_smiles: Sequence[str], *, device: str = "auto") -> float | None:
    """Fréchet ChemNet Distance, or None when the optional package ``fcd_torch`` is not installed.

    Raises
    ------
    ValueError
        If either set has fewer than 2 molecules (the covariance needs two).
    """
    for name, smiles in (("gen_smiles", gen_smiles), ("ref_smiles", ref_smiles)):
        if len(smiles) < 2:
            raise ValueError(f"FCD needs at least 2 molecules in {name}, got {len(smiles)}")
    try:
        from fcd_torch import FCD
    except ImportError:
        return None
    from molvae.device import resolve_device

    scorer = FCD(device=str(resolve_device(device)), n_jobs=1)
    return float(scorer(ref=list(ref_smiles), gen=list(gen_smiles)))


def set_metrics(gen_smiles: Sequence[str], gen_packed: np.ndarray, train_smiles: Iterable[str],
                ref_smiles: Sequence[str], ref_packed: np.ndarray, ks: Sequence[int] = (1000, 10000), *,
                gen_properties: pd.DataFrame | None = None, ref_properties: pd.DataFrame | None = None,
                device: str = "auto") -> dict[str, float]:
    """The MOSES metrics of a generated set against a training and a reference (test) set.

    Keys: ``unique_at_{k}`` for each k ≤ len(gen_smiles), ``novelty``, ``intdiv1``, ``intdiv2``,
    ``snn``, ``frag``, ``scaf``, ``w1_{property}`` when both property frames are given, and
    ``fcd`` when ``fcd_torch`` is installed. Names avoid "@" and "/", which MLflow rejects.
    """
    if len(gen_smiles) != len(gen_packed):
        raise ValueError(f"{len(gen_smiles)} generated SMILES but {len(gen_packed)} fingerprints")
    if (gen_properties is None) != (ref_properties is None):
        raise ValueError("give both gen_properties and ref_properties, or neither")
    metrics = {f"unique_at_{k}": uniqueness_at_k(gen_smiles, k) for k in ks if k <= len(gen_smiles)}
    metrics["novelty"] = novelty(gen_smiles, train_smiles)
    metrics["intdiv1"] = internal_diversity(gen_packed, p=1)
    metrics["intdiv2"] = internal_diversity(gen_packed, p=2)
    metrics["snn"] = snn(gen_packed, ref_packed, device=device)
    # Parsed once for both Frag and Scaf.
    gen_mols, ref_mols = _mols(gen_smiles, "gen_smiles"), _mols(ref_smiles, "ref_smiles")
    metrics["frag"] = _count_cosine(_fragment_counts(gen_mols), _fragment_counts(ref_mols))
    metrics["scaf"] = _count_cosine(_scaffold_counts(gen_mols, SCAFFOLD_MIN_RINGS),
                                    _scaffold_counts(ref_mols, SCAFFOLD_MIN_RINGS))
    if gen_properties is not None and ref_properties is not None:
        metrics |= {f"w1_{name}": value
                    for name, value in property_wasserstein(gen_properties, ref_properties).items()}
    distance = fcd(gen_smiles, ref_smiles, device=device)
    if distance is not None:
        metrics["fcd"] = distance
    return metrics


def _spearman(target: np.ndarray, value: np.ndarray) -> float:
    finite = np.isfinite(target) & np.isfinite(value)
    target, value = target[finite], value[finite]
    # A single target (or a constant outcome) has no ranking to agree with: undefined, not an error.
    if len(target) < 2 or np.ptp(target) == 0 or np.ptp(value) == 0:
        return float("nan")
    return float(spearmanr(target, value).statistic)


def condition_control(targets: pd.DataFrame, achieved: pd.DataFrame, smiles: Sequence[str],
                      group: Sequence[Hashable], tolerances: Mapping[str, float] | None = None
                      ) -> dict[str, float]:
    """How well conditional generation hits its property targets.

    Parameters
    ----------
    targets
        One row per generated molecule: the requested value of each conditioned property
        (its columns are the properties scored).
    achieved
        The same rows (matched by position): the generated molecule's computed properties.
    smiles
        The generated molecules' SMILES, by position.
    group
        The condition each molecule was generated under (any hashable label), by position.
    tolerances
        Tolerances added to or overriding :data:`TOLERANCES`.

    Returns
    -------
    dict
        ``spearman_{property}`` (rank correlation of target and achieved, NaN for a single
        target value), ``within_tol_{property}`` (fraction with |achieved − target| ≤ the
        tolerance; a missing value is a miss), ``within_tol_all`` (fraction within every
        tolerance at once), ``uniqueness_group_mean`` and ``uniqueness_group_min`` (the
        fraction of distinct SMILES within each condition group) and ``n_groups``.
    """
    n = len(targets)
    if n == 0:
        raise ValueError("no generated molecules")
    if not len(achieved) == len(smiles) == len(group) == n:
        raise ValueError(f"targets, achieved, smiles and group need one entry per molecule, got "
                         f"{n}, {len(achieved)}, {len(smiles)} and {len(group)}")
    tolerance = {**TOLERANCES, **(tolerances or {})}
    for column in targets.columns:
        if column not in achieved.columns:
            raise ValueError(f"achieved has no {column!r} column")
        if column not in tolerance:
            raise ValueError(f"no tolerance for {column!r}; pass tolerances={{{column!r}: ...}}")
    metrics: dict[str, float] = {}
    within_all = np.ones(n, dtype=bool)
    for column in targets.columns:
        target = targets[column].to_numpy(dtype=np.float64)
        value = achieved[column].to_numpy(dtype=np.float64)
        metrics[f"spearman_{column}"] = _spearman(target, value)
        within = np.abs(value - target) <= tolerance[column]  # NaN compares False: a miss
        metrics[f"within_tol_{column}"] = float(within.mean())
        within_all &= within
    metrics["within_tol_all"] = float(within_all.mean())
    members: defaultdict[Hashable, list[str]] = defaultdict(list)
    for label, text in zip(group, smiles, strict=True):
        members[label].append(text)
    uniqueness = [len(set(texts)) / len(texts) for texts in members.values()]
    metrics |= {"uniqueness_group_mean": float(np.mean(uniqueness)),
                "uniqueness_group_min": float(min(uniqueness)), "n_groups": len(members)}
    return metrics
