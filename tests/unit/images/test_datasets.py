import numpy as np
import pytest
from PIL import Image

from molvae.images.datasets import (
    BUNDLED_IMAGES_DIR,
    FASHION_MNIST_CLASSES,
    ImageSet,
    load_image_source,
)
from molvae.images.idx import write_idx


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _write_split(directory, prefix, images, labels=None, suffix=".gz"):
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
    if labels is not None:
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)


# ImageSet


def test_image_set_subset_by_indices_and_mask():
    images = _images(4)
    labels = np.array([0, 1, 2, 1], dtype=np.int64)
    full = ImageSet(images, labels, ("a", "b", "c"))

    picked = full.subset([3, 0])
    masked = full.subset(labels == 1)
    empty = full.subset([])

    assert len(full) == 4
    np.testing.assert_array_equal(picked.images, images[[3, 0]])
    np.testing.assert_array_equal(picked.labels, [1, 0])
    assert picked.class_names == ("a", "b", "c")
    np.testing.assert_array_equal(masked.labels, [1, 1])
    assert len(empty) == 0
    assert ImageSet(images).subset([1]).labels is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": np.zeros((2, 28, 28), dtype=np.float32)}, "uint8"),
        ({"images": np.zeros((2, 28, 27), dtype=np.uint8)}, r"shape \(N, 28, 28\)"),
        ({"images": np.zeros((28, 28), dtype=np.uint8)}, r"shape \(N, 28, 28\)"),
        (
            {"images": np.zeros((2, 28, 28), dtype=np.uint8), "labels": np.zeros(2, np.int32)},
            "int64",
        ),
        (
            {"images": np.zeros((2, 28, 28), dtype=np.uint8), "labels": np.zeros(3, np.int64)},
            r"shape \(2,\)",
        ),
        (
            {"images": np.zeros((1, 28, 28), dtype=np.uint8), "labels": np.array([-1])},
            "non-negative",
        ),
        (
            {
                "images": np.zeros((1, 28, 28), dtype=np.uint8),
                "labels": np.array([2]),
                "class_names": ("a", "b"),
            },
            "out of range",
        ),
    ],
    ids=["dtype", "size", "ndim", "label-dtype", "label-length", "negative", "range"],
)
def test_image_set_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageSet(**kwargs)


# load_image_source


def test_idx_directory_with_both_splits(tmp_path):
    root = tmp_path / "digits"
    train_images, test_images = _images(5, seed=1), _images(3, seed=2)
    _write_split(root, "train", train_images, np.array([0, 1, 2, 3, 3], dtype=np.uint8))
    _write_split(root, "t10k", test_images, np.array([4, 0, 1], dtype=np.uint8), suffix="")

    splits = load_image_source(root)

    assert sorted(splits) == ["test", "train"]
    np.testing.assert_array_equal(splits["train"].images, train_images)
    np.testing.assert_array_equal(splits["test"].images, test_images)
    np.testing.assert_array_equal(splits["test"].labels, [4, 0, 1])
    assert splits["train"].labels.dtype == np.int64
    # Names cover the largest label of either split.
    assert splits["train"].class_names == ("0", "1", "2", "3", "4")
    assert splits["test"].class_names == ("0", "1", "2", "3", "4")


def test_fashion_directory_gets_fashion_class_names(tmp_path):
    root = tmp_path / "my-Fashion-data"
    _write_split(root, "t10k", _images(2), np.array([9, 0], dtype=np.uint8))

    splits = load_image_source(str(root))

    assert list(splits) == ["test"]
    assert splits["test"].class_names == FASHION_MNIST_CLASSES


def test_split_without_labels(tmp_path):
    _write_split(tmp_path, "train", _images(2), np.array([0, 1], dtype=np.uint8))
    _write_split(tmp_path, "t10k", _images(3))

    splits = load_image_source(tmp_path)

    assert splits["test"].labels is None
    assert splits["test"].class_names == ()
    assert splits["train"].class_names == ("0", "1")


def test_single_images_file_finds_its_labels(tmp_path):
    images = _images(4)
    _write_split(tmp_path, "t10k", images, np.array([0, 1, 1, 0], dtype=np.uint8))

    splits = load_image_source(tmp_path / "t10k-images-idx3-ubyte.gz")

    assert list(splits) == ["train"]
    np.testing.assert_array_equal(splits["train"].images, images)
    np.testing.assert_array_equal(splits["train"].labels, [0, 1, 1, 0])


def test_single_file_without_labels(tmp_path):
    path = write_idx(tmp_path / "pictures.idx", _images(2))

    splits = load_image_source(path)

    assert splits["train"].labels is None
    assert len(splits["train"]) == 2


def test_image_folder_becomes_train_split(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        Image.new("L", (28, 28), 5).save(tmp_path / cls / "1.png")

    splits = load_image_source(tmp_path)

    assert list(splits) == ["train"]
    assert splits["train"].class_names == ("cat", "dog")


def test_bundled():
    splits = load_image_source("bundled")

    assert list(splits) == ["test"]
    test = splits["test"]
    assert test.images.shape == (10000, 28, 28)
    assert test.class_names == FASHION_MNIST_CLASSES
    np.testing.assert_array_equal(np.bincount(test.labels), [1000] * 10)
    assert BUNDLED_IMAGES_DIR.name == "fashion-mnist"


def test_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_image_source(tmp_path / "nowhere")


def test_directory_with_nothing_usable(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")

    with pytest.raises(ValueError, match=r"expected MNIST-style IDX files .* found neither"):
        load_image_source(tmp_path)


def test_labels_without_images(tmp_path):
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(2, dtype=np.uint8))

    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz: labels without images"):
        load_image_source(tmp_path)


def test_label_count_mismatch(tmp_path):
    _write_split(tmp_path, "train", _images(3), np.zeros(2, dtype=np.uint8))

    with pytest.raises(ValueError, match="2 labels for 3 images"):
        load_image_source(tmp_path)


def test_images_of_wrong_shape(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 32, 32), dtype=np.uint8))

    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: expected uint8 images"):
        load_image_source(tmp_path)


def test_raw_and_gz_copies_are_ambiguous(tmp_path):
    _write_split(tmp_path, "train", _images(1))
    _write_split(tmp_path, "train", _images(1), suffix="")

    with pytest.raises(ValueError, match="both train-images-idx3-ubyte and"):
        load_image_source(tmp_path)


def test_single_file_that_is_not_idx(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("L", (28, 28)).save(path)

    with pytest.raises(ValueError, match=r"photo\.png: not an IDX file: bad magic"):
        load_image_source(path)
