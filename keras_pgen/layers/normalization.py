"""Normalization layers for generators and discriminators."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_pgen")
class PixelNormalization(keras.layers.Layer):
    """Normalizes each pixel's feature vector to unit average square.

    `y = x / sqrt(mean(x**2, axis=-1) + epsilon)`. Used in ProGAN and MSG-GAN
    generators instead of batch norm: it has no statistics to keep in sync
    across replicas.

    Args:
        epsilon: float, default 1e-8.

    Example:
    >>> y = PixelNormalization()(keras.ops.ones((2, 4, 4, 8)))

    Reference: Karras et al., https://arxiv.org/abs/1710.10196 (section 4.2).
    """

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x):
        return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="keras_pgen")
class MinibatchStdDev(keras.layers.Layer):
    """Appends the minibatch standard deviation as one extra feature map.

    The batch is split into groups of `group_size` CONSECUTIVE samples; for each
    group the standard deviation of every feature over the group is averaged
    into one number, broadcast as an extra channel to the group's samples.
    Consecutive grouping (rather than ProGAN's strided one) keeps the result
    unchanged when a global batch is split across replicas, as long as each
    replica's batch is a multiple of the group size.

    Args:
        group_size: int, default 4. Reduced to the largest divisor of the batch
            size that is at most `group_size` when the batch size is static.
        epsilon: float, default 1e-8.

    Example:
    >>> y = MinibatchStdDev()(keras.ops.ones((8, 4, 4, 16)))  # (8, 4, 4, 17)

    Reference: Karras et al., https://arxiv.org/abs/1710.10196 (section 3).
    """

    def __init__(self, group_size=4, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size
        self.epsilon = epsilon

    def call(self, x):
        n = x.shape[0]
        g = self.group_size
        if n is not None:
            g = max(d for d in range(1, min(g, n) + 1) if n % d == 0)
        _, h, w, c = ops.shape(x)
        # in float32, as ProGAN's code: in float16 epsilon is 0 and the derivatives of sqrt at small
        # variances (the gradient penalty's second order) overflow
        y = ops.reshape(ops.cast(x, "float32"), (-1, g, h, w, c))
        y = ops.sqrt(ops.var(y, axis=1) + self.epsilon)  # [n/g, h, w, c]
        y = ops.mean(y, axis=(1, 2, 3), keepdims=True)  # [n/g, 1, 1, 1]
        y = ops.repeat(y, g, axis=0)  # [n, 1, 1, 1]
        y = ops.broadcast_to(y, (ops.shape(x)[0], h, w, 1))
        return ops.concatenate([x, ops.cast(y, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + 1,)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "epsilon": self.epsilon}
