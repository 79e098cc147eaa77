import numpy as np
import pytest
import torch
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from molvae.chem.fingerprints import FingerprintSettings, morgan_bits, morgan_packed, to_bitvect, unpack_bits

SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "C[C@H](N)C(=O)O", "CCO", "c1ccccc1"]


@pytest.mark.parametrize("settings", [FingerprintSettings(), FingerprintSettings(3, 1024, True)])
def test_packed_bits_equal_rdkit_bit_vectors(settings):
    mols = [Chem.MolFromSmiles(s) for s in SMILES]
    packed = morgan_packed(mols, settings)
    assert packed.shape == (len(mols), settings.n_bits // 8) and packed.dtype == np.uint8
    generator = rdFingerprintGenerator.GetMorganGenerator(
        radius=settings.radius, fpSize=settings.n_bits, includeChirality=settings.chirality)
    for row, mol in zip(packed, mols, strict=True):
        expected = generator.GetFingerprint(mol)
        assert list(to_bitvect(row).GetOnBits()) == list(expected.GetOnBits())
        assert DataStructs.TanimotoSimilarity(to_bitvect(row), expected) == 1.0


def test_chirality_changes_the_fingerprint():
    mol = Chem.MolFromSmiles("C[C@H](N)C(=O)O")
    assert not np.array_equal(morgan_bits(mol), morgan_bits(mol, FingerprintSettings(chirality=True)))


def test_unpack_bits_matches_numpy_order():
    packed = np.random.default_rng(0).integers(0, 256, size=(4, 16), dtype=np.uint8)
    dense = unpack_bits(torch.from_numpy(packed))
    assert dense.dtype == torch.float32 and dense.shape == (4, 128)
    assert np.array_equal(dense.numpy(), np.unpackbits(packed, axis=1))
    assert np.array_equal(unpack_bits(torch.from_numpy(packed)[:, ::2]).numpy(),
                          np.unpackbits(packed[:, ::2], axis=1))  # a strided view
    assert unpack_bits(torch.zeros((0, 16), dtype=torch.uint8)).shape == (0, 128)
    with pytest.raises(ValueError, match=r"2-D uint8 tensor, got torch\.int64 of shape"):
        unpack_bits(torch.from_numpy(packed).long())
    with pytest.raises(ValueError, match=r"2-D uint8 tensor, got torch.uint8 of shape \(16,\)"):
        unpack_bits(torch.from_numpy(packed[0]))


def test_settings_validation():
    with pytest.raises(ValueError, match="multiple of 8"):
        FingerprintSettings(n_bits=100)
    with pytest.raises(ValueError, match="radius"):
        FingerprintSettings(radius=-1)
