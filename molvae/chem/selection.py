"""Choosing which annotated candidates to hand over: filters, a documented rank score, MaxMin diversity.

Nothing is dropped silently: every candidate a filter or the diversity pick leaves out is
returned with its reason, and the export writes those rows to ``rejects.csv``.

The rank score (:func:`rank_score`) is a weighted mean of terms in [0, 1]:

- ``qed`` (weight 0.35): drug-likeness as is;
- ``(10 − sa_score) / 9`` (0.25): synthetic accessibility, 1 = easiest;
- ``decode_similarity`` (0.25): how faithfully the retrieved molecule matches what the model
  generated;
- ``in_domain`` (0.15): 1 when the molecule's anomaly percentile lies between 5 and 95 among
  the training molecules, else 0. Both tails are out of domain for a fingerprint VAE: very
  simple molecules score unusually *low*.

Alerts are not part of the score; they are names in the export and a filter (``max_alerts``).

Any other numeric column can rank instead, as ``COLUMN`` or ``COLUMN:asc|desc``
(:func:`parse_rank_by`); without a direction the columns of :data:`DEFAULT_RANK_DIRECTIONS`
sort lowest first and all others highest first.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from rdkit.SimDivFilters.rdSimDivPickers import MaxMinPicker

from molvae.chem.fingerprints import to_bitvect

RANK_WEIGHTS: dict[str, float] = {"qed": 0.35, "sa": 0.25, "decode_similarity": 0.25, "in_domain": 0.15}
# Training percentiles of the anomaly score outside which a molecule is out of domain (both
# tails: see in_domain above); molvae anomaly's domain column uses the same band.
DOMAIN_PERCENTILES = (5.0, 95.0)
RANK_DIRECTIONS = ("asc", "desc")
# Columns where a lower value is the better candidate, so they rank ascending unless told otherwise:
# SA runs from 1 (easy) to 10 (hard), and rule violations and alerts are faults. Every other
# column (score, qed, decode_similarity, ...) ranks highest first, except the two-tailed ones.
DEFAULT_RANK_DIRECTIONS: dict[str, str] = {"sa_score": "asc", "lipinski_violations": "asc", "n_alerts": "asc"}
# Both tails of the anomaly score are out of domain (see in_domain above): no direction is
# "best first", so ranking by them needs one given explicitly.
TWO_TAILED = ("ad_score", "ad_percentile")


def parse_ranges(text: str | None) -> dict[str, tuple[float, float]]:
    """``mw=200:450,clogp=:3`` → {"mw": (200, 450), "clogp": (-inf, 3)}; an empty bound is open."""
    ranges: dict[str, tuple[float, float]] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, bounds = part.partition("=")
        low, colon, high = bounds.partition(":")
        try:
            if not sep or not colon or not name.strip():
                raise ValueError
            lo = float(low) if low.strip() else -np.inf
            hi = float(high) if high.strip() else np.inf
        except ValueError:
            raise ValueError(f"bad range {part!r}: expected name=low:high, e.g. mw=200:450 or clogp=:3"
                             ) from None
        if lo > hi:
            raise ValueError(f"bad range {part!r}: low {lo} is above high {hi}")
        ranges[name.strip()] = (lo, hi)
    return ranges


def apply_filters(frame: pd.DataFrame, *, max_alerts: int | None = None,
                  ranges: Mapping[str, tuple[float, float]] | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Candidates that pass, and those that fail with the first failing rule as ``reason``."""
    reasons = pd.Series("", index=frame.index, dtype=object)
    if max_alerts is not None:
        too_many = frame["n_alerts"] > max_alerts
        reasons[too_many & (reasons == "")] = frame.loc[too_many, "n_alerts"].map(
            lambda n: f"{n} alerts > --max-alerts {max_alerts}")
    for name, (lo, hi) in (ranges or {}).items():
        if name not in frame or not pd.api.types.is_numeric_dtype(frame[name]):
            numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
            raise ValueError(f"cannot filter on {name!r}: not a numeric candidate column "
                             f"({', '.join(numeric)})")
        values = frame[name].astype(float)
        outside = ~values.between(lo, hi) & (reasons == "")
        reasons[outside] = values[outside].map(
            lambda v, n=name, a=lo, b=hi: f"{n} {v:.4g} outside [{a}, {b}]")
    failed = reasons != ""
    return frame[~failed], _rejects(frame[failed], reasons[failed])


def rank_score(frame: pd.DataFrame) -> pd.Series:
    """The documented rank score in [0, 1] (see the module docstring); NaN terms count as 0."""
    low, high = DOMAIN_PERCENTILES
    terms = {"qed": frame["qed"], "sa": (10.0 - frame["sa_score"]) / 9.0,
             "decode_similarity": frame["decode_similarity"],
             "in_domain": frame["ad_percentile"].between(low, high).astype(float)}
    return sum(RANK_WEIGHTS[name] * term.astype(float).fillna(0.0).clip(0, 1) for name, term in terms.items())


def parse_rank_by(text: str) -> tuple[str, bool]:
    """``sa_score:asc`` → ("sa_score", True); a bare column takes its :data:`DEFAULT_RANK_DIRECTIONS`."""
    column, sep, direction = (part.strip() for part in text.partition(":"))
    if not column:
        raise ValueError(f"bad rank-by {text!r}: expected COLUMN or COLUMN:asc|desc, e.g. sa_score:asc")
    if not sep:
        if column in TWO_TAILED:
            raise ValueError(f"both tails of {column} are out of domain, so it has no best-first order: give "
                             f"{column}:asc or {column}:desc, or rank by 'score', whose in_domain term "
                             f"counts both tails")
        direction = DEFAULT_RANK_DIRECTIONS.get(column, "desc")
    if direction.lower() not in RANK_DIRECTIONS:
        raise ValueError(f"bad rank-by direction {direction!r} for column {column!r}: "
                         f"choose {' or '.join(RANK_DIRECTIONS)}, e.g. {column}:asc")
    return column, direction.lower() == "asc"


def rank_candidates(frame: pd.DataFrame, by: str = "score") -> pd.DataFrame:
    """Sorted by ``by`` (:func:`parse_rank_by`; ``score`` is :func:`rank_score`), ``rank`` renumbered 1..n.

    Ties keep the earlier (better decoded) candidate first and missing values go last, in
    either direction.
    """
    column, ascending = parse_rank_by(by)
    frame = frame.copy()
    frame["score"] = rank_score(frame)
    # Columns starting with "_" are the caller's bookkeeping, not candidate data.
    rankable = [c for c in frame.columns if not c.startswith("_") and pd.api.types.is_numeric_dtype(frame[c])]
    if column not in rankable:
        raise ValueError(f"cannot rank by {column!r}: choose a numeric column ({', '.join(rankable)})")
    frame = frame.sort_values(column, ascending=ascending, kind="stable", na_position="last")
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame.reset_index(drop=True)


def pick_diverse(frame: pd.DataFrame, packed: np.ndarray, n: int, seed: int = 0
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` candidates chosen by RDKit's MaxMinPicker, starting from the top-ranked one.

    ``packed`` holds each row's fingerprint (same order). The picked rows keep their rank
    order and are renumbered; the others are returned with the reason.
    """
    if n < 1:
        raise ValueError(f"--diverse must be >= 1, got {n}")
    if n >= len(frame):
        return frame, _rejects(frame.iloc[:0], pd.Series([], dtype=object))
    vectors = [to_bitvect(row) for row in np.asarray(packed)]
    picks = MaxMinPicker().LazyBitVectorPick(vectors, len(vectors), n, firstPicks=[0], seed=seed)
    chosen = np.zeros(len(frame), dtype=bool)
    chosen[list(picks)] = True
    kept = frame[chosen].copy()
    kept["rank"] = np.arange(1, len(kept) + 1)
    reason = pd.Series(f"not among the {n} MaxMin-diverse picks", index=frame.index[~chosen], dtype=object)
    return kept.reset_index(drop=True), _rejects(frame[~chosen], reason)


def select_candidates(frame: pd.DataFrame, packed: np.ndarray, *, max_alerts: int | None = None,
                      ranges: Mapping[str, tuple[float, float]] | None = None, rank_by: str = "score",
                      diverse: int | None = None, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Filter, rank, then (optionally) pick a diverse subset; returns (selected, rejects).

    ``packed`` holds the fingerprints of ``frame``'s rows in order. Every input row is in exactly
    one of the two outputs.
    """
    frame = frame.reset_index(drop=True)
    kept, filtered = apply_filters(frame, max_alerts=max_alerts, ranges=ranges)
    positions = kept.index.to_numpy()
    ranked = rank_candidates(kept.assign(_position=positions), rank_by)
    dropped = filtered
    if diverse is not None:
        ranked_packed = np.asarray(packed)[ranked["_position"].to_numpy()]
        ranked, not_picked = pick_diverse(ranked, ranked_packed, diverse, seed)
        dropped = pd.concat([filtered, not_picked], ignore_index=True)
    return ranked.drop(columns="_position"), dropped


def _rejects(frame: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    out = frame[["smiles", "inchikey", "library_id"]].copy()
    out["reason"] = reasons.to_numpy()
    return out.reset_index(drop=True)
