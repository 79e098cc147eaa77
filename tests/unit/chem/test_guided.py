import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors

import molvae.chem.guided as guided
from molvae.chem.fingerprints import FingerprintSettings
from molvae.chem.guided import LibraryProperties, PropertyGuide, default_guide
from molvae.chem.search import FingerprintLibrary

ALKANES = ["C" * n for n in range(1, 9)]  # methane … octane: MW 16.04 to 114.23, 14.03 apart


def library(smiles=ALKANES):
    packed = np.zeros((len(smiles), 32), np.uint8)
    return FingerprintLibrary.from_packed(packed, smiles=smiles, settings=FingerprintSettings(n_bits=256))


def mw(smiles):
    return Descriptors.MolWt(Chem.MolFromSmiles(smiles))


def test_values_are_rdkit_properties_computed_once_per_row(monkeypatch):
    properties = LibraryProperties(library(), ["mw", "hbd"])
    values = properties.values(np.array([[2, 0], [2, 5]]))
    assert values.shape == (2, 2, 2)
    assert values[1, 1, 0] == pytest.approx(mw("CCCCCC")) and values[0, 1, 0] == pytest.approx(mw("C"))
    assert (values[..., 1] == 0).all()
    computed = []
    real = guided.compute_properties_frame
    monkeypatch.setattr(guided, "compute_properties_frame",
                        lambda mols, names: computed.append(len(mols)) or real(mols, names))
    properties.values(np.array([0, 2, 7, 7]))
    assert computed == [1]  # only row 7 was new


def test_rows_without_a_parseable_smiles_are_named():
    with pytest.raises(ValueError, match="library row 1: its SMILES does not parse"):
        LibraryProperties(library(["C", "C1CC("]), ["mw"]).values(np.array([0, 1]))
    unnamed = FingerprintLibrary.from_packed(np.zeros((2, 32), np.uint8))
    with pytest.raises(ValueError, match="library row 0 has no SMILES"):
        LibraryProperties(unnamed, ["mw"]).values(np.array([0]))


def test_each_draw_keeps_its_most_similar_candidate_within_tolerance_else_the_nearest():
    guide = PropertyGuide(LibraryProperties(library(), ["mw"]), {"mw": mw("CCC")}, k=3, band=1.0)
    # Candidates are listed most similar first. MW ± 25 Da: ethane (−14 Da) and propane are
    # within tolerance of propane's weight, methane (−28 Da) and pentane (+28 Da) are not.
    indices = np.array([[0, 2, 5], [1, 2, 0], [7, 6, 5], [-1, 4, -1]])
    assert guide.choose(indices).tolist() == [1, 0, 2, 1]
    costs = guide.costs(indices)
    assert costs[1, 0] == costs[1, 1] == 0.0
    assert costs[0, 0] == pytest.approx(((mw("C") - mw("CCC")) / 25) ** 2)
    assert np.isinf(costs[3, 0]) and np.isinf(costs[3, 2]) and costs[3, 1] > 1


def test_defaults_follow_the_library_size_measured_nearest_on_a_log_scale():
    assert default_guide(100) == default_guide(176_072) == default_guide(500_000) == (24, 0.85)
    assert default_guide(520_000) == default_guide(1_484_399) == default_guide(50_000_000) == (48, 0.5)
    assert default_guide(0) == (24, 0.85)


def test_the_band_sets_how_closely_targets_are_followed():
    indices = np.array([[1, 3, 2]])  # ethane, butane, propane: all within 25 Da of propane
    target = {"mw": mw("CCC")}
    properties = LibraryProperties(library(), ["mw"])
    assert PropertyGuide(properties, target, k=3, band=1.0).choose(indices).tolist() == [0]
    assert PropertyGuide(properties, target, k=3).band == 0.85  # a small library's default
    # Ethane and butane are 14.03 Da from propane: inside 0.6 × 25 Da, outside 0.5 × 25 Da.
    assert PropertyGuide(properties, target, k=3, band=0.6).choose(indices).tolist() == [0]
    assert PropertyGuide(properties, target, k=3, band=0.5).choose(indices).tolist() == [2]
    assert PropertyGuide(properties, target, k=3, band=0.0).choose(indices).tolist() == [2]
    with pytest.raises(ValueError, match="band must be >= 0"):
        PropertyGuide(properties, target, k=3, band=-1.0)


def test_equally_near_candidates_keep_the_more_similar_one():
    guide = PropertyGuide(LibraryProperties(library(["CCO", "OCC", "C"]), ["mw"]), {"mw": 46.07}, k=3)
    assert guide.choose(np.array([[2, 1, 0], [2, 0, 1]])).tolist() == [1, 1]  # in band
    far = PropertyGuide(LibraryProperties(library(["CCO", "OCC", "C"]), ["mw"]), {"mw": 100.0}, k=3)
    assert far.choose(np.array([[2, 1, 0], [2, 0, 1]])).tolist() == [1, 1]  # out of band: the nearest


def test_a_property_rdkit_cannot_compute_never_wins(monkeypatch):
    properties = LibraryProperties(library(), ["mw"])
    real = guided.compute_properties_frame
    monkeypatch.setattr(guided, "compute_properties_frame",
                        lambda mols, names: real(mols, names).where(lambda f: f["mw"] > 20))
    guide = PropertyGuide(properties, {"mw": mw("C")}, k=3)
    # Methane's weight is NaN here: the far heavier ethane is kept, not the NaN row listed first.
    assert np.isinf(guide.costs(np.array([[0]])))[0, 0]
    assert guide.choose(np.array([[0, 1]])).tolist() == [1]


def test_guide_tolerances_fall_back_to_a_quarter_of_the_training_std():
    assert guided.guide_tolerances(["mw", "hbd"], [80.0, 1.2]) == {"mw": 25.0, "hbd": 0.3}


def test_avoid_passes_over_taken_rows_and_records_each_pick():
    guide = PropertyGuide(LibraryProperties(library(), ["mw"]), {"mw": mw("CCC")}, k=3)
    avoid = {2}
    positions = guide.choose(np.array([[2, 1, 7], [2, 1, 7], [2, 1, 7]]), avoid)
    # Propane was taken before; ethane goes to the first draw, octane to the second, and the
    # third, with every candidate taken, gets the nearest (a duplicate the caller drops).
    assert positions.tolist() == [1, 2, 0] and avoid == {1, 2, 7}
    # Draws without hits (−1) take position 0 and add nothing to avoid.
    assert guide.choose(np.array([[-1, -1, -1], [-1, 3, -1]]), avoid).tolist() == [0, 1]
    assert avoid == {1, 2, 3, 7}


def test_rows_must_be_library_indices():
    with pytest.raises(ValueError, match="library rows must be >= 0, got -1"):
        LibraryProperties(library(), ["mw"]).values(np.array([0, -1]))


def test_a_guided_property_needs_a_target_and_a_tolerance():
    properties = LibraryProperties(library(), ["mw", "hbd"])
    with pytest.raises(ValueError, match="'hbd' needs a target and a tolerance"):
        PropertyGuide(properties, {"mw": 40.0, "hbd": 1.0}, k=4)
    assert PropertyGuide(properties, {"mw": 40.0, "hbd": 1.0}, k=4, tolerances={"hbd": 1.0}).k == 4
    with pytest.raises(ValueError, match="k must be >= 1"):
        PropertyGuide(properties, {"mw": 40.0, "hbd": 1.0}, k=0, tolerances={"hbd": 1.0})
