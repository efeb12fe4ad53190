"""FID, KID and the memorisation ratios against numpy/scipy reference computations."""
import numpy as np
import pytest
import scipy.linalg

from keras_pgen.metrics import distances


def scipy_fid(x, y):
    """The textbook formula with scipy's sqrtm (the pytorch-fid / TTUR reference)."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(200, 16))
    assert abs(distances.fid_from_features(x, x)) < 1e-8
    # also with fewer samples than dimensions (singular covariance), where a naive sqrtm goes complex
    y = np.random.default_rng(1).normal(size=(20, 64))
    assert abs(distances.fid_from_features(y, y)) < 1e-5  # round-off eigenvalues ~1e-12 give sqrt ~1e-6


def test_fid_matches_scipy_sqrtm_reference():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))
    y = rng.normal(size=(250, 8)) * 1.7 + 0.3
    np.testing.assert_allclose(distances.fid_from_features(x, y), scipy_fid(x, y), rtol=1e-8)


def test_fid_of_gaussians_has_the_closed_form():
    """N(mu1, a^2 I) vs N(mu2, b^2 I) in d dims: |mu1 - mu2|^2 + d (a - b)^2; exact on given statistics."""
    d, a, b = 6, 1.5, 0.5
    mu1, mu2 = np.zeros(d), np.full(d, 0.25)
    value = distances.frechet_distance(mu1, a ** 2 * np.eye(d), mu2, b ** 2 * np.eye(d))
    assert value == pytest.approx(d * 0.25 ** 2 + d * (a - b) ** 2, rel=1e-12)
    # a shifted sample: only the mean term changes, by |shift|^2
    x = np.random.default_rng(3).normal(size=(400, d))
    shift = np.arange(d) * 0.1
    assert distances.fid_from_features(x, x + shift) == pytest.approx(float(shift @ shift), abs=1e-9)
    # non-commuting full covariances: against scipy on the statistics themselves
    rng = np.random.default_rng(4)
    m1, m2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = m1 @ m1.T, m2 @ m2.T
    expected = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))
    assert distances.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def direct_kid(x, y, subset_size, num_subsets, seed):
    """Loops over the unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, drawing subsets like the library."""
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    k = lambda a, b: (np.dot(a, b) / d + 1.0) ** 3  # noqa: E731
    m = min(subset_size, len(x), len(y))
    values = []
    for _ in range(num_subsets):
        xs = x[rng.choice(len(x), m, replace=False)]
        ys = y[rng.choice(len(y), m, replace=False)]
        kxx = sum(k(xs[i], xs[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        kyy = sum(k(ys[i], ys[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        kxy = sum(k(xs[i], ys[j]) for i in range(m) for j in range(m)) / (m * m)
        values.append(kxx + kyy - 2 * kxy)
    return np.mean(values), np.std(values)


def test_kid_matches_a_direct_numpy_computation():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(25, 5)) + 0.5
    mean, std = distances.kid_from_features(x, y, subset_size=12, num_subsets=4, seed=7)
    ref_mean, ref_std = direct_kid(x, y, 12, 4, 7)
    assert mean == pytest.approx(ref_mean, rel=1e-10)
    assert std == pytest.approx(ref_std, rel=1e-10)
    assert std > 0
    # the subset shrinks to the smaller set; the estimator is unbiased: ~0 for two samples of one distribution
    same = distances.kid_from_features(rng.normal(size=(400, 32)), rng.normal(size=(300, 32)), num_subsets=20)
    shifted = distances.kid_from_features(rng.normal(size=(400, 32)), rng.normal(size=(300, 32)) + 0.5, num_subsets=20)
    assert abs(same[0]) < 0.01 < 0.5 < shifted[0]


def test_memorisation_ratios():
    real = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0], [10.0, 10.0]])
    # nearest other-real distances: 3, 4, 3, sqrt(36+49); median 3.5
    generated = np.array([[4.0, 0.0], [0.0, 1.75], [9.0, 10.0]])
    nearest, distance, ratio, median = distances.memorisation_ratios(generated, real)
    assert median == pytest.approx(3.5)
    np.testing.assert_array_equal(nearest, [1, 2, 3])
    np.testing.assert_allclose(distance, [0.0, 1.25, 1.0], atol=1e-7)  # a copy of real 1 has distance 0
    np.testing.assert_allclose(ratio, [0.0, 1.25 / 3.5, 1 / 3.5], atol=1e-7)


def test_kid_of_sets_of_the_subset_size_is_computed_once():
    """Every subset is the whole of both sets: the direct computation's value (any subset order), std 0."""
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 5)) + 0.3
    reference, reference_std = direct_kid(x, y, 20, 3, 0)
    assert reference_std == pytest.approx(0.0, abs=1e-12)
    for subset_size in (20, 1000):
        mean, std = distances.kid_from_features(x, y, subset_size=subset_size, num_subsets=7)
        assert mean == pytest.approx(reference, rel=1e-10) and std == 0.0


def test_mean_pairwise_distance_and_diversity_ratio():
    triangle = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])  # sides 3, 4, 5
    assert distances.mean_pairwise_distance(triangle) == pytest.approx(4.0)
    assert distances.diversity_ratio(2 * triangle, triangle) == pytest.approx(2.0)
    assert distances.diversity_ratio(np.ones((5, 2)), triangle) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        distances.mean_pairwise_distance(triangle[:1])
