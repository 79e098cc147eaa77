"""Image sets and the sources they are loaded from (IDX directories or files, image folders)."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molvae.images.idx import read_idx

IMAGE_SHAPE = (28, 28)

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

BUNDLED_IMAGES_DIR = Path(__file__).resolve().parents[2] / "data" / "fashion-mnist"

# File-name prefix of each split in an MNIST-style directory -> split name.
_IDX_SPLITS = {"train": "train", "t10k": "test"}


# eq=False: the generated __eq__ would compare arrays elementwise and fail on truthiness.
@dataclass(frozen=True, eq=False)
class ImageSet:
    """Grayscale images with optional integer labels.

    Attributes
    ----------
    images
        uint8 array of shape (N, 28, 28).
    labels
        int64 array of shape (N,), or None for unlabelled images.
    class_names
        Name of each label value (index = label); may be empty.
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        images = self.images
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            raise ValueError(f"images must be a uint8 numpy array, got {_describe(images)}")
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"images must have shape (N, 28, 28), got {images.shape}")
        if not isinstance(self.class_names, tuple) or not all(
            isinstance(name, str) for name in self.class_names
        ):
            raise ValueError("class_names must be a tuple of str")
        labels = self.labels
        if labels is None:
            return
        if not isinstance(labels, np.ndarray) or labels.dtype != np.int64:
            raise ValueError(f"labels must be an int64 numpy array, got {_describe(labels)}")
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
        if labels.size and labels.min() < 0:
            raise ValueError(f"labels must be non-negative, got {labels.min()}")
        if self.class_names and labels.size and labels.max() >= len(self.class_names):
            raise ValueError(
                f"label {labels.max()} is out of range for {len(self.class_names)} class names"
            )

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "ImageSet":
        """Return the images (and labels) at ``indices``: integer positions or a boolean mask."""
        idx = np.asarray(indices)
        if idx.ndim != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {idx.shape}")
        if idx.size == 0:
            # np.asarray([]) is float64, which numpy refuses as an index.
            idx = idx.astype(np.intp)
        labels = None if self.labels is None else self.labels[idx]
        return ImageSet(self.images[idx], labels, self.class_names)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"array of dtype {value.dtype}"
    return type(value).__name__


def load_image_source(source: str | Path) -> dict[str, ImageSet]:
    """Load image splits from ``source``.

    Parameters
    ----------
    source
        One of:

        - ``"bundled"``: the Fashion-MNIST test split shipped in ``data/fashion-mnist``;
        - a directory of MNIST-style IDX files (``train-images-idx3-ubyte[.gz]``,
          ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``,
          ``t10k-labels-idx1-ubyte[.gz]``); ``t10k`` becomes split ``"test"``, either split
          may be missing, and labels are optional;
        - a single images IDX file, split ``"train"``; its labels are read from the file whose
          name has ``labels-idx1`` in place of ``images-idx3``, if there is one;
        - a folder of images, flat or with one subfolder per class, split ``"train"``.

    Returns
    -------
    dict[str, ImageSet]
        Split name (``"train"``, ``"test"``) to image set.

    Raises
    ------
    FileNotFoundError
        If ``source`` does not exist.
    ValueError
        If ``source`` holds none of the above, or a file in it is malformed.
    """
    if isinstance(source, str) and source == "bundled":
        if not BUNDLED_IMAGES_DIR.is_dir():
            raise FileNotFoundError(f"bundled images not found: {BUNDLED_IMAGES_DIR} is missing")
        path = BUNDLED_IMAGES_DIR
    else:
        path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"image source not found: {path}")

    if path.is_file():
        return _load_idx_splits({"train": _single_file_pair(path)}, path.resolve().parent.name)

    pairs = _find_idx_pairs(path)
    if pairs:
        return _load_idx_splits(pairs, path.resolve().name)

    # Imported here because folders builds ImageSets, so a module-level import is circular.
    from molvae.images.folders import IMAGE_SUFFIXES, read_png_folder

    candidates = [path, *(child for child in path.iterdir() if child.is_dir())]
    if not any(
        f.suffix.lower() in IMAGE_SUFFIXES for folder in candidates for f in folder.iterdir()
    ):
        raise ValueError(
            f"{path}: expected MNIST-style IDX files (train-images-idx3-ubyte[.gz], "
            f"t10k-images-idx3-ubyte[.gz], ...) or image files ({', '.join(IMAGE_SUFFIXES)}), "
            "found neither"
        )
    return {"train": read_png_folder(path)}


def _single_file_pair(images_file: Path) -> tuple[Path, Path | None]:
    if "images-idx3" not in images_file.name:
        return images_file, None
    labels_file = images_file.with_name(images_file.name.replace("images-idx3", "labels-idx1"))
    return images_file, labels_file if labels_file.is_file() else None


def _find_idx_pairs(directory: Path) -> dict[str, tuple[Path, Path | None]]:
    """Map split name to (images file, labels file or None) for the IDX files in ``directory``."""
    pairs = {}
    for prefix, split in _IDX_SPLITS.items():
        images_file = _find_one(directory, f"{prefix}-images-idx3-ubyte")
        labels_file = _find_one(directory, f"{prefix}-labels-idx1-ubyte")
        if images_file is None:
            if labels_file is not None:
                raise ValueError(
                    f"{labels_file}: labels without images: "
                    f"expected {directory / (prefix + '-images-idx3-ubyte')}[.gz] next to it"
                )
            continue
        pairs[split] = (images_file, labels_file)
    return pairs


def _find_one(directory: Path, stem: str) -> Path | None:
    found = [p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()]
    if len(found) > 1:
        raise ValueError(f"{directory}: both {stem} and {stem}.gz exist; keep only one")
    return found[0] if found else None


def _load_idx_splits(
    pairs: dict[str, tuple[Path, Path | None]], dir_name: str
) -> dict[str, ImageSet]:
    loaded = {split: _read_idx_pair(*pair) for split, pair in pairs.items()}
    label_arrays = [labels for _, labels in loaded.values() if labels is not None]
    class_names: tuple[str, ...] = ()
    if label_arrays:
        n_classes = max(int(labels.max(initial=0)) for labels in label_arrays) + 1
        if n_classes <= len(FASHION_MNIST_CLASSES) and "fashion" in dir_name.lower():
            class_names = FASHION_MNIST_CLASSES
        else:
            class_names = tuple(str(label) for label in range(n_classes))
    return {
        split: ImageSet(images, labels, class_names if labels is not None else ())
        for split, (images, labels) in loaded.items()
    }


def _read_idx_pair(
    images_file: Path, labels_file: Path | None
) -> tuple[np.ndarray, np.ndarray | None]:
    images = read_idx(images_file)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(
            f"{images_file}: expected uint8 images of shape (N, 28, 28), "
            f"got {images.dtype} of shape {images.shape}"
        )
    if labels_file is None:
        return images, None
    labels = read_idx(labels_file)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"{labels_file}: expected a 1-D integer label array, "
            f"got {labels.dtype} of shape {labels.shape}"
        )
    if len(labels) != len(images):
        raise ValueError(
            f"{labels_file}: {len(labels)} labels for {len(images)} images in {images_file.name}"
        )
    if labels.size and labels.min() < 0:
        raise ValueError(f"{labels_file}: negative label {labels.min()}")
    return images, labels.astype(np.int64)
