"""The shared VAE: MLP encoder → (μ, log σ²), reparameterization, MLP decoder → logits.

Conditioning (CVAE) is a condition vector concatenated at the encoder input and at the
decoder input; with ``condition_dim == 0`` the same class is a plain VAE, so variants
differ only in their config and objective, never in duplicated network code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from molvae.latent_density import GaussianMixture
from molvae.models.config import VAEConfig

# Where latent draws come from. "fitted" samples the model's fitted latent density (see
# molvae.latent_density) and falls back to N(0, I) for a model without one; "standard" is
# always N(0, I). The model's own methods default to "standard" (image models have no
# density); molecular generation and evaluation default to "fitted".
PRIORS = ("fitted", "standard")

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, activation: str, dropout: float) -> nn.Sequential:
    """Linear layers with activation (and dropout) between them, none after the last."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), _ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


@dataclass
class VAEOutput:
    """What one forward pass produces; ``logits`` are the decoder's raw outputs."""

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


class VAE(nn.Module):
    """A VAE (or CVAE, when ``config.condition_dim > 0``) of the shared core."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.condition_dim = config.condition_dim
        act, drop = config.activation, config.dropout
        self.encoder = mlp(config.input_dim + self.condition_dim, config.hidden_dims,
                           2 * self.latent_dim, act, drop)
        self.decoder = mlp(self.latent_dim + self.condition_dim, tuple(reversed(config.hidden_dims)),
                           config.input_dim, act, drop)
        # Fitted after training and saved beside the weights (latent_density.pt), over the
        # latent means joined with the normalized conditions of a conditional model.
        self.latent_density: GaussianMixture | None = None

    def _join(self, t: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        if self.condition_dim == 0:
            if condition is not None:
                raise ValueError("this model is unconditional; do not pass a condition")
            return t
        if condition is None:
            raise ValueError(f"this model needs a condition of width {self.condition_dim}")
        condition = condition.to(t)
        if condition.dim() == 1:
            condition = condition.expand(t.shape[0], -1)
        if condition.shape != (t.shape[0], self.condition_dim):
            raise ValueError(f"condition must have shape ({t.shape[0]}, {self.condition_dim}), "
                             f"got {tuple(condition.shape)}")
        return torch.cat([t, condition], dim=1)

    def encode(self, x: torch.Tensor,
               condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (μ, log σ²) of q(z | x, c), each of shape (n, latent_dim)."""
        mu, logvar = self.encoder(self._join(x, condition)).chunk(2, dim=1)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """z = μ + σ·ε with ε ~ N(0, I), differentiable in μ and log σ²."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar)

    def decode(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder logits (Bernoulli) or means (Gaussian), shape (n, input_dim)."""
        return self.decoder(self._join(z, condition))

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> VAEOutput:
        mu, logvar = self.encode(x, condition)
        z = self.reparameterize(mu, logvar)
        return VAEOutput(self.decode(z, condition), mu, logvar, z)

    def mean_output(self, logits: torch.Tensor) -> torch.Tensor:
        """The decoder's expected value: probabilities for Bernoulli, means for Gaussian."""
        if self.config.objective.likelihood == "bernoulli":
            return torch.sigmoid(logits)
        return logits

    def uses_fitted_prior(self, prior: str) -> bool:
        """Whether draws with ``prior`` come from the fitted density (it must exist)."""
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        return prior == "fitted" and self.latent_density is not None

    def draw_latents(self, n: int, temperature: float = 1.0, condition: torch.Tensor | None = None,
                     generator: torch.Generator | None = None, prior: str = "standard") -> torch.Tensor:
        """The latents of :meth:`draw` (for a conditional model, ``condition`` must have no free entry)."""
        if condition is not None and bool(torch.isnan(condition).any()):
            raise ValueError("free conditions (NaN) need draw(), which returns the conditions it drew")
        return self.draw(n, temperature, condition, generator, prior)[0]

    def draw(self, n: int, temperature: float = 1.0, condition: torch.Tensor | None = None,
             generator: torch.Generator | None = None, prior: str = "standard"
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` latent points, and the normalized condition rows to decode them with (None if unconditional).

        Latents come from N(0, temperature² I) or, with ``prior="fitted"``, the fitted density.
        A conditional model takes ``condition`` as one row shared by all draws; a NaN entry
        leaves that condition free. The fitted density is conditioned on the given entries
        and draws the free ones with the latents, so a free property follows its relation to
        the given ones in the training data. Without a density, a free condition takes its
        training mean (0), and ``condition`` may instead have one row per draw.
        ``temperature`` scales the spread of everything drawn.
        """
        if n < 0 or temperature < 0:
            raise ValueError("n and temperature must be non-negative")
        if self.condition_dim and condition is None:
            raise ValueError(f"this model needs a condition of width {self.condition_dim}")
        device = next(self.parameters()).device
        density = self.latent_density if self.uses_fitted_prior(prior) else None
        if density is None:
            z = torch.randn((n, self.latent_dim), generator=generator, device=device) * temperature
            if not self.condition_dim:
                return z, None
            # N(0, I) draws ignore the condition, so each draw may have its own (a class per row).
            rows = condition.reshape(-1, self.condition_dim).to(device)
            if len(rows) not in (1, n):
                raise ValueError(f"expected 1 or {n} condition rows, got {len(rows)}")
            return z, torch.nan_to_num(rows, nan=0.0).expand(n, -1)
        row = self._shared_condition(condition)
        if density.dim != self.latent_dim + self.condition_dim:
            raise ValueError(f"the fitted density has {density.dim} dimensions; this model needs "
                             f"{self.latent_dim + self.condition_dim} (latent + condition)")
        free = None if row is None else torch.isnan(row.cpu())
        if free is not None and not free.all():
            known = [self.latent_dim + j for j in range(self.condition_dim) if not free[j]]
            density = density.condition_on(known, row.cpu()[~free])
        draws = density.sample(n, temperature, _cpu_generator(generator)).to(device)
        z = draws[:, :self.latent_dim]
        if row is None:
            return z, None
        conditions = row.to(device).expand(n, -1).clone()
        conditions[:, free.to(device)] = draws[:, self.latent_dim:]
        return z, conditions

    def _shared_condition(self, condition: torch.Tensor | None) -> torch.Tensor | None:
        # The one condition row all draws from the fitted density share (None if unconditional).
        if not self.condition_dim:
            return None
        rows = condition.reshape(-1, self.condition_dim)
        if not torch.allclose(rows, rows[:1].expand_as(rows), rtol=0, atol=0, equal_nan=True):
            raise ValueError("a conditional model's draws take one condition shared by all draws")
        return rows[0]

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None, prior: str = "standard") -> torch.Tensor:
        """Decode ``n`` latent draws (see :meth:`draw`) to expected outputs."""
        z, conditions = self.draw(n, temperature, condition, generator, prior)
        return self.mean_output(self.decode(z, conditions))


def _cpu_generator(generator: torch.Generator | None) -> torch.Generator | None:
    # The mixture lives on the CPU; a CUDA generator seeds a CPU one deterministically.
    if generator is None or generator.device.type == "cpu":
        return generator
    return torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=generator,
                                                           device=generator.device)))
