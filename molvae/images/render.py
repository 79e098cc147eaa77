"""Image grids as PNG files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from molvae.io import atomic_path


def to_uint8(images: torch.Tensor | np.ndarray, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Float images in [0, 1] (any leading shape, flattened pixels) → uint8 (n, h, w)."""
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    return images.reshape(-1, *shape)


def image_grid(images: torch.Tensor | np.ndarray, ncol: int, scale: int = 2, pad: int = 2,
               row_labels: Sequence[str] | None = None, shape: tuple[int, int] = (28, 28)) -> Image.Image:
    """Tile images row by row into one grayscale picture, optionally labelling each row."""
    tiles = to_uint8(images, shape)
    if len(tiles) == 0:
        raise ValueError("no images to draw")
    ncol = max(1, min(ncol, len(tiles)))
    nrow = -(-len(tiles) // ncol)
    h, w = shape[0] * scale, shape[1] * scale
    label_width = 0 if not row_labels else 8 + 6 * max(len(label) for label in row_labels)
    canvas = Image.new("L", (label_width + ncol * (w + pad) + pad, nrow * (h + pad) + pad), color=255)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncol)
        image = Image.fromarray(tile, mode="L").resize((w, h), Image.NEAREST)
        canvas.paste(image, (label_width + pad + c * (w + pad), pad + r * (h + pad)))
    if row_labels:
        draw = ImageDraw.Draw(canvas)
        for r, label in enumerate(row_labels[:nrow]):
            draw.text((4, pad + r * (h + pad) + h // 2 - 5), label, fill=0)
    return canvas


def save_grid(path: str | Path, images: torch.Tensor | np.ndarray, ncol: int, **kwargs) -> Path:
    """Write :func:`image_grid` to ``path`` as PNG, atomically."""
    with atomic_path(path) as tmp:
        image_grid(images, ncol, **kwargs).save(tmp, format="PNG")
    return Path(path)
