import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from molvae.images import figures
from molvae.images.datasets import ImageSet
from molvae.images.experiment import image_config, pixels
from molvae.latent import anomaly_score, interpolate
from molvae.models.core import VAE
from molvae.stats import auroc

NAMES = ("a", "b", "c")
TILE = 28 * 2 + 2  # default scale 2, pad 2


def _grid_size(n_tiles, ncol, label_chars=0):
    """Size of a default image grid: tiles 56 px, pad 2, a label column of 8 + 6·chars px."""
    ncol = min(ncol, n_tiles)
    label_width = 8 + 6 * label_chars if label_chars else 0
    return label_width + ncol * TILE + 2, -(-n_tiles // ncol) * TILE + 2


def _model(kind="vae", split=None):
    torch.manual_seed(0)
    return VAE(image_config(kind, NAMES, latent_dim=2, hidden_dims=(16,), split=split)).eval()


def _images(n=12, labelled=True):
    images = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % len(NAMES)).astype(np.int64) if labelled else None
    return ImageSet(images, labels, NAMES if labelled else ())


def _png_size(path):
    with Image.open(path) as png:
        assert png.format == "PNG"
        return png.size


@pytest.fixture
def grids(monkeypatch):
    """The image tensors passed to save_grid (which still writes the PNG)."""
    seen = []
    real = figures.save_grid

    def spy(path, images, ncol, **kwargs):
        seen.append(torch.as_tensor(images).detach().cpu())
        return real(path, images, ncol, **kwargs)

    monkeypatch.setattr(figures, "save_grid", spy)
    return seen


# make_mask


@pytest.mark.parametrize(("kind", "hidden"), [("right", (slice(None), slice(14, None))),
                                              ("left", (slice(None), slice(None, 14))),
                                              ("top", (slice(None, 14), slice(None))),
                                              ("bottom", (slice(14, None), slice(None))),
                                              ("center", (slice(7, 21), slice(7, 21)))])
def test_fixed_masks_hide_the_named_part(kind, hidden):
    mask = figures.make_mask(kind, 3)

    assert mask.shape == (3, 784)
    assert mask.dtype == torch.bool
    expected = torch.ones(28, 28, dtype=torch.bool)
    expected[hidden] = False
    assert torch.equal(mask, expected.reshape(1, -1).expand(3, -1))
    hidden_fraction = 0.25 if kind == "center" else 0.5
    assert (~mask).float().mean().item() == hidden_fraction


def test_fixed_mask_rows_are_independent_copies():
    mask = figures.make_mask("right", 2)
    mask[0, 0] = False

    assert mask[1, 0]


def test_random_mask_hides_about_half_differently_per_row_and_is_seeded():
    mask = figures.make_mask("random", 20, seed=1)

    assert mask.shape == (20, 784)
    assert mask.dtype == torch.bool
    assert abs((~mask).float().mean().item() - 0.5) < 0.03
    assert not torch.equal(mask[0], mask[1])
    assert torch.equal(mask, figures.make_mask("random", 20, seed=1))
    assert not torch.equal(mask, figures.make_mask("random", 20, seed=2))


def test_unknown_mask_is_an_error():
    with pytest.raises(ValueError, match="mask must be one of"):
        figures.make_mask("diagonal", 2)


# sample_figure


def test_sample_figure_vae(tmp_path):
    out = tmp_path / "samples.png"

    result = figures.sample_figure(_model(), out, n=10, temperature=0.5)

    assert result == {"n": 10, "temperature": 0.5}
    assert _png_size(out) == _grid_size(10, ncol=4)  # ceil(sqrt(10)) columns


def test_sample_figure_vae_writes_json_beside_png(tmp_path):
    out = tmp_path / "samples.png"

    result = figures.sample_figure(_model(), out, n=4)

    assert json.loads(out.with_suffix(".json").read_text()) == result


def test_sample_figure_cvae_draws_a_row_per_class(tmp_path, grids):
    out = tmp_path / "samples.png"

    result = figures.sample_figure(_model("cvae"), out, n=12)

    assert result == {"n_per_class": 4, "temperature": 1.0, "classes": list(NAMES)}
    assert json.loads(out.with_suffix(".json").read_text()) == result
    assert _png_size(out) == _grid_size(12, ncol=4, label_chars=1)
    (drawn,) = grids
    assert drawn.shape == (12, 784)
    assert drawn.min() >= 0 and drawn.max() <= 1
    # At temperature 0 each row is the prior's centre decoded under its own class.
    model = _model("cvae")
    figures.sample_figure(model, tmp_path / "centre.png", n=6, temperature=0.0)
    centre = grids[-1]
    with torch.no_grad():
        expected = model.mean_output(model.decode(torch.zeros(3, 2), torch.eye(3)))
    assert torch.allclose(centre, expected.repeat_interleave(2, dim=0), atol=1e-6)
    assert not torch.allclose(centre[0], centre[2], atol=1e-3)  # the classes decode differently


def test_sample_figure_cvae_single_label(tmp_path):
    out = tmp_path / "b.png"

    result = figures.sample_figure(_model("cvae"), out, n=5, label="b")

    assert result["classes"] == ["b"]
    assert result["n_per_class"] == 5
    assert _png_size(out) == _grid_size(5, ncol=5, label_chars=1)


def test_a_class_folder_named_by_a_number_is_found_by_its_name(tmp_path):
    # Folders 0..10 sort as text: "2" is the fourth class, not the third.
    names = ("0", "1", "10", "2")
    model = VAE(image_config("cvae", names, latent_dim=2, hidden_dims=(16,))).eval()
    assert figures.sample_figure(model, tmp_path / "2.png", n=2, label="2")["classes"] == ["2"]
    # An int is a position.
    assert figures.sample_figure(model, tmp_path / "i.png", n=2, label=2)["classes"] == ["10"]


@pytest.mark.parametrize("index", [1, "1"])
def test_sample_figure_label_by_index_matches_label_by_name(tmp_path, index):
    model = _model("cvae")

    by_name = figures.sample_figure(model, tmp_path / "name.png", n=3, label="b", seed=4)
    by_index = figures.sample_figure(model, tmp_path / "index.png", n=3, label=index, seed=4)

    assert by_index == by_name
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "index.png")),
                                  np.asarray(Image.open(tmp_path / "name.png")))


@pytest.mark.parametrize(("label", "message"), [("zebra", "unknown label"), (3, "out of range"),
                                                ("7", "out of range")])
def test_sample_figure_bad_label(tmp_path, label, message):
    out = tmp_path / "x.png"

    with pytest.raises(ValueError, match=message):
        figures.sample_figure(_model("cvae"), out, n=3, label=label)
    assert not out.exists()


# interpolation_figure


@pytest.mark.parametrize("kind", ["vae", "cvae"])
@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolation_figure(tmp_path, grids, kind, method):
    out = tmp_path / "interp.png"
    model, images = _model(kind), _images(10)

    result = figures.interpolation_figure(model, images, out, pairs=3, steps=5, method=method)

    assert set(result) == {"pairs", "steps", "method"}
    assert (result["steps"], result["method"]) == (5, method)
    assert len(result["pairs"]) == 3
    assert all(len(pair) == 2 and all(0 <= i < 10 for i in pair) for pair in result["pairs"])
    assert json.loads(out.with_suffix(".json").read_text()) == result
    assert _png_size(out) == _grid_size(15, ncol=5)
    # Each row is the decoded path of its pair by the method asked for (the first input's class).
    x, one_hot = pixels(images), torch.eye(len(NAMES))[images.labels]
    expected = []
    for a, b in result["pairs"]:
        c = None if kind == "vae" else one_hot[a]
        expected.append(interpolate(model, x[a], x[b], 5, method, c))
    assert torch.allclose(grids[-1], torch.cat(expected), atol=1e-6)


# variations_figure


@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_variations_figure_starts_each_row_with_its_input(tmp_path, grids, kind):
    images = _images(6)
    out = tmp_path / "var.png"

    result = figures.variations_figure(_model(kind), images, out, indices=[4, 1], n=3, spread=0.5)

    assert result == {"indices": [4, 1], "n": 3, "spread": 0.5}
    assert json.loads(out.with_suffix(".json").read_text()) == result
    assert _png_size(out) == _grid_size(8, ncol=4)
    (drawn,) = grids
    x = pixels(images)
    assert torch.equal(drawn[0], x[4])
    assert torch.equal(drawn[4], x[1])


def test_variations_figure_bad_index(tmp_path):
    with pytest.raises(ValueError, match="out of range"):
        figures.variations_figure(_model(), _images(3), tmp_path / "v.png", indices=[3])


# inpainting_figure


@pytest.mark.parametrize("mask", ["right", "center", "random"])
@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_inpainting_figure_keeps_known_pixels(tmp_path, grids, mask, kind):
    images = _images(10)
    out = tmp_path / "inpaint.png"

    result = figures.inpainting_figure(_model(kind), images, out, n=4, mask=mask, iterations=3)

    assert set(result) == {"indices", "mask", "iterations", "hidden_mse_mean_fill",
                           "hidden_mse_one_pass", "hidden_mse_iterative"}
    assert (result["mask"], result["iterations"]) == (mask, 3)
    assert len(result["indices"]) == 4 and result["indices"] == sorted(set(result["indices"]))
    assert all(0 <= value <= 1 for key, value in result.items() if key.startswith("hidden_mse"))
    assert json.loads(out.with_suffix(".json").read_text()) == result
    assert _png_size(out) == _grid_size(16, ncol=4, label_chars=len("original"))

    (drawn,) = grids
    original, masked, one_pass, iterative = drawn.reshape(4, 4, 784)
    known = figures.make_mask(mask, 4)
    assert torch.equal(original, pixels(images.subset(result["indices"])))
    assert torch.equal(masked[known], original[known])
    assert (masked[~known] == 0.5).all()
    assert torch.equal(one_pass[known], original[known])
    assert torch.equal(iterative[known], original[known])
    assert not torch.equal(iterative[~known], original[~known])


def test_inpainting_png_keeps_known_pixels(tmp_path):
    out = tmp_path / "inpaint.png"
    figures.inpainting_figure(_model(), _images(10), out, n=3, mask="right", iterations=2)

    grid = np.asarray(Image.open(out))
    left = 8 + 6 * len("original") + 2

    def tile(row, col):
        y, x = 2 + row * TILE, left + col * TILE
        return grid[y:y + 56:2, x:x + 56:2]  # undo the 2× nearest-neighbour upscaling

    for col in range(3):
        for row in (2, 3):  # one pass, iterated passes
            np.testing.assert_array_equal(tile(row, col)[:, :14], tile(0, col)[:, :14])
        assert (tile(1, col)[:, 14:] == 128).all()  # masked pixels shown as 0.5


def test_inpainting_figure_caps_n_at_the_number_of_images(tmp_path):
    result = figures.inpainting_figure(_model(), _images(3), tmp_path / "i.png", n=8, iterations=1)

    assert result["indices"] == [0, 1, 2]


# anomaly_report


def _read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_anomaly_report_scores_every_image_in_input_order(tmp_path):
    model, images = _model(), _images(12)
    out = tmp_path / "scores.csv"

    result = figures.anomaly_report(model, images, out, top=5, seed=3)

    expected = anomaly_score(model, pixels(images), generator=torch.Generator().manual_seed(3)).numpy()
    rows = _read_csv(out)
    assert list(rows[0]) == ["index", "label", "class_name", "score"]
    assert [int(r["index"]) for r in rows] == list(range(12))
    assert [int(r["label"]) for r in rows] == images.labels.tolist()
    assert [r["class_name"] for r in rows] == [NAMES[c] for c in images.labels]
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected, rtol=0, atol=1e-3)

    assert result["n"] == 12 and result["method"] == "elbo"
    assert result["mean_score"] == pytest.approx(expected.mean(), rel=1e-5)
    assert result["most_unusual"] == np.argsort(-expected)[:5].tolist()
    assert result["mean_score_by_class"] == pytest.approx(
        {name: expected[images.labels == c].mean() for c, name in enumerate(NAMES)}, rel=1e-5)
    assert "auroc_excluded_class" not in result
    assert json.loads(out.with_suffix(".json").read_text()) == result
    assert _png_size(out.with_suffix(".png")) == _grid_size(5, ncol=8)  # 5 columns: no more than tiles


def test_anomaly_report_keeps_input_order_across_batches(tmp_path):
    images = _images(11)
    out = tmp_path / "scores.csv"

    figures.anomaly_report(_model("cvae"), images, out, method="iwae", batch_size=4)
    figures.anomaly_report(_model("cvae"), images, tmp_path / "one.csv", method="iwae", batch_size=1000)

    rows = _read_csv(out)
    assert [int(r["index"]) for r in rows] == list(range(11))
    assert [int(r["label"]) for r in rows] == images.labels.tolist()
    # Each image keeps its own score (and its own class's condition) whatever the batching.
    batched = np.array([float(r["score"]) for r in rows])
    whole = np.array([float(r["score"]) for r in _read_csv(tmp_path / "one.csv")])
    np.testing.assert_allclose(batched, whole, atol=1e-3)
    assert len(np.unique(whole.round(3))) == 11  # distinct scores, so a shuffle would show


@pytest.mark.parametrize("excluded", [0, 1])
def test_anomaly_report_gives_auroc_of_the_excluded_class(tmp_path, excluded):
    split = {"seed": 0, "val_fraction": 0.1, "test_fraction": 0.1, "exclude_class": excluded}
    model, images = _model(split=split), _images(12)
    out = tmp_path / "scores.csv"

    result = figures.anomaly_report(model, images, out)

    scores = np.array([float(r["score"]) for r in _read_csv(out)])
    assert result["excluded_class"] == excluded
    assert 0.0 <= result["auroc_excluded_class"] <= 1.0
    assert result["auroc_excluded_class"] == pytest.approx(auroc(scores, images.labels == excluded))
    assert json.loads(out.with_suffix(".json").read_text())["auroc_excluded_class"] == pytest.approx(
        result["auroc_excluded_class"])


def test_anomaly_report_without_the_excluded_class_in_the_images(tmp_path):
    model = _model(split={"exclude_class": 1})
    images = _images(12)
    images = images.subset(images.labels != 1)

    result = figures.anomaly_report(model, images, tmp_path / "scores.csv")

    assert "auroc_excluded_class" not in result
    assert set(result["mean_score_by_class"]) == {"a", "c"}


def test_anomaly_report_on_unlabelled_images(tmp_path):
    out = tmp_path / "scores.csv"

    result = figures.anomaly_report(_model(), _images(4, labelled=False), out)

    rows = _read_csv(out)
    assert [(r["label"], r["class_name"]) for r in rows] == [("", "")] * 4
    assert "mean_score_by_class" not in result
