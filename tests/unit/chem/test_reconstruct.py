import math

import numpy as np
import pandas as pd
import pytest

from molvae.chem.fingerprints import FingerprintSettings
from molvae.chem.reconstruct import RECONSTRUCTION_COLUMNS, check_compatible, reconstruct, recovery
from molvae.chem.search import FingerprintLibrary
from molvae.models import VAE
from molvae.models.molecular import molecular_config


def frame(rows):
    return pd.DataFrame([{**dict.fromkeys(RECONSTRUCTION_COLUMNS), "reason": "", **r} for r in rows],
                        columns=list(RECONSTRUCTION_COLUMNS))


def test_recovery_by_hand():
    rows = [  # input 1 found first; input 2 found at rank 2; input 3 not found; input 4 rejected
        {"input_row": 1, "rank": 1, "is_input": True, "decode_similarity": 0.9},
        {"input_row": 1, "rank": 2, "is_input": False, "decode_similarity": 0.5},
        {"input_row": 2, "rank": 1, "is_input": False, "decode_similarity": 0.7},
        {"input_row": 2, "rank": 2, "is_input": True, "decode_similarity": 0.6},
        {"input_row": 3, "rank": 1, "is_input": False, "decode_similarity": 0.2},
        {"input_row": 3, "rank": 2, "is_input": False, "decode_similarity": 0.1},
        {"input_row": 4, "reason": "unparseable: x"},
    ]
    result = recovery(frame(rows), k=2)
    assert result["inputs"] == 3 and result["rejected"] == 1
    assert result["top1"] == pytest.approx(1 / 3) and result["top2"] == pytest.approx(2 / 3)
    assert result["mean_decode_similarity"] == pytest.approx((0.9 + 0.7 + 0.2) / 3)
    assert math.isnan(recovery(frame(rows[-1:]), k=2)["top1"])


def test_model_and_library_must_share_fingerprint_settings():
    model = VAE(molecular_config("vae", FingerprintSettings(n_bits=512), latent_dim=2, hidden_dims=(8,)))
    library = FingerprintLibrary.from_packed(np.zeros((3, 128), np.uint8))  # 1024 bits
    with pytest.raises(ValueError, match="rebuild the library"):
        check_compatible(model, library)


def test_an_empty_library_is_an_error_not_missing_rows():
    settings = FingerprintSettings(n_bits=256)
    empty = FingerprintLibrary.from_packed(np.zeros((0, 32), np.uint8), settings=settings)
    model = VAE(molecular_config("vae", settings, latent_dim=2, hidden_dims=(8,)))
    with pytest.raises(ValueError, match="the library is empty"):
        reconstruct(model, empty, ["CCO", "CCN"], k=2, device="cpu")


def test_a_rejected_input_leaves_the_others_integer_ranks(tmp_path):
    settings = FingerprintSettings(n_bits=256)
    bits = (np.random.default_rng(0).random((6, 256)) < 0.1).astype(np.uint8)
    library = FingerprintLibrary.from_packed(np.packbits(bits, axis=1), ids=[f"id{i}" for i in range(6)],
                                             smiles=["C"] * 6, settings=settings)
    model = VAE(molecular_config("vae", settings, latent_dim=2, hidden_dims=(8,)))
    result = reconstruct(model, library, ["CCO", "C1CC", "c1ccccc1"], k=2, device="cpu")
    assert result["input_row"].tolist() == [1, 1, 2, 3, 3]
    assert result["rank"].dtype == "Int64" and result["library_index"].dtype == "Int64"
    assert result["rank"].isna().tolist() == [False, False, True, False, False]
    result.to_csv(tmp_path / "r.csv", index=False)
    assert pd.read_csv(tmp_path / "r.csv")["rank"].dropna().tolist() == [1, 2, 1, 2]
    assert "1.0" not in (tmp_path / "r.csv").read_text().splitlines()[1].split(",")
