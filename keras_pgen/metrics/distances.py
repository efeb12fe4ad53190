"""FID and KID from feature arrays (numpy, float64), and nearest neighbours for the memorisation check.

FID (Heusel et al. 2017): ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)). The trace of the
matrix square root is taken through the symmetric matrix A = S1^(1/2) S2 S1^(1/2), which is
similar to S1 S2 and positive semi-definite: Tr((S1 S2)^(1/2)) = sum(sqrt(eig(A))). Both
square roots come from symmetric eigendecompositions with negative round-off eigenvalues
clipped to 0, so singular covariances (fewer samples than feature dimensions) and nearly
equal sets give real, non-negative values without scipy's complex-part workaround.

KID (Binkowski et al. 2018): the unbiased estimator of MMD^2 with the polynomial kernel
k(x, y) = (x . y / d + 1)^3, averaged over `num_subsets` random subsets of `subset_size`
samples of each set (drawn without replacement within a subset); mean and standard deviation
over the subsets are reported, as in the reference code and torch-fidelity.
"""
import numpy as np


def feature_statistics(features):
    """Mean [D] and covariance [D, D] (unbiased, rows are samples) of `features` [N, D], float64."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need features of shape [N >= 2, D], got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def _symmetric_sqrt(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), with the stable square root described above."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    root1 = _symmetric_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def fid_from_features(features1, features2):
    """Frechet distance between the Gaussians fitted to two feature sets [N1, D], [N2, D]."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def polynomial_kernel(x, y, degree=3, gamma=None, coef0=1.0):
    """(gamma x . y + coef0)^degree, gamma = 1 / D by default: [N, M]."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(x, y, kernel=polynomial_kernel):
    """Unbiased MMD^2 between samples x [m, D] and y [n, D] (diagonals of k(x, x), k(y, y) left out)."""
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    return float((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1)) + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
                 - 2.0 * k_xy.mean())


def kid_from_features(features1, features2, subset_size=1000, num_subsets=100, seed=0):
    """Kernel Inception Distance: (mean, std) of the unbiased polynomial MMD^2 over random subsets.

    Args:
        features1, features2: [N1, D], [N2, D].
        subset_size: int, default 1000; reduced to min(N1, N2) when the sets are smaller.
        num_subsets: int, default 100. When both sets have exactly the subset size, every
            subset is the whole set: the value is computed once and the std is 0.
        seed: int, default 0, for `np.random.default_rng`: subset i draws
            `rng.choice(N1, m, replace=False)` then `rng.choice(N2, m, replace=False)`.
    """
    features1, features2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    m = min(int(subset_size), len(features1), len(features2))
    if m == len(features1) == len(features2):
        # every subset is the whole of both sets (the unbiased MMD does not depend on their order): one
        # computation gives each subset's value, and their standard deviation is 0
        return mmd2_unbiased(features1, features2), 0.0
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(num_subsets)):
        x = features1[rng.choice(len(features1), m, replace=False)]
        y = features2[rng.choice(len(features2), m, replace=False)]
        values.append(mmd2_unbiased(x, y))
    return float(np.mean(values)), float(np.std(values))


def pairwise_distances(a, b):
    """Euclidean distances [N, M] between rows of a [N, D] and b [M, D] (float64, clipped at 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0.0, None))


def memorisation_ratios(generated, real):
    """Nearest-real index, distance and ratio for each generated feature vector.

    ratio = d(g, nearest real) / median over real x of d(x, its nearest other real):
    the distance to the closest training image in units of how far apart training images
    typically are. A generator that copies its training images has ratios near 0; one that
    makes new images has ratios around 1 or above (new images are as far from the training
    set as training images are from each other).

    Returns:
        (nearest [N] int, distance [N], ratio [N], real_median float).
    """
    distances = pairwise_distances(generated, real)
    nearest = distances.argmin(axis=1)
    nearest_distance = distances[np.arange(len(nearest)), nearest]
    real_real = pairwise_distances(real, real)
    np.fill_diagonal(real_real, np.inf)
    real_median = float(np.median(real_real.min(axis=1))) if len(real) > 1 else float("nan")
    return nearest, nearest_distance, nearest_distance / max(real_median, 1e-12), real_median


def mean_pairwise_distance(features):
    """Mean Euclidean distance over the pairs i < j of the rows of `features` [N >= 2, D] (float)."""
    features = np.asarray(features, np.float64).reshape(len(features), -1)
    if len(features) < 2:
        raise ValueError(f"a mean pairwise distance needs at least 2 rows, got {len(features)}")
    upper = np.triu_indices(len(features), k=1)
    return float(pairwise_distances(features, features)[upper].mean())


def diversity_ratio(generated, real):
    """mean_pairwise_distance(generated) / mean_pairwise_distance(real): the spread of samples in units of the data's.

    Near 0: the samples are one template (mode collapse); around 1: they differ from each
    other as much as real images do. Pass as many rows of each (bin/evaluate uses 64).

    Example:
    >>> diversity_ratio(np.zeros((4, 3)), np.eye(3))
    0.0
    """
    return mean_pairwise_distance(generated) / max(mean_pairwise_distance(real), 1e-12)
