"""Stream raw molecule records from CSV, TSV, SMILES (.smi), SDF and Parquet files.

Reading is kept apart from chemistry: a record carries the original text (a SMILES string,
or an SDF record's mol block) and a read-level reject reason, and RDKit parses it later.
Every data row of a file comes out as exactly one record, readable or not, so that an
ingest can account for each row as accepted, duplicate or rejected.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from molvae.chem.parquet_input import _parquet_records
from molvae.chem.records import (
    SMILES_COLUMN_NAMES,
    RawRecord,
    RecordKind,
    _check_compression,
    _chunks,
    _column_index,
    _decompression_errors,
    _open_text,
    _record,
)
from molvae.chem.sdf import _sdf_records

if TYPE_CHECKING:
    import _csv

__all__ = ["SMILES_COLUMN_NAMES", "RawRecord", "detect_format", "iter_records"]

_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".smi": "smi",
    ".smiles": "smi",
    ".sdf": "sdf",
    ".sd": "sdf",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: str | os.PathLike[str]) -> str:
    """Return the format of ``path`` from its name: csv, tsv, smi, sdf or parquet.

    A trailing ``.gz`` is ignored, so ``mols.smi.gz`` is ``"smi"``. The suffix is matched
    case-insensitively; ``.tab`` counts as TSV, ``.smiles`` as SMI, ``.sd`` as SDF and
    ``.pq`` as Parquet.

    Raises
    ------
    ValueError
        If the name has none of these suffixes.
    """
    name = Path(path).name.lower()
    name = name.removesuffix(".gz")
    try:
        return _SUFFIX_FORMATS[Path(name).suffix]
    except KeyError:
        known = ", ".join(_SUFFIX_FORMATS)
        raise ValueError(
            f"{os.fspath(path)}: cannot tell the file format from its name; expected a name "
            f"ending in one of {known} (optionally followed by .gz)"
        ) from None


def iter_records(
    path: str | os.PathLike[str],
    *,
    smiles_col: str | None = None,
    id_col: str | None = None,
    chunk_size: int = 10_000,
) -> Iterator[list[RawRecord]]:
    """Stream the records of one file in lists of at most ``chunk_size``.

    The file is read incrementally, never whole. Its format, its columns and whether it
    can be opened are checked when this function is called, so a bad argument fails
    before any record is read; damage further into the file fails while iterating.
    Gzip compression is recognised by its magic bytes (CSV, TSV, .smi, SDF).

    Bytes that are not UTF-8 never stop the reading: they appear as ``\\xNN`` escapes, and
    reject a record (``"not valid UTF-8"``) only where they are part of the molecule, in
    the SMILES or an SDF connection table. Ids, titles and data items often hold names in
    a legacy encoding, which is no reason to lose the molecule.

    Row numbers, so a chemist can find a record:

    - CSV/TSV: the data record number, 1 = the first record after the header line. Without
      quoted line breaks, row ``n`` is on line ``n + 1`` of the file. A blank line is a
      record (error ``"empty"``).
    - .smi: the line number. There is no header. A line starting with ``#`` is a comment
      and yields no record, so row numbers skip comment lines; a blank line is a record
      (error ``"empty"``). The first whitespace-separated field is the SMILES, the second
      (if any) the id, the rest is ignored.
    - SDF: the record number, 1 = the first record, counting records ended by ``$$$$``
      lines and a final record left without one.
    - Parquet: the table row number, 1 = the first row.

    Parameters
    ----------
    path
        The input file.
    smiles_col
        Column holding SMILES (CSV, TSV, Parquet; exact name). When ``None``, the first
        column whose name is in :data:`SMILES_COLUMN_NAMES`, ignoring case, is used.
        Ignored for .smi and SDF.
    id_col
        Column holding record ids (CSV, TSV, Parquet), or for SDF the data item (``> <name>``)
        to take the id from instead of the title line. Ignored for .smi.
    chunk_size
        Most records per yielded list.

    Yields
    ------
    list[RawRecord]
        The next records, in file order.

    Raises
    ------
    ValueError
        If the format is unknown, a named column is missing or no SMILES column is found,
        the file has no header, or the file cannot be parsed (corrupt gzip or Parquet data,
        a CSV field over the size limit); the message names the file.
    FileNotFoundError
        If the file does not exist.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    source = os.fspath(path)
    fmt = detect_format(source)
    if fmt == "parquet":
        records = _parquet_records(source, smiles_col, id_col, chunk_size)
    elif fmt == "smi":
        _check_compression(source)
        records = _smi_records(source)
    elif fmt == "sdf":
        _check_compression(source)
        records = _sdf_records(source, id_col)
    else:
        records = _csv_records(source, "," if fmt == "csv" else "\t", smiles_col, id_col)
    return _chunks(records, chunk_size)



# CSV and TSV


def _csv_records(
    source: str, delimiter: str, smiles_col: str | None, id_col: str | None
) -> Iterator[RawRecord]:
    """Check the header now; return a generator of the data records."""
    with _open_text(source, newline="") as stream, _decompression_errors(source):
        reader = csv.reader(stream, delimiter=delimiter)
        with _csv_errors(source, reader):
            header = next(reader, None)
    if header is None:
        raise ValueError(f"{source}: empty file; expected a header line naming the columns")
    smiles_index, id_index = _column_index(source, header, smiles_col, id_col)
    return _csv_rows(source, delimiter, len(header), smiles_index, id_index)


def _csv_rows(
    source: str, delimiter: str, n_fields: int, smiles_index: int, id_index: int | None
) -> Iterator[RawRecord]:
    # newline="" lets the csv module see line breaks inside quoted fields as data.
    with _open_text(source, newline="") as stream, _decompression_errors(source):
        reader = csv.reader(stream, delimiter=delimiter)
        with _csv_errors(source, reader):
            next(reader, None)  # the header, checked by _csv_records
            for row, fields in enumerate(reader, start=1):
                if not fields:
                    # A blank line: one record, rejected as empty, so that line counts add up.
                    yield _record(source, row, "smiles", "", None)
                elif len(fields) != n_fields:
                    # The fields no longer line up with the header, so no cell can be trusted.
                    reason = (
                        f"malformed line: expected {n_fields} fields, found {len(fields)} "
                        f"(line {reader.line_num})"
                    )
                    yield _record(source, row, "smiles", delimiter.join(fields), None, reason)
                else:
                    record_id = None if id_index is None else fields[id_index]
                    yield _record(source, row, "smiles", fields[smiles_index], record_id)


@contextmanager
def _csv_errors(source: str, reader: _csv.Reader) -> Iterator[None]:
    """Name the file and line of a CSV parse error.

    Parsing is not strict, so stray quotes are read as text; what still fails is a field
    over the csv module's size limit, typically a quote left open that swallowed the rest
    of the file.
    """
    try:
        yield
    except csv.Error as exc:
        raise ValueError(f"{source}: cannot parse line {reader.line_num} as CSV ({exc})") from exc


# .smi


def _smi_records(source: str) -> Iterator[RawRecord]:
    with _open_text(source, newline=None) as stream, _decompression_errors(source):
        for line_number, line in enumerate(stream, start=1):
            if line.startswith("#"):
                # '#' (a triple bond) cannot start a SMILES, so such lines are comments.
                continue
            fields = line.split(maxsplit=2)
            if not fields:
                yield _record(source, line_number, "smiles", line.rstrip("\n"), None)
                continue
            record_id = fields[1] if len(fields) > 1 else None
            yield _record(source, line_number, "smiles", fields[0], record_id)


@dataclass(frozen=True)
class FileTexts:
    """Every record of a file in order: its text and kind, and the reader's reject reasons by position."""

    texts: list[str]
    kinds: list[RecordKind]
    errors: dict[int, str]


def read_texts(path: str | os.PathLike[str], *, smiles_col: str | None = None) -> FileTexts:
    """Every record of a file, for commands that score a whole file of molecules (reconstruct,
    anomaly) and must report every row, including those the reader already rejected."""
    records = [record for chunk in iter_records(path, smiles_col=smiles_col) for record in chunk]
    return FileTexts([r.text for r in records], [r.kind for r in records],
                     {i: r.error for i, r in enumerate(records) if r.error is not None})
