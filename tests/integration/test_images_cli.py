"""``molvae images …`` end to end through the main app, on a tiny synthetic IDX directory."""

import csv
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from molvae.checkpoints import load_checkpoint
from molvae.cli.main import app
from molvae.images.datasets import load_image_source
from molvae.images.experiment import split_images

FAST = ["--epochs", "1", "--iwae-k", "5", "--no-progress", "--device", "cpu"]
TINY = ["--latent-dim", "2", "--hidden", "16"]


def _invoke(*args, env=None):
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    return result


def _ok(*args):
    result = _invoke(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _assert_png(path):
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert png.width > 0 and png.height > 0


@pytest.fixture(scope="module")
def source(idx_dir_factory):
    return idx_dir_factory(n_train=200, n_test=50)


@pytest.fixture(scope="module")
def vae_dir(source, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("cli") / "model"
    result = _ok("images", "train", source, "-o", model_dir, *FAST)
    return model_dir, result


def test_train_writes_model_folder_and_metrics(vae_dir):
    model_dir, result = vae_dir

    for name in ("config.json", "weights.pt", "checkpoint.pt", "metrics.json"):
        assert (model_dir / name).is_file(), name
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert {"test_neg_elbo_nats", "test_iwae_nll_nats"} <= set(metrics)
    assert metrics["iwae_k"] == 5 and metrics["epochs_run"] == 1 and metrics["n_test"] == 50
    assert "metrics.json" in result.output
    config = json.loads((model_dir / "config.json").read_text())
    assert (config["kind"], config["latent_dim"], config["hidden_dims"]) == ("vae", 20, [512])


def test_sample(vae_dir, tmp_path):
    out = tmp_path / "sample.png"

    _ok("images", "sample", vae_dir[0], "-o", out, "-n", 9, "--device", "cpu")

    _assert_png(out)
    assert Image.open(out).size == (3 * 58 + 2, 3 * 58 + 2)


def test_interpolate(vae_dir, source, tmp_path):
    out = tmp_path / "interp.png"

    _ok("images", "interpolate", vae_dir[0], source, "-o", out, "--pairs", 2, "--steps", 4,
        "--method", "slerp", "--device", "cpu")

    _assert_png(out)
    figures = json.loads(out.with_suffix(".json").read_text())
    assert (figures["steps"], figures["method"], len(figures["pairs"])) == (4, "slerp", 2)


def test_variations(vae_dir, source, tmp_path):
    out = tmp_path / "var.png"

    _ok("images", "variations", vae_dir[0], source, "-o", out, "--index", 0, "--index", 5, "-n", 3,
        "--device", "cpu")

    _assert_png(out)
    assert json.loads(out.with_suffix(".json").read_text()) == {"indices": [0, 5], "n": 3, "spread": 0.5}


def test_inpaint(vae_dir, source, tmp_path):
    out = tmp_path / "inpaint.png"

    _ok("images", "inpaint", vae_dir[0], source, "-o", out, "-n", 4, "--mask", "center",
        "--iterations", 3, "--device", "cpu")

    _assert_png(out)
    figures = json.loads(out.with_suffix(".json").read_text())
    assert (figures["mask"], figures["iterations"], len(figures["indices"])) == ("center", 3, 4)
    assert all(0 <= i < 50 for i in figures["indices"])  # held-out (t10k) images


def test_anomaly(vae_dir, source, tmp_path):
    out = tmp_path / "scores.csv"

    _ok("images", "anomaly", vae_dir[0], source, "-o", out, "--device", "cpu")

    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["index"]) for r in rows] == list(range(50))
    _assert_png(out.with_suffix(".png"))
    figures = json.loads(out.with_suffix(".json").read_text())
    assert figures["n"] == 50
    assert set(figures["mean_score_by_class"]) == {"0", "1"}
    assert "auroc_excluded_class" not in figures


def test_cvae_train_then_sample_a_row_per_class(source, tmp_path, cpu_bf16):
    model_dir = tmp_path / "cvae"

    _ok("images", "train", source, "-o", model_dir, "--kind", "cvae", "--precision", cpu_bf16[0],
        *FAST, *TINY)
    out = tmp_path / "sample.png"
    _ok("images", "sample", model_dir, "-o", out, "-n", 6, "--device", "cpu")

    config = json.loads((model_dir / "config.json").read_text())
    assert (config["kind"], config["condition_dim"]) == ("cvae", 2)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert (metrics["kind"], metrics["device"], metrics["precision"]) == ("cvae", "cpu", cpu_bf16[1])
    _assert_png(out)
    assert json.loads(out.with_suffix(".json").read_text())["classes"] == ["0", "1"]
    _ok("images", "sample", model_dir, "-o", tmp_path / "one.png", "--label", "1", "--device", "cpu")
    assert json.loads((tmp_path / "one.json").read_text())["classes"] == ["1"]


def test_exclude_class_then_anomaly_reports_its_auroc(source, tmp_path):
    model_dir = tmp_path / "model"

    _ok("images", "train", source, "-o", model_dir, "--exclude-class", 1, *FAST, *TINY)
    out = tmp_path / "scores.csv"
    _ok("images", "anomaly", model_dir, source, "-o", out, "--device", "cpu")

    metrics = json.loads((model_dir / "metrics.json").read_text())
    train = split_images(load_image_source(source), 0.1, 0.1, seed=0).train
    assert metrics["n_train"] == int((train.labels == 0).sum()) < len(train)
    assert metrics["n_test"] == 50
    figures = json.loads(out.with_suffix(".json").read_text())
    assert figures["excluded_class"] == 1
    assert 0.0 <= figures["auroc_excluded_class"] <= 1.0


def test_resume_continues_from_the_checkpoint(source, tmp_path):
    model_dir = tmp_path / "model"
    _ok("images", "train", source, "-o", model_dir, *FAST, *TINY, "--patience", 0)
    first = load_checkpoint(model_dir).history

    _ok("images", "train", source, "-o", model_dir, *TINY, "--epochs", 2, "--resume", "--iwae-k", 5,
        "--no-progress", "--device", "cpu", "--patience", 0)

    history = load_checkpoint(model_dir).history
    assert len(first) == 1 and len(history) == 2
    assert history[0] == first[0]  # epoch 1 was carried over, not retrained
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["step"] == 2 * history[0]["step"]
    assert json.loads((model_dir / "metrics.json").read_text())["epochs_run"] == 2


def test_resume_without_a_checkpoint_fails_cleanly(source, tmp_path):
    result = _invoke("images", "train", source, "-o", tmp_path / "fresh", *FAST, *TINY, "--resume")

    assert result.exit_code == 1
    assert "no checkpoint to resume from" in result.output


def test_train_on_a_missing_source_fails_naming_it(tmp_path):
    missing = tmp_path / "no-such-images"

    result = _invoke("images", "train", missing, "-o", tmp_path / "model", *FAST)

    assert result.exit_code == 1
    assert "not found" in result.output
    # Rich may wrap a long line; the path must still be there once line breaks are undone.
    assert str(missing) in result.output.replace("\n", "")
    assert not (tmp_path / "model").exists()


def test_train_error_shows_a_path_with_brackets_verbatim(tmp_path):
    missing = tmp_path / "run[b]" / "images"  # [b] is Rich markup for bold

    result = _invoke("images", "train", missing, "-o", tmp_path / "model", *FAST)

    assert result.exit_code == 1
    assert str(missing) in result.output.replace("\n", "")


def test_train_error_does_not_break_a_long_path(tmp_path):
    missing = tmp_path / ("x" * 100) / "images"

    result = _invoke("images", "train", missing, "-o", tmp_path / "model", *FAST, env={"COLUMNS": "80"})

    assert result.exit_code == 1
    assert str(missing) in result.output


def test_figure_command_bad_input_fails_with_a_message(vae_dir, tmp_path):
    missing = tmp_path / "no-such-images"

    result = _invoke("images", "interpolate", vae_dir[0], missing, "-o", tmp_path / "i.png",
                     "--device", "cpu")

    assert result.exit_code == 1
    assert not isinstance(result.exception, FileNotFoundError)
    assert str(missing) in result.output.replace("\n", "")


def test_figure_command_needs_an_existing_model_folder(tmp_path):
    result = _invoke("images", "sample", tmp_path / "nothing", "-o", tmp_path / "s.png")

    assert result.exit_code == 2
    assert "Invalid value for 'model_dir'" in result.output
    assert not (tmp_path / "s.png").exists()


def test_data_fetch_help_through_the_main_app():
    result = _ok("data", "fetch", "--help")

    assert "fashion-mnist" in result.output
    assert "--dest" in result.output


def test_main_help_lists_the_sub_apps():
    result = _ok("--help")

    assert "images" in result.output and "data" in result.output
