"""Tests for keras_pgen.layers against independent numpy references."""
import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_pgen.layers import EqualizedConv2D, EqualizedDense, MinibatchStdDev, PixelNormalization


def np_out(x):
    return ops.convert_to_numpy(x)


def rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def conv_reference(x, kernel, padding):
    """Stride-1 NHWC cross-correlation in float64; "same" pads (k-1)//2 zeros before, the rest after (as
    TF/XLA); "reflect" pads k//2 mirrored rows (numpy's "reflect": the edge row is not repeated)."""
    k = kernel.shape[0]
    x = x.astype(np.float64)
    if padding in ("same", "reflect"):
        before, after = (k - 1) // 2, (k - 1) - (k - 1) // 2
        mode = "constant" if padding == "same" else "reflect"
        x = np.pad(x, ((0, 0), (before, after), (before, after), (0, 0)), mode=mode)
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))  # n, h', w', c, k, k
    return np.einsum("nhwcab,abco->nhwo", windows, kernel.astype(np.float64))


# ---------------------------------------------------------------- EqualizedConv2D


@pytest.mark.parametrize("kernel_size,padding,out_hw", [(3, "same", 5), (3, "valid", 3), (4, "valid", 2),
                                                        (2, "same", 5), (1, "same", 5), (3, "reflect", 5),
                                                        (5, "reflect", 5), (1, "reflect", 5)])
def test_equalized_conv2d_matches_numpy(kernel_size, padding, out_hw):
    cin, cout = 3, 4
    x = rand((2, 5, 5, cin), seed=1)
    layer = EqualizedConv2D(cout, kernel_size, padding=padding)
    layer.build(x.shape)
    bias = rand((cout,), seed=2)
    layer.bias.assign(bias)
    y = np_out(layer(x))
    assert y.shape == (2, out_hw, out_hw, cout)
    assert layer.compute_output_shape(x.shape) == y.shape
    scale = math.sqrt(2.0) / math.sqrt(kernel_size * kernel_size * cin)
    kernel = np_out(layer.kernel)
    expected = conv_reference(x, kernel * scale, padding) + bias
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_reflect_padding_computes_border_pixels_like_the_others():
    """A spatially constant input gives a constant output with "reflect"; zero padding ("same") darkens the border."""
    x = np.full((1, 6, 6, 2), 0.7, np.float32)
    outputs = {}
    for padding in ("same", "reflect"):
        layer = EqualizedConv2D(3, 3, padding=padding, use_bias=False)
        layer.build(x.shape)
        layer.kernel.assign(np.abs(rand((3, 3, 2, 3), seed=4)))  # positive taps: a border missing some is smaller
        outputs[padding] = np_out(layer(x))
    interior = outputs["same"][:, 1:-1, 1:-1]
    np.testing.assert_allclose(outputs["reflect"], np.broadcast_to(interior[:, :1, :1], x.shape[:3] + (3,)),
                               rtol=1e-5)
    assert (outputs["same"][:, 0] < interior[:, :1, :1] - 1e-3).all()  # the frame zero padding draws
    with pytest.raises(ValueError, match="unknown padding 'zeros'"):
        EqualizedConv2D(3, 3, padding="zeros")


def test_equalized_conv2d_same_padding_hand_value():
    # 1 channel, 3x3 kernel of ones, gain 3 -> scale = 3 / sqrt(9) = 1: output = sum of the 3x3 neighbourhood.
    layer = EqualizedConv2D(1, 3, gain=3.0, use_bias=False)
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    layer.build(x.shape)
    layer.kernel.assign(np.ones((3, 3, 1, 1), np.float32))
    y = np_out(layer(x))[0, :, :, 0]
    # [[0 1 2] [3 4 5] [6 7 8]] zero-padded neighbourhood sums
    np.testing.assert_allclose(y, [[8, 15, 12], [21, 36, 27], [20, 33, 24]], rtol=1e-6)
    assert layer.bias is None


def test_equalized_conv2d_init_and_runtime_scale():
    layer = EqualizedConv2D(64, 3)
    layer.build((None, 8, 8, 64))
    kernel = np_out(layer.kernel)
    assert kernel.shape == (3, 3, 64, 64)
    assert kernel.std() == pytest.approx(1.0, rel=0.05)
    assert abs(kernel.mean()) < 0.05
    assert layer.runtime_scale == pytest.approx(math.sqrt(2.0) / math.sqrt(3 * 3 * 64), rel=1e-12)
    np.testing.assert_array_equal(np_out(layer.bias), np.zeros(64, np.float32))

    rgb = EqualizedConv2D(3, 1, gain=1.0)
    rgb.build((None, 4, 4, 16))
    assert rgb.runtime_scale == pytest.approx(1.0 / 4.0, rel=1e-12)


def test_equalized_conv2d_lr_multiplier():
    lr_mul = 0.01
    slow = EqualizedConv2D(64, 3, lr_multiplier=lr_mul)
    slow.build((None, 8, 8, 64))
    normal = EqualizedConv2D(64, 3)
    normal.build((None, 8, 8, 64))
    # Stored weights ~ N(0, 1/lr_mul^2); runtime scale multiplied by lr_mul.
    assert np_out(slow.kernel).std() == pytest.approx(1.0 / lr_mul, rel=0.05)
    he = math.sqrt(2.0) / math.sqrt(9 * 64)
    assert slow.runtime_scale == pytest.approx(he * lr_mul, rel=1e-12)
    # Effective weights have the same distribution as without the multiplier.
    effective_slow = np_out(slow.kernel) * slow.runtime_scale
    effective_normal = np_out(normal.kernel) * normal.runtime_scale
    assert effective_slow.std() == pytest.approx(he, rel=0.05)
    assert effective_normal.std() == pytest.approx(he, rel=0.05)
    # Bias scaled by lr_mul: zero kernel, bias 5 -> output 5 * 0.01.
    slow.kernel.assign(np.zeros((3, 3, 64, 64), np.float32))
    slow.bias.assign(np.full((64,), 5.0, np.float32))
    np.testing.assert_allclose(np_out(slow(rand((1, 4, 4, 64)))), 0.05, rtol=1e-5)


# ---------------------------------------------------------------- EqualizedDense


def test_equalized_dense_matches_numpy():
    x = rand((3, 5), seed=3)
    layer = EqualizedDense(4)
    layer.build(x.shape)
    bias = rand((4,), seed=4)
    layer.bias.assign(bias)
    scale = math.sqrt(2.0) / math.sqrt(5)
    assert layer.runtime_scale == pytest.approx(scale, rel=1e-12)
    expected = x.astype(np.float64) @ (np_out(layer.kernel).astype(np.float64) * scale) + bias
    y = np_out(layer(x))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    # Rank-3 input: applied to the last axis.
    x3 = rand((2, 3, 5), seed=5)
    y3 = np_out(layer(x3))
    assert y3.shape == (2, 3, 4) == layer.compute_output_shape(x3.shape)
    np.testing.assert_allclose(y3, x3 @ (np_out(layer.kernel) * scale) + bias, rtol=1e-5, atol=1e-6)


def test_equalized_dense_hand_value():
    # fan_in 4, gain 2 -> scale 1; kernel all ones, no bias: output = row sum.
    layer = EqualizedDense(2, gain=2.0, use_bias=False)
    layer.build((None, 4))
    layer.kernel.assign(np.ones((4, 2), np.float32))
    np.testing.assert_allclose(np_out(layer(np.array([[1, 2, 3, 4]], np.float32))), [[10, 10]], rtol=1e-6)
    assert layer.bias is None


def test_equalized_dense_init_and_lr_multiplier():
    normal = EqualizedDense(256)
    normal.build((None, 512))
    assert np_out(normal.kernel).std() == pytest.approx(1.0, rel=0.05)
    assert normal.runtime_scale == pytest.approx(math.sqrt(2.0 / 512), rel=1e-12)
    lr_mul = 0.01
    slow = EqualizedDense(256, lr_multiplier=lr_mul)
    slow.build((None, 512))
    assert np_out(slow.kernel).std() == pytest.approx(100.0, rel=0.05)
    assert slow.runtime_scale == pytest.approx(math.sqrt(2.0 / 512) * lr_mul, rel=1e-12)
    assert (np_out(slow.kernel) * slow.runtime_scale).std() == pytest.approx(math.sqrt(2.0 / 512), rel=0.05)
    slow.kernel.assign(np.zeros((512, 256), np.float32))
    slow.bias.assign(np.full((256,), 3.0, np.float32))
    np.testing.assert_allclose(np_out(slow(rand((2, 512)))), 0.03, rtol=1e-5)


def test_lr_multiplier_scales_gradients():
    # The point of the multiplier: d(output)/d(stored weight) is scaled by lr_mul (and He's constant).
    import tensorflow as tf

    x = np.ones((1, 4), np.float32)
    for lr_mul in (1.0, 0.1):
        layer = EqualizedDense(1, gain=2.0, lr_multiplier=lr_mul)  # scale = 2 / sqrt(4) * lr_mul = lr_mul
        layer.build(x.shape)
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(layer(x))
        dk, db = tape.gradient(y, [layer.kernel, layer.bias])
        np.testing.assert_allclose(dk.numpy(), np.full((4, 1), lr_mul), rtol=1e-6)
        np.testing.assert_allclose(db.numpy(), [lr_mul], rtol=1e-6)


# ---------------------------------------------------------------- PixelNormalization


def test_pixel_normalization_matches_numpy():
    x = rand((2, 3, 3, 5), seed=6) * 3.0
    y = np_out(PixelNormalization()(x))
    x64 = x.astype(np.float64)
    expected = x64 / np.sqrt(np.mean(x64 ** 2, axis=-1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    np.testing.assert_allclose(np.mean(y.astype(np.float64) ** 2, axis=-1), 1.0, rtol=1e-5)


def test_pixel_normalization_hand_value_and_epsilon():
    # [3, 4]: mean square 12.5 -> divide by sqrt(12.5)
    y = np_out(PixelNormalization()(np.array([[3.0, 4.0]], np.float32)))
    np.testing.assert_allclose(y, [[3 / math.sqrt(12.5), 4 / math.sqrt(12.5)]], rtol=1e-6)
    # Zero vector stays finite (epsilon); a large epsilon shrinks the output.
    assert np.all(np_out(PixelNormalization()(np.zeros((1, 4), np.float32))) == 0.0)
    y = np_out(PixelNormalization(epsilon=1.0)(np.array([[1.0, 1.0]], np.float32)))
    np.testing.assert_allclose(y, [[1 / math.sqrt(2.0), 1 / math.sqrt(2.0)]], rtol=1e-6)


# ---------------------------------------------------------------- MinibatchStdDev


def mbstd_reference(x, group, eps=1e-8):
    """Consecutive groups of `group` samples: std over the group, averaged over h, w, c, appended."""
    n, h, w, c = x.shape
    y = x.astype(np.float64).reshape(-1, group, h, w, c)
    s = np.sqrt(y.var(axis=1) + eps).mean(axis=(1, 2, 3))  # [n / group]
    s = np.repeat(s, group)  # consecutive samples share their group's value
    return np.concatenate([x, np.broadcast_to(s[:, None, None, None], (n, h, w, 1))], axis=-1)


def test_minibatch_stddev_hand_value():
    x = np.array([0.0, 2.0, 5.0, 5.0], np.float32).reshape(4, 1, 1, 1)
    y = np_out(MinibatchStdDev(group_size=2)(x))
    # groups [0, 2] (std 1) and [5, 5] (std sqrt(1e-8) = 1e-4): consecutive, not strided.
    np.testing.assert_allclose(y[:, 0, 0, 1], [1.0, 1.0, 1e-4, 1e-4], rtol=1e-4)
    np.testing.assert_array_equal(y[:, 0, 0, 0], x[:, 0, 0, 0])


@pytest.mark.parametrize("batch,group_size,group", [(8, 4, 4), (16, 4, 4), (6, 4, 3), (5, 4, 1), (2, 4, 2),
                                                    (9, 4, 3), (4, 1, 1)])
def test_minibatch_stddev_matches_numpy(batch, group_size, group):
    # `group`: the largest divisor of `batch` that is at most `group_size`, worked out by hand.
    x = rand((batch, 3, 2, 5), seed=batch)
    layer = MinibatchStdDev(group_size=group_size)
    y = np_out(layer(x))
    assert y.shape == (batch, 3, 2, 6) == layer.compute_output_shape(x.shape)
    np.testing.assert_array_equal(y[..., :5], x)
    np.testing.assert_allclose(y, mbstd_reference(x, group), rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_is_unchanged_when_split_across_replicas():
    x = rand((16, 4, 4, 3), seed=7)
    layer = MinibatchStdDev(group_size=4)
    whole = np_out(layer(x))
    split = np.concatenate([np_out(layer(x[:8])), np_out(layer(x[8:]))])
    np.testing.assert_allclose(split, whole, rtol=1e-6, atol=1e-7)
    # And the groups really differ from each other (the test is not trivially constant).
    assert np.unique(np.round(whole[:, 0, 0, -1], 5)).size == 4


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize("make,input_shape", [
    (lambda: EqualizedConv2D(4, 3, padding="valid", gain=1.5, use_bias=False, lr_multiplier=0.5, name="c"),
     (2, 5, 5, 3)),
    (lambda: EqualizedConv2D(4, 1), (2, 4, 4, 3)),
    (lambda: EqualizedDense(3, gain=0.5, use_bias=True, lr_multiplier=0.1, name="d"), (2, 6)),
    (lambda: PixelNormalization(epsilon=1e-4, name="pn"), (2, 3, 3, 4)),
    (lambda: MinibatchStdDev(group_size=2, epsilon=1e-6, name="mb"), (4, 2, 2, 3)),
])
def test_layer_config_round_trip(make, input_shape):
    layer = make()
    x = rand(input_shape, seed=8)
    y = np_out(layer(x))
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    for key in ("gain", "use_bias", "lr_multiplier", "filters", "kernel_size", "padding", "units",
                "epsilon", "group_size"):
        if hasattr(layer, key):
            assert config[key] == getattr(layer, key)
    clone.build(input_shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np_out(clone(x)), y, rtol=1e-6)
    # Registered for keras.saving.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_folded_scales_runs_the_same_network_from_prescaled_weights_and_restores_it_exactly():
    """Export folds the equalized scales into the variables: same outputs; afterwards the exact old state."""
    from keras_pgen.layers import UpscaleConv2D
    from keras_pgen.layers.equalized import folded_scales

    keras.utils.set_random_seed(3)
    z = keras.Input((6,))
    x = keras.layers.Reshape((2, 2, 4))(EqualizedDense(16, lr_multiplier=0.1, name="dense")(z))
    x = UpscaleConv2D(5, name="up")(x)
    y = EqualizedConv2D(3, 3, gain=1.0, lr_multiplier=0.5, name="conv")(x)
    net = keras.Model(z, y)
    for w in net.weights:  # non-zero biases, so their lr_multiplier matters
        w.assign(np.random.RandomState(len(w.name)).randn(*w.shape).astype("float32"))
    inputs = np.random.RandomState(0).randn(4, 6).astype("float32")
    before = [w.numpy() for w in net.weights]
    expected = net(inputs).numpy()
    conv = net.get_layer("conv")
    with folded_scales(net) as folded:
        assert len(folded.layers) == 3
        assert conv.runtime_scale == 1.0 and conv.bias_scale == 1.0
        np.testing.assert_allclose(conv.kernel.numpy(), before[-2] * (0.5 / math.sqrt(45)), rtol=1e-6)
        np.testing.assert_allclose(conv.bias.numpy(), before[-1] * 0.5, rtol=1e-6)
        np.testing.assert_allclose(net(inputs).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert conv.runtime_scale == pytest.approx(0.5 / math.sqrt(45)) and conv.bias_scale == 0.5
    for w, b in zip(net.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)
    np.testing.assert_array_equal(net(inputs).numpy(), expected)


def test_return_large_buffers_to_os_applies_on_glibc():
    import platform

    from keras_pgen import memory

    applied = memory.return_large_buffers_to_os()
    assert applied == (platform.libc_ver()[0] == "glibc")


_ARENAS_CHILD = r"""
import ctypes, sys, threading
sys.path.insert(0, sys.argv[1])
from keras_pgen import memory
if sys.argv[2] != "0":
    assert memory.limit_malloc_arenas(int(sys.argv[2]))
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
kept, start = [], threading.Barrier(4)
def work():  # four threads allocating at the same time
    start.wait()
    kept.extend(libc.malloc(4096) for _ in range(100))
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
f = libc.fopen(sys.argv[3].encode(), b"w")
libc.malloc_info(0, f)
libc.fclose(f)
"""


def test_limit_malloc_arenas_keeps_every_thread_on_one_heap(tmp_path):
    """glibc's own report (malloc_info) of a process whose four threads allocate together:
    several heaps by default, one after `limit_malloc_arenas(1)`."""
    import os
    import platform
    import re
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        from keras_pgen import memory

        assert memory.limit_malloc_arenas(1) is False
        return
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    heaps = {}
    for arenas in (0, 1):
        report = tmp_path / f"malloc_info_{arenas}.xml"
        subprocess.run([sys.executable, "-c", _ARENAS_CHILD, repo, str(arenas), str(report)], check=True)
        heaps[arenas] = len(re.findall(r'<heap nr="\d+">', report.read_text()))
    assert heaps[1] == 1 and heaps[0] > 1, heaps
