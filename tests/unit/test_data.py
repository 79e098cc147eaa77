import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rdkit import Chem

from molvae.chem.ingest import IngestSettings, ingest
from molvae.chem.properties import compute_properties_frame
from molvae.data import MoleculeDataset, read_manifest
from molvae.download import sha256_file

SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "CCO", "O=C1NC(=S)SC1=Cc1ccccc1", "CCCCCC"]


@pytest.fixture
def dataset(tmp_path):
    source = tmp_path / "in.smi"
    source.write_text("\n".join(SMILES) + "\n")
    ingest([source], tmp_path / "ds", IngestSettings(properties="none"), workers=1)
    return MoleculeDataset(tmp_path / "ds")


def test_open_dataset(dataset):
    assert len(dataset) == 5
    assert dataset.fingerprints.shape == (5, 256)
    assert dataset.columns == ["id", "smiles", "inchikey", "source", "row", "record_id"]


@pytest.mark.parametrize("workers", [1, 2])
def test_missing_properties_are_computed_and_cached(dataset, workers):
    added = dataset.ensure_properties(["qed", "mw", "alerts"], workers=workers, chunk_size=2)
    assert added == ["qed", "mw", "alerts"]
    frame = dataset.molecules()
    mols = [Chem.MolFromSmiles(s) for s in frame["smiles"]]
    expected = compute_properties_frame(mols, ["qed", "mw", "alerts"])
    # Parquet gives pandas its default string dtype; the values are what must agree.
    pd.testing.assert_frame_equal(frame[["qed", "mw", "alerts"]], expected, check_dtype=False)
    # Cached: a reopened dataset has them and computes nothing more.
    reopened = MoleculeDataset(dataset.folder)
    assert reopened.columns[-3:] == ["qed", "mw", "alerts"]
    assert reopened.ensure_properties("mw") == []
    parquet = dataset.folder / "molecules.parquet"
    assert reopened.manifest["files"]["molecules.parquet"] == sha256_file(parquet)


def test_a_stored_smiles_that_does_not_parse_is_named(dataset):
    parquet = dataset.folder / "molecules.parquet"
    table = pq.read_table(parquet)
    smiles = table.column("smiles").to_pylist()
    smiles[3] = "C1CC("  # a damaged file: ingest never stores such a SMILES
    column = table.schema.get_field_index("smiles")
    pq.write_table(table.set_column(column, "smiles", pa.array(smiles)), parquet)
    with pytest.raises(ValueError, match=r"molecule id 3 has a stored SMILES that does not parse \('C1CC\("):
        MoleculeDataset(dataset.folder).ensure_properties(["mw"], workers=1, chunk_size=2)


def test_a_level_adds_only_what_is_missing(dataset):
    dataset.ensure_properties(["mw"])
    added = dataset.ensure_properties("basic")
    assert "mw" not in added and "clogp" in added and "veber_pass" in added
    assert dataset.molecules()["veber_pass"].dtype == bool
    with pytest.raises(ValueError, match="unknown"):
        dataset.ensure_properties(["colour"])


def test_errors_name_the_folder(tmp_path, dataset):
    with pytest.raises(FileNotFoundError, match=r"manifest\.json is missing"):
        read_manifest(tmp_path)
    manifest = json.loads((dataset.folder / "manifest.json").read_text())
    manifest["counts"]["accepted"] = 6
    (dataset.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="fingerprints have shape"):
        _ = MoleculeDataset(dataset.folder).fingerprints
    assert np.load(dataset.folder / "fingerprints.npy").shape == (5, 256)
