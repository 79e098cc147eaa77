import numpy as np
import pytest
import torch
from PIL import Image

from molvae.images.render import image_grid, save_grid, to_uint8

# to_uint8


def test_to_uint8_scales_clips_and_rounds_floats():
    values = np.array([-0.5, 0.0, 1.4 / 255, 1.6 / 255, 0.2, 100 / 255, 1.0, 1.7])
    images = np.zeros((1, 784))
    images[0, : len(values)] = values

    result = to_uint8(images)

    assert result.dtype == np.uint8
    assert result.shape == (1, 28, 28)
    np.testing.assert_array_equal(result.reshape(-1)[: len(values)], [0, 0, 1, 2, 51, 100, 255, 255])
    assert (result.reshape(-1)[len(values):] == 0).all()


def test_to_uint8_accepts_tensors_and_any_leading_shape():
    tensor = torch.full((2, 3, 784), 0.5, requires_grad=True)

    result = to_uint8(tensor)

    assert result.shape == (6, 28, 28)
    assert (result == 128).all()


def test_to_uint8_passes_uint8_through_unscaled():
    images = np.random.default_rng(0).integers(0, 256, size=(3, 784), dtype=np.uint8)

    result = to_uint8(images)

    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, images.reshape(3, 28, 28))


def test_to_uint8_custom_shape():
    assert to_uint8(np.ones((4, 6)), shape=(2, 3)).shape == (4, 2, 3)


# image_grid


def test_grid_size_without_labels():
    # 5 tiles in 4 columns → 2 rows; each tile 28·scale px, pad around and between tiles.
    grid = image_grid(np.zeros((5, 784)), ncol=4, scale=1, pad=3)

    assert grid.mode == "L"
    assert grid.size == (4 * (28 + 3) + 3, 2 * (28 + 3) + 3)


def test_grid_size_with_default_scale_and_pad():
    grid = image_grid(np.zeros((7, 784)), ncol=3)

    assert grid.size == (3 * (56 + 2) + 2, 3 * (56 + 2) + 2)


def test_grid_row_labels_add_a_column_as_wide_as_the_longest_label():
    plain = image_grid(np.zeros((4, 784)), ncol=2, scale=1, pad=2)
    labelled = image_grid(np.zeros((4, 784)), ncol=2, scale=1, pad=2, row_labels=["ab", "abcd"])

    assert labelled.size == (plain.width + 8 + 6 * 4, plain.height)


@pytest.mark.parametrize(("ncol", "columns"), [(10, 3), (0, 1)])
def test_grid_column_count_is_clamped_to_the_number_of_tiles(ncol, columns):
    grid = image_grid(np.zeros((3, 784)), ncol=ncol, scale=1, pad=2)
    rows = -(-3 // columns)

    assert grid.size == (columns * 30 + 2, rows * 30 + 2)


def test_grid_places_tiles_row_by_row_on_white_padding():
    tiles = np.stack([np.full(784, v, dtype=np.uint8) for v in (0, 60, 120)])

    grid = np.asarray(image_grid(tiles, ncol=2, scale=2, pad=2))

    # Tile (r, c) starts at x = pad + c·(56 + pad), y = pad + r·(56 + pad).
    assert (grid[2:58, 2:58] == 0).all()
    assert (grid[2:58, 60:116] == 60).all()
    assert (grid[60:116, 2:58] == 120).all()
    assert (grid[60:116, 60:116] == 255).all()  # no fourth tile
    assert (grid[:2] == 255).all() and (grid[:, 58:60] == 255).all()


def test_grid_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no images"):
        image_grid(np.zeros((0, 784)), ncol=4)


# save_grid


def test_save_grid_writes_a_png_of_the_grid_size(tmp_path):
    images = torch.rand(6, 784)
    out = tmp_path / "nested" / "grid.png"

    returned = save_grid(out, images, ncol=4, row_labels=["one", "two"])

    assert returned == out
    assert [p.name for p in out.parent.iterdir()] == ["grid.png"]  # no temporary file left
    with Image.open(out) as png:
        assert png.format == "PNG"
        assert png.mode == "L"
        assert png.size == image_grid(images, 4, row_labels=["one", "two"]).size
        np.testing.assert_array_equal(np.asarray(png), np.asarray(image_grid(images, 4,
                                                                             row_labels=["one", "two"])))
