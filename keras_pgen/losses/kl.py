"""KL divergence of a diagonal Gaussian posterior from the standard normal prior (VAEs)."""
from keras import ops


def gaussian_kl(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, I)) per sample, summed over every non-batch axis: [N].

    `0.5 * sum(exp(log_variance) + mean**2 - 1 - log_variance)`, in nats, computed in float32.
    Works for flat `[N, D]` and spatial `[N, H, W, C]` codes.

    Args:
        mean: float tensor [N, ...].
        log_variance: float tensor of the same shape.

    Example:
    >>> gaussian_kl(keras.ops.zeros((2, 8)), keras.ops.zeros((2, 8)))   # [0., 0.]

    Reference: Kingma & Welling, https://arxiv.org/abs/1312.6114 (appendix B).
    """
    mean = ops.cast(mean, "float32")
    log_variance = ops.cast(log_variance, "float32")
    terms = ops.exp(log_variance) + ops.square(mean) - 1.0 - log_variance
    return 0.5 * ops.sum(ops.reshape(terms, (ops.shape(terms)[0], -1)), axis=-1)
