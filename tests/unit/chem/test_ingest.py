import csv
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdkit import Chem

from molvae.chem.fingerprints import FingerprintSettings, morgan_packed
from molvae.chem.ingest import IngestSettings, ingest
from molvae.chem.molecules import StandardizeSettings
from molvae.data import MoleculeDataset

ROOT = Path(__file__).resolve().parents[3]
BUNDLED_TRAIN = ROOT / "data" / "moses" / "train.csv.gz"

DIRTY_ROWS = [
    "CCO",                        # 1 accepted
    "C1CC(",                      # 2 unparseable
    "CC(=O)[O-].[Na+]",           # 3 salt → acetic acid
    "",                           # 4 empty
    "c1cccc1",                    # 5 sanitization failed
    "OCC",                        # 6 duplicate of row 1 (same InChIKey)
    "C[NH3+].[Cl-]",              # 7 charged salt → methylamine
    "CCCCCCCCCCCCCCCCCCCCCCCCCC",  # 8 over limits (26 heavy atoms > 25)
    "C[Si](C)(C)C",               # 9 disallowed element
    "CC(=O)O",                    # 10 duplicate of row 3
    "c1ccccc1O",                  # 11 accepted
]
LIMITS = StandardizeSettings(max_heavy_atoms=25, allowed_elements=("C", "N", "O", "S", "F", "Cl", "Br"))


def write_csv(path: Path, smiles: list[str], extra_bytes: bytes = b"") -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "SMILES"])
        for i, s in enumerate(smiles):
            writer.writerow([f"m{i + 1}", s])
    if extra_bytes:
        with path.open("ab") as handle:
            handle.write(extra_bytes)
    return path


def rejects(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "rejects.csv", keep_default_na=False, dtype={"input": str})


def test_every_row_is_accounted_for_with_its_reason(tmp_path):
    source = write_csv(tmp_path / "dirty.csv", DIRTY_ROWS, extra_bytes=b"m12,C\xff\xfeC\n")
    manifest = ingest([source], tmp_path / "ds", IngestSettings(id_col="name", standardize=LIMITS),
                      workers=1)
    counts = manifest["counts"]
    assert counts["rows_read"] == 12
    assert (counts["accepted"], counts["duplicates"], counts["rejected"]) == (4, 2, 6)
    assert counts["rejected_by_reason"] == {
        "empty": 1, "unparseable": 1, "sanitization failed": 1, "over limits": 1,
        "disallowed element": 1, "not valid UTF-8": 1}
    table = rejects(tmp_path / "ds")
    assert table["row"].tolist() == [2, 4, 5, 6, 8, 9, 10, 12]
    reasons = dict(zip(table["row"], table["reason"], strict=True))
    assert reasons[6].startswith("duplicate of row 1 ")
    assert reasons[10].startswith("duplicate of row 3 ")
    assert reasons[2].startswith("unparseable: syntax error")
    assert table.loc[table["row"] == 2, "input"].item() == "C1CC("
    assert table.loc[table["row"] == 2, "record_id"].item() == "m2"
    assert set(table["source"]) == {str(source)}
    molecules = MoleculeDataset(tmp_path / "ds").molecules()
    assert molecules["smiles"].tolist() == ["CCO", "CC(=O)O", "CN", "Oc1ccccc1"]
    assert molecules["row"].tolist() == [1, 3, 7, 11]
    assert molecules["record_id"].tolist() == ["m1", "m3", "m7", "m11"]
    assert molecules["id"].tolist() == [0, 1, 2, 3]


def test_a_molecule_standardization_breaks_is_rejected_not_fatal(tmp_path):
    # Parses and sanitizes, but the uncharger leaves a six-valent silicon: with full
    # properties this once stopped the whole ingest, and with basic ones it was stored as a
    # SMILES that RDKit cannot read back.
    silicate = "F[Si-](F)(c1ccccc1)(c1ccccc1)c1ccccc1"
    source = write_csv(tmp_path / "in.csv", ["CCO", silicate, "CCN"])
    manifest = ingest([source], tmp_path / "ds", IngestSettings(properties="full"), workers=1)
    assert (manifest["counts"]["accepted"], manifest["counts"]["rejected"]) == (2, 1)
    table = rejects(tmp_path / "ds")
    assert table["row"].tolist() == [2]
    assert table["reason"].item().startswith("sanitization failed: after standardization: Explicit valence")
    stored = MoleculeDataset(tmp_path / "ds").molecules()["smiles"].tolist()
    assert stored == ["CCO", "CCN"] and all(Chem.MolFromSmiles(s) is not None for s in stored)


def test_rejected_text_a_spreadsheet_would_run_is_neutralized(tmp_path):
    source = tmp_path / "formulas.csv"
    source.write_text('name,SMILES\n@id,=1+2\nm2,CCO\n')
    ingest([source], tmp_path / "ds", IngestSettings(id_col="name"), workers=1)
    row = rejects(tmp_path / "ds").iloc[0]
    assert (row["input"], row["record_id"], row["row"]) == ("'=1+2", "'@id", 1)
    assert row["reason"].startswith("unparseable")


def test_duplicates_across_inputs_name_the_first_input(tmp_path):
    a = write_csv(tmp_path / "a.csv", ["CCO", "CCN"])
    b = write_csv(tmp_path / "b.csv", ["NCC", "CCCl"])
    manifest = ingest([a, b], tmp_path / "ds", workers=1)
    assert [i["accepted"] for i in manifest["inputs"]] == [2, 1]
    assert [i["duplicates"] for i in manifest["inputs"]] == [0, 1]
    assert rejects(tmp_path / "ds")["reason"].item().startswith("duplicate of row 2 of input 1")


def test_dataset_files_are_aligned_and_fingerprints_are_rdkit_s(tmp_path):
    source = write_csv(tmp_path / "in.csv", ["CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "CCO"])
    settings = IngestSettings(fingerprints=FingerprintSettings(radius=3, n_bits=1024))
    ingest([source], tmp_path / "ds", settings, workers=1)
    dataset = MoleculeDataset(tmp_path / "ds")
    assert isinstance(dataset.fingerprints, np.memmap)
    mols = [Chem.MolFromSmiles(s) for s in dataset.molecules()["smiles"]]
    assert np.array_equal(dataset.fingerprints, morgan_packed(mols, settings.fingerprints))
    assert dataset.fingerprint_settings == settings.fingerprints
    files = set(os.listdir(tmp_path / "ds"))
    assert files == {"molecules.parquet", "fingerprints.npy", "rejects.csv", "manifest.json"}


def test_manifest_records_settings_versions_and_checksums(tmp_path):
    source = write_csv(tmp_path / "in.csv", ["CCO"])
    manifest = ingest([source], tmp_path / "ds", IngestSettings(properties="none"), workers=1)
    saved = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert saved == manifest
    assert saved["identity"]["settings"]["properties"] == "none"
    assert saved["identity"]["rdkit_version"]
    assert len(saved["inputs"][0]["sha256"]) == 64
    assert set(saved["files"]) == {"molecules.parquet", "fingerprints.npy", "rejects.csv"}
    assert saved["columns"][:6] == ["id", "smiles", "inchikey", "source", "row", "record_id"]


def test_reingest_is_a_no_op_and_force_rebuilds(tmp_path):
    source = write_csv(tmp_path / "in.csv", ["CCO", "CCN"])
    first = ingest([source], tmp_path / "ds", workers=1)
    stamp = (tmp_path / "ds" / "molecules.parquet").stat().st_mtime_ns
    again = ingest([source], tmp_path / "ds", workers=1)
    assert again["up_to_date"] and (tmp_path / "ds" / "molecules.parquet").stat().st_mtime_ns == stamp
    rebuilt = ingest([source], tmp_path / "ds", workers=1, force=True)
    assert rebuilt["content_hash"] == first["content_hash"] and "up_to_date" not in rebuilt
    changed = ingest([source], tmp_path / "ds", IngestSettings(properties="none"), workers=1)
    assert "up_to_date" not in changed


def test_a_damaged_dataset_is_rebuilt_not_reused(tmp_path):
    source = write_csv(tmp_path / "in.csv", ["CCO", "CCN", "c1ccccc1"])
    ingest([source], tmp_path / "ds", workers=1)
    (tmp_path / "ds" / "fingerprints.npy").unlink()
    again = ingest([source], tmp_path / "ds", workers=1)
    assert not again.get("up_to_date") and len(MoleculeDataset(tmp_path / "ds").fingerprints) == 3
    with (tmp_path / "ds" / "molecules.parquet").open("r+b") as handle:  # same size, one byte changed
        handle.seek(10)
        byte = handle.read(1)
        handle.seek(10)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert not ingest([source], tmp_path / "ds", workers=1).get("up_to_date")
    assert ingest([source], tmp_path / "ds", workers=1)["up_to_date"]


def test_parallel_equals_serial(tmp_path):
    smiles = DIRTY_ROWS * 5 + [f"C{'C' * i}O" for i in range(40)]
    source = write_csv(tmp_path / "in.csv", smiles)
    serial = ingest([source], tmp_path / "serial", workers=1, chunk_size=7)
    parallel = ingest([source], tmp_path / "parallel", workers=2, chunk_size=7)
    assert parallel["content_hash"] == serial["content_hash"]
    assert parallel["counts"] == serial["counts"]
    for name in ("rejects.csv", "fingerprints.npy"):
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "parallel" / name).read_bytes()
    pd.testing.assert_frame_equal(MoleculeDataset(tmp_path / "serial").molecules(),
                                  MoleculeDataset(tmp_path / "parallel").molecules())


def test_missing_inputs_and_columns_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        ingest([tmp_path / "nope.csv"], tmp_path / "ds")
    source = write_csv(tmp_path / "in.csv", ["CCO"])
    with pytest.raises(ValueError, match="smi_typo"):
        ingest([source], tmp_path / "ds", IngestSettings(smiles_col="smi_typo"), workers=1)
    assert not (tmp_path / "ds").exists()
    assert not list(tmp_path.glob(".ds.*"))


junk = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(junk, st.sampled_from(DIRTY_ROWS)), max_size=30))
def test_counts_add_up_for_any_junk(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("junk")
    source = write_csv(folder / "junk.csv", rows)
    counts = ingest([source], folder / "ds", IngestSettings(properties="none"), workers=1)["counts"]
    assert counts["rows_read"] == len(rows)
    assert counts["rows_read"] == counts["accepted"] + counts["duplicates"] + counts["rejected"]
    assert len(rejects(folder / "ds")) == counts["duplicates"] + counts["rejected"]
    assert len(MoleculeDataset(folder / "ds").molecules()) == counts["accepted"]


@pytest.mark.skipif(not BUNDLED_TRAIN.exists(), reason="bundled MOSES sample not present")
def test_an_ingest_killed_mid_run_then_rerun_equals_an_uninterrupted_one(tmp_path):
    source = tmp_path / "sample.csv.gz"
    with gzip.open(BUNDLED_TRAIN, "rt") as src, gzip.open(source, "wt") as dst:
        dst.writelines(line for i, line in enumerate(src) if i <= 6000)
    script = textwrap.dedent(f"""
        from molvae.chem.ingest import ingest
        ingest([{str(source)!r}], {str(tmp_path / 'ds')!r}, workers=1, chunk_size=500)
    """)
    victim = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".ds.ingest-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let it write a few chunks
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert list(tmp_path.glob(".ds.ingest-*")), "the ingest finished before it could be killed"
    assert not (tmp_path / "ds").exists()  # no half dataset at the final name
    rerun = ingest([source], tmp_path / "ds", workers=1, chunk_size=500)
    assert not list(tmp_path.glob(".ds.ingest-*"))
    clean = ingest([source], tmp_path / "clean", workers=1, chunk_size=500)
    assert rerun["content_hash"] == clean["content_hash"] and rerun["counts"] == clean["counts"]
    assert rerun["counts"]["rows_read"] == 6000


def test_an_unrelated_folder_is_never_replaced(tmp_path):
    source = write_csv(tmp_path / "in.csv", ["CCO"])
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("precious")
    with pytest.raises(ValueError, match="is not a molvae dataset"):
        ingest([source], project, workers=1)
    assert (project / "notes.txt").read_text() == "precious"
    (tmp_path / "empty").mkdir()
    assert ingest([source], tmp_path / "empty", workers=1)["counts"]["accepted"] == 1


def test_only_temporaries_of_dead_processes_are_cleaned(tmp_path):
    source = write_csv(tmp_path / "in.csv", ["CCO"])
    live = tmp_path / ".ds.ingest-1"  # pid 1 always exists: another ingest may be writing there
    dead = tmp_path / ".ds.ingest-999999999"
    live.mkdir()
    dead.mkdir()
    ingest([source], tmp_path / "ds", workers=1)
    assert live.exists() and not dead.exists()
