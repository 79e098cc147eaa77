import gzip
import hashlib
import socket

import numpy as np
import pytest
from typer.testing import CliRunner

import molvae.images.fashion_mnist as fashion_mnist
from molvae.cli.data import app as data_app
from molvae.download import ChecksumError, RemoteFile, fetch_file, sha256_file
from molvae.images.idx import read_idx, write_idx


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "dest"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _remote(name, sha256, digest_of="file"):
    return RemoteFile(name, f"http://invalid.example/{name}", sha256, digest_of)


def test_download_verifies_and_writes(server, dest):
    content = b"hello, molvae\n" * 1000
    (server.root / "a.txt").write_bytes(content)

    path = fetch_file(_remote("a.txt", _sha256(content)), dest, base_url=server.url)

    assert path == dest / "a.txt"
    assert path.read_bytes() == content
    assert server.requests == ["/a.txt"]
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt"]


def test_url_is_used_without_base_url(server, dest):
    content = b"direct"
    (server.root / "b.bin").write_bytes(content)
    remote = RemoteFile("b.bin", f"{server.url}b.bin", _sha256(content))

    assert fetch_file(remote, dest).read_bytes() == content


def test_gunzipped_digest_accepts_any_compression(server, dest):
    content = bytes(range(256)) * 100
    # A different compression level stands in for a mirror that recompressed the file.
    (server.root / "c.gz").write_bytes(gzip.compress(content, compresslevel=1, mtime=123))
    remote = _remote("c.gz", _sha256(content), "gunzipped")

    path = fetch_file(remote, dest, base_url=server.url)

    assert gzip.decompress(path.read_bytes()) == content
    assert sha256_file(path, "gunzipped") == _sha256(content)
    assert sha256_file(path) == _sha256(path.read_bytes())


def test_gunzipped_digest_covers_concatenated_members(tmp_path):
    path = tmp_path / "multi.gz"
    path.write_bytes(gzip.compress(b"first,") + gzip.compress(b"second"))

    assert sha256_file(path, "gunzipped") == _sha256(b"first,second")


def test_second_fetch_makes_no_request(server, dest):
    content = b"cached"
    (server.root / "d.txt").write_bytes(content)
    remote = _remote("d.txt", _sha256(content))

    fetch_file(remote, dest, base_url=server.url)
    again = fetch_file(remote, dest, base_url=server.url)

    assert again.read_bytes() == content
    assert server.requests == ["/d.txt"]


def test_invalid_existing_file_is_replaced(server, dest):
    content = b"the real thing"
    (server.root / "e.txt").write_bytes(content)
    dest.mkdir()
    (dest / "e.txt").write_bytes(b"stale")

    path = fetch_file(_remote("e.txt", _sha256(content)), dest, base_url=server.url)

    assert path.read_bytes() == content
    assert server.requests == ["/e.txt"]


def test_corrupted_download_is_rejected_and_removed(server, dest):
    (server.root / "f.txt").write_bytes(b"tampered")
    expected = _sha256(b"original")

    with pytest.raises(ChecksumError) as info:
        fetch_file(_remote("f.txt", expected), dest, base_url=server.url)

    message = str(info.value)
    assert "f.txt" in message
    assert f"{server.url}f.txt" in message
    assert expected in message
    assert _sha256(b"tampered") in message
    assert list(dest.iterdir()) == []


def test_corrupt_gzip_is_a_checksum_error(server, dest):
    good = gzip.compress(b"x" * 10000)
    (server.root / "g.gz").write_bytes(good[:-20])  # truncated stream
    (server.root / "h.gz").write_bytes(b"not gzip at all")
    remote_g = _remote("g.gz", _sha256(b"x" * 10000), "gunzipped")
    remote_h = _remote("h.gz", _sha256(b"x" * 10000), "gunzipped")

    with pytest.raises(ChecksumError, match="truncated gzip stream"):
        fetch_file(remote_g, dest, base_url=server.url)
    with pytest.raises(ChecksumError, match="corrupt gzip stream"):
        fetch_file(remote_h, dest, base_url=server.url)
    assert list(dest.iterdir()) == []


def test_http_error_names_the_url(server, dest):
    with pytest.raises(RuntimeError, match=rf"{server.url}missing\.txt.*HTTP 404") as info:
        fetch_file(_remote("missing.txt", "0" * 64), dest, base_url=server.url)

    assert not isinstance(info.value, ChecksumError)
    assert list(dest.iterdir()) == []


def test_refused_connection_names_the_url(dest):
    # A port bound but not listening refuses connections, and stays ours during the test.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(RuntimeError, match=rf"download of {base_url}/z\.txt failed"):
            fetch_file(_remote("z.txt", "0" * 64), dest, base_url=base_url, timeout=5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "../evil", "sha256": "0" * 64}, "plain file name"),
        ({"name": "ok", "sha256": "ABC"}, "64 lowercase hex"),
        ({"name": "ok", "sha256": "0" * 64, "digest_of": "zipped"}, "digest_of"),
    ],
)
def test_remote_file_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RemoteFile(url="http://invalid.example/", **kwargs)


# CLI: molvae data fetch


@pytest.fixture
def fake_fashion(server, monkeypatch):
    """Serve small synthetic Fashion-MNIST files and pin their digests in place of the real."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 6, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 4, dtype=np.uint8),
    }
    remotes = []
    for name, array in arrays.items():
        path = write_idx(server.root / name, array)
        remotes.append(_remote(name, sha256_file(path, "gunzipped"), "gunzipped"))
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_FILES", tuple(remotes))
    return arrays


def test_cli_fetch_fashion_mnist(server, fake_fashion, dest):
    result = CliRunner().invoke(
        data_app, ["fetch", "fashion-mnist", "--dest", str(dest), "--base-url", server.url]
    )

    assert result.exit_code == 0, result.output
    for name, array in fake_fashion.items():
        assert str(dest / name) in result.output
        np.testing.assert_array_equal(read_idx(dest / name), array)
    assert len(server.requests) == 4


def test_cli_fetch_rejects_corrupted_file(server, fake_fashion, dest):
    write_idx(server.root / "t10k-labels-idx1-ubyte.gz", np.zeros(4, dtype=np.uint8))

    result = CliRunner().invoke(
        data_app, ["fetch", "fashion-mnist", "--dest", str(dest), "--base-url", server.url]
    )

    assert result.exit_code == 1
    assert "checksum" in result.output
    assert "t10k-labels-idx1-ubyte.gz" in result.output
    assert "Traceback" not in result.output
    assert not (dest / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]


def test_cli_rejects_unknown_dataset(dest):
    result = CliRunner().invoke(data_app, ["fetch", "mnist", "--dest", str(dest)])

    assert result.exit_code == 2


def test_fashion_mnist_pins_decompressed_content():
    assert [r.name for r in fashion_mnist.FASHION_MNIST_FILES] == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    for remote in fashion_mnist.FASHION_MNIST_FILES:
        assert remote.digest_of == "gunzipped"
        assert remote.url == fashion_mnist.FASHION_MNIST_BASE_URL + remote.name
