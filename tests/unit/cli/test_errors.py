import pytest
import torch
import typer
from typer.testing import CliRunner

from molvae.chem.ingest import ingest
from molvae.cli.errors import error_message, exit_on
from molvae.cli.main import app


def test_a_missing_file_is_named_without_errno_noise(tmp_path, capsys):
    missing = tmp_path / "nope.smi"
    with pytest.raises(typer.Exit), exit_on(FileNotFoundError):
        missing.open()
    err = capsys.readouterr().err
    assert f"error: No such file or directory: {missing}" in err.replace("\n", "") and "Errno" not in err


def test_cuda_without_a_gpu_is_one_line_not_a_traceback(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "in.smi").write_text("CCO\nCCN\nc1ccccc1\nCCCl\n")
    ingest([tmp_path / "in.smi"], tmp_path / "ds", workers=1)
    result = CliRunner().invoke(app, ["train", str(tmp_path / "ds"), "-o", str(tmp_path / "m"),
                                      "--device", "cuda"])
    assert result.exit_code == 1 and "no CUDA device" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, ValueError)


def test_other_errors_keep_their_own_words():
    assert error_message(FileNotFoundError("input not found: x.csv")) == "input not found: x.csv"
    assert error_message(ValueError("bad condition")) == "bad condition"
