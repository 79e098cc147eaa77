"""``molvae data``: fetch public datasets with checksum verification."""

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from molvae.chem.moses import fetch_moses
from molvae.cli.errors import exit_on
from molvae.download import ChecksumError
from molvae.images.fashion_mnist import fetch_fashion_mnist

app = typer.Typer(help="Fetch public datasets with checksum verification.", no_args_is_help=True)

console = Console()


class Dataset(str, Enum):
    """Datasets that ``molvae data fetch`` knows."""

    FASHION_MNIST = "fashion-mnist"
    MOSES = "moses"


_FETCHERS: dict[Dataset, Callable[..., list[Path]]] = {
    Dataset.FASHION_MNIST: fetch_fashion_mnist,
    Dataset.MOSES: fetch_moses,
}


@app.callback()
def data() -> None:
    """Fetch public datasets with checksum verification."""
    # A callback keeps `fetch` a named subcommand: typer would otherwise collapse a
    # one-command app into that command, and `molvae data fetch ...` would stop parsing.


@app.command()
def fetch(
    dataset: Annotated[Dataset, typer.Argument(help="Dataset to download.")],
    dest: Annotated[Path, typer.Option("--dest", help="Directory to write the files to.")],
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Mirror serving the files under their usual names."),
    ] = None,
) -> None:
    """Download DATASET into DEST, verifying every file; files already there and valid are kept."""
    # ChecksumError is a RuntimeError: the inner handler names it first.
    with exit_on(RuntimeError), exit_on(ChecksumError, label="checksum error"), \
            console.status(f"Fetching {dataset.value} into {dest}"):
        paths = _FETCHERS[dataset](dest, base_url=base_url)
    for path in paths:
        console.print(escape(str(path)), soft_wrap=True, highlight=False)
