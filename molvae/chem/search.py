"""Exact batched Tanimoto top-k search over a fingerprint library.

Binary queries (packed bytes, 0/1 or bool) are scored by Tanimoto ``c / (a + b − c)``.
Probability queries (what a decoder emits, values in [0, 1]) are scored by a continuous
similarity against the library's binary rows b:

- ``"soft-tanimoto"`` (default): ``p·b / (Σp + |b| − p·b)``;
- ``"soft-tanimoto-sq"``: ``p·b / (|p|² + |b| − p·b)``.

Both equal Tanimoto when p is binary. Results are identical to brute force: the k best
rows per query, best first, ties broken by lower library index; a slot with no candidate
(k larger than the library, exclusions, a threshold) has index -1 and score NaN. Two
empty fingerprints score 0.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from molvae.chem.fingerprints import FingerprintSettings
from molvae.data import MoleculeDataset
from molvae.io import atomic_path, write_json

if TYPE_CHECKING:  # torch is imported where a search runs, so ingest workers never load it
    import torch

SIMILARITIES = ("soft-tanimoto", "soft-tanimoto-sq")
LIBRARY_FILE = "library.json"
NAMES_FILE = "molecules.arrow"
NAME_COLUMNS = ("id", "smiles", "source_id")
# 2 added the "source_id" name column; version-1 libraries still open, without source ids.
LIBRARY_FORMAT_VERSION = 2
_BUILD_ROWS = 100_000


def dataset_source_ids(rows: pd.DataFrame) -> list[str]:
    """Each row's id in its source file: the file's own id (``record_id``), else ``file:row``.

    ``file`` is the name without its folder: two inputs of the same name in different folders
    give the same ``file:row`` ids (the dataset's ``source`` column keeps the full path).
    """
    files = rows["source"].map({source: Path(source).name for source in rows["source"].unique()})
    located = files + ":" + rows["row"].astype(str)
    return rows["record_id"].where(rows["record_id"].notna() & (rows["record_id"] != ""), located).tolist()


class SearchResult(NamedTuple):
    """``indices`` (int64) and ``scores`` (float64), shape (n_queries, k), best first."""

    indices: np.ndarray
    scores: np.ndarray


def _onbit_lists(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """On-bit indices of every row, concatenated, and each row's start offset."""
    n_bits = packed.shape[1] * 8
    if n_bits > 1 << 16:
        raise ValueError(f"{n_bits} bits do not fit the uint16 on-bit lists")
    onbits, counts = [], []
    for start in range(0, len(packed), _BUILD_ROWS):
        dense = np.unpackbits(np.asarray(packed[start:start + _BUILD_ROWS]), axis=1)
        rows, bits = np.nonzero(dense)  # row-major: each row's bits ascending
        onbits.append(bits.astype(np.uint16))
        counts.append(np.bincount(rows, minlength=len(dense)))
    offsets = np.zeros(len(packed) + 1, dtype=np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=offsets[1:])
    return (np.concatenate(onbits) if onbits else np.zeros(0, np.uint16)), offsets


class FingerprintLibrary:
    """Library molecules as packed fingerprints and on-bit lists, with ids and SMILES.

    Each row has an ``id`` (the InChIKey, for libraries built from datasets: what novelty
    and self-recovery match on), its ``smiles`` and a ``source_id``: the molecule's id in
    the file it was ingested from (that file's id column, else ``file:row``), which is what
    a chemist orders or looks it up by.

    Build with :meth:`from_packed` or :meth:`from_dataset`; :meth:`save` writes a folder
    that :meth:`open` maps back into memory without reading it.
    """

    def __init__(self, packed: np.ndarray, onbits: np.ndarray, offsets: np.ndarray,
                 names: pa.Table | None = None, settings: FingerprintSettings | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        if packed.ndim != 2 or packed.dtype != np.uint8:
            raise ValueError(f"packed fingerprints must be uint8 (n, n_bytes), "
                             f"got {packed.dtype} {packed.shape}")
        if offsets.shape != (len(packed) + 1,):
            raise ValueError("offsets must have one entry per row plus one")
        if names is None:
            names = pa.table({column: pa.nulls(len(packed), pa.string()) for column in NAME_COLUMNS})
        if names.num_rows != len(packed):
            raise ValueError(f"{names.num_rows} ids/SMILES for {len(packed)} fingerprints")
        self.packed, self.onbits, self.offsets = packed, onbits, offsets
        # Arrow columns NAME_COLUMNS (a library saved before source ids lacks "source_id");
        # memory-mapped when opened, so 1.6M names cost no RAM.
        self.names = names
        self._on_device: dict[str, tuple[Any, Any]] = {}
        self.n_bits = packed.shape[1] * 8
        self.settings = settings or FingerprintSettings(n_bits=self.n_bits)
        self.metadata = metadata or {}

    def __len__(self) -> int:
        return len(self.packed)

    @cached_property
    def popcounts(self) -> np.ndarray:
        return np.diff(self.offsets).astype(np.int32)

    def device_arrays(self, device: Any) -> tuple[Any, Any]:
        """Packed bits and popcounts as torch tensors on ``device``, copied there once."""
        import torch

        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = (torch.from_numpy(np.ascontiguousarray(self.packed)).to(device),
                                    torch.from_numpy(self.popcounts).to(device))
        return self._on_device[key]

    def _column(self, name: str, indices: Sequence[int] | np.ndarray) -> list[str | None]:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"library rows must be in [0, {len(self)}), "
                             f"got {indices.min()}..{indices.max()}")
        if name not in self.names.column_names:
            return [None] * len(indices)
        return self.names.column(name).take(pa.array(indices)).to_pylist()

    def smiles_at(self, indices: Sequence[int] | np.ndarray) -> list[str | None]:
        """SMILES of library rows (for decoded candidates)."""
        return self._column("smiles", indices)

    def ids_at(self, indices: Sequence[int] | np.ndarray) -> list[str | None]:
        """Ids of library rows (InChIKeys for libraries built from datasets)."""
        return self._column("id", indices)

    def source_ids_at(self, indices: Sequence[int] | np.ndarray) -> list[str | None]:
        """Ids of library rows in their source files (None where the library does not know them)."""
        return self._column("source_id", indices)

    def rows_with_ids(self, ids: Sequence[str] | pa.Array) -> np.ndarray:
        """Mask of the rows whose id is one of ``ids`` (InChIKeys for libraries built from datasets)."""
        value_set = ids if isinstance(ids, pa.Array) else pa.array(list(ids), pa.string())
        found = pc.is_in(self.names.column("id"), value_set=value_set)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)

    # -- building and persistence -------------------------------------------------------
    @classmethod
    def from_packed(cls, packed: np.ndarray, ids: Sequence[str] | None = None,
                    smiles: Sequence[str] | None = None, settings: FingerprintSettings | None = None,
                    source_ids: Sequence[str] | None = None) -> FingerprintLibrary:
        packed = np.ascontiguousarray(packed, dtype=np.uint8)
        onbits, offsets = _onbit_lists(packed)
        given = {"id": ids, "smiles": smiles, "source_id": source_ids}
        names = pa.table({column: pa.nulls(len(packed), pa.string()) if given[column] is None
                          else pa.array(list(given[column]), pa.string()) for column in NAME_COLUMNS})
        return cls(packed, onbits, offsets, names, settings)

    @classmethod
    def from_dataset(cls, folder: str | Path) -> FingerprintLibrary:
        """A library of every molecule of an ingested dataset (ids are its InChIKeys)."""
        dataset = MoleculeDataset(folder)
        rows = dataset.molecules(["smiles", "inchikey", "source", "row", "record_id"])
        library = cls.from_packed(dataset.fingerprints, rows["inchikey"], rows["smiles"],
                                  dataset.fingerprint_settings, dataset_source_ids(rows))
        library.metadata = {"dataset": str(Path(folder).resolve()),
                            "dataset_content_hash": dataset.manifest["content_hash"]}
        return library

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in (("packed", self.packed), ("onbits", self.onbits), ("offsets", self.offsets)):
            with atomic_path(folder / f"{name}.npy") as tmp, tmp.open("wb") as handle:
                np.save(handle, array)
        with atomic_path(folder / NAMES_FILE) as tmp, pa.OSFile(str(tmp), "wb") as sink, \
                pa.ipc.new_file(sink, self.names.schema) as writer:
            writer.write_table(self.names)
        write_json(folder / LIBRARY_FILE, {"format": "molvae-library",
                                           "format_version": LIBRARY_FORMAT_VERSION, "rows": len(self),
                                           "fingerprints": self.settings.to_dict(), **self.metadata})
        return folder

    @classmethod
    def open(cls, folder: str | Path) -> FingerprintLibrary:
        """Open a saved library; fingerprint arrays are memory-mapped."""
        folder = Path(folder)
        if not (folder / LIBRARY_FILE).is_file():
            raise FileNotFoundError(f"{folder} is not a fingerprint library: {LIBRARY_FILE} is missing")
        info = json.loads((folder / LIBRARY_FILE).read_text())
        version = info.get("format_version")
        if info.get("format") != "molvae-library" or version not in (1, LIBRARY_FORMAT_VERSION):
            raise ValueError(f"{folder / LIBRARY_FILE}: not a molvae library of format 1 or "
                             f"{LIBRARY_FORMAT_VERSION}")
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r")
                  for name in ("packed", "onbits", "offsets")}
        names = pa.ipc.open_file(pa.memory_map(str(folder / NAMES_FILE))).read_all()
        if version == 1:
            warnings.warn(f"{folder} was built before libraries kept each molecule's id in its source "
                          f"file, so library_id will be empty; rebuild it with 'molvae library build'",
                          stacklevel=2)
        reserved = ("format", "format_version", "rows", "fingerprints")
        metadata = {key: value for key, value in info.items() if key not in reserved}
        return cls(arrays["packed"], arrays["onbits"], arrays["offsets"], names,
                   FingerprintSettings.from_dict(info["fingerprints"]), metadata)

    # -- searching ----------------------------------------------------------------------
    def search(self, queries: np.ndarray | torch.Tensor, k: int = 10, *, threshold: float | None = None,
               exclude: np.ndarray | Sequence[int] | None = None, similarity: str = "soft-tanimoto",
               device: str = "auto", block_size: int | None = None) -> SearchResult:
        """The ``k`` most similar library rows for each query.

        Parameters
        ----------
        queries
            (n, n_bits / 8) packed uint8, or (n, n_bits) 0/1 / bool (binary, Tanimoto), or
            (n, n_bits) probabilities in [0, 1] (scored by ``similarity``). A 1-D array is
            one query.
        threshold
            Only rows scoring at least this are returned.
        exclude
            Library rows never to return (indices or a boolean mask), e.g. the training set.
        device
            ``auto`` (CUDA when available), ``cpu`` (the numba kernel) or ``cuda``.
        """
        from molvae.chem.search_backends import run_search  # keeps numba and torch out of import time
        from molvae.device import resolve_device

        return run_search(self, queries, k, threshold=threshold, exclude=exclude, similarity=similarity,
                          device=resolve_device(device), block_size=block_size)


def search_shards(shards: Sequence[FingerprintLibrary], queries: np.ndarray | torch.Tensor, k: int = 10,
                  **options: Any) -> SearchResult:
    """Search several libraries as one: indices count rows across the shards in order.

    Each shard's exact top-k is merged by (score descending, global index ascending), so
    the result equals searching the concatenated library.
    """
    if not shards:
        raise ValueError("no shards to search")
    total = sum(len(shard) for shard in shards)
    exclude = options.pop("exclude", None)
    if exclude is not None:  # global rows → each shard's own mask
        from molvae.chem.search_backends import excluded_mask

        exclude = excluded_mask(exclude, total)
    parts, start = [], 0
    for shard in shards:
        shard_exclude = None if exclude is None else exclude[start:start + len(shard)]
        result = shard.search(queries, k, exclude=shard_exclude, **options)
        parts.append((np.where(result.indices >= 0, result.indices + start, -1), result.scores))
        start += len(shard)
    indices = np.concatenate([p[0] for p in parts], axis=1)
    scores = np.concatenate([p[1] for p in parts], axis=1)
    # Missing slots sort last: score -inf and an index past every real row.
    order_scores = np.where(indices >= 0, scores, -np.inf)
    order_index = np.where(indices >= 0, indices, np.iinfo(np.int64).max)
    order = np.lexsort((order_index, -order_scores), axis=1)[:, :k]
    return SearchResult(np.take_along_axis(indices, order, 1), np.take_along_axis(scores, order, 1))
