import numpy as np
from typer.testing import CliRunner

from molvae.chem.search import FingerprintLibrary
from molvae.cli.main import app
from molvae.data import MoleculeDataset


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_ingest_then_build_a_library_and_search_it(tmp_path):
    source = tmp_path / "mols.smi"
    source.write_text("CCO ethanol\nc1ccccc1O phenol\nCC(=O)Oc1ccccc1C(=O)O aspirin\nCCN ethylamine\n")
    ingested = run("ingest", source, "-o", tmp_path / "ds", "--workers", "1", "--properties", "none")
    assert ingested.exit_code == 0
    result = run("library", "build", tmp_path / "ds", "-o", tmp_path / "lib")
    assert result.exit_code == 0, result.output
    assert "library of 4 molecules (2048 bits" in result.output
    library = FingerprintLibrary.open(tmp_path / "lib")
    dataset = MoleculeDataset(tmp_path / "ds")
    assert np.array_equal(library.packed, dataset.fingerprints)
    hits = library.search(dataset.fingerprints[2], 2, device="cpu")
    assert hits.indices[0, 0] == 2 and hits.scores[0, 0] == 1.0
    assert library.smiles_at([2]) == ["CC(=O)Oc1ccccc1C(=O)O"]
    assert library.ids_at([2]) == dataset.molecules(["inchikey"])["inchikey"].iloc[[2]].tolist()
    assert library.source_ids_at([0, 2]) == ["ethanol", "aspirin"]  # the file's own ids


def test_library_ids_without_an_id_column_name_the_file_and_row(tmp_path):
    source = tmp_path / "mols.csv"
    source.write_text("smiles\nCCO\nnot-a-smiles\nCCN\n")
    ingested = run("ingest", source, "-o", tmp_path / "ds", "--workers", "1", "--properties", "none")
    assert ingested.exit_code == 0
    assert run("library", "build", tmp_path / "ds", "-o", tmp_path / "lib").exit_code == 0
    assert FingerprintLibrary.open(tmp_path / "lib").source_ids_at([0, 1]) == ["mols.csv:1", "mols.csv:3"]


def test_building_from_a_missing_dataset_is_a_clear_error(tmp_path):
    result = run("library", "build", tmp_path / "nothing", "-o", tmp_path / "lib")
    assert result.exit_code == 1 and "manifest.json is missing" in result.output
