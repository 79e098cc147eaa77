"""Tiled matmul search in torch: the CUDA backend, and the fallback where numba is missing.

The library sits on the device packed (uint8, 256 B a molecule at 2048 bits) and is
unpacked one tile at a time into a 0/1 matrix; a tile's intersections with a query block
are one matmul, scored and reduced to a running top-k before the next tile, so the full
score matrix never exists.

Exact tie-breaking with ``torch.topk`` (whose order among equal values is unspecified)
uses one int64 key per candidate: the score quantized to 2⁻³⁸ in the high bits and the
inverted row index in the low 24 bits. Distinct binary Tanimoto values differ by at least
1/4096², and float32 scores carry 24 bits, so quantization never merges distinct scores;
equal scores order by lower index.
"""

from __future__ import annotations

import torch

from molvae.chem.fingerprints import unpack_bits

_INDEX_BITS = 24
MAX_ROWS = 1 << _INDEX_BITS  # per library shard
_SCALE = float(1 << 38)


def _keys(scores: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    quantized = torch.round(scores.double() * _SCALE).long()
    return (quantized << _INDEX_BITS) | (MAX_ROWS - 1 - rows)


def search_tiles(packed: torch.Tensor, popcounts: torch.Tensor, queries: torch.Tensor,
                 query_sums: torch.Tensor, k: int, excluded: torch.Tensor | None, threshold: float,
                 tile_rows: int = 1 << 16, matmul_dtype: torch.dtype = torch.float32
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of ``queries`` (Q × n_bits, float) over a packed library on the same device.

    ``matmul_dtype`` may be float16 for binary queries of at most 2048 bits on CUDA: every
    intersection count is an integer ≤ 2048, which float16 represents exactly, also in the
    matmul's output (bfloat16 would round counts above 256). Probabilities keep float32.

    Returns
    -------
    (scores float64, index int64), shape (Q, k); unfilled slots have index -1.
    """
    n_rows, device = packed.shape[0], packed.device
    if n_rows > MAX_ROWS:
        raise ValueError(f"a shard holds at most {MAX_ROWS:,} rows; split the library into shards")
    n_queries = queries.shape[0]
    best_keys = torch.full((n_queries, k), -1, dtype=torch.long, device=device)
    best_scores = torch.full((n_queries, k), -1.0, dtype=torch.float64, device=device)
    q = queries.to(matmul_dtype)
    sums = query_sums.double().unsqueeze(1)
    for start in range(0, n_rows, tile_rows):
        end = min(start + tile_rows, n_rows)
        tile = unpack_bits(packed[start:end]).to(matmul_dtype)
        inter = (q @ tile.T).double()
        denominator = sums + popcounts[start:end].double().unsqueeze(0) - inter
        scores = torch.where(denominator > 0, inter / denominator.clamp_min(1e-300), 0.0)
        rows = torch.arange(start, end, device=device)
        keep = scores >= threshold
        if excluded is not None:
            keep &= ~excluded[start:end].unsqueeze(0)
        keys = torch.where(keep, _keys(scores, rows.unsqueeze(0).expand_as(scores)), -1)
        top = min(k, end - start)
        tile_keys, where = torch.topk(keys, top, dim=1)
        merged_keys = torch.cat([best_keys, tile_keys], dim=1)
        merged_scores = torch.cat([best_scores, torch.gather(scores, 1, where)], dim=1)
        best_keys, pick = torch.topk(merged_keys, k, dim=1)
        best_scores = torch.gather(merged_scores, 1, pick)
    index = torch.where(best_keys >= 0, MAX_ROWS - 1 - (best_keys & (MAX_ROWS - 1)), -1)
    return torch.where(index >= 0, best_scores, -1.0), index
