import pytest

from molvae.cli.options import parse_widths


def test_widths_parse_to_integers():
    assert parse_widths("1024,512") == [1024, 512] and parse_widths("64") == [64]


@pytest.mark.parametrize("text", ["10,x", "", "0", "256,-1", "1.5"])
def test_bad_widths_name_the_option(text):
    with pytest.raises(ValueError, match=f"--hidden takes comma-separated positive .*got {text!r}"):
        parse_widths(text)
