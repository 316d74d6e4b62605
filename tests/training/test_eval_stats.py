"""The statistics of anyres-eval (training/eval/stats.py) on numbers whose answer is known: the
Fréchet distance against its closed form, KID of a set against itself and against a shifted set,
and the high-frequency proxy on noise against a smooth image."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from training.eval.stats import (
    Gaussian,
    frechet_distance,
    gaussian,
    kernel_inception_distance,
    laplacian_variance,
)


def test_frechet_distance_matches_the_closed_form_of_two_known_gaussians():
    rng = np.random.default_rng(0)
    d = 6
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    # Commuting covariances (the same eigenvectors): Tr((S_a S_b)^1/2) = sum sqrt(a_i b_i) exactly.
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    ea, eb = rng.uniform(0.5, 3, d), rng.uniform(0.5, 3, d)
    cov_a, cov_b = q @ np.diag(ea) @ q.T, q @ np.diag(eb) @ q.T
    closed = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(ea) - np.sqrt(eb)) ** 2)
    value = frechet_distance(Gaussian(mu_a, cov_a, 100), Gaussian(mu_b, cov_b, 100))
    assert value == pytest.approx(closed, rel=1e-9)
    # Non-commuting ones: the textbook formula with scipy's matrix square root.
    m = rng.normal(size=(d, d))
    cov_c = m @ m.T + np.eye(d)
    textbook = (np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_c)
                - 2 * np.trace(scipy.linalg.sqrtm(cov_a @ cov_c).real))
    assert frechet_distance(Gaussian(mu_a, cov_a, 100), Gaussian(mu_b, cov_c, 100)) == pytest.approx(textbook, rel=1e-8)


def test_frechet_distance_of_samples_converges_to_the_closed_form_and_is_zero_for_a_set_against_itself():
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, size=(20000, 4))
    b = rng.normal(0.5, 2.0, size=(20000, 4))
    closed = 4 * 0.5**2 + 4 * (1.0 - 2.0) ** 2  # ||mu||^2 + Tr(I + 4I - 2 * 2I) = 1 + 4
    assert frechet_distance(gaussian(a), gaussian(b)) == pytest.approx(closed, rel=0.05)
    feats = rng.normal(size=(50, 64))  # fewer samples than dimensions: a singular covariance
    assert frechet_distance(gaussian(feats), gaussian(feats)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow  # more than a few seconds
def test_kid_of_a_set_against_itself_is_near_zero_and_a_shifted_set_scores_higher():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 16))
    same = kernel_inception_distance(real, real, subsets=50, seed=0)
    other = kernel_inception_distance(real, rng.normal(size=(200, 16)), subsets=50, seed=0)
    shifted = kernel_inception_distance(real, real + 1.0, subsets=50, seed=0)
    # The same points in both subsets pull the unbiased MMD slightly below zero; small either way
    # next to a real difference, and a second draw of the same distribution is zero within its spread.
    assert abs(same.mean) < 0.02 * shifted.mean
    assert abs(other.mean) < 3 * other.std + 1e-3
    assert shifted.mean > 10 * max(other.std, 1e-3) and shifted.mean > other.mean
    assert shifted.subset_size == 100  # half the set: subsets that differ, so a spread that means something
    # Seeded: the same subsets every time, and the caller's torch generator untouched.
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    again = kernel_inception_distance(real, real + 1.0, subsets=50, seed=0)
    assert again == shifted and torch.rand(1) == before


def test_the_laplacian_proxy_is_higher_for_noise_than_for_a_smooth_image():
    rng = np.random.default_rng(3)
    noise = torch.from_numpy(rng.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8))
    ramp = torch.linspace(0, 255, 32).round().to(torch.uint8)
    smooth = ramp[None, None, None, :].expand(4, 3, 32, 32).contiguous()
    flat = torch.full((1, 3, 32, 32), 77, dtype=torch.uint8)
    hf_noise, hf_smooth = laplacian_variance(noise), laplacian_variance(smooth)
    assert hf_noise.shape == (4,)
    assert hf_noise.min() > 100 * max(hf_smooth.max(), 1e-6)
    assert laplacian_variance(flat)[0] == 0.0
