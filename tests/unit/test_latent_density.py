import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from molvae.latent_density import GaussianMixture


def two_clusters(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal([0.0, 0.0], 1.0, (int(n * 0.7), 2))
    b = rng.normal([8.0, -6.0], 0.5, (n - len(a), 2))
    return torch.from_numpy(np.concatenate([a, b]))


def test_fit_finds_separated_components():
    mixture = GaussianMixture.fit(two_clusters(), 2)
    order = torch.argsort(mixture.weights)
    assert mixture.weights[order].tolist() == pytest.approx([0.3, 0.7], abs=0.01)
    assert mixture.means[order[0]].tolist() == pytest.approx([8.0, -6.0], abs=0.1)
    assert mixture.means[order[1]].tolist() == pytest.approx([0.0, 0.0], abs=0.1)
    cov_small = mixture.scale_tril[order[0]] @ mixture.scale_tril[order[0]].T
    assert torch.diag(cov_small).tolist() == pytest.approx([0.25, 0.25], abs=0.03)


def test_single_gaussian_is_the_sample_mean_and_covariance():
    rng = np.random.default_rng(1)
    x = rng.multivariate_normal([1.0, -2.0, 0.5], [[2, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 0.5]], 3000)
    mixture = GaussianMixture.fit(torch.from_numpy(x), 1, reg_covar=0.0)
    cov = mixture.scale_tril[0] @ mixture.scale_tril[0].T
    assert np.allclose(mixture.means[0].numpy(), x.mean(0))
    assert np.allclose(cov.numpy(), np.cov(x.T, bias=True), atol=1e-10)
    expected = multivariate_normal(x.mean(0), np.cov(x.T, bias=True)).logpdf(x[:5])
    assert np.allclose(mixture.log_prob(torch.from_numpy(x[:5])).numpy(), expected)


def test_sample_follows_the_fit_and_temperature_scales_the_spread():
    mixture = GaussianMixture.fit(two_clusters(), 2)
    draws = mixture.sample(20000, generator=torch.Generator().manual_seed(0))
    assert draws.dtype == torch.float32 and draws.shape == (20000, 2)
    share_b = (draws[:, 0] > 4).float().mean().item()
    assert share_b == pytest.approx(0.3, abs=0.02)
    at_zero = mixture.sample(50, temperature=0.0, generator=torch.Generator().manual_seed(0))
    assert all(any(torch.allclose(row.double(), m, atol=1e-6) for m in mixture.means) for row in at_zero)


def test_condition_matches_the_closed_form_for_one_gaussian():
    mean = np.array([0.0, 1.0, 2.0])
    cov = np.array([[1.0, 0.3, 0.6], [0.3, 2.0, -0.4], [0.6, -0.4, 1.5]])
    mixture = GaussianMixture(torch.ones(1, dtype=torch.float64), torch.from_numpy(mean)[None],
                              torch.linalg.cholesky(torch.from_numpy(cov))[None])
    given = mixture.condition(torch.tensor([2.5]))
    gain = cov[:2, 2:] @ np.linalg.inv(cov[2:, 2:])
    assert np.allclose(given.means[0].numpy(), mean[:2] + gain @ (np.array([2.5]) - mean[2:]))
    cond_cov = given.scale_tril[0] @ given.scale_tril[0].T
    assert np.allclose(cond_cov.numpy(), cov[:2, :2] - gain @ cov[2:, :2])


def test_condition_on_any_dimensions_matches_the_closed_form():
    mean = np.array([0.0, 1.0, 2.0])
    cov = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 1.0]])
    mixture = GaussianMixture(torch.ones(1, dtype=torch.float64), torch.from_numpy(mean)[None],
                              torch.linalg.cholesky(torch.from_numpy(cov))[None])
    given = mixture.condition_on([1], torch.tensor([2.0]))  # the middle one: (0, 2) remain, in order
    # By hand: mean_f + Σ_f1 / Σ_11 · (2 − 1) and Σ_ff − Σ_f1 Σ_1f / Σ_11.
    assert np.allclose(given.means[0].numpy(), [0.5, 2.3])
    assert np.allclose((given.scale_tril[0] @ given.scale_tril[0].T).numpy(), [[0.75, -0.15], [-0.15, 0.91]])
    trailing = mixture.condition_on([2], torch.tensor([2.5]))
    assert torch.equal(trailing.means, mixture.condition(torch.tensor([2.5])).means)
    with pytest.raises(ValueError, match=r"1 to 2 distinct dimensions of 0\.\.2"):
        mixture.condition_on([1, 1], torch.tensor([0.0, 0.0]))
    with pytest.raises(ValueError, match="distinct dimensions"):
        mixture.condition_on([3], torch.tensor([0.0]))
    with pytest.raises(ValueError, match="1 dims need 1 values, got 2"):
        mixture.condition_on([0], torch.tensor([0.0, 1.0]))


def test_condition_reweights_components_by_how_well_they_explain_the_value():
    mixture = GaussianMixture.fit(two_clusters(), 2)
    near_b = mixture.condition(torch.tensor([-6.0]))
    assert near_b.dim == 1
    assert near_b.weights[torch.argmax(near_b.means[:, 0])].item() > 0.999
    assert near_b.sample(200).mean().item() == pytest.approx(8.0, abs=0.2)
    with pytest.raises(ValueError, match="trailing dimensions"):
        mixture.condition(torch.tensor([1.0, 2.0]))


def test_save_and_load_round_trip(tmp_path):
    mixture = GaussianMixture.fit(two_clusters(500), 2)
    loaded = GaussianMixture.load(mixture.save(tmp_path / "density.pt"))
    for name in ("weights", "means", "scale_tril"):
        assert torch.equal(getattr(loaded, name), getattr(mixture, name))


def test_bad_points_are_refused():
    with pytest.raises(ValueError, match="finite"):
        GaussianMixture.fit(torch.tensor([[0.0, float("nan")]]), 1)
    with pytest.raises(ValueError, match="at least one point"):
        GaussianMixture.fit(torch.zeros((0, 2)), 1)


def test_duplicate_points_give_fewer_components_not_an_error():
    mixture = GaussianMixture.fit(torch.cat([torch.zeros(6, 2), torch.ones(4, 2)]), 3)
    assert mixture.n_components == 2
    assert sorted(mixture.weights.tolist()) == pytest.approx([0.4, 0.6])
    assert GaussianMixture.fit(torch.zeros(10, 2), 2).n_components == 1


def test_zero_draws_and_zero_components():
    mixture = GaussianMixture.fit(two_clusters(200), 2)
    assert mixture.sample(0).shape == (0, 2)
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        GaussianMixture.fit(two_clusters(200), 0)
