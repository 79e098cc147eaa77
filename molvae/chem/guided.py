"""Property-guided decoding: of a draw's ``k`` nearest library molecules, keep one that meets the targets.

A conditional model proposes a fingerprint for the targets; on its own, the nearest library
molecule to that fingerprint often misses them (binary Morgan bits barely fix weight or
logP: BENCHMARKS.md, "Property-guided decoding"). The guide searches the ``k`` nearest
molecules instead of one and keeps the best of those within ``band`` tolerances of every
target (:data:`~molvae.chem.metrics.TOLERANCES`), or, when none is, the one nearest the
targets (squared distance in tolerance units). "Best" is the most similar, or, with a
hubness correction (:mod:`molvae.chem.hubness`), the best by CSLS score, so that draws with
several molecules in the band do not all take the same one.

- ``band = 1`` keeps any in-tolerance molecule: the model chooses wherever the targets
  allow, so neighbouring draws do not all collapse onto the same best-matching molecule.
- ``band = 0`` always takes the molecule nearest the targets; the defaults (0.85, or 0.5 in
  libraries of over half a million molecules: :func:`default_guide`) are between.
- ``k = 1`` is no guide: nearest-neighbour decoding, hubness-corrected or not.

The library's properties are computed with RDKit for the rows a search returns, once per
row, and cached; a 1.6M-molecule library is never scored as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from rdkit import Chem

from molvae.chem.hubness import HUB_CANDIDATES, check_hubness, hub_corrected_scores
from molvae.chem.metrics import TOLERANCES
from molvae.chem.properties import compute_properties_frame
from molvae.chem.search import FingerprintLibrary, SearchResult

# The guide's defaults by library size: (molecules, k, band), each chosen on a cvae of 100k
# MOSES molecules with the hubness correction (BENCHMARKS.md, "Hubness correction"). A wider
# band keeps more draws distinct and follows the targets less closely; a larger k follows
# them more closely with fewer distinct. A denser library holds more molecules at the same
# distance from a draw, so the guide must look at more of them to reach the ones that meet
# the targets, and with more of those in band it can keep a narrower band.
# - 176k (MOSES test): of k 16–48 and band 0.5–1, the one setting that met every Spearman,
#   within-tolerance and per-target uniqueness target, at the edge (MW Spearman 0.901, lowest
#   uniqueness 0.950); fresh draws miss by a hair (0.8997; 0.940).
# - 1.48M (MOSES train less the cvae's 100k): k 48, band 0.5 meets every target with margin,
#   on fresh draws too (MW Spearman ≥ 0.94, lowest uniqueness ≥ 0.97); k 24 there misses.
GUIDE_SETTINGS = ((176_072, 24, 0.85), (1_484_399, 48, 0.5))


def default_guide(library_size: int) -> tuple[int, float]:
    """The (k, band) measured in the library size nearest ``library_size`` on a log scale
    (the boundary between the two is their geometric mean, about 511k molecules)."""
    size = max(library_size, 1)
    _, k, band = min(GUIDE_SETTINGS, key=lambda setting: abs(math.log(size / setting[0])))
    return k, band


def check_guide(guide_k: int | None, guide_band: float | None, hubness: int) -> None:
    """Reject guide settings out of range; None leaves k or band to :func:`default_guide`."""
    if (guide_k is not None and guide_k < 1) or (guide_band is not None and guide_band < 0) or hubness < 0:
        raise ValueError(f"guide_k must be >= 1, guide_band and hubness >= 0, got {guide_k}, {guide_band} "
                         f"and {hubness}")


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
    """Chooses, per draw, the best candidate within ``band`` of ``targets`` (else the nearest to them).

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
        Candidates within this many tolerances of every target count as on target; the best
        of them (see :meth:`choose`) is kept. Narrower bands follow the targets more closely (higher rank
        correlation) and leave the model fewer choices (more draws share a molecule). Default:
        :func:`default_guide`'s band for the library's size.
    """

    def __init__(self, properties: LibraryProperties, targets: Mapping[str, float], k: int,
                 tolerances: Mapping[str, float] | None = None, band: float | None = None) -> None:
        if band is None:
            band = default_guide(len(properties.library))[1]
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

    def choose(self, indices: np.ndarray, avoid: set[int] | None = None,
               preference: np.ndarray | None = None) -> np.ndarray:
        """Position (0..k−1) of each draw's chosen candidate in ``indices`` (q × k, nearest first).

        Of the candidates within the band of every target, or, when there are none, of those
        nearest the targets, the one with the highest ``preference`` (q × k; by default the
        search order, so the most similar). A draw with no hit gives position 0. With
        ``avoid``, draws are taken in order, each passing over the rows in ``avoid`` while
        another candidate remains, and each pick is added to ``avoid`` (generation wants
        distinct molecules; evaluation keeps duplicates to show hubness).
        """
        cost = self.costs(indices)
        if preference is None:
            preference = np.broadcast_to(-np.arange(indices.shape[1], dtype=np.float64), indices.shape)
        if avoid is None:
            return _best(cost, preference)
        positions = np.zeros(len(indices), dtype=np.int64)
        for draw, rows in enumerate(indices):
            taken = np.fromiter((int(r) in avoid for r in rows), dtype=bool, count=len(rows))
            if not taken.all():
                positions[draw] = _best(np.where(taken, np.inf, cost[draw])[None], preference[draw][None])[0]
            if rows[positions[draw]] >= 0:
                avoid.add(int(rows[positions[draw]]))
        return positions


def _best(cost: np.ndarray, preference: np.ndarray) -> np.ndarray:
    # Per row: the highest preference among the lowest costs (position 0 when all are inf).
    lowest = cost == cost.min(axis=1, keepdims=True)
    return np.argmax(np.where(lowest & np.isfinite(cost), preference, -np.inf), axis=1)


def search_width(guide: PropertyGuide | None, hubness: int) -> int:
    """How many nearest library molecules each draw needs: the guide's k, else
    :data:`~molvae.chem.hubness.HUB_CANDIDATES` with a hubness correction, else 1."""
    check_hubness(hubness)
    if guide is not None:
        return guide.k
    return HUB_CANDIDATES if hubness else 1


def joined_hits(first: SearchResult, second: SearchResult) -> SearchResult:
    """The draws of ``first`` then those of ``second`` (both searched with the same k)."""
    return SearchResult(np.concatenate([first.indices, second.indices]),
                        np.concatenate([first.scores, second.scores]))


def kept_hits(hits: SearchResult, guide: PropertyGuide | None, avoid: set[int] | None = None,
              hubness: int = 0, earlier: SearchResult | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Library row and score each draw keeps from its hits (a batch's search, nearest first).

    Without a guide: the nearest hit or, with ``hubness`` > 0, the best by CSLS with that
    many neighbours (:mod:`molvae.chem.hubness`). With a guide: its choice, with CSLS
    breaking ties among equally good candidates when ``hubness`` > 0. ``earlier`` are the
    hits of draws already decided (same k), which count toward the hub terms, so that a
    molecule that drew many earlier draws is a hub for these too. ``avoid`` is as in
    :meth:`PropertyGuide.choose` (unused without a guide).
    """
    check_hubness(hubness)
    draws = np.arange(len(hits.indices))
    preference = None
    if hubness and hits.indices.shape[1] > 1:
        every = hits if earlier is None else joined_hits(earlier, hits)
        preference = hub_corrected_scores(every.indices, every.scores, hubness)
        preference = preference[len(preference) - len(draws):]  # these draws' rows
    if guide is not None:
        pick = guide.choose(hits.indices, avoid, preference)
    elif preference is not None:
        pick = np.argmax(preference, axis=1)
    else:
        pick = np.zeros(len(draws), dtype=np.int64)
    return hits.indices[draws, pick], hits.scores[draws, pick]
