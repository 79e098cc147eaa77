"""Shared by the MOSES benchmarks (``molecular.py``, ``search.py``): where results go, and the cached
MOSES sample, test set and libraries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from molvae.chem.ingest import IngestSettings, ingest
from molvae.chem.search import FingerprintLibrary
from molvae.data import MoleculeDataset

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "cache"
MODELS = RESULTS / "models" / "molecular-sweep"
MOSES_TRAIN_ROWS = 1_584_399  # accepted molecules of a full MOSES train ingest (BENCHMARKS.md)
K = 10


# -- data ------------------------------------------------------------------------------
def train_sample(moses_dir: Path, rows: int, seed: int = 0) -> Path:
    """Ingest a seeded random sample of ``rows`` MOSES train SMILES (kept in file order)."""
    source = CACHE / f"moses-train-sample-{rows}.csv"
    if not source.exists():
        smiles = pd.read_csv(moses_dir / "train.csv.gz")["SMILES"]
        chosen = np.sort(np.random.default_rng(seed).permutation(len(smiles))[:rows])
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = source.with_suffix(".tmp")
        smiles.iloc[chosen].to_frame().to_csv(tmp, index=False)
        tmp.rename(source)
    folder = CACHE / f"moses-train-sample-{rows}"
    ingest([source], folder, IngestSettings(properties="none"))
    return folder


def test_library(moses_dir: Path) -> tuple[MoleculeDataset, FingerprintLibrary]:
    """All of MOSES test, ingested, and its fingerprint library (built once)."""
    folder = CACHE / "moses-test"  # the same dataset benchmarks/search.py queries with
    ingest([moses_dir / "test.csv.gz"], folder, IngestSettings(properties="none"))
    library_dir = CACHE / "moses-test-library"
    if not (library_dir / "library.json").exists():
        FingerprintLibrary.from_dataset(folder).save(library_dir)
    return MoleculeDataset(folder), FingerprintLibrary.open(library_dir)



def train_library(moses_dir: Path) -> Path:
    """All of MOSES train, ingested, as a fingerprint library folder (built once)."""
    ingest([moses_dir / "train.csv.gz"], CACHE / "moses-train", IngestSettings(properties="none"))
    library_dir = CACHE / "moses-train-library"
    if not (library_dir / "library.json").exists():
        FingerprintLibrary.from_dataset(CACHE / "moses-train").save(library_dir)
    return library_dir
