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
from collections.abc import Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rdkit import Chem

from molvae.chem.fingerprints import FingerprintSettings
from molvae.chem.properties import (
    PROPERTY_DTYPES,
    PROPERTY_LEVELS,
    compute_properties_frame,
    resolve_columns,
)
from molvae.download import sha256_file
from molvae.io import atomic_path, write_json
from molvae.parallel import ordered_map

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
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None


def files_intact(folder: str | Path, manifest: dict[str, Any]) -> bool:
    """Whether every file the manifest lists is in ``folder`` with the sha256 it records.

    A cached dataset is reused only when this holds: a deleted or damaged file must cause a
    rebuild, not a dataset that fails later (hashing MOSES train's files takes about a second).
    """
    files = manifest.get("files") or {}
    return bool(files) and all((Path(folder) / name).is_file() and sha256_file(Path(folder) / name) == digest
                               for name, digest in files.items())


class MoleculeDataset:
    """A dataset folder written by ``molvae ingest``, opened lazily.

    Fingerprints are memory-mapped, so opening MOSES costs no RAM until rows are read.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.fingerprint_settings = FingerprintSettings.from_dict(self.manifest["fingerprints"])

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

    def ensure_properties(self, wanted: str | Sequence[str], workers: int | None = None,
                          chunk_size: int = 5_000) -> list[str]:
        """Compute the property columns the dataset lacks and cache them in it.

        ``wanted`` is a level (``"basic"``, ``"full"``) or column names. The missing
        columns are computed from the stored canonical SMILES (in parallel, in order) and
        ``molecules.parquet`` and the manifest are rewritten atomically. Returns the
        columns that were added (empty when nothing was missing).
        """
        if isinstance(wanted, str) and wanted not in PROPERTY_LEVELS:
            wanted = [wanted]  # a single column name
        names = resolve_columns(wanted)
        missing = [c for c in names if c not in self.columns]
        if not missing:
            return []
        table = pq.read_table(self.folder / MOLECULES_FILE)
        smiles = table.column("smiles").to_pylist()
        chunks = ((i, smiles[i:i + chunk_size]) for i in range(0, len(smiles), chunk_size))
        work = partial(_properties_of_smiles, columns=tuple(missing), folder=str(self.folder))
        frames = [frame for _, frame in ordered_map(work, chunks, workers)]
        values = pd.concat(frames, ignore_index=True) if frames else compute_properties_frame([], missing)
        schema = molecule_schema(missing)
        for column in missing:
            field = schema.field(column)
            table = table.append_column(field, pa.array(values[column].tolist(), type=field.type))
        with atomic_path(self.folder / MOLECULES_FILE) as tmp:
            pq.write_table(table, tmp)
        self.manifest["columns"] = [*self.columns, *missing]
        self.manifest["files"][MOLECULES_FILE] = sha256_file(self.folder / MOLECULES_FILE)
        write_json(self.folder / MANIFEST_FILE, self.manifest)
        return missing


def _properties_of_smiles(chunk: tuple[int, list[str]], columns: tuple[str, ...],
                          folder: str) -> pd.DataFrame:
    start, smiles = chunk
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    for offset, mol in enumerate(mols):
        if mol is None:  # ingest stores only SMILES that parse: the file was changed or damaged
            raise ValueError(f"{folder}: molecule id {start + offset} has a stored SMILES that does not "
                             f"parse ({smiles[offset]!r}); re-ingest the dataset")
    return compute_properties_frame(mols, columns)
