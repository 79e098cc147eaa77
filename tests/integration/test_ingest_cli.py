import time

import pandas as pd
from typer.testing import CliRunner

from molvae.cli.main import app
from molvae.data import MoleculeDataset


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_ingest_from_the_command_line(tmp_path):
    source = tmp_path / "mols.tsv"
    source.write_text("id\tsmi\n"
                      "a\tCC(=O)[O-].[Na+]\n"
                      "b\tnot a smiles\n"
                      "c\tCC(=O)O\n"
                      "d\tc1ccccc1[Si](C)(C)C\n"
                      "e\tCCN\n")
    out = tmp_path / "ds"
    result = run("ingest", source, "-o", out, "--smiles-col", "smi", "--id-col", "id",
                 "--elements", "C,N,O", "--properties", "full", "--bits", "1024", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "rows read 5 = accepted 2 + duplicates 1 + rejected 2" in result.output
    assert "disallowed element: 1" in result.output and "unparseable: 1" in result.output
    dataset = MoleculeDataset(out)
    assert dataset.fingerprints.shape == (2, 128)
    assert dataset.molecules()["record_id"].tolist() == ["a", "e"]
    assert {"qed", "sa_score", "alerts", "scaffold"} <= set(dataset.columns)
    rejects = pd.read_csv(out / "rejects.csv")
    assert rejects["record_id"].tolist() == ["b", "c", "d"]

    again = run("ingest", source, "-o", out, "--smiles-col", "smi", "--id-col", "id",
                "--elements", "C,N,O", "--properties", "full", "--bits", "1024", "--workers", "1")
    assert again.exit_code == 0 and "up to date" in again.output


def test_bad_column_is_a_clear_error(tmp_path):
    source = tmp_path / "mols.csv"
    source.write_text("name,structure\nx,CCO\n")
    result = run("ingest", source, "-o", tmp_path / "ds", "--smiles-col", "smiles", "--workers", "1")
    assert result.exit_code == 1
    assert "mols.csv" in result.output and "'structure'" in result.output
    assert not (tmp_path / "ds").exists()


def test_sigterm_ends_an_ingest_and_its_workers_at_once(tmp_path):
    """As a scheduler or `docker stop` ends a run: the parent alone gets SIGTERM."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import psutil

    bundled = Path(__file__).resolve().parents[2] / "data" / "moses" / "train.csv.gz"
    out = tmp_path / "ds"
    command = [sys.executable, "-m", "molvae.cli.main", "ingest", str(bundled), "-o", str(out),
               "--workers", "2", "--properties", "full"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 120
    while len(parent.children()) < 2 and time.monotonic() < deadline:  # the two workers (and the tracker)
        time.sleep(0.1)
    workers = parent.children(recursive=True)
    assert len(workers) >= 2, "the workers never started"
    process.send_signal(signal.SIGTERM)
    # Each worker holds a 5,000-molecule chunk of full properties (tens of seconds): ended, not awaited.
    assert process.wait(timeout=20) == 128 + signal.SIGTERM
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    assert not out.exists() and not list(tmp_path.glob(".ds.ingest-*"))  # no half dataset left behind
