"""The MOSES benchmark SMILES (Polykovskiy et al. 2020) and their verified download."""

from pathlib import Path

from molvae.download import RemoteFile, fetch_all

# The files are Git LFS objects in github.com/molecularsets/moses: raw.githubusercontent.com
# serves only the LFS pointer there, so the URLs use GitHub's LFS media host instead.
MOSES_BASE_URL = "https://media.githubusercontent.com/media/molecularsets/moses/master/moses/dataset/data/"

# Digests of the decompressed CSVs (column SMILES), not of the .gz files, so a mirror that
# recompressed them still verifies; the molsets package ships the same content.
MOSES_FILES: tuple[RemoteFile, ...] = tuple(
    RemoteFile(name, MOSES_BASE_URL + name, sha256, digest_of="gunzipped")
    for name, sha256 in (
        ("train.csv.gz", "cc9d6e8e9534e25a7a36361529ae739ddda8036e9072b2fc5cea6930a0592144"),
        ("test.csv.gz", "0248e682a9c29ca7649184dd88a4edc83f48f0e84af6b923990069c3da4501b6"),
    )
)


def fetch_moses(dest: Path, *, base_url: str | None = None) -> list[Path]:
    """Download the MOSES train and test SMILES into ``dest``, skipping those already verified.

    Parameters
    ----------
    dest
        Destination directory, created if needed.
    base_url
        Mirror serving ``train.csv.gz`` and ``test.csv.gz``, instead of GitHub.

    Returns
    -------
    list[pathlib.Path]
        ``train.csv.gz`` (1,584,663 SMILES) and ``test.csv.gz`` (176,074 SMILES).
    """
    # Reads the module-level tuple at call time, so tests can substitute small fixtures.
    return fetch_all(MOSES_FILES, dest, base_url=base_url)
