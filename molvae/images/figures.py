"""The image commands' outputs: a PNG grid and, where there are figures, a JSON file.

Each function takes a loaded model and images, writes ``out`` (PNG) and returns the
figures it also writes to ``out.with_suffix('.json')``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molvae.images.datasets import IMAGE_SHAPE, ImageSet
from molvae.images.experiment import one_hot, pixels
from molvae.images.render import save_grid
from molvae.io import atomic_path, write_json
from molvae.latent import anomaly_score, inpaint, interpolate, sample_prior, variations
from molvae.models.core import VAE
from molvae.stats import auroc

MASKS = ("right", "left", "top", "bottom", "center", "random")


def _device(model: VAE) -> torch.device:
    return next(model.parameters()).device


def _class_index(model: VAE, label: str | int) -> int:
    names = model.config.metadata.get("class_names", [])
    if not isinstance(label, int) and label in names:  # a folder named "2" is class "2", wherever it sorts
        return names.index(label)
    if isinstance(label, int) or str(label).isdigit():
        index = int(label)
        if not 0 <= index < model.condition_dim:
            raise ValueError(f"label {index} is out of range for {model.condition_dim} classes")
        return index
    if label not in names:
        raise ValueError(f"unknown label {label!r}; classes are {names}")
    return names.index(label)


def _conditions(model: VAE, images: ImageSet) -> torch.Tensor | None:
    if not model.condition_dim:
        return None
    return one_hot(images.labels, model.condition_dim).to(_device(model))


def sample_figure(model: VAE, out: Path, n: int = 64, temperature: float = 1.0,
                  label: str | int | None = None, seed: int = 0) -> dict[str, Any]:
    """Prior samples; a CVAE draws one row per class (or ``n`` of one ``label``)."""
    gen = torch.Generator(device=_device(model)).manual_seed(seed)
    names = model.config.metadata.get("class_names", [])
    if not model.condition_dim:
        images = sample_prior(model, n, temperature, generator=gen)
        save_grid(out, images, ncol=int(np.ceil(np.sqrt(n))))
        figures = {"n": n, "temperature": temperature}
        write_json(out.with_suffix(".json"), figures)
        return figures
    classes = [_class_index(model, label)] if label is not None else list(range(model.condition_dim))
    per_class = n if label is not None else max(1, n // len(classes))
    codes = one_hot(classes, model.condition_dim).to(_device(model))
    rows = [sample_prior(model, per_class, temperature, code, gen) for code in codes]
    save_grid(out, torch.cat(rows), ncol=per_class, row_labels=[names[c] for c in classes])
    figures = {"n_per_class": per_class, "temperature": temperature, "classes": [names[c] for c in classes]}
    write_json(out.with_suffix(".json"), figures)
    return figures


def interpolation_figure(model: VAE, images: ImageSet, out: Path, pairs: int = 6, steps: int = 10,
                         method: str = "lerp", seed: int = 0) -> dict[str, Any]:
    """One row per random pair of inputs: the decoded path between their encodings."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=(pairs, 2), replace=len(images) < 2 * pairs)
    x = pixels(images).to(_device(model))
    cond = _conditions(model, images)
    rows = []
    for a, b in chosen:
        # A CVAE interpolates within the first input's class.
        c = None if cond is None else cond[a]
        rows.append(interpolate(model, x[a], x[b], steps, method, c))
    save_grid(out, torch.cat(rows), ncol=steps)
    figures = {"pairs": chosen.tolist(), "steps": steps, "method": method}
    write_json(out.with_suffix(".json"), figures)
    return figures


def variations_figure(model: VAE, images: ImageSet, out: Path, indices: list[int], n: int = 10,
                      spread: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """For each chosen input: the input itself, then ``n`` variations around it."""
    gen = torch.Generator(device=_device(model)).manual_seed(seed)
    x = pixels(images).to(_device(model))
    cond = _conditions(model, images)
    rows = []
    for i in indices:
        if not 0 <= i < len(images):
            raise ValueError(f"index {i} is out of range for {len(images)} images")
        c = None if cond is None else cond[i]
        rows += [x[i:i + 1], variations(model, x[i], n, spread, c, gen)]
    save_grid(out, torch.cat(rows), ncol=n + 1)
    figures = {"indices": indices, "n": n, "spread": spread}
    write_json(out.with_suffix(".json"), figures)
    return figures


def make_mask(kind: str, n: int, seed: int = 0) -> torch.Tensor:
    """Boolean (n, 784) mask, True where pixels are known; ``kind`` names the hidden part."""
    h, w = IMAGE_SHAPE
    known = torch.ones((h, w), dtype=torch.bool)
    if kind == "right":
        known[:, w // 2:] = False
    elif kind == "left":
        known[:, : w // 2] = False
    elif kind == "top":
        known[: h // 2] = False
    elif kind == "bottom":
        known[h // 2:] = False
    elif kind == "center":
        known[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = False
    elif kind == "random":
        gen = torch.Generator().manual_seed(seed)
        return torch.rand((n, h * w), generator=gen) < 0.5
    else:
        raise ValueError(f"mask must be one of {MASKS}, got {kind!r}")
    return known.reshape(1, -1).expand(n, -1).clone()


def inpainting_figure(model: VAE, images: ImageSet, out: Path, n: int = 8, mask: str = "right",
                      iterations: int = 20, seed: int = 0) -> dict[str, Any]:
    """Rows: originals, masked inputs, one-pass fill, iterative fill; MSE on hidden pixels."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), size=min(n, len(images)), replace=False))
    subset = images.subset(chosen)
    x = pixels(subset).to(_device(model))
    known = make_mask(mask, len(x), seed).to(x.device)
    cond = _conditions(model, subset)
    one_pass = inpaint(model, x, known, 1, cond)
    iterative = inpaint(model, x, known, iterations, cond)
    masked = torch.where(known, x, torch.full_like(x, 0.5))
    save_grid(out, torch.cat([x, masked, one_pass, iterative]), ncol=len(x),
              row_labels=["original", "masked", "1 pass", f"{iterations} passes"])

    def hidden_mse(filled: torch.Tensor) -> float:
        return float(((filled - x)[~known] ** 2).mean())

    figures = {"indices": chosen.tolist(), "mask": mask, "iterations": iterations,
               "hidden_mse_mean_fill": hidden_mse(torch.where(known, x, x[known].mean())),
               "hidden_mse_one_pass": hidden_mse(one_pass),
               "hidden_mse_iterative": hidden_mse(iterative)}
    write_json(out.with_suffix(".json"), figures)
    return figures


def anomaly_report(model: VAE, images: ImageSet, out_csv: Path, method: str = "elbo", top: int = 32,
                   seed: int = 0, batch_size: int = 1000) -> dict[str, Any]:
    """Score every image, write a CSV in input order, a grid of the most unusual, and JSON.

    When the model was trained without one class (``split.exclude_class`` in its config),
    the JSON also gives the AUROC of the score for detecting that class.
    """
    gen = torch.Generator(device=_device(model)).manual_seed(seed)
    x_all, c_all = pixels(images), _conditions(model, images)
    scores = []
    for start in range(0, len(images), batch_size):
        xb = x_all[start:start + batch_size].to(_device(model))
        cb = None if c_all is None else c_all[start:start + batch_size]
        scores.append(anomaly_score(model, xb, cb, method=method, generator=gen).cpu())
    score = torch.cat(scores).numpy()
    names = images.class_names
    with atomic_path(out_csv) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "label", "class_name", "score"])
        for i, s in enumerate(score):
            label = "" if images.labels is None else int(images.labels[i])
            name = names[label] if label != "" and names else ""
            writer.writerow([i, label, name, f"{s:.4f}"])
    worst = np.argsort(-score, kind="stable")[:top]
    save_grid(out_csv.with_suffix(".png"), pixels(images.subset(worst)), ncol=8)
    figures: dict[str, Any] = {"method": method, "n": len(score), "mean_score": float(score.mean()),
                               "most_unusual": worst.tolist()}
    if images.labels is not None:
        figures["mean_score_by_class"] = {
            (names[c] if names else str(c)): float(score[images.labels == c].mean())
            for c in np.unique(images.labels)}
        excluded = (model.config.metadata.get("split") or {}).get("exclude_class")
        if excluded is not None and 0 < (images.labels == excluded).sum() < len(score):
            figures["excluded_class"] = int(excluded)
            figures["auroc_excluded_class"] = auroc(score, images.labels == excluded)
    write_json(out_csv.with_suffix(".json"), figures)
    return figures
