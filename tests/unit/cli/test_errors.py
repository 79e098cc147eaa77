import pytest
import typer

from molvae.cli.errors import error_message, exit_on


def test_a_missing_file_is_named_without_errno_noise(tmp_path, capsys):
    missing = tmp_path / "nope.smi"
    with pytest.raises(typer.Exit), exit_on(FileNotFoundError):
        missing.open()
    err = capsys.readouterr().err
    assert f"error: No such file or directory: {missing}" in err.replace("\n", "") and "Errno" not in err


def test_other_errors_keep_their_own_words():
    assert error_message(FileNotFoundError("input not found: x.csv")) == "input not found: x.csv"
    assert error_message(ValueError("bad condition")) == "bad condition"
