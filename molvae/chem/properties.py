"""Molecular properties and med-chem rule checks, tiered by how long they take to compute.

Levels: ``"none"`` computes nothing, ``"basic"`` the cheap descriptors and the Lipinski/Veber
rules, ``"full"`` adds QED, the SA score, the Bemis–Murcko scaffold and the PAINS/Brenk/NIH
structural alerts. Measured on MOSES molecules (one core, CPU time): basic ≈11,000/s; of the
full-only columns the alerts ≈400/s dominate, then QED ≈1,400/s, SA score ≈8,000/s and
scaffold ≈12,000/s; full ≈245/s in a frame (≈155/s a molecule at a time, see ``_CHUNK``).
A 1.6M-molecule library therefore takes hours at ``"full"``: callers compute the level they
need, or single columns on demand (:func:`compute_properties_frame` accepts column names).

Column names and order are a contract with the candidate export; :data:`PROPERTY_DTYPES`
gives each column's pandas dtype.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import pandas as pd
from rdkit import Chem, RDConfig
from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams
from rdkit.Chem.Scaffolds import MurckoScaffold

PROPERTY_LEVELS = ("none", "basic", "full")

BASIC_COLUMNS = (
    "mw",
    "clogp",
    "tpsa",
    "hbd",
    "hba",
    "rotb",
    "rings",
    "aromatic_rings",
    "fraction_csp3",
    "heavy_atoms",
    "lipinski_violations",
    "veber_pass",
)
FULL_COLUMNS = (*BASIC_COLUMNS, "qed", "sa_score", "scaffold", "alerts", "n_alerts")

PROPERTY_DTYPES: dict[str, str] = {
    "mw": "float64",
    "clogp": "float64",
    "tpsa": "float64",
    "hbd": "int32",
    "hba": "int32",
    "rotb": "int32",
    "rings": "int32",
    "aromatic_rings": "int32",
    "fraction_csp3": "float64",
    "heavy_atoms": "int32",
    "lipinski_violations": "int32",
    "veber_pass": "bool",
    "qed": "float64",
    "sa_score": "float64",
    "scaffold": "string",
    "alerts": "string",
    "n_alerts": "int32",
}

_LEVEL_COLUMNS = {"none": (), "basic": BASIC_COLUMNS, "full": FULL_COLUMNS}

# Joins the "Family:name" entries of the ``alerts`` column, e.g. "PAINS:ene_rhod_A(235); NIH:rhodanine".
ALERT_SEPARATOR = "; "


def property_columns(level: str) -> tuple[str, ...]:
    """The columns computed at ``level``, in export order.

    Raises
    ------
    ValueError
        If ``level`` is not one of :data:`PROPERTY_LEVELS`.
    """
    if level not in _LEVEL_COLUMNS:
        raise ValueError(f"unknown property level {level!r}; valid levels are {', '.join(PROPERTY_LEVELS)}")
    return _LEVEL_COLUMNS[level]


@functools.cache
def _alert_catalog() -> FilterCatalog:
    """PAINS (A, B and C), Brenk and NIH in one catalog, built once per process."""
    params = FilterCatalogParams()
    for catalog in (
        FilterCatalogParams.FilterCatalogs.PAINS,
        FilterCatalogParams.FilterCatalogs.BRENK,
        FilterCatalogParams.FilterCatalogs.NIH,
    ):
        params.AddCatalog(catalog)
    return FilterCatalog(params)


def _alert_names(mol: Chem.Mol) -> tuple[str, ...]:
    # One catalog and one GetMatches pass. Measured (CPU time, 2,000 MOSES molecules, 13% with an
    # alert, on a busy 2-core machine, ±15% run to run): one catalog ≈350/s, three catalogs (one
    # per family) ≈345/s, HasMatch before GetMatches ≈330/s; on molecules with alerts HasMatch
    # first cost ≈35% (448 → 293/s) and saved nothing measurable on clean ones, since both scan
    # every pattern. Each entry's "FilterSet" (PAINS_A/B/C, Brenk, NIH) names its family.
    return tuple(
        f"{entry.GetProp('FilterSet').split('_')[0]}:{entry.GetDescription()}"
        for entry in _alert_catalog().GetMatches(mol)
    )


@functools.cache
def _sascorer() -> ModuleType:
    """RDKit's Contrib SA_Score module, imported once per process.

    It is shipped with the wheel but not importable as a package, so it is loaded from its
    file; it unpickles its fragment scores on first use and keeps them in the module.
    """
    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    spec = importlib.util.spec_from_file_location("_rdkit_contrib_sascorer", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load RDKit's SA_Score from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sa_score(mol: Chem.Mol) -> float:
    score = _sascorer().calculateScore(mol)
    # The scorer returns None for a molecule without atoms.
    return float("nan") if score is None else score


class _Calculator:
    """The columns of one molecule, each computed at most once, so derived columns reuse their inputs."""

    def __init__(self, mol: Chem.Mol) -> None:
        self.mol = mol
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            self._values[name] = _FORMULAS[name](self)
        return self._values[name]


# Keys starting with "_" are intermediate values shared by several columns, never returned.
_FORMULAS: dict[str, Callable[[_Calculator], object]] = {
    "mw": lambda c: Descriptors.MolWt(c.mol),
    "clogp": lambda c: Crippen.MolLogP(c.mol),
    "tpsa": lambda c: rdMolDescriptors.CalcTPSA(c.mol),
    "hbd": lambda c: Lipinski.NumHDonors(c.mol),
    "hba": lambda c: Lipinski.NumHAcceptors(c.mol),
    "rotb": lambda c: rdMolDescriptors.CalcNumRotatableBonds(c.mol),
    "rings": lambda c: rdMolDescriptors.CalcNumRings(c.mol),
    "aromatic_rings": lambda c: rdMolDescriptors.CalcNumAromaticRings(c.mol),
    "fraction_csp3": lambda c: rdMolDescriptors.CalcFractionCSP3(c.mol),
    "heavy_atoms": lambda c: c.mol.GetNumHeavyAtoms(),
    "lipinski_violations": lambda c: sum((c["mw"] > 500, c["clogp"] > 5, c["hbd"] > 5, c["hba"] > 10)),
    "veber_pass": lambda c: c["rotb"] <= 10 and c["tpsa"] <= 140,
    "qed": lambda c: QED.qed(c.mol),
    "sa_score": lambda c: _sa_score(c.mol),
    "scaffold": lambda c: MurckoScaffold.MurckoScaffoldSmiles(mol=c.mol),
    "_alert_names": lambda c: _alert_names(c.mol),
    "alerts": lambda c: ALERT_SEPARATOR.join(c["_alert_names"]),
    "n_alerts": lambda c: len(c["_alert_names"]),
}


# The frame is computed a column at a time over chunks of this many molecules, not a molecule at a
# time: each RDKit routine (the alert catalog's ~770 patterns, QED's own alerts) then stays in the
# CPU caches. Measured at level "full" on MOSES molecules (CPU time, one core): a molecule at a time
# ≈155/s, chunks of 10 ≈190/s, 100 ≈210/s, 1,000 ≈245/s (1.55×); the chunk bounds the memory the
# per-molecule intermediate values take.
_CHUNK = 1000


def resolve_columns(level: str | Sequence[str]) -> tuple[str, ...]:
    """The property columns of a level name, or the validated, de-duplicated column names given."""
    if isinstance(level, str):
        return property_columns(level)
    unknown = [name for name in level if name not in PROPERTY_DTYPES]
    if unknown:
        raise ValueError(f"unknown property columns {unknown}; valid columns are {', '.join(FULL_COLUMNS)}")
    return tuple(dict.fromkeys(level))


def _compute(mol: Chem.Mol, columns: tuple[str, ...]) -> dict[str, object]:
    calculator = _Calculator(mol)
    return {name: calculator[name] for name in columns}


def compute_properties(mol: Chem.Mol, level: str | Sequence[str]) -> dict[str, object]:
    """Properties of one molecule.

    Parameters
    ----------
    mol
        A sanitized RDKit molecule.
    level
        A level from :data:`PROPERTY_LEVELS`, or a sequence of column names to compute only
        those (duplicates dropped, order kept).

    Returns
    -------
    dict
        Column name → value (Python float, int, bool or str), in column order.

    Raises
    ------
    ValueError
        For an unknown level or column name, or a None molecule.
    """
    columns = resolve_columns(level)
    if mol is None:
        raise ValueError("cannot compute properties of None (a SMILES that failed to parse?)")
    return _compute(mol, columns)


def compute_properties_frame(mols: Sequence[Chem.Mol], level: str | Sequence[str]) -> pd.DataFrame:
    """Properties of a batch of molecules, one row per molecule in input order.

    ``level`` is as in :func:`compute_properties`; the frame has a RangeIndex, the requested
    columns in order and the dtypes of :data:`PROPERTY_DTYPES` (level ``"none"`` gives rows
    without columns, so it still aligns with the batch).

    Raises
    ------
    ValueError
        For an unknown level or column name, or a None molecule (its position is named).
    """
    columns = resolve_columns(level)
    values: dict[str, list[Any]] = {name: [] for name in columns}
    for start in range(0, len(mols), _CHUNK):
        calculators = []
        for position, mol in enumerate(mols[start : start + _CHUNK], start):
            if mol is None:
                raise ValueError(f"molecule at position {position} is None (a SMILES that failed to parse?)")
            calculators.append(_Calculator(mol))
        for name in columns:
            values[name].extend(calculator[name] for calculator in calculators)
    index = pd.RangeIndex(len(mols))
    return pd.DataFrame(
        {name: pd.Series(values[name], index=index, dtype=PROPERTY_DTYPES[name]) for name in columns},
        index=index,
    )
