"""Query validation and the choice of search backend (numba on CPU, torch tiles on CUDA).

Kept apart from :mod:`molvae.chem.search` so importing the library format does not JIT or
import numba; the numba kernels compile once and are cached on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from molvae.chem.search_torch import search_tiles

if TYPE_CHECKING:
    from molvae.chem.search import FingerprintLibrary, SearchResult

try:
    from molvae.chem.search_cpu import search_block
except ImportError:  # numba missing: the torch path serves as the (slower) exact fallback
    search_block = None

# Query block sizes. Each block is one pass over the library's on-bit lists; the transposed
# table (n_bits × block) should stay near the core's L2 (1 MB here). Measured on MOSES:
# binary 1,024 (uint8, 2 MB) beat 512 and 334, as fewer passes outweigh L3 hits.
BINARY_BLOCK = 1024
PROBABILITY_BLOCK = 1024  # the filter table is one byte per query too
TORCH_QUERY_BLOCK = 1024


@dataclass
class Queries:
    """Validated queries, kept as given (packed rows stay packed) and made dense per block."""

    values: np.ndarray
    binary: bool
    packed: bool

    def __len__(self) -> int:
        return len(self.values)

    def dense(self, start: int, stop: int) -> np.ndarray:
        part = self.values[start:stop]
        return np.unpackbits(part, axis=1) if self.packed else part


def as_queries(queries: np.ndarray | torch.Tensor, n_bits: int) -> Queries:
    """Validate queries: packed uint8 rows of width n_bits / 8 and 0/1 or bool rows are
    binary; other float rows must be probabilities in [0, 1] (NaN and out-of-range values
    are named by row).
    """
    if isinstance(queries, torch.Tensor):
        queries = queries.detach().cpu()
        # numpy has no bfloat16: decoders under autocast emit it.
        queries = (queries.float() if queries.is_floating_point() else queries).numpy()
    queries = np.asarray(queries)
    if queries.ndim == 1:
        queries = queries.reshape(1, -1)
    if queries.ndim != 2:
        raise ValueError(f"queries must be 1-D or 2-D, got shape {queries.shape}")
    width = queries.shape[1]
    if queries.dtype == np.uint8 and width == n_bits // 8:
        return Queries(queries, binary=True, packed=True)
    if width != n_bits:
        raise ValueError(f"queries have width {width}, but this library has {n_bits} bits "
                         f"(give {n_bits} values per query, or {n_bits // 8} packed uint8 bytes)")
    if queries.dtype == bool:
        return Queries(queries.astype(np.uint8), binary=True, packed=False)
    if not np.issubdtype(queries.dtype, np.number):
        raise ValueError(f"queries must be numeric, got dtype {queries.dtype}")
    values = queries.astype(np.float64, copy=False)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise ValueError(f"query row {row} (counting from 0) contains NaN or infinite values")
    outside = (values < 0) | (values > 1)
    if outside.any():
        row, col = (int(v) for v in np.argwhere(outside)[0])
        raise ValueError(f"query row {row} (counting from 0) has value {values[row, col]} at bit {col}, "
                         "outside [0, 1]")
    if np.isin(values, (0.0, 1.0)).all():
        return Queries(values.astype(np.uint8), binary=True, packed=False)
    return Queries(values, binary=False, packed=False)


def excluded_mask(exclude: np.ndarray | Sequence[int] | None, n_rows: int) -> np.ndarray:
    if exclude is None:
        return np.zeros(0, dtype=bool)
    exclude = np.asarray(exclude)
    if exclude.dtype == bool:
        if exclude.shape != (n_rows,):
            raise ValueError(f"an exclusion mask needs {n_rows} entries, got {exclude.shape}")
        return exclude
    mask = np.zeros(n_rows, dtype=bool)
    if exclude.size:
        if exclude.min() < 0 or exclude.max() >= n_rows:
            raise ValueError(f"excluded rows must be in [0, {n_rows})")
        mask[exclude.astype(np.int64)] = True
    return mask


def _query_sums(dense: np.ndarray, binary: bool, similarity: str) -> np.ndarray:
    if binary or similarity == "soft-tanimoto":
        return dense.sum(axis=1, dtype=np.float64)
    return np.square(dense, dtype=np.float64).sum(axis=1)


def run_search(library: FingerprintLibrary, queries: np.ndarray | torch.Tensor, k: int, *,
               threshold: float | None, exclude: np.ndarray | Sequence[int] | None, similarity: str,
               device: torch.device, block_size: int | None) -> SearchResult:
    from molvae.chem.search import SIMILARITIES, SearchResult

    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    batch = as_queries(queries, library.n_bits)
    excluded = excluded_mask(exclude, len(library))
    limit = -1.0 if threshold is None else float(threshold)
    if device.type == "cuda" or search_block is None:
        scores, index = _torch_search(library, batch, similarity, k, excluded, limit, device, block_size)
    else:
        scores, index = _numba_search(library, batch, similarity, k, excluded, limit, block_size)
    return SearchResult(index, np.where(index >= 0, scores, np.nan))


def _numba_search(library, batch, similarity, k, excluded, limit, block_size):
    block = block_size or (BINARY_BLOCK if batch.binary else PROBABILITY_BLOCK)
    scores = np.empty((len(batch), k))
    index = np.empty((len(batch), k), dtype=np.int64)
    onbits, offsets = library.onbits, library.offsets
    widest = int(library.popcounts.max(initial=0))
    for start in range(0, len(batch), block):
        dense = batch.dense(start, start + block)
        sums = _query_sums(dense, batch.binary, similarity)
        s, i = search_block(onbits, offsets, dense, batch.binary, sums, k, excluded, limit, widest)
        scores[start:start + block], index[start:start + block] = s, i
    return scores, index


def _torch_search(library, batch, similarity, k, excluded, limit, device, block_size):
    binary = batch.binary
    packed, popcounts = library.device_arrays(device)
    mask = torch.from_numpy(excluded).to(device) if excluded.size else None
    # Binary products are 0/1 and their sums (≤ n_bits) are integers: float16 holds every
    # integer up to 2048 exactly, also in the matmul's output, where bfloat16 would round
    # counts above 256. Probabilities and wider fingerprints keep float32.
    dtype = torch.float16 if binary and device.type == "cuda" and library.n_bits <= 2048 else torch.float32
    block = block_size or TORCH_QUERY_BLOCK
    # Bound each tile's score matrix (queries × rows) to about 2^26 entries.
    tile_rows = max(1024, (1 << 26) // block)
    scores, index = [], []
    for start in range(0, len(batch), block):
        dense = batch.dense(start, start + block)
        q = torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32)).to(device)
        s = torch.from_numpy(_query_sums(dense, binary, similarity)).to(device)
        with torch.autocast(device.type, enabled=False):
            top_s, top_i = search_tiles(packed, popcounts, q, s, k, mask, limit, tile_rows=tile_rows,
                                        matmul_dtype=dtype)
        scores.append(top_s.cpu().numpy())
        index.append(top_i.cpu().numpy())
    if not scores:
        return np.empty((0, k)), np.empty((0, k), dtype=np.int64)
    return np.concatenate(scores), np.concatenate(index)
