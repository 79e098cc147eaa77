"""Likelihoods, the analytic KL, β / warm-up / capacity schedules, and NLL estimates.

Every loss is reported per sample in nats (summed over features and latent units), so
numbers are comparable across batch sizes and with the literature. Schedules are pure
functions of the global step that the trainer passes in: evaluating a validation set
never advances them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F

from molvae.models.config import ObjectiveConfig
from molvae.models.core import VAE, VAEOutput

_LOG_2PI = math.log(2 * math.pi)
Scalar = TypeVar("Scalar", torch.Tensor, float)


def log_likelihood(output: torch.Tensor, x: torch.Tensor, config: ObjectiveConfig) -> torch.Tensor:
    """log p(x | z) per sample, shape (n,).

    Bernoulli uses BCE-with-logits on the decoder's logits (stable for any logit, and
    valid for continuous targets in [0, 1]); Gaussian uses the decoder output as the
    mean with a fixed standard deviation.
    """
    output = output.float()
    if config.likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(output, x, reduction="none")
    else:
        std = config.gaussian_std
        nll = 0.5 * ((x - output) / std) ** 2 + math.log(std) + 0.5 * _LOG_2PI
    return -nll.sum(dim=1)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Analytic KL(N(μ, σ²) ‖ N(0, 1)) per sample and latent unit, shape (n, d)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def beta_at(config: ObjectiveConfig, step: int) -> float:
    """β at a global step: ``beta`` after a linear warm-up over ``warmup_steps``."""
    if config.warmup_steps == 0:
        return config.beta
    return config.beta * min(1.0, step / config.warmup_steps)


def capacity_at(config: ObjectiveConfig, step: int) -> float | None:
    """Target KL capacity C at a global step (Burgess et al. 2018), or None when off."""
    if config.capacity_max is None:
        return None
    return config.capacity_max * min(1.0, step / config.capacity_steps)


@dataclass
class LossTerms:
    """The objective of one batch and its parts (per-sample tensors are detached-free)."""

    loss: torch.Tensor  # scalar to minimize
    recon: torch.Tensor  # (n,) −log p(x|z), nats
    kl: torch.Tensor  # (n,) KL(q(z|x) ‖ p(z)), nats
    kl_per_unit: torch.Tensor  # (d,) batch mean per latent unit
    beta: float
    capacity: float | None


def elbo_loss(output: VAEOutput, x: torch.Tensor, config: ObjectiveConfig, step: int) -> LossTerms:
    """The weighted negative ELBO used for training at global ``step``."""
    recon = -log_likelihood(output.logits, x, config)
    kl_units = kl_standard_normal(output.mu, output.logvar)
    kl = kl_units.sum(dim=1)
    loss = weighted_loss(config, recon.mean(), kl.mean(), step)
    return LossTerms(loss, recon, kl, kl_units.mean(dim=0), beta_at(config, step),
                     capacity_at(config, step))


def weighted_loss(config: ObjectiveConfig, recon_mean: Scalar, kl_mean: Scalar, step: int) -> Scalar:
    """Combine mean reconstruction and mean KL into the training objective at ``step``.

    Works on tensors (training) and on floats (validation aggregates over batches, where
    the capacity term ``|KL − C|`` must be taken of the mean, not averaged per batch).
    """
    capacity = capacity_at(config, step)
    if capacity is None:
        return recon_mean + beta_at(config, step) * kl_mean
    return recon_mean + config.gamma * abs(kl_mean - capacity)


@torch.no_grad()
def negative_elbo(model: VAE, x: torch.Tensor, condition: torch.Tensor | None = None,
                  n_samples: int = 1, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unweighted (β = 1) −ELBO per sample with ``n_samples`` draws of z.

    Returns
    -------
    (neg_elbo, recon, kl), each of shape (n,), in nats.
    """
    return _negative_elbo_of(model, x, condition, model.encode(x, condition), n_samples, generator)


def _negative_elbo_of(model: VAE, x: torch.Tensor, condition: torch.Tensor | None,
                      posterior: tuple[torch.Tensor, torch.Tensor], n_samples: int,
                      generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # negative_elbo for an already encoded posterior (μ, log σ²), so callers encode once.
    config = model.config.objective
    mu, logvar = posterior
    kl = kl_standard_normal(mu, logvar).sum(dim=1)
    recon = torch.zeros_like(kl)
    for _ in range(n_samples):
        z = model.reparameterize(mu, logvar, generator)
        recon -= log_likelihood(model.decode(z, condition), x, config)
    recon /= n_samples
    return recon + kl, recon, kl


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(dim=-1)


@torch.no_grad()
def iwae_nll(model: VAE, x: torch.Tensor, condition: torch.Tensor | None = None, k: int = 100,
             generator: torch.Generator | None = None, max_rows: int = 20_000) -> torch.Tensor:
    """Importance-sampled NLL estimate −log p(x) per sample (Burda et al., IWAE bound).

    ``−log (1/K Σ_k p(x|z_k) p(z_k) / q(z_k|x))`` with z_k ~ q(z|x). Samples are
    decoded in chunks of at most ``max_rows`` (inputs × K) rows to bound memory.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    config = model.config.objective
    chunk = max(1, max_rows // k)
    out = []
    for start in range(0, x.shape[0], chunk):
        xb = x[start:start + chunk]
        cb = None
        if condition is not None:
            cb = condition[start:start + chunk] if condition.dim() == 2 else condition.expand(len(xb), -1)
        mu, logvar = (t.float() for t in model.encode(xb, cb))
        n, d = mu.shape
        mu_k = mu.unsqueeze(1).expand(n, k, d)
        logvar_k = logvar.unsqueeze(1).expand(n, k, d)
        z = model.reparameterize(mu_k, logvar_k, generator)
        flat_c = None if cb is None else cb.repeat_interleave(k, dim=0)
        logits = model.decode(z.reshape(n * k, d), flat_c)
        log_px = log_likelihood(logits, xb.repeat_interleave(k, dim=0), config).view(n, k)
        log_pz = -0.5 * (_LOG_2PI + z.pow(2)).sum(dim=-1)
        log_qz = _log_normal(z, mu_k, logvar_k)
        log_w = log_px + log_pz - log_qz
        out.append(-(torch.logsumexp(log_w, dim=1) - math.log(k)))
    return torch.cat(out)


@torch.no_grad()
def summarize_elbo(model: VAE, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]],
                   generator: torch.Generator | None = None, iwae_k: int = 0) -> dict[str, float]:
    """Mean −ELBO, reconstruction and KL (1 sample; nats per input) over ``batches``, the
    IWAE NLL when ``iwae_k`` > 0, and the active units (Burda et al.: latent units whose
    posterior mean varies across inputs, variance > 0.01)."""
    model.eval()
    sums = {"neg_elbo": 0.0, "recon": 0.0, "kl": 0.0, "iwae": 0.0}
    means, n = [], 0
    for x, c in batches:
        posterior = model.encode(x, c)
        neg_elbo, recon, kl = _negative_elbo_of(model, x, c, posterior, 1, generator)
        sums["neg_elbo"] += neg_elbo.sum().item()
        sums["recon"] += recon.sum().item()
        sums["kl"] += kl.sum().item()
        if iwae_k:
            sums["iwae"] += iwae_nll(model, x, c, iwae_k, generator).sum().item()
        means.append(posterior[0].float().cpu())
        n += len(x)
    active = int((torch.cat(means).var(dim=0) > 0.01).sum()) if n > 1 else 0
    count = max(1, n)
    summary = {"neg_elbo_nats": sums["neg_elbo"] / count, "recon_nats": sums["recon"] / count,
               "kl_nats": sums["kl"] / count, "active_units": active, "n": n}
    if iwae_k:
        summary["iwae_nll_nats"] = sums["iwae"] / count
    return summary
