"""Packed Morgan fingerprints.

A fingerprint of ``n_bits`` is stored as ``n_bits / 8`` uint8 bytes, bit ``i`` at byte
``i // 8`` under mask ``0x80 >> (i % 8)`` (numpy's ``packbits``/``unpackbits`` order), so
MOSES at 2048 bits takes 256 B a molecule instead of 8 KB as dense float32.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class FingerprintSettings:
    """Morgan fingerprint parameters; recorded in manifests and model configs."""

    radius: int = 2
    n_bits: int = 2048
    chirality: bool = False

    def __post_init__(self) -> None:
        if self.radius < 0:
            raise ValueError(f"radius must be >= 0, got {self.radius}")
        if self.n_bits < 8 or self.n_bits % 8:
            raise ValueError(f"n_bits must be a positive multiple of 8, got {self.n_bits}")

    @property
    def n_bytes(self) -> int:
        return self.n_bits // 8

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FingerprintSettings:
        """Read the settings back from a manifest or library record (extra keys ignored)."""
        return cls(radius=data["radius"], n_bits=data["n_bits"], chirality=data["chirality"])


@cache
def _generator(settings: FingerprintSettings) -> Any:
    # Generators are cheap to use but not to build: one per process and setting.
    return rdFingerprintGenerator.GetMorganGenerator(
        radius=settings.radius, fpSize=settings.n_bits, includeChirality=settings.chirality)


def morgan_bits(mol: Chem.Mol, settings: FingerprintSettings = FingerprintSettings()) -> np.ndarray:
    """Dense 0/1 uint8 fingerprint of one molecule, shape (n_bits,)."""
    return _generator(settings).GetFingerprintAsNumPy(mol).astype(np.uint8, copy=False)


def morgan_packed(mols: list[Chem.Mol], settings: FingerprintSettings = FingerprintSettings()) -> np.ndarray:
    """Packed fingerprints of ``mols``, shape (len(mols), n_bytes), uint8."""
    out = np.empty((len(mols), settings.n_bytes), dtype=np.uint8)
    for i, mol in enumerate(mols):
        out[i] = np.packbits(morgan_bits(mol, settings))
    return out


def to_bitvect(packed_row: np.ndarray) -> DataStructs.ExplicitBitVect:
    """An RDKit bit vector from one packed row (for RDKit's own similarity functions)."""
    bits = np.unpackbits(packed_row)
    vect = DataStructs.ExplicitBitVect(len(bits))
    vect.SetBitsFromList(np.flatnonzero(bits).tolist())
    return vect


@cache
def _byte_bits(device: str) -> torch.Tensor:
    """(256, 8) float32: row b holds byte b's bits, most significant first (np.packbits order)."""
    import torch  # here, not at module level: ingest workers never need torch's ~300 MB

    byte = torch.arange(256, dtype=torch.int32).unsqueeze(1)
    shifts = torch.arange(7, -1, -1, dtype=torch.int32)
    return ((byte >> shifts) & 1).float().to(device)


def unpack_bits(packed: torch.Tensor) -> torch.Tensor:
    """Unpack a (n, n_bytes) uint8 tensor to float32 0/1 of shape (n, n_bytes * 8), on its device.

    This is the per-batch transform of fingerprint training: the dataset stays packed. Each
    byte looks up its 8 bits in a 256-row table instead of masking every bit, which cut a
    training step's batch fetch from 0.77 to 0.28 ms on 2 CPU cores (BENCHMARKS.md,
    "Training speed against the seed's loop").
    """
    import torch
    import torch.nn.functional as F

    if packed.ndim != 2 or packed.dtype != torch.uint8:
        raise ValueError(f"packed fingerprints must be a 2-D uint8 tensor, got {packed.dtype} "
                         f"of shape {tuple(packed.shape)}")
    table = _byte_bits(str(packed.device))
    return F.embedding(packed.int(), table).reshape(packed.shape[0], packed.shape[1] * 8)
