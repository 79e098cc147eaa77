"""Parsing and standardizing one molecule, with a reject reason when it cannot be used.

Standardization follows RDKit's MolStandardize: cleanup (explicit-H removal, metal
disconnection, normalization, reionization), keep the largest fragment, neutralize, and
optionally the canonical tautomer. The output identity is the canonical isomeric SMILES
and the InChIKey.

Cleanup is the slowest step (≈1,600 molecules/s on one core) and most library molecules
need none of it, so it runs only when a cheap structural check says it could change the
molecule (see :func:`needs_cleanup`); a test proves the result identical to always
running it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any, Literal

from rdkit import Chem, RDLogger, rdBase
from rdkit.Chem.MolStandardize import rdMolStandardize

# Reject reasons, as written in rejects.csv (a detail may follow after ": ").
EMPTY = "empty"
UNPARSEABLE = "unparseable"
SANITIZATION_FAILED = "sanitization failed"
OVER_LIMITS = "over limits"
DISALLOWED_ELEMENT = "disallowed element"
NO_INCHIKEY = "InChIKey failed"
DUPLICATE = "duplicate"

_ELEMENTS = frozenset(Chem.GetPeriodicTable().GetElementSymbol(z) for z in range(1, 119))
# Atoms that need no metal disconnection and no charge handling when neutral.
_ORGANIC = frozenset({1, 5, 6, 7, 8, 9, 15, 16, 17, 35, 53})

# Neutral motifs that MolStandardize's normalization rewrites (nitro and N-oxide written with
# double bonds, azide and diazo, sulfoxide); every other default transform needs a charged
# atom, a metal or an explicit hydrogen, which the atom loop below catches.
_NORMALIZABLE = tuple(Chem.MolFromSmarts(s) for s in (
    "[N,P,As,Sb;X3](=[O,S,Se,Te])=[O,S,Se,Te]",
    "[n;+0]=[O;+0]",
    "[N;X2](=*)#*",
    "*=[N;X2]#*",
    "[S;X3;+0]=[O,S,Se,Te]",
))


class MoleculeError(ValueError):
    """A record that cannot become a molecule; ``reason`` is what rejects.csv records."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class StandardizeSettings:
    """Standardization choices, recorded in the dataset manifest."""

    tautomer: bool = False
    max_heavy_atoms: int | None = None
    allowed_elements: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.max_heavy_atoms is not None and self.max_heavy_atoms < 1:
            raise ValueError(f"max_heavy_atoms must be >= 1, got {self.max_heavy_atoms}")
        if self.allowed_elements is not None:
            unknown = [s for s in self.allowed_elements if s not in _ELEMENTS]
            if unknown:
                raise ValueError(f"unknown element(s) {unknown} in allowed_elements")
            object.__setattr__(self, "allowed_elements", tuple(sorted(set(self.allowed_elements))))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StandardMolecule:
    mol: Chem.Mol
    smiles: str
    inchikey: str


class _Messages(logging.Handler):
    """Collects RDKit's log lines so a reject can quote RDKit's own explanation."""

    _stamp = re.compile(r"^\[\d\d:\d\d:\d\d\] ")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self._stamp.sub("", record.getMessage()).strip())

    def take(self) -> str:
        text = "; ".join(line for line in self.lines if line)
        self.lines.clear()
        return text


@cache
def _messages() -> _Messages:
    # Route RDKit's C++ logging into Python once per process, silenced from stderr:
    # millions of warnings would otherwise flood the terminal of an ingest.
    rdBase.LogToPythonLogger()
    # Info lines ("Running Normalizer", ...) cost time on every molecule and explain nothing.
    RDLogger.DisableLog("rdApp.info")
    logger = logging.getLogger("rdkit")
    handler = _Messages()
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return handler


@cache
def _tools() -> tuple[Any, Any, Any]:
    return (rdMolStandardize.LargestFragmentChooser(preferOrganic=True), rdMolStandardize.Uncharger(),
            rdMolStandardize.TautomerEnumerator())


def parse(text: str, kind: Literal["smiles", "molblock"] = "smiles") -> Chem.Mol:
    """Parse and sanitize one record, raising :class:`MoleculeError` with RDKit's reason."""
    if text is None or not text.strip():
        raise MoleculeError(EMPTY)
    if kind == "smiles":
        text = text.strip()
        # SMILES is ASCII by specification; RDKit would quote such text in a truncated log
        # line that can split a multi-byte character and break its Python logging bridge.
        bad = next((i for i, ch in enumerate(text) if not ch.isascii() or not ch.isprintable()), None)
        if bad is not None:
            raise MoleculeError(UNPARSEABLE, f"character {text[bad]!r} at position {bad + 1} is not SMILES")
    messages = _messages()
    messages.take()
    try:
        if kind == "smiles":
            mol = Chem.MolFromSmiles(text, sanitize=False)
        else:
            mol = Chem.MolFromMolBlock(text, sanitize=False, removeHs=False)
    except Exception as error:  # RDKit's C++ layer: never let one record stop an ingest
        messages.take()
        raise MoleculeError(UNPARSEABLE, f"RDKit failed: {type(error).__name__}") from None
    if mol is None:
        raise MoleculeError(UNPARSEABLE, _parse_detail(messages.take()))
    if mol.GetNumAtoms() == 0:
        raise MoleculeError(EMPTY, "no atoms")
    try:
        Chem.SanitizeMol(mol)
    except Exception as error:  # RDKit raises several exception types for sanitization
        messages.take()
        raise MoleculeError(SANITIZATION_FAILED, str(error).strip()) from None
    return mol


def _parse_detail(log: str) -> str:
    # RDKit repeats the input and draws a caret; keep the explanation and the position.
    parts = [p for p in log.split("; ") if p.startswith("SMILES Parse Error:") and "Failed parsing" not in p]
    detail = "; ".join(p.removeprefix("SMILES Parse Error: ") for p in parts)
    return detail.rstrip(":") or log or "RDKit could not parse the record"


def needs_cleanup(mol: Chem.Mol) -> bool:
    """Whether MolStandardize's Cleanup could change ``mol`` (conservative: may say yes needlessly)."""
    for atom in mol.GetAtoms():
        if atom.GetFormalCharge() != 0 or atom.GetAtomicNum() not in _ORGANIC or atom.GetAtomicNum() == 1:
            return True
    return any(mol.HasSubstructMatch(pattern) for pattern in _NORMALIZABLE)


def standardize(text: str, kind: Literal["smiles", "molblock"] = "smiles",
                settings: StandardizeSettings | None = None) -> StandardMolecule:
    """Parse, clean up, keep the largest fragment, neutralize; check limits; name it.

    Raises
    ------
    MoleculeError
        With one of the module's reject reasons and a detail naming what was wrong.
    """
    settings = settings or StandardizeSettings()
    parsed = mol = parse(text, kind)
    largest, uncharger, tautomers = _tools()
    try:
        if needs_cleanup(mol):
            mol = rdMolStandardize.Cleanup(mol)
        if len(Chem.GetMolFrags(mol)) > 1:
            mol = largest.choose(mol)
        if any(atom.GetFormalCharge() for atom in mol.GetAtoms()):
            mol = uncharger.uncharge(mol)
        if settings.tautomer:
            mol = tautomers.Canonicalize(mol)
        if mol is not parsed:
            # The steps can leave a valence RDKit rejects when the SMILES is read back (the
            # uncharger turns F[Si-](F)(Ph)3 into a six-valent [SiH]), so check the result.
            Chem.SanitizeMol(mol)
    except Exception as error:  # RDKit's C++ layer: never let one record stop an ingest
        _messages().take()
        raise MoleculeError(SANITIZATION_FAILED,
                            f"after standardization: {str(error).strip() or type(error).__name__}") from None
    _check_limits(mol, settings)
    smiles = Chem.MolToSmiles(mol)
    inchikey = Chem.MolToInchiKey(mol)
    _messages().take()  # InChI warnings are not errors
    if not inchikey:
        raise MoleculeError(NO_INCHIKEY, "InChI could not be generated")
    return StandardMolecule(mol, smiles, inchikey)


def _check_limits(mol: Chem.Mol, settings: StandardizeSettings) -> None:
    if settings.max_heavy_atoms is not None and mol.GetNumHeavyAtoms() > settings.max_heavy_atoms:
        raise MoleculeError(OVER_LIMITS,
                            f"{mol.GetNumHeavyAtoms()} heavy atoms > {settings.max_heavy_atoms}")
    if settings.allowed_elements is not None:
        allowed = set(settings.allowed_elements) | {"H"}
        found = sorted({atom.GetSymbol() for atom in mol.GetAtoms()} - allowed)
        if found:
            raise MoleculeError(DISALLOWED_ELEMENT, ", ".join(found))
