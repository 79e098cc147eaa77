import math

import pytest

from pipelines.pyfunc_model import _flag, _missing


@pytest.mark.parametrize("value", [None, float("nan"), math.nan, "", "  "])
def test_absent_empty_and_nan_cells_are_missing(value):
    assert _missing(value)


@pytest.mark.parametrize("value", [0, 16, 16.0, "16", "0.5"])
def test_values_are_not_missing(value):
    assert not _missing(value)


@pytest.mark.parametrize(("value", "expected"), [
    (None, False), (float("nan"), False), ("", False), (True, True), (False, False), (1, True), (0.0, False),
    ("true", True), (" Yes ", True), ("0", False), ("no", False)])
def test_include_seeds_cells_read_as_yes_or_no(value, expected):
    assert _flag(value) is expected


def test_an_unreadable_include_seeds_cell_is_an_error():
    with pytest.raises(ValueError, match="include_seeds must be true or false, got 'maybe'"):
        _flag("maybe")
