import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from molvae.models import VAE, ObjectiveConfig, VAEConfig, VAEOutput
from molvae.objectives import (
    beta_at,
    capacity_at,
    elbo_loss,
    iwae_nll,
    kl_standard_normal,
    log_likelihood,
    negative_elbo,
    weighted_loss,
)

BERNOULLI = ObjectiveConfig()


def test_bernoulli_likelihood_matches_hand_computation():
    # BCE-with-logits(l, x) = softplus(l) - x·l
    logits = torch.tensor([[2.0, -1.0]])
    x = torch.tensor([[0.5, 1.0]])
    expected = (math.log1p(math.exp(2.0)) - 1.0) + (math.log1p(math.exp(-1.0)) + 1.0)
    assert log_likelihood(logits, x, BERNOULLI).item() == pytest.approx(-expected, rel=1e-6)
    # Zero logits: each pixel costs ln 2 whatever its value.
    assert log_likelihood(torch.zeros(1, 5), torch.rand(1, 5), BERNOULLI).item() == pytest.approx(
        -5 * math.log(2), rel=1e-6)


def test_bernoulli_likelihood_is_stable_for_extreme_logits():
    ll = log_likelihood(torch.tensor([[200.0, -200.0]]), torch.tensor([[1.0, 0.0]]), BERNOULLI)
    assert torch.isfinite(ll).all() and ll.item() == pytest.approx(0.0, abs=1e-6)


def test_gaussian_likelihood_matches_normal_log_prob():
    config = ObjectiveConfig(likelihood="gaussian", gaussian_std=0.5)
    mean, x = torch.randn(3, 4), torch.randn(3, 4)
    expected = Normal(mean, 0.5).log_prob(x).sum(1)
    assert torch.allclose(log_likelihood(mean, x, config), expected, atol=1e-5)


def test_analytic_kl_matches_torch_distributions():
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    assert torch.allclose(kl_standard_normal(mu, logvar), expected, atol=1e-6)
    assert kl_standard_normal(torch.zeros(1, 2), torch.zeros(1, 2)).abs().max() == 0


def test_elbo_loss_hand_computed_case():
    # logits 0 on 2 pixels: recon = 2 ln 2; mu = 1, logvar = 0: KL = 0.5.
    out = VAEOutput(torch.zeros(1, 2), torch.ones(1, 1), torch.zeros(1, 1), torch.zeros(1, 1))
    terms = elbo_loss(out, torch.tensor([[1.0, 0.0]]), ObjectiveConfig(beta=3.0), step=0)
    assert terms.recon.item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert terms.kl.item() == pytest.approx(0.5)
    assert terms.loss.item() == pytest.approx(2 * math.log(2) + 3.0 * 0.5, rel=1e-6)
    assert terms.kl_per_unit.shape == (1,)


def test_warmup_and_capacity_schedules_follow_the_step():
    warm = ObjectiveConfig(beta=4.0, warmup_steps=100)
    assert [beta_at(warm, s) for s in (0, 50, 100, 1000)] == [0.0, 2.0, 4.0, 4.0]
    assert beta_at(ObjectiveConfig(beta=2.0), 0) == 2.0
    cap = ObjectiveConfig(capacity_max=25.0, capacity_steps=1000, gamma=10.0)
    assert [capacity_at(cap, s) for s in (0, 500, 1000, 5000)] == [0.0, 12.5, 25.0, 25.0]
    assert capacity_at(warm, 10) is None
    # Capacity objective: recon + gamma |KL - C|, on means.
    assert weighted_loss(cap, 100.0, 20.0, 500) == pytest.approx(100.0 + 10.0 * 7.5)
    assert weighted_loss(cap, 100.0, 5.0, 500) == pytest.approx(100.0 + 10.0 * 7.5)


def linear_gaussian_model(exact_posterior: bool = True) -> VAE:
    """Linear decoder x = W z + b + σ ε with orthogonal W columns, so p(x) = N(b, W Wᵀ + σ² I)
    and the true posterior is a diagonal Gaussian that a linear encoder represents exactly."""
    torch.manual_seed(0)
    sigma2 = 0.49
    config = VAEConfig(input_dim=3, latent_dim=2, hidden_dims=(),
                       objective=ObjectiveConfig(likelihood="gaussian", gaussian_std=0.7))
    model = VAE(config).eval()
    w = torch.tensor([[1.0, 0.0], [0.0, 0.5], [0.0, 0.0]])
    b = torch.tensor([0.3, -0.2, 0.1])
    cov = torch.linalg.inv(torch.eye(2) + w.T @ w / sigma2)  # diagonal because WᵀW is
    a = cov @ w.T / sigma2
    with torch.no_grad():
        model.decoder[0].weight.copy_(w)
        model.decoder[0].bias.copy_(b)
        enc_w = torch.cat([a, torch.zeros(2, 3)])
        enc_b = torch.cat([-a @ b, torch.log(torch.diagonal(cov))])
        if not exact_posterior:
            enc_w[:2] *= 0.7
            enc_b[2:] += 0.5
        model.encoder[0].weight.copy_(enc_w)
        model.encoder[0].bias.copy_(enc_b)
    return model, MultivariateNormal(b, w @ w.T + sigma2 * torch.eye(3))


def test_iwae_and_elbo_are_exact_with_the_true_posterior():
    model, marginal = linear_gaussian_model()
    x = marginal.sample((8,))
    exact = -marginal.log_prob(x)
    gen = torch.Generator().manual_seed(2)
    # With q = p(z|x) every importance weight equals p(x): exact for any K.
    assert torch.allclose(iwae_nll(model, x, k=1, generator=gen), exact, atol=1e-4)
    assert torch.allclose(iwae_nll(model, x, k=7, generator=gen), exact, atol=1e-4)
    neg_elbo = negative_elbo(model, x, n_samples=4000, generator=gen)[0]
    assert torch.allclose(neg_elbo, exact, atol=0.05)


def test_iwae_tightens_with_k_between_the_elbo_and_the_likelihood():
    model, marginal = linear_gaussian_model(exact_posterior=False)
    x = marginal.sample((16,))
    exact = -marginal.log_prob(x).mean()
    gen = torch.Generator().manual_seed(0)
    neg_elbo = negative_elbo(model, x, n_samples=2000, generator=gen)[0].mean()
    k1, k50, k5000 = (iwae_nll(model, x, k=k, generator=gen).mean() for k in (1, 50, 5000))
    assert neg_elbo > k50 + 0.05 > exact
    assert k1 > k50 > k5000 - 0.02
    assert k5000 == pytest.approx(exact.item(), abs=0.05)


def test_iwae_chunking_gives_the_same_estimate():
    model, marginal = linear_gaussian_model(exact_posterior=False)
    x = marginal.sample((10,))
    small = iwae_nll(model, x, k=4000, generator=torch.Generator().manual_seed(0), max_rows=4000)
    whole = iwae_nll(model, x, k=4000, generator=torch.Generator().manual_seed(1), max_rows=10**6)
    assert torch.allclose(small, whole, atol=0.05)
    with pytest.raises(ValueError, match="k must be"):
        iwae_nll(model, x, k=0)
