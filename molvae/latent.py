"""Latent-space operations for any model of the shared core.

Inputs and outputs are float tensors of shape (n, input_dim) in data space; outputs are
the decoder's expected values (probabilities for Bernoulli models).
"""

from __future__ import annotations

from typing import Literal

import torch

from molvae.models.core import VAE
from molvae.objectives import iwae_nll, negative_elbo


@torch.no_grad()
def sample_prior(model: VAE, n: int, temperature: float = 1.0, condition: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` decoded draws from the prior N(0, temperature² I)."""
    model.eval()
    return model.sample(n, temperature, condition, generator)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation between rows ``a`` and ``b`` (shape (d,)) at fractions ``t``."""
    t = t.unsqueeze(1)
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows ``a`` and ``b`` (shape (d,)) at fractions ``t``.

    Falls back to linear interpolation when the vectors are (anti)parallel, where the
    great circle is undefined.
    """
    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_n * b_n).sum().clamp(-1.0, 1.0))
    if torch.sin(omega).abs() < 1e-6:
        return lerp(a, b, t)
    t = t.unsqueeze(1)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


_PATHS = {"lerp": lerp, "slerp": slerp}


@torch.no_grad()
def interpolate(model: VAE, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10,
                method: Literal["lerp", "slerp"] = "lerp", condition: torch.Tensor | None = None
                ) -> torch.Tensor:
    """Decode ``steps`` points on the path between the posterior means of two inputs.

    ``x_a`` and ``x_b`` are single inputs of shape (input_dim,) or (1, input_dim). The
    first and last rows are the reconstructions of ``x_a`` and ``x_b``.
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    if method not in _PATHS:
        raise ValueError(f"method must be 'lerp' or 'slerp', got {method!r}")
    model.eval()
    pair = torch.stack([x_a.reshape(-1), x_b.reshape(-1)])
    cond = None if condition is None else condition.reshape(1, -1).expand(2, -1)
    mu, _ = model.encode(pair, cond)
    t = torch.linspace(0.0, 1.0, steps, device=mu.device)
    z = _PATHS[method](mu[0], mu[1], t)
    path_cond = None if condition is None else condition.reshape(1, -1).expand(steps, -1)
    return model.mean_output(model.decode(z, path_cond))


@torch.no_grad()
def variations(model: VAE, x: torch.Tensor, n: int, spread: float = 0.5,
               condition: torch.Tensor | None = None, generator: torch.Generator | None = None
               ) -> torch.Tensor:
    """Decode ``n`` points z = μ(x) + spread·ε around one input's posterior mean.

    ``spread`` is in prior standard deviations: 0 reproduces the reconstruction and 1
    wanders as far as typical prior samples lie apart.
    """
    if spread < 0:
        raise ValueError(f"spread must be >= 0, got {spread}")
    model.eval()
    cond = None if condition is None else condition.reshape(1, -1)
    mu, _ = model.encode(x.reshape(1, -1), cond)
    eps = torch.randn((n, model.latent_dim), generator=generator, device=mu.device)
    z = mu + spread * eps
    return model.mean_output(model.decode(z, None if cond is None else cond.expand(n, -1)))


@torch.no_grad()
def inpaint(model: VAE, x: torch.Tensor, known: torch.Tensor, iterations: int = 20,
            condition: torch.Tensor | None = None) -> torch.Tensor:
    """Fill the unknown entries of ``x`` by iterating encode → decode → restore known.

    Parameters
    ----------
    x
        Inputs, shape (n, input_dim); values where ``known`` is False are ignored.
    known
        Boolean mask of the same shape, True where the value is observed.
    iterations
        Rounds of projection; each keeps the observed values and replaces the rest with
        the reconstruction, so the fill converges toward a completion consistent with
        the observed part rather than the single-pass guess.
    """
    if known.shape != x.shape:
        raise ValueError(f"mask shape {tuple(known.shape)} does not match inputs {tuple(x.shape)}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    model.eval()
    known = known.bool()
    # Start the unknown entries at the data mean of the observed part, a neutral guess.
    fill = torch.where(known, x, x[known].mean() if known.any() else torch.tensor(0.5))
    for _ in range(iterations):
        mu, _ = model.encode(fill, condition)
        fill = torch.where(known, x, model.mean_output(model.decode(mu, condition)))
    return fill


@torch.no_grad()
def anomaly_score(model: VAE, x: torch.Tensor, condition: torch.Tensor | None = None,
                  method: Literal["elbo", "iwae"] = "elbo", n_samples: int = 10, k: int = 100,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample anomaly score in nats: −ELBO (mean of ``n_samples`` draws) or IWAE NLL.

    Higher means less likely under the model, i.e. more unusual.
    """
    model.eval()
    if method == "elbo":
        return negative_elbo(model, x, condition, n_samples, generator)[0]
    if method == "iwae":
        return iwae_nll(model, x, condition, k, generator)
    raise ValueError(f"method must be 'elbo' or 'iwae', got {method!r}")
