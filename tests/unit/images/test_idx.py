import gzip
import struct

import numpy as np
import pytest

from molvae.images.datasets import BUNDLED_IMAGES_DIR
from molvae.images.idx import IDXFormatError, read_idx, write_idx


def _header(code, shape):
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


@pytest.mark.parametrize("name", ["data-idx", "data-idx.gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-(2**31), -1, 0, 7, 2**31 - 1], dtype=np.int32),
        np.array([[0.5, -1.25], [np.inf, 3e38]], dtype=np.float32),
        np.array([-3, 0, 3], dtype=np.int8),
        np.array([[1e-300, -2.5]], dtype=np.float64),
        np.array([-32768, 32767], dtype=np.int16),
    ],
    ids=["uint8-3d", "int32-1d", "float32-2d", "int8", "float64", "int16"],
)
def test_round_trip(tmp_path, array, name):
    path = write_idx(tmp_path / name, array)

    result = read_idx(path)

    assert result.dtype == array.dtype
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_gz_name_writes_gzip_and_plain_name_writes_raw(tmp_path):
    array = np.zeros((2, 2), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "a", array)

    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "a").read_bytes() == _header(0x08, (2, 2)) + bytes(4)


def test_gzip_is_detected_by_content_not_suffix(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    gz = write_idx(tmp_path / "x.gz", array)
    renamed = gz.rename(tmp_path / "x-idx2-ubyte")

    np.testing.assert_array_equal(read_idx(renamed), array)


def test_big_endian_on_disk(tmp_path):
    write_idx(tmp_path / "a", np.array([1], dtype=np.int32))

    assert (tmp_path / "a").read_bytes()[-4:] == b"\x00\x00\x00\x01"


def test_write_leaves_no_temporary_files(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros(3, dtype=np.uint8))

    assert [p.name for p in tmp_path.iterdir()] == ["a.gz"]


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.int64))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic"),
        (_header(0x0A, (1,)) + b"\x00", "unknown dtype code 0x0A"),
        (
            _header(0x08, (10000, 28, 28)) + bytes(12),
            "truncated payload: expected 7840000 bytes, got 12",
        ),
        (_header(0x08, (3,)) + bytes(4), "trailing data"),
        (bytes([0, 0, 0x08, 3]) + bytes(5), "truncated header"),
        (b"\x00\x00", "truncated header"),
        (bytes([0, 0, 0x08, 0]), "number of dimensions is 0"),
    ],
    ids=["magic", "dtype", "truncated", "trailing", "short-dims", "short-magic", "ndim0"],
)
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_malformed_file_names_file_and_reason(tmp_path, content, reason, compress):
    path = tmp_path / "broken-idx.bin"
    path.write_bytes(gzip.compress(content) if compress else content)

    with pytest.raises(IDXFormatError, match=reason) as info:
        read_idx(path)

    assert "broken-idx.bin" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_corrupt_gzip_is_a_format_error(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(_header(0x08, (4,)) + bytes(4))[:-6])

    with pytest.raises(IDXFormatError, match=r"bad\.gz: corrupt gzip stream"):
        read_idx(path)


def test_bundled_fashion_mnist_test_split():
    images = read_idx(BUNDLED_IMAGES_DIR / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(BUNDLED_IMAGES_DIR / "t10k-labels-idx1-ubyte.gz")

    assert images.shape == (10000, 28, 28)
    assert images.dtype == np.uint8
    assert images.max() == 255
    assert labels.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(labels), [1000] * 10)
