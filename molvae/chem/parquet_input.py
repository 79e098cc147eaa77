"""Read Parquet files: one record per table row, from the SMILES and id columns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq

from molvae.chem.records import RawRecord, _column_index, _is_gzip, _record


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
