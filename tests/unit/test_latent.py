import pytest
import torch

from molvae.latent import anomaly_score, inpaint, interpolate, lerp, sample_prior, slerp, variations
from molvae.models import VAE, VAEConfig
from molvae.objectives import iwae_nll, negative_elbo


@pytest.fixture
def model():
    torch.manual_seed(0)
    return VAE(VAEConfig(input_dim=10, latent_dim=3, hidden_dims=(8,))).eval()


def reconstruct(model, x):
    return model.mean_output(model.decode(model.encode(x.reshape(1, -1))[0]))[0]


def test_sample_prior_shape_and_range(model):
    out = sample_prior(model, 5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (5, 10) and ((out >= 0) & (out <= 1)).all()


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolation_ends_at_the_reconstructions(model, method):
    a, b = torch.rand(10), torch.rand(10)
    path = interpolate(model, a, b, steps=5, method=method)
    assert path.shape == (5, 10)
    assert torch.allclose(path[0], reconstruct(model, a), atol=1e-5)
    assert torch.allclose(path[-1], reconstruct(model, b), atol=1e-5)
    with pytest.raises(ValueError, match="steps"):
        interpolate(model, a, b, steps=1)


def test_slerp_keeps_the_norm_on_a_circle_and_lerp_is_straight():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0])
    t = torch.linspace(0, 1, 7)
    assert torch.allclose(slerp(a, b, t).norm(dim=1), torch.full((7,), 2.0), atol=1e-5)
    assert torch.allclose(slerp(a, b, torch.tensor([0.5]))[0], torch.tensor([2 ** 0.5, 2 ** 0.5]))
    assert torch.allclose(lerp(a, b, torch.tensor([0.5]))[0], torch.tensor([1.0, 1.0]))
    # Parallel vectors: slerp falls back to a straight line instead of dividing by zero.
    assert torch.allclose(slerp(a, 2 * a, torch.tensor([0.5]))[0], torch.tensor([3.0, 0.0]))


def test_variations_spread(model):
    x = torch.rand(10)
    same = variations(model, x, 4, spread=0.0)
    assert torch.allclose(same, reconstruct(model, x).expand(4, -1), atol=1e-5)
    spread = variations(model, x, 50, spread=2.0, generator=torch.Generator().manual_seed(0))
    narrow = variations(model, x, 50, spread=0.2, generator=torch.Generator().manual_seed(0))
    assert spread.std(dim=0).mean() > 3 * narrow.std(dim=0).mean() > 0
    with pytest.raises(ValueError, match="spread"):
        variations(model, x, 2, spread=-1)


def test_inpainting_keeps_known_values_and_iterates(model):
    x = torch.rand(4, 10)
    known = torch.zeros(4, 10, dtype=torch.bool)
    known[:, :5] = True
    one = inpaint(model, x, known, iterations=1)
    many = inpaint(model, x, known, iterations=5)
    assert torch.equal(one[known], x[known]) and torch.equal(many[known], x[known])
    # One pass from the mean fill is exactly encode → decode of that fill.
    start = torch.where(known, x, x[known].mean())
    assert torch.allclose(one[~known], reconstruct_batch(model, start)[~known], atol=1e-6)
    assert not torch.allclose(one, many)
    with pytest.raises(ValueError, match="mask shape"):
        inpaint(model, x, known[:, :3])


def reconstruct_batch(model, x):
    return model.mean_output(model.decode(model.encode(x)[0]))


def test_anomaly_scores(model):
    x = torch.rand(6, 10)
    gen = torch.Generator().manual_seed(0)
    elbo = anomaly_score(model, x, n_samples=10, generator=gen)
    expected = negative_elbo(model, x, n_samples=10, generator=torch.Generator().manual_seed(0))[0]
    assert torch.allclose(elbo, expected)
    iwae = anomaly_score(model, x, method="iwae", k=500, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(iwae, iwae_nll(model, x, k=500, generator=torch.Generator().manual_seed(1)))
    assert iwae.shape == (6,) and (iwae <= elbo + 0.5).all()
    with pytest.raises(ValueError, match="method"):
        anomaly_score(model, x, method="mahalanobis")
