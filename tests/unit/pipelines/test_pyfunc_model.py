import math

import pytest

from pipelines.pyfunc_model import _missing


@pytest.mark.parametrize("value", [None, float("nan"), math.nan, "", "  "])
def test_absent_empty_and_nan_cells_are_missing(value):
    assert _missing(value)


@pytest.mark.parametrize("value", [0, 16, 16.0, "16", "0.5"])
def test_values_are_not_missing(value):
    assert not _missing(value)
