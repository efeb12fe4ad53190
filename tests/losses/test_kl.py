"""gaussian_kl against the closed form KL(N(mu, s^2) || N(0, 1)) = log(1 / s) + (s^2 + mu^2 - 1) / 2."""
import numpy as np

from keras_pgen.losses.kl import gaussian_kl


def closed_form(mean, std):
    return np.sum(np.log(1.0 / std) + (std**2 + mean**2 - 1.0) / 2.0, axis=tuple(range(1, mean.ndim)))


def test_kl_matches_closed_form_per_sample():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(5, 7)).astype("float32")
    std = rng.uniform(0.2, 3.0, size=(5, 7)).astype("float32")
    kl = np.asarray(gaussian_kl(mean, 2.0 * np.log(std)))
    assert kl.shape == (5,)
    np.testing.assert_allclose(kl, closed_form(mean.astype(np.float64), std.astype(np.float64)), rtol=1e-5)


def test_kl_sums_spatial_codes_and_is_zero_at_the_prior():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(3, 2, 2, 4)).astype("float32")
    log_variance = rng.normal(size=(3, 2, 2, 4)).astype("float32")
    kl = np.asarray(gaussian_kl(mean, log_variance))
    np.testing.assert_allclose(kl, closed_form(mean.astype(np.float64), np.exp(0.5 * log_variance.astype(np.float64))),
                               rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(gaussian_kl(np.zeros((2, 3)), np.zeros((2, 3)))), [0.0, 0.0])
    # a shifted mean alone costs mu^2 / 2
    np.testing.assert_allclose(np.asarray(gaussian_kl(np.full((1, 1), 2.0), np.zeros((1, 1)))), [2.0])
