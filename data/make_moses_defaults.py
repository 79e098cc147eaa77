"""Draw the bundled MOSES defaults, data/moses/train.csv.gz and data/moses/library.csv.gz.

Usage::

    python data/make_moses_defaults.py PATH/TO/moses/train.csv.gz [--out data/moses]

The input is the MOSES train split (``molvae data fetch moses`` downloads it); its content
is checked against the digest pinned in :mod:`molvae.chem.moses`, so the same draw comes out
everywhere. A permutation from ``numpy.random.default_rng(20261126)`` orders its rows: the
first 20,000 are the training set, the next 100,000 the library, disjoint by construction.
Both are written as one-column CSV (header ``SMILES``) in gzip with no timestamp or file
name in the header, so rerunning the script reproduces them byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from molvae.chem.moses import MOSES_FILES
from molvae.download import sha256_file

SEED = 20261126
N_TRAIN = 20_000
N_LIBRARY = 100_000
MAX_TOTAL_BYTES = 4_000_000


def draw(smiles: np.ndarray, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Return the training set and the library: consecutive slices of one permutation."""
    order = np.random.default_rng(seed).permutation(len(smiles))
    train = smiles[order[:N_TRAIN]]
    library = smiles[order[N_TRAIN : N_TRAIN + N_LIBRARY]]
    # Disjoint rows can still share a string if the source repeats one; MOSES does not.
    shared = set(train) & set(library)
    if shared:
        raise ValueError(f"{len(shared)} SMILES appear in both sets, e.g. {sorted(shared)[0]!r}")
    return train, library


def csv_gz_bytes(smiles: np.ndarray) -> bytes:
    """One-column CSV (header ``SMILES``), gzip-compressed reproducibly."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["SMILES"])
    writer.writerows([s] for s in smiles)
    buffer = io.BytesIO()
    # mtime=0 and no file name: the gzip header would otherwise differ on every run.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(text.getvalue().encode("utf-8"))
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("moses_train", type=Path, help="the MOSES train.csv.gz")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "moses", help="output folder"
    )
    args = parser.parse_args()

    expected = next(remote for remote in MOSES_FILES if remote.name == "train.csv.gz").sha256
    actual = sha256_file(args.moses_train, "gunzipped")
    if actual != expected:
        raise SystemExit(
            f"{args.moses_train}: not the MOSES train split (sha256 of its content is {actual}, "
            f"expected {expected})"
        )
    smiles = pd.read_csv(args.moses_train, dtype=str, keep_default_na=False)["SMILES"].to_numpy()

    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, subset in zip(("train.csv.gz", "library.csv.gz"), draw(smiles), strict=True):
        data = csv_gz_bytes(subset)
        (args.out / name).write_bytes(data)
        total += len(data)
        print(
            f"{name}: {len(subset)} SMILES, {len(data)} bytes\n"
            f"  sha256 {hashlib.sha256(data).hexdigest()}\n"
            f"  sha256 of content {hashlib.sha256(gzip.decompress(data)).hexdigest()}"
        )
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"the bundled files take {total} bytes, over the {MAX_TOTAL_BYTES} allowed")


if __name__ == "__main__":
    main()
