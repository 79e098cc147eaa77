import numpy as np
import pytest
from PIL import Image

from molvae.images.folders import read_png_folder


def _save(path, value, size=(28, 28), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_class_subfolders_give_sorted_labels_and_names(tmp_path):
    _save(tmp_path / "shoe" / "b.png", 200)
    _save(tmp_path / "shoe" / "a.png", 100)
    _save(tmp_path / "bag" / "x.bmp", 10)
    _save(tmp_path / "bag" / "notes.txt.png", 20)
    (tmp_path / "bag" / "README.txt").write_text("not an image")

    result = read_png_folder(tmp_path)

    assert result.class_names == ("bag", "shoe")
    np.testing.assert_array_equal(result.labels, [0, 0, 1, 1])
    assert result.labels.dtype == np.int64
    # Files in sorted order within each class: notes.txt.png < x.bmp, a.png < b.png.
    np.testing.assert_array_equal(result.images[:, 0, 0], [20, 10, 100, 200])


def test_flat_folder_is_unlabelled(tmp_path):
    _save(tmp_path / "2.png", 2)
    _save(tmp_path / "1.jpg", 255)
    _save(tmp_path / ".hidden.png", 9)

    result = read_png_folder(tmp_path)

    assert len(result) == 2
    assert result.labels is None
    assert result.class_names == ()
    assert result.images[0, 0, 0] > 250  # 1.jpg first; JPEG is lossy
    assert result.images[1, 0, 0] == 2


def test_rgb_image_is_converted_to_gray_and_resized(tmp_path):
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)  # height 30, width 40
    rgb[..., 0] = 255  # pure red: luma 0.299 * 255
    Image.fromarray(rgb, "RGB").save(tmp_path / "red.png")

    result = read_png_folder(tmp_path)

    assert result.images.shape == (1, 28, 28)
    assert result.images.dtype == np.uint8
    assert np.all(result.images == 76)


def test_unreadable_image_names_the_file(tmp_path):
    _save(tmp_path / "good.png", 1)
    (tmp_path / "broken.png").write_bytes(b"not a png at all")

    with pytest.raises(ValueError, match=r"broken\.png: cannot read image"):
        read_png_folder(tmp_path)


def test_truncated_png_names_the_file(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])

    with pytest.raises(ValueError, match=r"cut\.png"):
        read_png_folder(tmp_path)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing")

    with pytest.raises(ValueError, match="no image files"):
        read_png_folder(tmp_path)


def test_empty_class_folder_is_an_error(tmp_path):
    _save(tmp_path / "a" / "1.png", 1)
    (tmp_path / "b").mkdir()

    with pytest.raises(ValueError, match=r"b: class folder holds no image files"):
        read_png_folder(tmp_path)


def test_images_beside_class_folders_are_an_error(tmp_path):
    _save(tmp_path / "a" / "1.png", 1)
    _save(tmp_path / "stray.png", 1)

    with pytest.raises(ValueError, match=r"stray\.png"):
        read_png_folder(tmp_path)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        read_png_folder(tmp_path / "nope")
