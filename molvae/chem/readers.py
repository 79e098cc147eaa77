"""Stream raw molecule records from CSV, TSV, SMILES (.smi), SDF and Parquet files.

Reading is kept apart from chemistry: a record carries the original text (a SMILES string,
or an SDF record's mol block) and a read-level reject reason, and RDKit parses it later.
Every data row of a file comes out as exactly one record, readable or not, so that an
ingest can account for each row as accepted, duplicate or rejected.
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import _csv

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
_GZIP_MAGIC = b"\x1f\x8b"
_SDF_END = "$$$$"


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


# SDF


def _sdf_records(source: str, id_col: str | None) -> Iterator[RawRecord]:
    with _open_text(source, newline=None) as stream, _decompression_errors(source):
        lines: list[str] = []
        first_line = 1
        row = 0
        for line_number, line in enumerate(stream, start=1):
            if line.rstrip() == _SDF_END:
                row += 1
                yield _sdf_record(source, row, first_line, lines, id_col)
                lines = []
                first_line = line_number + 1
            else:
                lines.append(line)
        # A last record may lack its $$$$; trailing blank lines are not a record.
        if any(line.strip() for line in lines):
            yield _sdf_record(source, row + 1, first_line, lines, id_col)


def _sdf_record(
    source: str, row: int, first_line: int, lines: list[str], id_col: str | None
) -> RawRecord:
    text = "".join(lines)
    # The only structure checked here: a mol block (V2000 or V3000) ends with "M  END",
    # whose absence means a truncated or mangled record. RDKit judges the rest later.
    end = next((i for i, line in enumerate(lines) if line.startswith("M  END")), None)
    if not text.strip():
        error = "empty"
    elif end is None:
        error = f"unreadable SDF record: no 'M  END' line (record starts at line {first_line})"
    elif not _decoded("".join(lines[3:end]))[1]:
        # Only the connection table (after the title, program and comment lines) defines the
        # molecule: a legacy encoding in a name or data item is escaped but not rejected.
        error = "not valid UTF-8"
    else:
        error = None
    # The title is the first line of the mol block; an id data item replaces it when asked.
    title = lines[0] if lines else None
    record_id = title if id_col is None else _sdf_data_item(lines, id_col)
    return _record(source, row, "molblock", text, record_id, error, checked=True)


def _sdf_data_item(lines: list[str], name: str) -> str | None:
    """The first value line of data item ``name`` (header ``>  <name>``), if present."""
    tag = f"<{name}>"
    for header, value in pairwise(lines):
        if header.startswith(">") and tag in header:
            return value
    return None


# Parquet


def _parquet_records(
    source: str, smiles_col: str | None, id_col: str | None, chunk_size: int
) -> Iterator[RawRecord]:
    """Check the schema now; return a generator of the rows."""
    if _is_gzip(source):
        raise ValueError(
            f"{source}: gzip-compressed Parquet is not supported; Parquet compresses its own "
            "data, so decompress the file first"
        )
    with _parquet_errors(source):
        schema = pq.read_schema(source)
    smiles_index, id_index = _column_index(source, schema.names, smiles_col, id_col)
    smiles_type = schema.field(smiles_index).type
    if not (_is_text_type(smiles_type) or pa.types.is_binary(smiles_type)
            or pa.types.is_large_binary(smiles_type)):
        raise ValueError(
            f"{source}: column {schema.names[smiles_index]!r} holds {smiles_type}, not SMILES strings"
        )
    id_name = None if id_index is None else schema.names[id_index]
    return _parquet_rows(source, schema.names[smiles_index], id_name, chunk_size)


def _parquet_rows(
    source: str, smiles_name: str, id_name: str | None, chunk_size: int
) -> Iterator[RawRecord]:
    columns = list(dict.fromkeys(name for name in (smiles_name, id_name) if name is not None))
    with _parquet_errors(source), pq.ParquetFile(source) as parquet:
        row = 0
        for batch in parquet.iter_batches(batch_size=chunk_size, columns=columns):
            smiles = batch.column(smiles_name).to_pylist()
            ids = [None] * len(smiles) if id_name is None else batch.column(id_name).to_pylist()
            for text, record_id in zip(smiles, ids, strict=True):
                row += 1
                if isinstance(text, bytes):
                    text = text.decode("utf-8", "surrogateescape")
                yield _record(
                    source,
                    row,
                    "smiles",
                    "" if text is None else text,
                    None if record_id is None else str(record_id),
                )


def _is_text_type(arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    )


@contextmanager
def _parquet_errors(source: str) -> Iterator[None]:
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        # pyarrow reports corrupt pages as plain OSError; the file was opened fine before.
        raise ValueError(f"{source}: cannot read as Parquet ({exc})") from exc
