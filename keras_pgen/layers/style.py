"""Style-based generator layers (StyleGAN / StyleGAN2): modulated convolution, AdaIN, noise, constant input.

Pure Keras 3 (keras.ops only), so the style generator runs under every backend.
"""
import math

import keras
from keras import ops

from keras_pgen.layers.equalized import EqualizedDense


@keras.saving.register_keras_serializable(package="keras_pgen")
class ModulatedConv2D(keras.layers.Layer):
    """StyleGAN2's weight-modulated 2D convolution (NHWC, stride 1, "same" padding).

    Called on `[x, w]`: an affine map of the latent `w` gives one scale per input channel,
    `s = affine(w) + 1` (the affine's bias starts at 0, so s starts near 1). The kernel
    `k[a, b, i, o]` (N(0, 1), scaled at run time by `gain / sqrt(fan_in)` as in equalized LR)
    is modulated per sample, `k'[n, a, b, i, o] = s[n, i] * k[a, b, i, o]`, and, with
    `demodulate=True`, demodulated to unit output variance,
    `k''[n, ..., o] = k'[n, ..., o] / sqrt(sum_{a, b, i} k'[n, a, b, i, o]**2 + epsilon)`.
    The convolution is computed as the equivalent `conv(x * s, k) * d` (d the per-sample,
    per-output demodulation factor), which needs no grouped convolution.

    Args:
        filters: int. Output channels.
        kernel_size: int. Square kernel size.
        demodulate: bool, default True. False for toRGB layers.
        gain: float, default sqrt(2). Equalized-LR gain (irrelevant when demodulating).
        use_bias: bool, default True. Bias added after the (de)modulated convolution.
        epsilon: float, default 1e-8.

    Example:
    >>> y = ModulatedConv2D(8, 3)([keras.ops.ones((2, 16, 16, 4)), keras.ops.ones((2, 32))])  # (2, 16, 16, 8)

    Reference: Karras et al., StyleGAN2, https://arxiv.org/abs/1912.04958 (section 2.2, eq. 1 and 3).
    """

    def __init__(self, filters, kernel_size, demodulate=True, gain=math.sqrt(2.0), use_bias=True, epsilon=1e-8,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.gain = gain
        self.use_bias = use_bias
        self.epsilon = epsilon

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        cin, k = x_shape[-1], self.kernel_size
        self.affine = EqualizedDense(cin, gain=1.0, name="affine")
        self.affine.build(w_shape)
        self.runtime_scale = self.gain / math.sqrt(k * k * cin)
        self.kernel = self.add_weight(name="kernel", shape=(k, k, cin, self.filters),
                                      initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None

    def call(self, inputs):
        x, w = inputs
        styles = self.affine(w) + 1.0  # [N, cin]
        kernel = self.kernel * self.runtime_scale
        y = ops.conv(x * styles[:, None, None, :], kernel, strides=1, padding="same")
        if self.demodulate:
            # sum_{a,b,i} (s_i k_abio)^2 = (s^2) @ sum_{a,b} k_ab^2  -> [N, filters]
            energy = ops.matmul(ops.square(styles), ops.sum(ops.square(kernel), axis=(0, 1)))
            y = y * ops.rsqrt(energy + self.epsilon)[:, None, None, :]
        if self.bias is not None:
            y = y + self.bias
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "demodulate": self.demodulate, "gain": self.gain, "use_bias": self.use_bias,
                "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="keras_pgen")
class AdaIN(keras.layers.Layer):
    """Adaptive instance normalization: per-sample, per-channel scale and bias from a latent.

    Called on `[x, w]`: `(1 + ys) * (x - mean) / sqrt(var + epsilon) + yb`, with the mean and
    variance over each sample's spatial positions and `[ys, yb]` an affine map of `w`
    (starting at 0, so the layer starts as plain instance normalization).

    Args:
        epsilon: float, default 1e-8.

    Example:
    >>> y = AdaIN()([keras.ops.ones((2, 8, 8, 4)), keras.ops.ones((2, 32))])  # (2, 8, 8, 4)

    Reference: Karras et al., StyleGAN, https://arxiv.org/abs/1812.04948 (eq. 1);
    Huang & Belongie, https://arxiv.org/abs/1703.06868.
    """

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        self.affine = EqualizedDense(2 * x_shape[-1], gain=1.0, name="affine")
        self.affine.build(w_shape)

    def call(self, inputs):
        x, w = inputs
        scale, bias = ops.split(self.affine(w), 2, axis=-1)
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        var = ops.var(x, axis=(1, 2), keepdims=True)
        x = (x - mean) * ops.rsqrt(var + self.epsilon)
        return x * (1.0 + scale[:, None, None, :]) + bias[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="keras_pgen")
class NoiseInjection(keras.layers.Layer):
    """Adds a one-channel noise map with a learned per-channel strength: `x + strength * noise`.

    Called on `[x, noise]`, noise `[N, H, W, 1]` (broadcast over channels). The strengths
    start at 0. Where the noise comes from is the caller's choice (see `ProjectedNoise`).

    Example:
    >>> y = NoiseInjection()([keras.ops.ones((2, 8, 8, 4)), keras.ops.ones((2, 8, 8, 1))])

    Reference: Karras et al., StyleGAN, https://arxiv.org/abs/1812.04948 (section 3.2).
    """

    def build(self, input_shape):
        self.strength = self.add_weight(name="strength", shape=(input_shape[0][-1],), initializer="zeros")

    def call(self, inputs):
        x, noise = inputs
        return x + self.strength * ops.cast(noise, x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package="keras_pgen")
class ProjectedNoise(keras.layers.Layer):
    """A per-sample noise map that is a fixed function of the latent: `reshape(z @ P, [H, W, 1])`.

    `P` is a frozen (non-trainable) random matrix with N(0, 1 / latent_dim) entries, so for
    z ~ N(0, I) every pixel of the map is N(0, 1). The map is therefore deterministic per
    sample: the same z gives the same image in training, on any number of replicas, in the
    EMA copy and in an exported z-only SavedModel, with no random op in the network and no
    extra inputs. Unlike StyleGAN's noise it is not independent of z (rank <= latent_dim),
    so a fixed z cannot be re-rendered with fresh noise.

    Args:
        size: int. Height and width of the map.

    Example:
    >>> noise = ProjectedNoise(8)(keras.random.normal((2, 32)))  # (2, 8, 8, 1)
    """

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def build(self, input_shape):
        latent = input_shape[-1]
        self.projection = self.add_weight(
            name="projection", shape=(latent, self.size * self.size), trainable=False,
            initializer=keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(latent)))

    def call(self, z):
        return ops.reshape(ops.matmul(z, self.projection), (-1, self.size, self.size, 1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, 1)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="keras_pgen")
class LearnedConstant(keras.layers.Layer):
    """StyleGAN's learned constant input, repeated over the batch of its input.

    Called on any tensor whose first axis is the batch (the latent w).

    Args:
        shape: tuple of ints, e.g. (4, 4, 256).

    Example:
    >>> x = LearnedConstant((4, 4, 16))(keras.ops.ones((2, 32)))  # (2, 4, 4, 16)

    Reference: Karras et al., StyleGAN, https://arxiv.org/abs/1812.04948 (section 2).
    """

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.constant_shape = tuple(int(d) for d in shape)

    def build(self, input_shape):
        self.constant = self.add_weight(name="constant", shape=(1,) + self.constant_shape,
                                        initializer=keras.initializers.RandomNormal(stddev=1.0))

    def call(self, inputs):
        return ops.broadcast_to(self.constant, (ops.shape(inputs)[0],) + self.constant_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.constant_shape

    def get_config(self):
        return {**super().get_config(), "shape": list(self.constant_shape)}
