"""keras_pgen.layers.style against numpy: modulation/demodulation, AdaIN, noise, constant input."""
import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_pgen.layers import AdaIN, LearnedConstant, ModulatedConv2D, NoiseInjection, ProjectedNoise


def np_out(x):
    return np.asarray(ops.convert_to_numpy(x), np.float64)


def rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def conv_same(x, kernel):
    """Stride-1 "same" NHWC cross-correlation of one sample, float64 (odd kernels)."""
    k = kernel.shape[0]
    p = (k - 1) // 2
    x = np.pad(x.astype(np.float64), ((p, p), (p, p), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(0, 1))  # h, w, c, a, b
    return np.einsum("hwcab,abco->hwo", windows, kernel)


def affine(layer, w):
    """The layer's affine map of w, in numpy: w @ (kernel / sqrt(fan_in)) + bias (gain 1)."""
    a = layer.affine
    return w.astype(np.float64) @ (np_out(a.kernel) / math.sqrt(w.shape[-1])) + np_out(a.bias)


@pytest.mark.parametrize("demodulate,kernel_size", [(True, 3), (False, 3), (True, 1), (False, 1)])
def test_modulated_conv_matches_the_stylegan2_formula(demodulate, kernel_size):
    """Per sample: k' = s_i * k, k'' = k' / sqrt(sum_{a,b,i} k'^2 + eps), then an ordinary conv (+ bias)."""
    x, w = rand((2, 5, 5, 3), 1), rand((2, 4), 2)
    layer = ModulatedConv2D(4, kernel_size, demodulate=demodulate)
    y = layer([x, w])
    # non-trivial affine bias and conv bias so that both enter the check
    layer.affine.bias.assign(rand((3,), 3) * 0.3)
    layer.bias.assign(rand((4,), 4))
    y = np_out(layer([x, w]))
    assert y.shape == (2, 5, 5, 4)
    styles = affine(layer, w) + 1.0  # [2, 3]
    kernel = np_out(layer.kernel) * math.sqrt(2.0) / math.sqrt(kernel_size * kernel_size * 3)
    for n in range(2):
        k = kernel * styles[n][None, None, :, None]
        if demodulate:
            k = k / np.sqrt(np.sum(k**2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        expected = conv_same(x[n], k) + np_out(layer.bias)
        np.testing.assert_allclose(y[n], expected, rtol=1e-4, atol=1e-5)


def test_demodulation_gives_unit_output_scale_whatever_the_style_scale():
    """Scaling the styles (or the kernel) does not change a demodulated conv's output."""
    x, w = rand((2, 6, 6, 8), 5), rand((2, 4), 6)
    layer = ModulatedConv2D(5, 3, use_bias=False)
    y = np_out(layer([x, w]))
    layer.kernel.assign(np_out(layer.kernel) * 7.0)
    np.testing.assert_allclose(np_out(layer([x, w])), y, rtol=1e-4, atol=1e-5)


def test_adain_matches_numpy():
    x, w = rand((2, 4, 4, 3), 7), rand((2, 5), 8)
    layer = AdaIN()
    layer([x, w])
    layer.affine.bias.assign(rand((6,), 9))
    y = np_out(layer([x, w]))
    ys = affine(layer, w)
    scale, bias = ys[:, :3], ys[:, 3:]
    xd = x.astype(np.float64)
    mean, var = xd.mean(axis=(1, 2), keepdims=True), xd.var(axis=(1, 2), keepdims=True)
    expected = (xd - mean) / np.sqrt(var + 1e-8) * (1 + scale[:, None, None]) + bias[:, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_noise_injection_adds_noise_with_per_channel_strength():
    x, noise = rand((2, 3, 3, 4), 10), rand((2, 3, 3, 1), 11)
    layer = NoiseInjection()
    np.testing.assert_array_equal(np_out(layer([x, noise])), x.astype(np.float64))  # strength starts at 0
    strength = np.array([0.0, 1.0, -2.0, 0.5], np.float32)
    layer.strength.assign(strength)
    np.testing.assert_allclose(np_out(layer([x, noise])), x + strength * noise, rtol=1e-6, atol=1e-6)


def test_projected_noise_is_a_frozen_projection_of_z_with_unit_variance():
    z = rand((4000, 32), 12)
    layer = ProjectedNoise(4)
    maps = np_out(layer(z))
    assert maps.shape == (4000, 4, 4, 1)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 1
    np.testing.assert_allclose(maps.reshape(4000, 16), z.astype(np.float64) @ np_out(layer.projection),
                               rtol=1e-4, atol=1e-5)
    # each pixel of the map is ~N(0, 1) for z ~ N(0, I): variance ||column of P||^2 ~ 1
    assert abs(maps.std() - 1.0) < 0.2
    # per sample: a sample's map does not depend on the rest of the batch
    np.testing.assert_allclose(np_out(layer(z[:3]))[1], maps[1], rtol=1e-5, atol=1e-6)


def test_learned_constant_is_the_same_for_every_sample():
    layer = LearnedConstant((4, 4, 2))
    y = np_out(layer(np.zeros((3, 7), np.float32)))
    assert y.shape == (3, 4, 4, 2)
    np.testing.assert_array_equal(y[0], y[2])
    np.testing.assert_array_equal(y[0], np_out(layer.constant)[0])


@pytest.mark.parametrize("make,inputs", [
    (lambda: ModulatedConv2D(4, 3, demodulate=False, gain=1.0, name="m"), lambda: [rand((1, 4, 4, 2)), rand((1, 3))]),
    (lambda: AdaIN(epsilon=1e-5, name="a"), lambda: [rand((1, 4, 4, 2)), rand((1, 3))]),
    (lambda: NoiseInjection(name="n"), lambda: [rand((1, 4, 4, 2)), rand((1, 4, 4, 1))]),
    (lambda: ProjectedNoise(4, name="p"), lambda: rand((1, 3))),
    (lambda: LearnedConstant((4, 4, 2), name="c"), lambda: rand((1, 3))),
])
def test_config_round_trip(make, inputs):
    layer = make()
    x = inputs()
    y = np_out(layer(x))
    clone = layer.__class__.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(np_out(clone(x)), y, rtol=1e-6)
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).name == layer.name
