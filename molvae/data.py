"""The on-disk molecule dataset: Parquet rows, packed fingerprints, rejects, manifest.

A dataset folder holds

- ``molecules.parquet``: one row per accepted molecule (``id`` = row number, canonical
  ``smiles``, ``inchikey``, ``source`` file and ``row`` in it, ``record_id``, properties);
- ``fingerprints.npy``: packed fingerprints, uint8 (n, n_bits / 8), row-aligned with the
  Parquet rows and opened memory-mapped;
- ``rejects.csv``: every input row that was not accepted, with its reason;
- ``manifest.json``: counts, input checksums, settings, versions and a content hash.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from molvae.chem.fingerprints import FingerprintSettings
from molvae.chem.properties import PROPERTY_DTYPES

MOLECULES_FILE = "molecules.parquet"
FINGERPRINTS_FILE = "fingerprints.npy"
REJECTS_FILE = "rejects.csv"
MANIFEST_FILE = "manifest.json"

_ARROW_TYPES = {"float64": pa.float64(), "int32": pa.int32(), "int64": pa.int64(), "bool": pa.bool_(),
                "string": pa.string()}


def molecule_schema(property_columns: tuple[str, ...] | list[str]) -> pa.Schema:
    """Arrow schema of ``molecules.parquet`` with the given property columns."""
    fields = [pa.field("id", pa.int64(), nullable=False), pa.field("smiles", pa.string(), nullable=False),
              pa.field("inchikey", pa.string(), nullable=False), pa.field("source", pa.string()),
              pa.field("row", pa.int64()), pa.field("record_id", pa.string())]
    fields += [pa.field(c, _ARROW_TYPES[PROPERTY_DTYPES[c]]) for c in property_columns]
    return pa.schema(fields)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a molvae dataset: {MANIFEST_FILE} is missing")
    return json.loads(path.read_text())


class MoleculeDataset:
    """A dataset folder written by ``molvae ingest``, opened lazily.

    Fingerprints are memory-mapped, so opening MOSES costs no RAM until rows are read.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        fp = self.manifest["fingerprints"]
        self.fingerprint_settings = FingerprintSettings(fp["radius"], fp["n_bits"], fp["chirality"])

    def __len__(self) -> int:
        return int(self.manifest["counts"]["accepted"])

    @cached_property
    def fingerprints(self) -> np.ndarray:
        array = np.load(self.folder / FINGERPRINTS_FILE, mmap_mode="r")
        if array.shape != (len(self), self.fingerprint_settings.n_bytes):
            raise ValueError(f"{self.folder}: fingerprints have shape {array.shape}, "
                             f"expected ({len(self)}, {self.fingerprint_settings.n_bytes})")
        return array

    def molecules(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The Parquet rows (all columns, or the named ones)."""
        return pq.read_table(self.folder / MOLECULES_FILE, columns=columns).to_pandas()

    @property
    def columns(self) -> list[str]:
        return list(self.manifest["columns"])
