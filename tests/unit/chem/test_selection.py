import numpy as np
import pandas as pd
import pytest

from molvae.chem.selection import (
    apply_filters,
    parse_ranges,
    parse_rank_by,
    pick_diverse,
    rank_candidates,
    rank_score,
    select_candidates,
)


def frame(**overrides):
    base = {"smiles": ["CCO", "CCN", "CCC", "c1ccccc1"], "inchikey": ["K1", "K2", "K3", "K4"],
            "library_id": ["L1", "L2", "L3", "L4"], "qed": [0.5, 0.9, 0.2, 0.6],
            "sa_score": [1.0, 2.0, 5.5, 3.0],
            "decode_similarity": [0.8, 0.7, 0.9, 0.6], "ad_percentile": [50.0, 99.0, 3.0, 40.0],
            "n_alerts": [0, 2, 1, 0], "mw": [46.1, 45.1, 44.1, 78.1], "rank": [1, 2, 3, 4]}
    return pd.DataFrame(base | overrides)


def test_parse_ranges_open_bounds_and_errors():
    assert parse_ranges("mw=200:450, clogp=:3,qed=0.5:") == {
        "mw": (200.0, 450.0), "clogp": (-np.inf, 3.0), "qed": (0.5, np.inf)}
    assert parse_ranges(None) == {}
    with pytest.raises(ValueError, match="expected name=low:high"):
        parse_ranges("mw=200")
    with pytest.raises(ValueError, match=r"low 5\.0 is above high 1\.0"):
        parse_ranges("qed=5:1")


def test_filters_give_every_left_out_row_its_first_failing_reason():
    kept, rejected = apply_filters(frame(), max_alerts=1, ranges={"mw": (45.0, 100.0)})
    assert kept["inchikey"].tolist() == ["K1", "K4"]
    assert rejected["inchikey"].tolist() == ["K2", "K3"]
    assert rejected["reason"].tolist() == ["2 alerts > --max-alerts 1", "mw 44.1 outside [45.0, 100.0]"]
    with pytest.raises(ValueError, match="cannot filter on 'logp'"):
        apply_filters(frame(), ranges={"logp": (0, 1)})
    with pytest.raises(ValueError, match="cannot filter on 'inchikey': not a numeric candidate column"):
        apply_filters(frame(), ranges={"inchikey": (0, 1)})


def test_rank_score_matches_its_documented_formula():
    scores = rank_score(frame())
    # 0.35·QED + 0.25·(10 − SA)/9 + 0.25·decode similarity + 0.15·[5 ≤ AD percentile ≤ 95]
    assert scores[0] == pytest.approx(0.35 * 0.5 + 0.25 * 1.0 + 0.25 * 0.8 + 0.15)
    assert scores[1] == pytest.approx(0.35 * 0.9 + 0.25 * 8 / 9 + 0.25 * 0.7)
    assert scores[2] == pytest.approx(0.35 * 0.2 + 0.25 * 4.5 / 9 + 0.25 * 0.9)


def test_rank_renumbers_best_first_and_rejects_unknown_columns():
    ranked = rank_candidates(frame())
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    assert ranked["score"].is_monotonic_decreasing
    assert rank_candidates(frame(), "qed")["inchikey"].tolist() == ["K2", "K4", "K1", "K3"]
    with pytest.raises(ValueError, match="cannot rank by 'smiles'"):
        rank_candidates(frame(), "smiles")


def test_score_still_ranks_highest_first_unless_told_otherwise():
    assert rank_candidates(frame(), "score")["inchikey"].tolist() == ["K1", "K2", "K4", "K3"]
    assert rank_candidates(frame(), "score:asc")["inchikey"].tolist() == ["K3", "K4", "K2", "K1"]


def test_explicit_direction_overrides_the_column_default():
    assert rank_candidates(frame(), "qed:asc")["inchikey"].tolist() == ["K3", "K1", "K4", "K2"]
    assert rank_candidates(frame(), "sa_score:desc")["inchikey"].tolist() == ["K3", "K4", "K2", "K1"]
    assert rank_candidates(frame(), " mw : ASC ")["inchikey"].tolist() == ["K3", "K2", "K1", "K4"]


def test_lower_is_better_columns_rank_ascending_by_default():
    assert parse_rank_by("sa_score") == ("sa_score", True) and parse_rank_by("qed") == ("qed", False)
    ranked = rank_candidates(frame(), "sa_score")
    assert ranked["inchikey"].tolist() == ["K1", "K2", "K4", "K3"] and ranked["rank"].tolist() == [1, 2, 3, 4]
    # Ties keep the earlier candidate first and missing values go last, ascending as well.
    ties = frame(sa_score=[1.0, np.nan, 5.5, 1.0])
    assert rank_candidates(ties, "sa_score")["inchikey"].tolist() == ["K1", "K4", "K3", "K2"]
    assert rank_candidates(frame(), "n_alerts")["inchikey"].tolist() == ["K1", "K4", "K3", "K2"]


def test_bad_rank_by_names_the_column_direction_and_choices():
    with pytest.raises(ValueError, match="direction 'up' for column 'qed': choose asc or desc"):
        rank_candidates(frame(), "qed:up")
    with pytest.raises(ValueError, match=r"expected COLUMN or COLUMN:asc\|desc"):
        parse_rank_by(":asc")
    with pytest.raises(ValueError, match=r"cannot rank by 'logp': choose a numeric column \(.*sa_score"):
        rank_candidates(frame(), "logp:asc")
    with pytest.raises(ValueError, match=r"cannot rank by '_position'") as error:  # bookkeeping
        rank_candidates(frame().assign(_position=1), "_position")
    assert "_position" not in str(error.value).split("(")[1]


def test_the_two_tailed_domain_columns_need_a_direction():
    with pytest.raises(ValueError, match="both tails of ad_percentile are out of domain"):
        rank_candidates(frame(), "ad_percentile")
    ranked = rank_candidates(frame(), "ad_percentile:asc")
    assert ranked["ad_percentile"].tolist() == [3.0, 40.0, 50.0, 99.0]


def test_maxmin_keeps_the_best_then_the_most_different():
    near = np.zeros((4, 4), np.uint8)
    near[:3, 0] = 0xFF  # three near-identical fingerprints
    near[1, 1] = near[2, 1] = 0x01
    near[3, 2:] = 0xFF  # and one unlike them
    kept, dropped = pick_diverse(frame(), near, 2)
    assert kept["inchikey"].tolist() == ["K1", "K4"] and kept["rank"].tolist() == [1, 2]
    assert dropped["inchikey"].tolist() == ["K2", "K3"]
    assert (dropped["reason"] == "not among the 2 MaxMin-diverse picks").all()


def test_select_accounts_for_every_row():
    packed = np.random.default_rng(0).integers(0, 256, (4, 8), dtype=np.uint8)
    selected, rejects = select_candidates(frame(), packed, max_alerts=1, diverse=1)
    assert len(selected) + len(rejects) == 4 and len(selected) == 1
    assert set(selected["inchikey"]) | set(rejects["inchikey"]) == {"K1", "K2", "K3", "K4"}


def test_select_ranks_with_the_column_default_direction():
    packed = np.zeros((4, 8), dtype=np.uint8)
    selected, _ = select_candidates(frame(), packed, rank_by="sa_score")
    assert selected["inchikey"].tolist() == ["K1", "K2", "K4", "K3"]
