import importlib.util
import math

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from molvae.chem import metrics
from molvae.chem.fingerprints import FingerprintSettings, morgan_packed
from molvae.chem.metrics import (
    TOLERANCES,
    condition_control,
    fcd,
    fragment_similarity,
    internal_diversity,
    novelty,
    property_wasserstein,
    scaffold_similarity,
    set_metrics,
    snn,
    uniqueness_at_k,
)

HAS_FCD_TORCH = importlib.util.find_spec("fcd_torch") is not None


def packed(*onbits, n_bits=16):
    """Packed fingerprints with the given on-bits, one row per argument."""
    bits = np.zeros((len(onbits), n_bits), dtype=np.uint8)
    for row, on in enumerate(onbits):
        bits[row, list(on)] = 1
    return np.packbits(bits, axis=1)


# T(A, B) = |{0, 1}| / |{0, 1, 2, 3}| = 1/2; C shares no bit with A or B.
A, B, C = {0, 1, 2, 3}, {0, 1}, {4, 5}


# -- uniqueness and novelty ----------------------------------------------------------------

def test_uniqueness_at_k_counts_distinct_among_the_first_k():
    smiles = ["CCO", "CCN", "CCO", "c1ccccc1", "CCO"]
    assert uniqueness_at_k(smiles, 3) == pytest.approx(2 / 3)
    assert uniqueness_at_k(smiles, 5) == pytest.approx(3 / 5)
    assert uniqueness_at_k(smiles, 1) == 1.0


@pytest.mark.parametrize("k", [0, 6])
def test_uniqueness_at_k_rejects_k_out_of_range(k):
    with pytest.raises(ValueError, match=r"k must be >= 1|needs at least 6 molecules"):
        uniqueness_at_k(["CCO"] * 5, k)


def test_novelty_is_the_fraction_of_distinct_molecules_not_in_training():
    # Distinct generated: CCO, CCN, CCC; only CCO was trained on.
    assert novelty(["CCO", "CCO", "CCN", "CCC"], ["CCO", "CCCl"]) == pytest.approx(2 / 3)
    assert novelty(["CCO"], iter(["CCO"])) == 0.0


def test_novelty_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no generated molecules"):
        novelty([], ["CCO"])


# -- internal diversity and SNN ------------------------------------------------------------

def test_internal_diversity_of_three_known_fingerprints():
    fps = packed(A, B, C)
    # Ordered pairs: three diagonal 1s and T(A, B) = T(B, A) = 1/2, the rest 0.
    assert internal_diversity(fps) == pytest.approx(1 - (3 + 2 * 0.5) / 9)
    assert internal_diversity(fps, p=2) == pytest.approx(1 - math.sqrt((3 + 2 * 0.25) / 9))


def test_internal_diversity_of_identical_or_empty_fingerprints_is_zero():
    assert internal_diversity(packed(A, A)) == pytest.approx(0.0)
    # Two empty fingerprints count as identical, as in MOSES.
    assert internal_diversity(packed(set(), set())) == pytest.approx(0.0)


def test_internal_diversity_blocks_match_the_full_matrix(monkeypatch):
    rng = np.random.default_rng(0)
    bits = (rng.random((10, 64)) < 0.3).astype(np.float64)
    common = bits @ bits.T
    union = bits.sum(1)[:, None] + bits.sum(1)[None, :] - common
    similarity = common / union
    monkeypatch.setattr(metrics, "_BLOCK", 3)  # diagonal, off-diagonal and ragged blocks
    fps = np.packbits(bits.astype(np.uint8), axis=1)
    assert internal_diversity(fps) == pytest.approx(1 - similarity.mean())
    assert internal_diversity(fps, p=2) == pytest.approx(1 - np.sqrt((similarity**2).mean()))


@pytest.mark.parametrize(("fps", "p", "message"), [
    (np.zeros((0, 2), dtype=np.uint8), 1, "packed is empty"),
    (np.zeros((3, 16), dtype=np.float32), 1, "must be packed uint8"),
    (packed(A, B), 0, "p must be > 0"),
])
def test_internal_diversity_rejects_bad_input(fps, p, message):
    with pytest.raises(ValueError, match=message):
        internal_diversity(fps, p=p)


def test_snn_is_the_mean_best_tanimoto_to_the_reference():
    # A's nearest reference is B (1/2), C's is C itself (1).
    assert snn(packed(A, C), packed(B, C), device="cpu") == pytest.approx(0.75)
    assert snn(packed(C), packed(A, B), device="cpu") == 0.0


def test_snn_rejects_empty_or_mismatched_fingerprints():
    with pytest.raises(ValueError, match="ref_packed is empty"):
        snn(packed(A), np.zeros((0, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="2 bytes, reference ones 4"):
        snn(packed(A), packed(A, n_bits=32))


# -- fragments and scaffolds ---------------------------------------------------------------

def test_fragment_similarity_of_known_brics_fragments():
    # Anisole splits at its aryl ether bond into [16*]c1ccccc1 + [3*]OC; acetanilide into
    # [16*]c1ccccc1 + [5*]N[5*] + [1*]C(C)=O. Generated counts (2, 1, 1, 1), reference (1, 1, 0, 0).
    similarity = fragment_similarity(["COc1ccccc1", "CC(=O)Nc1ccccc1"], ["COc1ccccc1"])
    assert similarity == pytest.approx(3 / (math.sqrt(7) * math.sqrt(2)))
    assert fragment_similarity(["c1ccccc1"], ["C1CCCCC1"]) == 0.0


def test_scaffold_similarity_of_known_scaffold_counts():
    gen = ["Cc1ccc2ccccc2c1", "c1ccc2ccccc2c1", "c1ccc(-c2ccccc2)cc1", "Cc1ccccc1"]
    ref = ["c1ccc2ccccc2c1", "Cc1ccc(-c2ccccc2)cc1"]
    # Two-ring scaffolds only: naphthalene ×2 and biphenyl ×1 against ×1 and ×1; toluene's
    # one-ring benzene is not counted.
    assert scaffold_similarity(gen, ref) == pytest.approx(3 / (math.sqrt(5) * math.sqrt(2)))
    # With one ring allowed, benzene adds a component the reference lacks.
    assert scaffold_similarity(gen, ref, min_rings=1) == pytest.approx(3 / (math.sqrt(6) * math.sqrt(2)))


def test_scaffold_similarity_without_scaffolds_is_nan():
    assert math.isnan(scaffold_similarity(["CCO", "Cc1ccccc1"], ["c1ccc2ccccc2c1"]))


@pytest.mark.parametrize("function", [fragment_similarity, scaffold_similarity])
def test_fragment_and_scaffold_similarity_reject_empty_or_invalid_input(function):
    with pytest.raises(ValueError, match="gen_smiles is empty"):
        function([], ["CCO"])
    with pytest.raises(ValueError, match=r"ref_smiles\[1\] is not a valid SMILES: 'C1CC'"):
        function(["CCO"], ["CCO", "C1CC"])


# -- property distributions and FCD --------------------------------------------------------

def test_property_wasserstein_of_a_shifted_distribution_is_the_shift():
    gen = pd.DataFrame({"clogp": [1.0, 2.0, 3.0, np.nan], "qed": [0.1, 0.2, 0.3, 0.4]})
    ref = pd.DataFrame({"clogp": [3.5, 1.5, np.nan, 2.5], "qed": [0.4, 0.3, 0.2, 0.1]})
    distances = property_wasserstein(gen, ref, columns=("clogp", "qed"))
    assert distances == pytest.approx({"clogp": 0.5, "qed": 0.0})


def test_property_wasserstein_rejects_missing_columns_or_values():
    frame = pd.DataFrame({"clogp": [1.0]})
    with pytest.raises(ValueError, match="ref_frame has no 'qed' column"):
        property_wasserstein(pd.DataFrame({"qed": [1.0]}), frame, columns=("qed",))
    with pytest.raises(ValueError, match="gen_frame has no 'clogp' values"):
        property_wasserstein(pd.DataFrame({"clogp": [np.nan]}), frame, columns=("clogp",))


def test_fcd_needs_two_molecules_a_side():
    with pytest.raises(ValueError, match="at least 2 molecules in gen_smiles, got 0"):
        fcd([], ["CCO", "CCN"])
    with pytest.raises(ValueError, match="at least 2 molecules in ref_smiles, got 1"):
        fcd(["CCO", "CCN"], ["CCO"])


@pytest.mark.skipif(HAS_FCD_TORCH, reason="fcd_torch is installed")
def test_fcd_is_none_without_fcd_torch():
    assert fcd(["CCO", "CCN"], ["CCO", "CCC"]) is None


@pytest.mark.skipif(not HAS_FCD_TORCH, reason="fcd_torch (the [fcd] extra) is not installed")
def test_fcd_is_near_zero_for_a_set_against_itself_and_grows_for_a_different_one():
    aromatic = ["c1ccccc1", "Cc1ccccc1", "CCc1ccccc1", "c1ccc2ccccc2c1", "Oc1ccccc1", "Nc1ccccc1"]
    aliphatic = ["CCO", "CCCO", "CCCCN", "CC(C)O", "CCOCC", "CCCCCC"]
    same = fcd(aromatic, aromatic, device="cpu")
    assert abs(same) < 1e-3
    assert fcd(aliphatic, aromatic, device="cpu") > same + 1.0


# -- set_metrics ---------------------------------------------------------------------------

GEN = ["c1ccc2ccccc2c1", "Cc1ccc2ccccc2c1", "CCO"]


def fingerprints(smiles):
    return morgan_packed([Chem.MolFromSmiles(s) for s in smiles], FingerprintSettings(n_bits=256))


def test_set_metrics_of_a_set_against_itself():
    fps = fingerprints(GEN)
    frame = pd.DataFrame({"clogp": [3.0, 3.3, -0.1], "sa_score": [1.0, 1.2, 1.9], "qed": [0.4, 0.5, 0.4],
                          "mw": [128.2, 142.2, 46.1]})
    result = set_metrics(GEN, fps, ["CCO"], GEN, fps, ks=(2, 5), gen_properties=frame, ref_properties=frame,
                         device="cpu")
    expected = {"unique_at_2": 1.0, "novelty": 2 / 3, "intdiv1": internal_diversity(fps),
                "intdiv2": internal_diversity(fps, p=2), "snn": 1.0, "frag": 1.0, "scaf": 1.0,
                "w1_clogp": 0.0, "w1_sa_score": 0.0, "w1_qed": 0.0, "w1_mw": 0.0}
    # FCD needs ChemNet's weights: it is only reported with fcd_torch installed.
    assert ("fcd" in result) == HAS_FCD_TORCH
    result.pop("fcd", None)
    assert result == pytest.approx(expected)


def test_set_metrics_rejects_mismatched_input():
    fps = fingerprints(GEN)
    with pytest.raises(ValueError, match="3 generated SMILES but 2 fingerprints"):
        set_metrics(GEN, fps[:2], [], GEN, fps)
    with pytest.raises(ValueError, match="give both gen_properties and ref_properties"):
        set_metrics(GEN, fps, [], GEN, fps, gen_properties=pd.DataFrame({"clogp": [1.0]}))


# -- conditional control -------------------------------------------------------------------

def control_inputs():
    targets = pd.DataFrame({"clogp": [1.0, 2.0, 3.0, 4.0], "mw": [100.0, 200.0, 300.0, 400.0]})
    # clogp rises with its target (misses by 0.2, 0.2, 0.1, 3.0); mw falls (misses by 400, 200, 0, 200).
    achieved = pd.DataFrame({"clogp": [0.8, 2.2, 2.9, 7.0], "mw": [500.0, 400.0, 300.0, 200.0]},
                            index=[10, 11, 12, 13])  # matched by position, not index
    return targets, achieved, ["CCO", "CCO", "CCN", "CCC"], ["a", "a", "b", "b"]


def test_condition_control_of_hand_computed_rows():
    result = condition_control(*control_inputs())
    assert result == pytest.approx({
        "spearman_clogp": 1.0, "spearman_mw": -1.0,
        "within_tol_clogp": 3 / 4, "within_tol_mw": 1 / 4, "within_tol_all": 1 / 4,
        # Group a: CCO twice (1/2 distinct); group b: CCN, CCC (all distinct).
        "uniqueness_group_mean": 3 / 4, "uniqueness_group_min": 1 / 2, "n_groups": 2,
    })


def test_condition_control_tolerances_can_be_overridden_or_added():
    targets, achieved, smiles, group = control_inputs()
    assert TOLERANCES["clogp"] == 0.5
    result = condition_control(targets, achieved, smiles, group, tolerances={"clogp": 0.15})
    assert result["within_tol_clogp"] == pytest.approx(1 / 4)
    targets["tpsa"], achieved["tpsa"] = [20.0] * 4, [25.0, 35.0, np.nan, 20.0]
    result = condition_control(targets, achieved, smiles, group, tolerances={"tpsa": 10.0})
    # One target value has no ranking; the missing value is a miss.
    assert math.isnan(result["spearman_tpsa"])
    assert result["within_tol_tpsa"] == pytest.approx(2 / 4)
    assert result["within_tol_all"] == 0.0


@pytest.mark.parametrize(("change", "message"), [
    (lambda t, a, s, g: (t.iloc[:0], a.iloc[:0], [], []), "no generated molecules"),
    (lambda t, a, s, g: (t, a, s[:3], g), "one entry per molecule, got 4, 4, 3 and 4"),
    (lambda t, a, s, g: (t, a.drop(columns="mw"), s, g), "achieved has no 'mw' column"),
    (lambda t, a, s, g: (t.assign(tpsa=1.0), a.assign(tpsa=1.0), s, g), "no tolerance for 'tpsa'"),
])
def test_condition_control_rejects_bad_input(change, message):
    with pytest.raises(ValueError, match=message):
        condition_control(*change(*control_inputs()))
