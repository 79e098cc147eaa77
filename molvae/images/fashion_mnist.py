"""The Fashion-MNIST files (Xiao, Rasul & Vollgraf 2017) and their verified download."""

from pathlib import Path

from molvae.download import RemoteFile, fetch_all

FASHION_MNIST_BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# Digests of the decompressed content, not of the .gz files: redistributions recompress the
# files (Debian's differ from upstream's) without changing the images.
FASHION_MNIST_FILES: tuple[RemoteFile, ...] = tuple(
    RemoteFile(name, FASHION_MNIST_BASE_URL + name, sha256, digest_of="gunzipped")
    for name, sha256 in (
        (
            "train-images-idx3-ubyte.gz",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        (
            "t10k-labels-idx1-ubyte.gz",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    )
)


def fetch_fashion_mnist(dest: Path, *, base_url: str | None = None) -> list[Path]:
    """Download the four Fashion-MNIST files into ``dest``, skipping those already verified.

    Parameters
    ----------
    dest
        Destination directory, created if needed.
    base_url
        Mirror serving the files under their usual names, instead of the official server.

    Returns
    -------
    list[pathlib.Path]
        The four files, train images and labels, then test images and labels.
    """
    # Reads the module-level tuple at call time, so tests can substitute small fixtures.
    return fetch_all(FASHION_MNIST_FILES, dest, base_url=base_url)
