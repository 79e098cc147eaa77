"""Read a folder of image files (flat, or one subfolder per class) into an ImageSet."""

import os
from pathlib import Path

import numpy as np
from PIL import Image

from molvae.images.datasets import IMAGE_SHAPE, ImageSet

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def read_png_folder(root: str | os.PathLike) -> ImageSet:
    """Read the images under ``root`` as 28×28 grayscale.

    If ``root`` has subfolders, each subfolder is a class (labels follow the sorted folder
    names) and image files directly in ``root`` are not allowed; otherwise ``root`` is a flat
    folder of unlabelled images. Files are read in sorted name order; files with other
    suffixes and hidden files or folders (names starting with ".") are ignored.

    Raises
    ------
    ValueError
        If ``root`` is not a directory, holds no images (or a class folder holds none),
        or an image cannot be read.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    top_files = _image_files(root)

    if not class_dirs:
        if not top_files:
            raise ValueError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) found")
        return ImageSet(np.stack([_read_image(f) for f in top_files]))

    if top_files:
        raise ValueError(
            f"{root}: has class subfolders and also images at the top level "
            f"(e.g. {top_files[0].name}); move them into a class folder"
        )
    images, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = _image_files(class_dir)
        if not files:
            raise ValueError(f"{class_dir}: class folder holds no image files")
        images.extend(_read_image(f) for f in files)
        labels.extend([label] * len(files))
    return ImageSet(
        np.stack(images),
        np.asarray(labels, dtype=np.int64),
        tuple(d.name for d in class_dirs),
    )


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            # Bilinear: Pillow widens the kernel when shrinking, so it antialiases, and unlike
            # bicubic or Lanczos it cannot overshoot and ring around sharp edges.
            small = image.convert("L").resize(
                (IMAGE_SHAPE[1], IMAGE_SHAPE[0]), Image.Resampling.BILINEAR
            )
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # SyntaxError is how some Pillow plugins report corrupt data met while decoding.
        raise ValueError(f"{path}: cannot read image ({exc})") from exc
    return np.asarray(small, dtype=np.uint8)
