import pandas as pd
import pytest
from rdkit import Chem

from molvae.chem.export import export_candidates, write_csv
from molvae.io import neutralize_cell


@pytest.mark.parametrize("text", ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\r=x"])
def test_formula_starts_are_neutralized(text):
    assert neutralize_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["CCO", "[Na+]", "", -1.5, 3, None])
def test_other_cells_are_left_alone(value):
    assert neutralize_cell(value) == value


def candidates():
    return pd.DataFrame({"rank": [1, 2], "smiles": ["CCO", "c1ccccc1"],
                         "library_id": ['=HYPERLINK("x")', "B"],
                         "qed": [0.4, 0.5], "clogp": [-0.3, 1.7], "decode_similarity": [0.9, 0.8],
                         "alerts": ["", "@evil"]})


def test_csv_neutralizes_text_but_keeps_negative_numbers(tmp_path):
    write_csv(candidates(), tmp_path / "c.csv")
    table = pd.read_csv(tmp_path / "c.csv", keep_default_na=False)
    assert table["library_id"].tolist() == ["'=HYPERLINK(\"x\")", "B"]
    assert table["alerts"].tolist() == ["", "'@evil"]
    assert table["clogp"].tolist() == [-0.3, 1.7]


def test_export_writes_csv_sdf_png_and_rejects(tmp_path):
    rejects = pd.DataFrame({"smiles": ["CCN"], "inchikey": ["K"], "library_id": ["C"], "reason": ["-bad"]})
    paths = export_candidates(candidates(), rejects, tmp_path / "out" / "cands.csv")
    assert paths.sdf.name == "cands.sdf" and paths.png.name == "cands.png"
    records = [m for m in Chem.SDMolSupplier(str(paths.sdf))]
    assert [m.GetProp("_Name") for m in records] == ["rank 1", "rank 2"]
    assert records[1].GetProp("clogp") == "1.7" and Chem.MolToSmiles(records[1]) == "c1ccccc1"
    assert paths.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(paths.rejects)["reason"].tolist() == ["'-bad"]


def test_empty_export_leaves_no_stale_grid(tmp_path):
    paths = export_candidates(candidates(), candidates().iloc[:0], tmp_path / "c.csv")
    assert paths.png.exists()
    export_candidates(candidates().iloc[:0], candidates(), tmp_path / "c.csv")
    assert not paths.png.exists() and len(pd.read_csv(paths.rejects)) == 2
