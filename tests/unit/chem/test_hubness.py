import numpy as np
import pytest

from molvae.chem.guided import LibraryProperties, PropertyGuide, kept_hits, search_width
from molvae.chem.hubness import HUB_CANDIDATES, hub_corrected_scores
from molvae.chem.search import SearchResult
from tests.unit.chem.test_guided import library, mw

# Three draws whose nearest molecule is the same hub (row 0, similarity 0.9 to each); each
# also has a molecule of its own (rows 1–3) at 0.85.
HUB_LISTS = SearchResult(np.array([[0, 1], [0, 2], [0, 3]]), np.array([[0.9, 0.85]] * 3))


def test_hub_terms_are_the_mean_of_each_molecules_top_scores_over_the_batch():
    corrected = hub_corrected_scores(HUB_LISTS.indices, HUB_LISTS.scores, neighbours=2)
    # r(hub) = (0.9 + 0.9) / 2; r(own) = (0.85 + 0) / 2, the absent second score counting 0.
    assert corrected[:, 0] == pytest.approx([1.8 - 0.9] * 3)
    assert corrected[:, 1] == pytest.approx([1.7 - 0.425] * 3)
    indices = np.array([[4, -1], [4, 5]])
    scores = np.array([[0.6, 0.0], [0.2, 0.1]])
    corrected = hub_corrected_scores(indices, scores, neighbours=1)
    np.testing.assert_allclose(corrected, [[1.2 - 0.6, -np.inf], [0.4 - 0.6, 0.2 - 0.1]])
    # A molecule's top scores are its highest, wherever they appear: row 5 meets 0.3 first.
    corrected = hub_corrected_scores(np.array([[5, 6], [7, 5]]), np.array([[0.3, 0.2], [0.9, 0.8]]), 1)
    np.testing.assert_allclose(corrected, [[0.6 - 0.8, 0.4 - 0.2], [1.8 - 0.9, 1.6 - 0.8]])


def test_hub_correction_validates_its_input():
    with pytest.raises(ValueError, match="neighbours must be >= 1"):
        hub_corrected_scores(HUB_LISTS.indices, HUB_LISTS.scores, 0)
    with pytest.raises(ValueError, match=r"\(q, k\) arrays of one shape"):
        hub_corrected_scores(HUB_LISTS.indices, HUB_LISTS.scores[:, :1], 1)


def test_kept_hits_spread_draws_off_a_hub_only_when_corrected():
    rows, scores = kept_hits(HUB_LISTS, None)
    assert rows.tolist() == [0, 0, 0] and scores.tolist() == [0.9] * 3
    rows, scores = kept_hits(HUB_LISTS, None, hubness=2)
    assert rows.tolist() == [1, 2, 3] and scores.tolist() == [0.85] * 3
    # A lone draw is no hub's: the nearest stays, unless earlier draws made its nearest a hub.
    last, first_two = (SearchResult(HUB_LISTS.indices[part], HUB_LISTS.scores[part])
                       for part in (slice(2, 3), slice(2)))
    assert kept_hits(last, None, hubness=2)[0].tolist() == [0]
    assert kept_hits(last, None, hubness=2, earlier=first_two)[0].tolist() == [3]
    with pytest.raises(ValueError, match="hubness must be >= 0"):
        kept_hits(HUB_LISTS, None, hubness=-1)


def test_search_width_follows_the_guide_then_the_correction():
    guide = PropertyGuide(LibraryProperties(library(), ["mw"]), {"mw": 30.0}, k=7)
    assert search_width(guide, 3) == search_width(guide, 0) == 7
    assert search_width(None, 3) == HUB_CANDIDATES > 1 and search_width(None, 0) == 1
    with pytest.raises(ValueError, match="hubness must be >= 0"):
        search_width(None, -2)


def test_the_guide_breaks_ties_among_in_band_candidates_by_hub_corrected_score():
    # Ethane, propane and butane are all within one tolerance (25 Da) of propane's weight;
    # methane is not. Every draw lists ethane first.
    guide = PropertyGuide(LibraryProperties(library(), ["mw"]), {"mw": mw("CCC")}, k=2, band=1.0)
    hits = SearchResult(np.array([[1, 2], [1, 3], [1, 0]]), np.array([[0.9, 0.85]] * 3))
    assert kept_hits(hits, guide)[0].tolist() == [1, 1, 1]
    # Corrected, the first two draws leave the hub for their in-band second candidate; the
    # third keeps ethane, as methane is off target whatever its score.
    assert kept_hits(hits, guide, hubness=2)[0].tolist() == [2, 3, 1]


def test_passing_over_taken_rows_still_follows_the_preference():
    # Ethane, propane and butane are all in band; propane is taken: of the other two the
    # preferred one (butane) is kept, where the search order alone would keep ethane.
    guide = PropertyGuide(LibraryProperties(library(), ["mw"]), {"mw": mw("CCC")}, k=3, band=1.0)
    avoid = {2}
    assert guide.choose(np.array([[1, 2, 3]]), avoid, np.array([[0.0, 1.0, 0.5]])).tolist() == [2]
    assert avoid == {2, 3}
    assert guide.choose(np.array([[1, 2, 3]]), {2}).tolist() == [0]
