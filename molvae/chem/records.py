"""The record type and the helpers shared by the input formats.

A :class:`RawRecord` is one data row of an input file, before any chemistry. The helpers
here build records with printable text, open (possibly gzip-compressed) text files, turn
decompression failures into errors naming the file, choose the SMILES and id columns of a
tabular file, and cut a record stream into chunks.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Literal, TextIO

RecordKind = Literal["smiles", "molblock"]

# Header names tried, case-insensitively and in the file's column order, when no SMILES
# column is named. Covers MOSES/ZINC/ChEMBL exports (SMILES, canonical_smiles) and PubChem
# (CanonicalSMILES, IsomericSMILES).
SMILES_COLUMN_NAMES: tuple[str, ...] = (
    "smiles",
    "canonical_smiles",
    "isomeric_smiles",
    "canonicalsmiles",
    "isomericsmiles",
    "smi",
    "smiles_string",
    "mol_smiles",
    "molecule_smiles",
    "structure",
)

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One data row of an input file, before any chemistry.

    Attributes
    ----------
    source
        The input file path as given.
    row
        1-based position of the record in its file; see :func:`iter_records` per format.
    text
        The original text: a SMILES string, or for SDF the whole record (mol block and
        data items, without the ``$$$$`` line). Bytes that were not UTF-8 appear as
        ``\\xNN`` escapes, so the text is always printable.
    kind
        ``"smiles"`` or ``"molblock"``.
    record_id
        The identifier from the id column, the second field of a .smi line, or the SDF
        title line / id data item; ``None`` when absent or blank.
    error
        Why the record cannot be used, decided while reading (``"empty"``, ``"not valid
        UTF-8"``, ``"malformed line: ..."``, ``"unreadable SDF record: ..."``), else ``None``.
    """

    source: str
    row: int
    text: str
    kind: RecordKind
    record_id: str | None
    error: str | None


def _chunks(records: Iterable[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _record(
    source: str,
    row: int,
    kind: RecordKind,
    text: str,
    record_id: str | None,
    error: str | None = None,
    *,
    checked: bool = False,
) -> RawRecord:
    """Build a record with printable text and id, and its read-level reject reason.

    Unless the caller has ``checked`` the text itself, undecodable bytes and then emptiness
    are tested, after any structural ``error`` the caller found.
    """
    text, text_ok = _decoded(text)
    if record_id is not None:
        # An id with stray bytes is still an id; only the molecule's text decides rejection.
        record_id = _decoded(record_id)[0].strip() or None
    if not checked and error is None and not text_ok:
        error = "not valid UTF-8"
    if not checked and error is None and not text.strip():
        error = "empty"
    return RawRecord(source, row, text, kind, record_id, error)


def _decoded(text: str) -> tuple[str, bool]:
    """Return ``text`` made printable, and whether it was valid UTF-8.

    Files are decoded with ``surrogateescape``, which maps each undecodable byte to a lone
    surrogate instead of failing the whole file; those surrogates cannot be written out
    again as UTF-8, so they are turned into ``\\xNN`` escapes here.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"), False
    return text, True


# Opening, decompression and their errors


def _is_gzip(source: str) -> bool:
    with open(source, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _check_compression(source: str) -> bool:
    """Return whether ``source`` is gzip-compressed, refusing a ``.gz`` name that is not."""
    compressed = _is_gzip(source)
    if not compressed and source.lower().endswith(".gz"):
        # Reading it as plain text would turn e.g. a Git LFS pointer into one bogus record.
        raise ValueError(f"{source}: named .gz but is not gzip-compressed")
    return compressed


def _open_text(source: str, *, newline: str | None) -> TextIO:
    # utf-8-sig drops a byte-order mark, which Excel puts before the first header name.
    options = {"encoding": "utf-8-sig", "errors": "surrogateescape", "newline": newline}
    if _check_compression(source):
        return gzip.open(source, "rt", **options)
    return open(source, **options)


@contextmanager
def _decompression_errors(source: str) -> Iterator[None]:
    """Turn a corrupt or truncated gzip stream, found mid-file, into a ValueError naming it."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"{source}: corrupt or truncated gzip data ({exc})") from exc


# Column choice (CSV, TSV, Parquet)


def _column_index(
    source: str, names: list[str], smiles_col: str | None, id_col: str | None
) -> tuple[int, int | None]:
    """Return the positions of the SMILES column and the id column among ``names``."""
    shown = ", ".join(repr(_decoded(name)[0]) for name in names) or "(none)"
    if smiles_col is None:
        wanted = set(SMILES_COLUMN_NAMES)
        smiles_index = next(
            (i for i, name in enumerate(names) if name.strip().lower() in wanted), None
        )
        if smiles_index is None:
            raise ValueError(
                f"{source}: no SMILES column found among the columns {shown}; expected one of "
                f"{', '.join(SMILES_COLUMN_NAMES)} (any case), or pass --smiles-col"
            )
    else:
        smiles_index = _named_column(source, names, smiles_col, "SMILES", shown)
    id_index = None if id_col is None else _named_column(source, names, id_col, "id", shown)
    return smiles_index, id_index


def _named_column(source: str, names: list[str], name: str, role: str, shown: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        raise ValueError(
            f"{source}: no column {name!r} (given as the {role} column); the columns are {shown}"
        ) from None
