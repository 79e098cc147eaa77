"""The CPU search kernel (numba): on-bit gather into a transposed query block, fused top-k.

For a block of Q queries, ``table[bit, q]`` holds query q's value at ``bit`` (0/1 counts
for binary queries, probabilities otherwise): a (n_bits × Q) table that stays in cache.
Each library row is its list of on-bits (≈41 at 2048 bits for MOSES), so its
intersections with all Q queries are the sum of ≈41 table rows, a vectorized add. The
similarity test and a per-query insertion into a sorted top-k follow immediately, so no
score matrix is ever materialized.

Library rows are split into chunks searched in parallel; each chunk keeps its own top-k
and the chunks are merged in index order, inserting only strictly better scores, so ties
always go to the lower library index, exactly as a brute-force stable sort would.
"""

from __future__ import annotations

import numba as nb
import numpy as np

CHUNKS_PER_THREAD = 8


@nb.njit(cache=True, nogil=True, inline="always")
def _insert(scores: np.ndarray, index: np.ndarray, score: float, row: int) -> None:
    # Caller guarantees score > scores[-1]; equal scores already present stay ahead.
    pos = scores.shape[0] - 1
    while pos > 0 and score > scores[pos - 1]:
        scores[pos] = scores[pos - 1]
        index[pos] = index[pos - 1]
        pos -= 1
    scores[pos] = score
    index[pos] = row


@nb.njit(parallel=True, cache=True)
def _search_chunks(onbits, offsets, table, query_sums, bounds, excluded, threshold, k):
    n_chunks = bounds.shape[0] - 1
    n_queries = table.shape[1]
    out_scores = np.full((n_chunks, n_queries, k), -1.0)
    out_index = np.full((n_chunks, n_queries, k), -1, dtype=np.int64)
    for c in nb.prange(n_chunks):
        acc = np.zeros(n_queries, dtype=table.dtype)
        scores = np.empty(n_queries)
        kth = np.full(n_queries, -1.0)
        chunk_scores = out_scores[c]
        chunk_index = out_index[c]
        for row in range(bounds[c], bounds[c + 1]):
            if excluded.shape[0] and excluded[row]:
                continue
            start, end = offsets[row], offsets[row + 1]
            acc[:] = 0
            for j in range(start, end):
                bit_row = table[onbits[j]]
                for q in range(n_queries):
                    acc[q] += bit_row[q]
            count = end - start
            for q in range(n_queries):
                inter = np.float64(acc[q])
                denominator = query_sums[q] + count - inter
                scores[q] = inter / denominator if denominator > 0 else 0.0
            for q in range(n_queries):
                s = scores[q]
                if s > kth[q] and s >= threshold:
                    _insert(chunk_scores[q], chunk_index[q], s, row)
                    kth[q] = chunk_scores[q, k - 1]
    return out_scores, out_index


@nb.njit(cache=True)
def _merge_chunks(chunk_scores, chunk_index, k):
    n_chunks, n_queries = chunk_scores.shape[0], chunk_scores.shape[1]
    scores = np.full((n_queries, k), -1.0)
    index = np.full((n_queries, k), -1, dtype=np.int64)
    for q in range(n_queries):
        for c in range(n_chunks):  # ascending library ranges: earlier chunks win ties
            for j in range(k):
                row = chunk_index[c, q, j]
                if row < 0:
                    break
                s = chunk_scores[c, q, j]
                if s > scores[q, k - 1]:
                    _insert(scores[q], index[q], s, row)
    return scores, index


def search_block(onbits: np.ndarray, offsets: np.ndarray, table: np.ndarray, query_sums: np.ndarray,
                 k: int, excluded: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of one query block over the whole library.

    Parameters
    ----------
    onbits, offsets
        Library rows as on-bit lists: row r's bits are ``onbits[offsets[r]:offsets[r + 1]]``.
    table
        (n_bits, Q) uint16 (binary queries) or float64 (probabilities), C-contiguous.
    query_sums
        Per query, the term that stands for its size in the denominator: popcount, Σp or Σp².
    excluded
        Boolean mask of library rows to skip, or an empty array.

    Returns
    -------
    (scores, index), shape (Q, k), best first; unfilled slots have index -1.
    """
    n_rows = offsets.shape[0] - 1
    n_chunks = max(1, min(n_rows, nb.get_num_threads() * CHUNKS_PER_THREAD))
    bounds = np.linspace(0, n_rows, n_chunks + 1).astype(np.int64)
    chunk_scores, chunk_index = _search_chunks(onbits, offsets, table, query_sums.astype(np.float64),
                                               bounds, excluded, float(threshold), k)
    return _merge_chunks(chunk_scores, chunk_index, k)
