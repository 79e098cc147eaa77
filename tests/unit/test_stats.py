import itertools

import numpy as np
import pytest

from molvae.stats import auroc


def _pairwise_auroc(scores, positive):
    """P(positive outscores negative), ties counting half, by enumerating every pair."""
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = [s for s, p in zip(scores, positive, strict=True) if not p]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_perfect_separation_is_one():
    assert auroc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0


def test_reversed_separation_is_zero():
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0


def test_all_tied_is_one_half():
    assert auroc([3.0] * 5, [True, False, True, False, False]) == 0.5


def test_order_of_samples_does_not_matter():
    assert auroc([0.9, 0.1, 0.8, 0.2], [True, False, True, False]) == 1.0


def test_small_case_with_a_tie_by_hand():
    # Positives {2, 3}, negatives {1, 2}: pairs (2>1)=1, (2=2)=½, (3>1)=1, (3>2)=1 → 3.5 / 4.
    assert auroc(np.array([1.0, 2.0, 2.0, 3.0]), np.array([0, 1, 0, 1])) == pytest.approx(0.875)


def test_unbalanced_case_by_hand():
    # One positive scoring 5 among negatives {1, 5, 7}: wins 1 + ½ + 0 over 3 pairs.
    assert auroc([1, 5, 5, 7], [False, True, False, False]) == pytest.approx(0.5)


def test_matches_pairwise_definition_with_many_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=40).astype(float)
    positive = rng.random(40) < 0.3

    assert auroc(scores, positive) == pytest.approx(_pairwise_auroc(scores, positive))


@pytest.mark.parametrize(
    "positive", [[False, False, False], [True, True, True]], ids=["no-positives", "no-negatives"]
)
def test_needs_both_classes(positive):
    with pytest.raises(ValueError, match="at least one positive and one negative"):
        auroc([0.1, 0.5, 0.9], positive)
