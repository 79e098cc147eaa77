"""Read and write IDX files, the binary format of MNIST and Fashion-MNIST.

An IDX file is four magic bytes (two zeros, a dtype code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order, big-endian.
"""

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from molvae.io import atomic_path

_GZIP_MAGIC = b"\x1f\x8b"

# IDX dtype code -> big-endian numpy dtype.
_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_SIZE_TO_CODE = {(dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()}


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = Path(path)
        self.reason = reason


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed.

    Compression is detected from the content (the gzip magic bytes), not from the name,
    because downloaded copies are often renamed or already decompressed.

    Parameters
    ----------
    path
        The file to read.

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order, with the dtype and shape the header declares.

    Raises
    ------
    IDXFormatError
        If the file is not valid gzip, or its header or payload length is malformed.
    """
    data = Path(path).read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise IDXFormatError(path, f"corrupt gzip stream ({exc})") from exc

    if len(data) < 4:
        raise IDXFormatError(path, f"truncated header: {len(data)} bytes, need at least 4")
    zero1, zero2, code, ndim = data[:4]
    if zero1 != 0 or zero2 != 0:
        raise IDXFormatError(
            path, f"not an IDX file: bad magic {data[:4].hex()} (the first two bytes must be 0)"
        )
    if code not in _CODE_TO_DTYPE:
        known = ", ".join(f"0x{c:02X}" for c in _CODE_TO_DTYPE)
        raise IDXFormatError(path, f"unknown dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(path, "number of dimensions is 0")

    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXFormatError(
            path, f"truncated header: {ndim} dimensions need {header_len} bytes, got {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = _CODE_TO_DTYPE[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header_len
    if got < expected:
        raise IDXFormatError(path, f"truncated payload: expected {expected} bytes, got {got}")
    if got > expected:
        raise IDXFormatError(
            path, f"trailing data: expected {expected} payload bytes, got {got}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    # Native byte order: torch and most numpy consumers reject big-endian arrays.
    return values.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when the name ends in ``.gz``.

    The file is written to a temporary name in the same directory and then renamed,
    so readers never see a half-written file.

    Parameters
    ----------
    path
        Destination file; its directory must exist.
    array
        Array of dtype uint8, int8, int16, int32, float32 or float64, with 1 to 255
        dimensions, each smaller than 2**32.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _KIND_SIZE_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise ValueError(f"{path}: IDX cannot store dtype {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"{path}: IDX needs 1 to 255 dimensions, got {array.ndim}")
    if any(n >= 2**32 for n in array.shape):
        raise ValueError(f"{path}: IDX dimensions must be below 2**32, got {array.shape}")

    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()

    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        if path.name.endswith(".gz"):
            # mtime=0 keeps the output byte-identical across runs.
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            raw.write(header)
            raw.write(payload)
    return path
