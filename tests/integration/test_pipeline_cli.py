"""The pipeline commands' argument handling (the flows themselves run in test_flows.py)."""

from typer.testing import CliRunner

from molvae.cli.main import app
from pipelines.molecules import molecular_generation


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_serve_registers_the_flow_with_its_cron_and_config(tmp_path, monkeypatch):
    served = {}
    monkeypatch.setattr(molecular_generation, "serve", lambda **kwargs: served.update(kwargs))
    (tmp_path / "run.yaml").write_text("epochs: 2\n")
    result = run("serve", "--cron", "30 3 * * 1", "--config", tmp_path / "run.yaml")
    assert result.exit_code == 0, result.output
    assert served == {"name": "molecular-generation-scheduled", "cron": "30 3 * * 1",
                      "parameters": {"config_path": str((tmp_path / "run.yaml").resolve())}}


def test_a_bad_config_fails_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(molecular_generation, "serve", lambda **kwargs: (_ for _ in ()).throw(AssertionError))
    (tmp_path / "bad.yaml").write_text("n_candidates: -3\n")
    for command in ("serve", "run"):
        result = run(command, "--config", tmp_path / "bad.yaml")
        assert result.exit_code == 1
        assert "n_candidates: Input should be greater than or equal to 1" in result.output


def test_run_overrides_are_validated_by_field(tmp_path):
    result = run("run", "--epochs", "0", "--out", tmp_path)
    assert result.exit_code == 1 and "epochs: Input should be greater than or equal to 1" in result.output
    for command in (("run",), ("images", "run")):
        result = run(*command, "--precision", "fp16", "--out", tmp_path)
        assert result.exit_code == 1
        assert "precision: Input should be 'auto', 'fp32' or 'bf16'" in result.output


def test_ui_serves_the_embedded_store_on_loopback(tmp_path, monkeypatch):
    import subprocess

    calls = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(subprocess, "call", lambda args: calls.append(args) or 0)
    assert run("ui", "--port", "5123").exit_code == 0
    args = calls[0]
    assert args[1:4] == ["-m", "mlflow", "ui"]
    assert args[args.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert args[args.index("--host") + 1] == "127.0.0.1" and args[args.index("--port") + 1] == "5123"
