"""Property-guided decoding: of a draw's ``k`` nearest library molecules, keep one that meets the targets.

A conditional model proposes a fingerprint for the targets; on its own, the nearest library
molecule to that fingerprint often misses them (binary Morgan bits barely fix weight or
logP: BENCHMARKS.md, "Property-guided decoding"). The guide searches the ``k`` nearest
molecules instead of one and keeps the most similar of those within ``band`` tolerances of
every target (:data:`~molvae.chem.metrics.TOLERANCES`), or, when none is, the one nearest
the targets (squared distance in tolerance units).

- ``band = 1`` keeps the most similar in-tolerance molecule: the model chooses wherever the
  targets allow, so neighbouring draws do not all collapse onto the same best-matching
  molecule.
- ``band = 0`` always takes the molecule nearest the targets; the default, 0.5, is between.
- ``k = 1`` is plain nearest-neighbour decoding.

The library's properties are computed with RDKit for the rows a search returns, once per
row, and cached; a 1.6M-molecule library is never scored as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from rdkit import Chem

from molvae.chem.metrics import TOLERANCES
from molvae.chem.properties import compute_properties_frame
from molvae.chem.search import FingerprintLibrary, SearchResult

# Chosen on a cvae of 100k MOSES molecules, 176k test library (BENCHMARKS.md, "Property-guided
# decoding"): of the settings measured that meet every Spearman and within-tolerance target,
# k 16 with band 0.5 keeps the most draws distinct (k 32 follows the targets closer, with fewer).
DEFAULT_GUIDE_K = 16
DEFAULT_GUIDE_BAND = 0.5


class LibraryProperties:
    """Property values of library rows, computed on first use and cached per row."""

    def __init__(self, library: FingerprintLibrary, names: Sequence[str]) -> None:
        if not names:
            raise ValueError("no properties named")
        self.library, self.names = library, list(names)
        self._cache: dict[int, np.ndarray] = {}

    def values(self, rows: np.ndarray) -> np.ndarray:
        """Properties of ``rows`` (any shape of library indices ≥ 0), shape ``rows.shape + (len(names),)``."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and rows.min() < 0:
            raise ValueError(f"library rows must be >= 0, got {rows.min()}")
        missing = [int(r) for r in np.unique(rows) if int(r) not in self._cache]
        if missing:
            smiles = self.library.smiles_at(missing)
            unnamed = [row for row, s in zip(missing, smiles, strict=True) if s is None]
            if unnamed:
                raise ValueError(f"library row {unnamed[0]} has no SMILES, so its properties are unknown")
            mols = [Chem.MolFromSmiles(s) for s in smiles]
            broken = [row for row, mol in zip(missing, mols, strict=True) if mol is None]
            if broken:
                raise ValueError(f"library row {broken[0]}: its SMILES does not parse")
            frame = compute_properties_frame(mols, self.names).to_numpy(dtype=np.float64)
            self._cache.update(zip(missing, frame, strict=True))
        return np.array([self._cache[int(r)] for r in rows.ravel()]).reshape(*rows.shape, len(self.names))


def guide_tolerances(names: Sequence[str], stds: Sequence[float]) -> dict[str, float]:
    """Distance units: :data:`~molvae.chem.metrics.TOLERANCES`, else a quarter of the training std.

    ``stds`` are the training standard deviations of ``names`` (a cvae saves them), so any
    property a model is conditioned on can be guided and scored.
    """
    return {name: TOLERANCES.get(name, float(std) / 4) for name, std in zip(names, stds, strict=True)}


class PropertyGuide:
    """Chooses, per draw, the most similar candidate within ``band`` of ``targets`` (else the nearest).

    Parameters
    ----------
    properties
        The library's property lookup; its names are the guided properties.
    targets
        Real-unit target of every guided property.
    k
        How many nearest library molecules each draw considers (1 = no guidance).
    tolerances
        Distance unit per property; defaults to :data:`~molvae.chem.metrics.TOLERANCES`,
        which every guided property without an entry here must have.
    band
        Candidates within this many tolerances of every target count as on target; the most
        similar of them is kept. Narrower bands follow the targets more closely (higher rank
        correlation) and leave the model fewer choices (more draws share a molecule).
    """

    def __init__(self, properties: LibraryProperties, targets: Mapping[str, float], k: int,
                 tolerances: Mapping[str, float] | None = None, band: float = DEFAULT_GUIDE_BAND) -> None:
        if k < 1:
            raise ValueError(f"guide k must be >= 1, got {k}")
        if band < 0:
            raise ValueError(f"guide band must be >= 0, got {band}")
        unit = {**TOLERANCES, **(tolerances or {})}
        names = properties.names
        lacking = [n for n in names if n not in targets or n not in unit]
        if lacking:
            raise ValueError(f"guided property {lacking[0]!r} needs a target and a tolerance")
        self.properties, self.k, self.band = properties, k, band
        self.targets = np.array([targets[n] for n in names], dtype=np.float64)
        self.units = np.array([unit[n] for n in names], dtype=np.float64)

    def costs(self, rows: np.ndarray) -> np.ndarray:
        """What :meth:`choose` minimizes: 0 within the band of every target, else the squared
        distance to the targets in tolerance units; ``inf`` where ``rows`` is −1 (no hit) or a
        property is NaN."""
        offsets = self._offsets(rows)
        cost = np.where(np.abs(offsets).max(axis=-1) <= self.band, 0.0, (offsets ** 2).sum(axis=-1))
        return np.where(np.isnan(cost), np.inf, cost)  # a property RDKit could not compute never wins

    def _offsets(self, rows: np.ndarray) -> np.ndarray:
        # (value − target) / tolerance per property; inf for −1 (no hit).
        rows = np.asarray(rows, dtype=np.int64)
        out = np.full((*rows.shape, len(self.targets)), np.inf)
        found = rows >= 0
        if found.any():
            out[found] = (self.properties.values(rows[found]) - self.targets) / self.units
        return out

    def choose(self, indices: np.ndarray, avoid: set[int] | None = None) -> np.ndarray:
        """Position (0..k−1) of each draw's chosen candidate in ``indices`` (q × k, nearest first).

        The first (most similar) candidate within the band of every target, else the one
        nearest the targets (the more similar of equally near ones); a draw with no hit gives
        position 0. With ``avoid``, draws are taken in order, each passing over the
        rows in ``avoid`` while another candidate remains, and each pick is added to ``avoid``
        (generation wants distinct molecules; evaluation keeps duplicates to show hubness).
        """
        cost = self.costs(indices)
        if avoid is None:
            return np.argmin(cost, axis=1)
        positions = np.zeros(len(indices), dtype=np.int64)
        for draw, (rows, row_cost) in enumerate(zip(indices, cost, strict=True)):
            taken = np.fromiter((int(r) in avoid for r in rows), dtype=bool, count=len(rows))
            positions[draw] = np.argmin(np.where(taken, np.inf, row_cost)) if not taken.all() else 0
            if rows[positions[draw]] >= 0:
                avoid.add(int(rows[positions[draw]]))
        return positions


def kept_hits(hits: SearchResult, guide: PropertyGuide | None,
              avoid: set[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Library row and score each draw keeps: its nearest hit, or the guide's choice among its hits.

    ``avoid`` is as in :meth:`PropertyGuide.choose` (unused without a guide).
    """
    draws = np.arange(len(hits.indices))
    pick = np.zeros(len(draws), dtype=np.int64) if guide is None else guide.choose(hits.indices, avoid)
    return hits.indices[draws, pick], hits.scores[draws, pick]
