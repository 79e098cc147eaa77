"""Parquet inputs: SMILES and id columns, nulls, and errors that name the file."""

import gzip

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from molvae.chem.readers import iter_records
from tests.unit.chem.reading import read_all


def test_parquet_columns_nulls_and_ids(tmp_path):
    path = tmp_path / "mols.parquet"
    table = pa.table({"Smiles": ["CCO", None, " ", "CCN"], "cid": [1, 2, None, 4]})
    pq.write_table(table, path, row_group_size=2)

    chunks = list(iter_records(path, id_col="cid", chunk_size=3))

    records = [r for chunk in chunks for r in chunk]
    assert [(r.row, r.text, r.record_id, r.error) for r in records] == [
        (1, "CCO", "1", None),
        (2, "", "2", "empty"),
        (3, " ", None, "empty"),
        (4, "CCN", "4", None),
    ]
    assert all(len(chunk) <= 3 for chunk in chunks)


def test_parquet_dictionary_and_binary_smiles(tmp_path):
    path = tmp_path / "mols.parquet"
    table = pa.table(
        {
            "smiles": pa.array(["CCO", "CCO"]).dictionary_encode(),
            "raw": pa.array([b"CCN", b"C\xffC"], type=pa.binary()),
        }
    )
    pq.write_table(table, path)

    assert [r.text for r in read_all(path)] == ["CCO", "CCO"]
    assert [(r.text, r.error) for r in read_all(path, smiles_col="raw")] == [
        ("CCN", None),
        ("C\\xffC", "not valid UTF-8"),
    ]


def test_parquet_errors_name_the_file(tmp_path):
    numbers = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"smiles": [1, 2]}), numbers)
    with pytest.raises(ValueError, match=r"numbers\.parquet: column 'smiles' holds int64"):
        iter_records(numbers)
    with pytest.raises(ValueError, match=r"numbers\.parquet: no column 'x'.*'smiles'"):
        iter_records(numbers, smiles_col="x")

    junk = tmp_path / "junk.parquet"
    junk.write_text("SMILES\nCCO\n")
    with pytest.raises(ValueError, match=r"junk\.parquet: cannot read as Parquet"):
        iter_records(junk)

    zipped = tmp_path / "mols.parquet.gz"
    zipped.write_bytes(gzip.compress(numbers.read_bytes()))
    with pytest.raises(ValueError, match=r"mols\.parquet\.gz: gzip-compressed Parquet"):
        iter_records(zipped)


