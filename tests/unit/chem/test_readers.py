import csv
import gzip
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molvae.chem.readers import RawRecord, detect_format, iter_records
from tests.unit.chem.reading import mol_block, read_all


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.CSV.gz", "csv"),
        ("dir.v2/a.tsv", "tsv"),
        ("a.tab", "tsv"),
        ("a.smi", "smi"),
        ("a.smi.gz", "smi"),
        ("a.smiles", "smi"),
        ("a.sdf", "sdf"),
        ("a.sd.gz", "sdf"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
    ],
)
def test_detect_format(name, fmt):
    assert detect_format(name) == fmt


@pytest.mark.parametrize("name", ["mols.txt", "mols.gz", "mols", "mols.csv.zip"])
def test_detect_format_rejects_unknown_names(name):
    with pytest.raises(ValueError, match=rf"{name}: cannot tell the file format.*\.csv"):
        detect_format(name)


# CSV and TSV


def test_csv_reads_smiles_and_ids(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("name,SMILES,mw\naspirin,CC(=O)Oc1ccccc1C(=O)O,180.2\nethanol,CCO,46.1\n")

    records = read_all(path, id_col="name")

    assert records == [
        RawRecord(str(path), 1, "CC(=O)Oc1ccccc1C(=O)O", "smiles", "aspirin", None),
        RawRecord(str(path), 2, "CCO", "smiles", "ethanol", None),
    ]


def test_tsv_is_tab_separated(tmp_path):
    path = tmp_path / "mols.tsv"
    path.write_text("id\tsmiles\nm1\tc1ccccc1\nm2\tC,C\n")

    records = read_all(path, id_col="id")

    assert [(r.text, r.record_id, r.error) for r in records] == [
        ("c1ccccc1", "m1", None),
        ("C,C", "m2", None),
    ]


@pytest.mark.parametrize("header", ["SMILES", "smiles", "Canonical_Smiles", "IsomericSMILES", " smi "])
def test_smiles_column_is_found_ignoring_case(tmp_path, header):
    path = tmp_path / "mols.csv"
    path.write_text(f"id,{header}\nx,CCN\n")

    assert [r.text for r in read_all(path)] == ["CCN"]


def test_smiles_col_picks_a_column(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("smiles,parent\nCCO.Cl,CCO\n")

    assert [r.text for r in read_all(path, smiles_col="parent")] == ["CCO"]


def test_missing_smiles_col_names_file_and_columns(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("name,structure_smiles\nx,C\n")

    with pytest.raises(ValueError) as info:
        iter_records(path, smiles_col="SMILES")

    message = str(info.value)
    assert str(path) in message
    assert "'SMILES'" in message
    assert "'name', 'structure_smiles'" in message


def test_no_smiles_column_found_asks_for_smiles_col(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("name,mol\nx,C\n")

    with pytest.raises(ValueError, match=r"mols\.csv: no SMILES column.*'name', 'mol'.*--smiles-col"):
        iter_records(path)


def test_missing_id_col_names_file_and_columns(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("SMILES,name\nC,x\n")

    with pytest.raises(ValueError, match=r"mols\.csv: no column 'ID'.*'SMILES', 'name'"):
        iter_records(path, id_col="ID")


def test_blank_lines_and_cells_are_empty_records(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("SMILES,name\nCCO,a\n\n  ,b\n,c\nCCN,\n")

    records = read_all(path, id_col="name")

    assert [(r.row, r.error) for r in records] == [
        (1, None),
        (2, "empty"),
        (3, "empty"),
        (4, "empty"),
        (5, None),
    ]
    assert records[4].record_id is None


def test_na_like_cells_stay_text(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("SMILES\nNA\nNone\nnan\n")

    assert [(r.text, r.error) for r in read_all(path)] == [
        ("NA", None),
        ("None", None),
        ("nan", None),
    ]


def test_malformed_lines_are_counted(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("SMILES,name\nCCO,a\nCCN,b,extra\nCCC\nc1ccccc1,d\n")

    records = read_all(path, id_col="name")

    assert [r.row for r in records] == [1, 2, 3, 4]
    assert [r.error for r in records[::3]] == [None, None]
    assert records[1].error == "malformed line: expected 2 fields, found 3 (line 3)"
    assert records[1].text == "CCN,b,extra"
    assert records[2].error == "malformed line: expected 2 fields, found 1 (line 4)"
    assert records[3].record_id == "d"


def test_non_utf8_bytes_reject_the_row_only(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_bytes(b"SMILES,name\nCCO,caf\xe9\nC\xffC,b\nCCN,c\n")

    records = read_all(path, id_col="name")

    assert [(r.row, r.text, r.record_id, r.error) for r in records] == [
        (1, "CCO", "caf\\xe9", None),
        (2, "C\\xffC", "b", "not valid UTF-8"),
        (3, "CCN", "c", None),
    ]


def test_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_bytes("SMILES\nCCO\n".encode("utf-8-sig"))

    assert [r.text for r in read_all(path)] == ["CCO"]


def test_quoted_fields_keep_commas_and_line_breaks(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text('SMILES,note\nCCO,"a, b"\n"C\nC",x\nCCN,y\n')

    records = read_all(path)

    assert [(r.row, r.text) for r in records] == [(1, "CCO"), (2, "C\nC"), (3, "CCN")]


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("")

    with pytest.raises(ValueError, match=r"mols\.csv: empty file"):
        iter_records(path)


def test_header_only_gives_no_records(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("SMILES\n")

    assert list(iter_records(path)) == []


def test_unparsable_csv_names_file_and_line(tmp_path):
    # A quote left open swallows the rest of the file into one field, over the csv limit.
    path = tmp_path / "mols.csv"
    path.write_text('SMILES\nCCO\n"CCN\n' + "C\n" * 100_000)

    with pytest.raises(ValueError, match=r"mols\.csv: cannot parse line \d+ as CSV"):
        read_all(path)


def test_chunks_stream_rows_in_order(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("SMILES\n" + "".join(f"{'C' * i}\n" for i in range(1, 11)))

    chunks = list(iter_records(path, chunk_size=3))

    assert [len(chunk) for chunk in chunks] == [3, 3, 3, 1]
    assert [r.row for chunk in chunks for r in chunk] == list(range(1, 11))
    assert [r.text for chunk in chunks for r in chunk] == ["C" * i for i in range(1, 11)]


def test_chunk_size_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="chunk_size"):
        iter_records(tmp_path / "mols.csv", chunk_size=0)


def test_missing_file_fails_at_call(tmp_path):
    with pytest.raises(FileNotFoundError):
        iter_records(tmp_path / "absent.smi")


# .smi


def test_smi_fields_comments_and_blank_lines(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_text("# made by hand\nCCO ethanol\nc1ccccc1\tbenzene 78.1\n\n   \nCCN\n")

    records = read_all(path)

    assert [(r.row, r.text, r.record_id, r.error) for r in records] == [
        (2, "CCO", "ethanol", None),
        (3, "c1ccccc1", "benzene", None),
        (4, "", None, "empty"),
        (5, "   ", None, "empty"),
        (6, "CCN", None, None),
    ]
    assert {r.kind for r in records} == {"smiles"}


def test_smi_has_no_header(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_text("SMILES\nCCO\n")

    assert [r.text for r in read_all(path)] == ["SMILES", "CCO"]


def test_smi_non_utf8_line_is_counted(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_bytes(b"CCO\nC\x80C x\r\nCCN\r\n")

    records = read_all(path)

    assert [(r.row, r.text, r.error) for r in records] == [
        (1, "CCO", None),
        (2, "C\\x80C", "not valid UTF-8"),
        (3, "CCN", None),
    ]


# gzip


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("mols.csv.gz", "SMILES\nCCO\nCCN\n"),
        ("mols.smi.gz", "CCO a\nCCN b\n"),
        ("mols.sdf.gz", f"{mol_block('CCO', 'a')}$$$$\n{mol_block('CCN', 'b')}$$$$\n"),
    ],
)
def test_gzipped_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(gzip.compress(content.encode()))

    records = read_all(path)

    assert [r.row for r in records] == [1, 2]
    assert all(r.error is None for r in records)


def test_gzip_is_recognised_without_the_suffix(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_bytes(gzip.compress(b"SMILES\nCCO\n"))

    assert [r.text for r in read_all(path)] == ["CCO"]


def test_gz_name_without_gzip_content_is_an_error(tmp_path):
    path = tmp_path / "mols.csv.gz"
    path.write_text("version https://git-lfs.github.com/spec/v1\n")

    with pytest.raises(ValueError, match=r"mols\.csv\.gz: named \.gz but is not gzip-compressed"):
        iter_records(path)


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "mols.smi.gz"
    data = gzip.compress(b"".join(b"C" * (i % 40 + 1) + b"\n" for i in range(20_000)))
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ValueError, match=r"mols\.smi\.gz: corrupt or truncated gzip data"):
        read_all(path)


# Robustness


def test_records_pickle_for_worker_processes():
    record = RawRecord("a.smi", 3, "CCO", "smiles", "x", None)

    assert pickle.loads(pickle.dumps(record)) == record

junk_cells = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(["", " ", ",", '"', '""', 'a"b', "a,b", "\n", "\r\n", "\r", "\t", "é", "∂", "#"]),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(cells=junk_cells)
def test_every_written_row_is_one_record(tmp_path_factory, cells):
    path = tmp_path_factory.mktemp("junk") / "junk.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["SMILES"])
        writer.writerows([cell] for cell in cells)

    records = read_all(path, chunk_size=7)

    assert [r.row for r in records] == list(range(1, len(cells) + 1))
    assert [r.text for r in records] == cells
    assert [r.error for r in records] == [None if cell.strip() else "empty" for cell in cells]
