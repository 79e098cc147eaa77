import gzip
from pathlib import Path

import pytest
from typer.testing import CliRunner

import molvae.chem.moses as moses
from molvae.chem.readers import iter_records
from molvae.cli.data import app as data_app
from molvae.download import ChecksumError, RemoteFile, sha256_file

REPO = Path(__file__).resolve().parents[3]
SHARED_MOSES = REPO.parent / "shared" / "datasets" / "moses"

FAKE_SMILES = {
    "train.csv.gz": ["CCO", "c1ccccc1", "CC(=O)Nc1ccc(O)cc1"],
    "test.csv.gz": ["CCN", "O=C(O)c1ccccc1"],
}


def _csv_gz(smiles: list[str]) -> bytes:
    return gzip.compress(("SMILES\n" + "".join(f"{s}\n" for s in smiles)).encode())


@pytest.fixture
def fake_moses(server, monkeypatch):
    """Serve small MOSES-style files and pin their digests in place of the real ones."""
    remotes = []
    for name, smiles in FAKE_SMILES.items():
        path = server.root / name
        path.write_bytes(_csv_gz(smiles))
        digest = sha256_file(path, "gunzipped")
        remotes.append(RemoteFile(name, f"http://invalid.example/{name}", digest, "gunzipped"))
    monkeypatch.setattr(moses, "MOSES_FILES", tuple(remotes))


def _read_smiles(path: Path) -> list[str]:
    return [record.text for chunk in iter_records(path) for record in chunk]


def test_fetch_moses_downloads_verified_files(server, fake_moses, tmp_path):
    dest = tmp_path / "dest"

    paths = moses.fetch_moses(dest, base_url=server.url)

    assert paths == [dest / "train.csv.gz", dest / "test.csv.gz"]
    for path in paths:
        assert _read_smiles(path) == FAKE_SMILES[path.name]
    assert server.requests == ["/train.csv.gz", "/test.csv.gz"]


def test_fetch_moses_rejects_a_corrupted_file(server, fake_moses, tmp_path):
    dest = tmp_path / "dest"
    (server.root / "test.csv.gz").write_bytes(_csv_gz(["CCN", "tampered"]))

    with pytest.raises(ChecksumError, match=r"test\.csv\.gz"):
        moses.fetch_moses(dest, base_url=server.url)

    assert sorted(p.name for p in dest.iterdir()) == ["train.csv.gz"]


def test_cli_fetch_moses(server, fake_moses, tmp_path):
    dest = tmp_path / "dest"

    result = CliRunner().invoke(
        data_app, ["fetch", "moses", "--dest", str(dest), "--base-url", server.url]
    )

    assert result.exit_code == 0, result.output
    for name, smiles in FAKE_SMILES.items():
        assert str(dest / name) in result.output
        assert _read_smiles(dest / name) == smiles


def test_cli_fetch_moses_rejects_a_corrupted_file(server, fake_moses, tmp_path):
    dest = tmp_path / "dest"
    (server.root / "train.csv.gz").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")

    result = CliRunner().invoke(
        data_app, ["fetch", "moses", "--dest", str(dest), "--base-url", server.url]
    )

    assert result.exit_code == 1
    assert "checksum" in result.output
    assert "train.csv.gz" in result.output
    assert "Traceback" not in result.output
    assert not (dest / "train.csv.gz").exists()


def test_moses_files_pin_decompressed_content():
    assert [r.name for r in moses.MOSES_FILES] == ["train.csv.gz", "test.csv.gz"]
    for remote in moses.MOSES_FILES:
        assert remote.digest_of == "gunzipped"
        assert remote.url == moses.MOSES_BASE_URL + remote.name


@pytest.mark.skipif(not SHARED_MOSES.is_dir(), reason="no shared MOSES copies on this machine")
def test_pins_match_the_shared_copies():
    for remote in moses.MOSES_FILES:
        assert sha256_file(SHARED_MOSES / remote.name, "gunzipped") == remote.sha256


def test_bundled_defaults_are_disjoint_moses_samples():
    train = _read_smiles(REPO / "data" / "moses" / "train.csv.gz")
    library = _read_smiles(REPO / "data" / "moses" / "library.csv.gz")

    assert (len(train), len(library)) == (20_000, 100_000)
    assert len(set(train)) == len(train)
    assert not set(train) & set(library)
