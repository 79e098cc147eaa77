import pytest

from molvae.cli.generate import parse_targets


def test_targets_parse_to_numbers():
    assert parse_targets("qed=0.9, clogp=-1.5,") == {"qed": 0.9, "clogp": -1.5}
    assert parse_targets(None) == {}


@pytest.mark.parametrize(("text", "message"), [
    ("qed:0.9", r"bad condition 'qed:0.9': expected name=value"),
    ("=0.9", "bad condition '=0.9'"),
    ("qed=high", "bad condition 'qed=high'"),
    ("qed=0.9,qed=0.5", "condition 'qed' is given twice"),
])
def test_bad_targets_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        parse_targets(text)
