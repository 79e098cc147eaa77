import pytest
import torch

from molvae.latent_density import GaussianMixture
from molvae.models import VAE, VAEConfig


def make(condition_dim=0, **kwargs):
    kind = "cvae" if condition_dim else "vae"
    return VAE(VAEConfig(input_dim=12, latent_dim=3, hidden_dims=(8, 6), kind=kind,
                         condition_dim=condition_dim, **kwargs))


def test_shapes_and_latent_dim():
    model = make()
    assert model.latent_dim == 3
    x = torch.rand(5, 12)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    out = model(x)
    assert out.logits.shape == (5, 12) and out.z.shape == (5, 3)
    assert model.sample(7).shape == (7, 12)


def test_architecture_mirrors_hidden_widths():
    model = make()
    widths = [(m.in_features, m.out_features) for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert widths == [(12, 8), (8, 6), (6, 6)]
    widths = [(m.in_features, m.out_features) for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert widths == [(3, 6), (6, 8), (8, 12)]


def test_decoder_outputs_logits_and_samples_are_probabilities():
    model = make()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.fill_(5.0)
    logits = model.decode(torch.ones(2, 3))
    assert (logits > 1).all()  # raw, unsquashed
    samples = model.sample(4)
    assert ((samples >= 0) & (samples <= 1)).all()


def test_gaussian_model_samples_are_means():
    model = make(objective={"likelihood": "gaussian"})
    z = torch.randn(3, 3)
    assert torch.equal(model.mean_output(model.decode(z)), model.decode(z))


def test_reparameterize_is_mu_plus_sigma_eps():
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.log(torch.tensor([[4.0, 0.25]]))
    gen = torch.Generator().manual_seed(3)
    eps = torch.randn((1, 2), generator=torch.Generator().manual_seed(3))
    z = VAE.reparameterize(mu, logvar, gen)
    assert torch.allclose(z, mu + eps * torch.tensor([[2.0, 0.5]]))


def test_temperature_zero_decodes_the_origin():
    model = make()
    origin = model.mean_output(model.decode(torch.zeros(3, 3)))
    assert torch.allclose(model.sample(3, temperature=0.0), origin)


def test_condition_is_concatenated_and_checked():
    model = make(condition_dim=2)
    assert model.encoder[0].in_features == 14 and model.decoder[0].in_features == 5
    x = torch.rand(4, 12)
    c = torch.tensor([[1.0, 0.0]] * 4)
    assert model(x, c).logits.shape == (4, 12)
    assert model.sample(3, condition=torch.tensor([0.0, 1.0])).shape == (3, 12)
    with pytest.raises(ValueError, match="needs a condition"):
        model(x)
    with pytest.raises(ValueError, match="shape"):
        model(x, torch.ones(4, 3))
    with pytest.raises(ValueError, match="unconditional"):
        make()(x, c)


def _density(dim: int, mean: float) -> GaussianMixture:
    f64 = torch.float64
    return GaussianMixture(torch.ones(1, dtype=f64), torch.full((1, dim), mean, dtype=f64),
                           0.1 * torch.eye(dim, dtype=f64)[None])


def test_fitted_prior_draws_from_the_density_and_standard_ignores_it():
    model = make()
    gen = torch.Generator().manual_seed(0)
    assert model.draw_latents(2000, prior="fitted", generator=gen).mean().item() == pytest.approx(0, abs=0.1)
    model.latent_density = _density(3, 5.0)
    fitted = model.draw_latents(2000, prior="fitted", generator=gen)
    assert fitted.mean().item() == pytest.approx(5.0, abs=0.02) and fitted.std().item() < 0.2
    standard = model.draw_latents(2000, prior="standard", generator=gen)
    assert standard.mean().item() == pytest.approx(0, abs=0.1)
    assert model.sample(4, prior="fitted").shape == (4, 12)
    with pytest.raises(ValueError, match="prior must be one of"):
        model.draw_latents(1, prior="gmm")
    model.latent_density = _density(4, 0.0)
    with pytest.raises(ValueError, match="4 dimensions; this model needs 3"):
        model.draw_latents(1, prior="fitted")


def test_fitted_prior_of_a_conditional_model_is_conditioned_on_its_target():
    model = VAE(VAEConfig(input_dim=6, latent_dim=1, hidden_dims=(5,), kind="cvae", condition_dim=1))
    # z and c perfectly correlated: given c = 2 the density must put z at 2.
    cov = torch.tensor([[1.0, 0.999], [0.999, 1.0]], dtype=torch.float64)
    model.latent_density = GaussianMixture(torch.ones(1, dtype=torch.float64),
                                           torch.zeros(1, 2, dtype=torch.float64),
                                           torch.linalg.cholesky(cov)[None])
    z = model.draw_latents(500, condition=torch.tensor([[2.0]]).expand(500, 1), prior="fitted")
    assert z.mean().item() == pytest.approx(2.0, abs=0.05)
    with pytest.raises(ValueError, match="one condition shared by all draws"):
        model.draw_latents(2, condition=torch.tensor([[1.0], [2.0]]), prior="fitted")


def test_a_free_condition_is_drawn_from_the_density_given_the_named_ones():
    model = VAE(VAEConfig(input_dim=6, latent_dim=1, hidden_dims=(5,), kind="cvae", condition_dim=2))
    # (z, c0, c1): c0 follows c1 closely; z follows c0.
    cov = torch.tensor([[1.0, 0.9, 0.8], [0.9, 1.0, 0.95], [0.8, 0.95, 1.0]], dtype=torch.float64)
    model.latent_density = GaussianMixture(torch.ones(1, dtype=torch.float64),
                                           torch.zeros(1, 3, dtype=torch.float64),
                                           torch.linalg.cholesky(cov)[None])
    gen = torch.Generator().manual_seed(0)
    z, conditions = model.draw(4000, condition=torch.tensor([[float("nan"), 2.0]]), generator=gen,
                               prior="fitted")
    assert (conditions[:, 1] == 2.0).all() and conditions[:, 0].std().item() > 0.1  # drawn per draw
    assert conditions[:, 0].mean().item() == pytest.approx(0.95 * 2.0, abs=0.03)  # E[c0 | c1 = 2]
    assert z.mean().item() == pytest.approx(0.8 * 2.0, abs=0.05)
    # Without a density a free condition takes its training mean, 0 once normalized.
    _, standard = model.draw(3, condition=torch.tensor([[float("nan"), 2.0]]), prior="standard")
    assert standard.tolist() == [[0.0, 2.0]] * 3
    # N(0, I) draws do not use the condition: one row per draw is fine (a class per image).
    _, per_draw = model.draw(2, condition=torch.tensor([[0.0, 1.0], [0.0, 2.0]]), prior="standard")
    assert per_draw.tolist() == [[0.0, 1.0], [0.0, 2.0]]
    with pytest.raises(ValueError, match="expected 1 or 3 condition rows"):
        model.draw(3, condition=torch.zeros(2, 2), prior="standard")
    with pytest.raises(ValueError, match="need draw"):
        model.draw_latents(3, condition=torch.tensor([[float("nan"), 2.0]]), prior="fitted")
    with pytest.raises(ValueError, match="one condition shared"):
        model.draw(2, condition=torch.tensor([[0.0, 1.0], [0.0, 2.0]]), prior="fitted")
