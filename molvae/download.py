"""Download files over HTTP(S) and verify them against pinned sha256 digests."""

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from molvae.io import atomic_path

DigestOf = Literal["file", "gunzipped"]

_CHUNK = 1 << 20
# wbits for zlib to expect a gzip header and trailer.
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ChecksumError(RuntimeError):
    """A file's content does not match its pinned digest (or is not the gzip it should be)."""


@dataclass(frozen=True)
class RemoteFile:
    """A file to download, pinned by the sha256 of its content.

    Attributes
    ----------
    name
        File name at the destination, and under a mirror's base URL.
    url
        Canonical download URL.
    sha256
        Lowercase hex digest.
    digest_of
        ``"file"``: the digest is of the bytes downloaded. ``"gunzipped"``: the digest is of
        the decompressed content of a gzip file, so that a mirror which recompressed the
        file (as Debian did for Fashion-MNIST) still verifies while its content is unchanged.
    """

    name: str
    url: str
    sha256: str
    digest_of: DigestOf = "file"

    def __post_init__(self) -> None:
        # The name becomes a path under the destination directory; refuse anything that
        # could point elsewhere.
        if not self.name or self.name in {".", ".."} or "/" in self.name or "\\" in self.name:
            raise ValueError(f"RemoteFile name must be a plain file name, got {self.name!r}")
        if not _SHA256_HEX.fullmatch(self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lowercase hex digits")
        if self.digest_of not in ("file", "gunzipped"):
            raise ValueError(
                f"{self.name}: digest_of must be 'file' or 'gunzipped', got {self.digest_of!r}"
            )


class _StreamDigest:
    """sha256 of a byte stream fed in chunks, or of its gzip-decompressed content."""

    def __init__(self, digest_of: DigestOf, source: str) -> None:
        self._source = source
        self._sha = hashlib.sha256()
        self._inflater = zlib.decompressobj(_GZIP_WBITS) if digest_of == "gunzipped" else None

    def update(self, chunk: bytes) -> None:
        if self._inflater is None:
            self._sha.update(chunk)
            return
        while chunk:
            if self._inflater.eof:
                # gzip allows several concatenated members; their contents concatenate too.
                self._inflater = zlib.decompressobj(_GZIP_WBITS)
            try:
                self._sha.update(self._inflater.decompress(chunk))
            except zlib.error as exc:
                raise ChecksumError(f"{self._source}: corrupt gzip stream ({exc})") from exc
            chunk = self._inflater.unused_data if self._inflater.eof else b""

    def hexdigest(self) -> str:
        if self._inflater is not None and not self._inflater.eof:
            raise ChecksumError(f"{self._source}: truncated gzip stream")
        return self._sha.hexdigest()


def sha256_file(path: str | os.PathLike, digest_of: DigestOf = "file") -> str:
    """Return the hex sha256 of ``path``, or of its decompressed content for ``"gunzipped"``.

    Raises
    ------
    ChecksumError
        If ``digest_of`` is ``"gunzipped"`` and the file is not a complete gzip stream.
    """
    digest = _StreamDigest(digest_of, os.fspath(path))
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_file(
    remote: RemoteFile,
    dest_dir: str | os.PathLike,
    *,
    base_url: str | None = None,
    timeout: float = 60,
) -> Path:
    """Download ``remote`` into ``dest_dir`` and verify it; skip if already there and valid.

    The download goes to a temporary file in ``dest_dir`` and is renamed into place only
    after it verifies, so the destination never holds a partial or unverified download.

    Parameters
    ----------
    remote
        What to fetch and its expected digest.
    dest_dir
        Destination directory, created if needed.
    base_url
        Mirror to fetch from instead of ``remote.url``: the file is fetched from
        ``base_url.rstrip('/') + '/' + remote.name``.
    timeout
        Socket timeout in seconds.

    Returns
    -------
    pathlib.Path
        ``dest_dir / remote.name``.

    Raises
    ------
    ChecksumError
        If the downloaded content does not match ``remote.sha256``.
    RuntimeError
        If the download fails (HTTP error, unreachable host, connection dropped).
    """
    dest_dir = Path(dest_dir)
    dest = dest_dir / remote.name
    url = remote.url if base_url is None else f"{base_url.rstrip('/')}/{remote.name}"
    if dest.is_file() and _verifies(dest, remote):
        return dest

    with atomic_path(dest, suffix=".part") as tmp:
        digest = _StreamDigest(remote.digest_of, f"{remote.name} from {url}")
        with open(tmp, "wb") as out:
            for chunk in _stream(url, timeout):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != remote.sha256:
            what = "decompressed content" if remote.digest_of == "gunzipped" else "file"
            raise ChecksumError(
                f"checksum mismatch for {remote.name} from {url}: sha256 of the {what} is "
                f"{actual}, expected {remote.sha256}"
            )
    return dest


def _verifies(path: Path, remote: RemoteFile) -> bool:
    try:
        return sha256_file(path, remote.digest_of) == remote.sha256
    except ChecksumError:
        return False


def _stream(url: str, timeout: float) -> Iterator[bytes]:
    """Yield the body of ``url`` in chunks, turning network failures into RuntimeError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                yield chunk
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise RuntimeError(f"download of {url} failed: {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise RuntimeError(f"download of {url} failed: {exc}") from exc


def fetch_all(remotes: Sequence[RemoteFile], dest_dir: Path, *, base_url: str | None = None) -> list[Path]:
    """:func:`fetch_file` for each of ``remotes``, in order."""
    return [fetch_file(remote, dest_dir, base_url=base_url) for remote in remotes]
