"""DiffAugment ops: formulas, known shifts and squares against numpy, gradients, gating, pyramids, JAX."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from keras_pgen.layers import diffaugment as da

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def images(n=3, h=8, w=8, c=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, h, w, c)).astype(np.float32)


def test_colour_ops_match_their_formulas():
    x = images()
    u = np.array([0.1, 0.5, 0.9], np.float32)
    b = u[:, None, None, None]
    np.testing.assert_allclose(np.asarray(da.brightness(x, u)), x + b - 0.5, atol=1e-6)
    mean_c = x.mean(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(da.saturation(x, u)), (x - mean_c) * 2 * b + mean_c, atol=1e-6)
    mean_all = x.mean((1, 2, 3), keepdims=True)
    np.testing.assert_allclose(np.asarray(da.contrast(x, u)), (x - mean_all) * (b + 0.5) + mean_all, atol=1e-6)


def numpy_translate(x, th, tw):
    """out[i, j] = x[i + th, j + tw]: np.roll by -t, then zero the rows/columns that wrapped around."""
    out = np.roll(x, (-th, -tw), axis=(0, 1))
    h, w = x.shape[:2]
    if th > 0:
        out[h - th:] = 0
    elif th < 0:
        out[:-th] = 0
    if tw > 0:
        out[:, w - tw:] = 0
    elif tw < 0:
        out[:, :-tw] = 0
    return out


def test_translation_by_known_shifts_equals_roll_and_zero_pad():
    x = images(n=4, h=8, w=6)
    th, tw = np.array([0, 1, -1, 3], np.int32), np.array([2, 0, -2, -1], np.int32)
    out = np.asarray(da.translate(x, th, tw))
    for i in range(4):
        np.testing.assert_array_equal(out[i], numpy_translate(x[i], th[i], tw[i]))
    # the draws map to every shift in [-s, s], s = int(8 * 0.125 + 0.5) = 1, uniformly, like the reference
    u = np.array([0.0, 0.3, 0.34, 0.66, 0.67, 0.999], np.float32)
    shifts_h, shifts_w = da.translation_shifts(u, u, 8, 16)
    np.testing.assert_array_equal(np.asarray(shifts_h), [-1, -1, 0, 0, 1, 1])
    np.testing.assert_array_equal(np.asarray(shifts_w), [-2, -1, -1, 1, 1, 2])  # s = 2: floor(u * 5) - 2
    np.testing.assert_array_equal(np.asarray(da.translation(x, np.full(4, 0.999), np.zeros(4))),
                                  np.asarray(da.translate(x, np.full(4, 1), np.full(4, -1))))


def test_cutout_zeroes_the_right_square():
    x = images(n=3, h=8, w=8) + 2.0  # no zeros in the input
    u_h = np.array([0.0, 0.5, 0.999], np.float32)
    u_w = np.array([0.999, 0.25, 0.0], np.float32)
    out = np.asarray(da.cutout(x, u_h, u_w))
    # side c = 4 (even): offsets floor(u * 9) in [0, 8], square starts at offset - 2, clipped to the image
    for i in range(3):
        start_h, start_w = int(np.floor(u_h[i] * 9)) - 2, int(np.floor(u_w[i] * 9)) - 2
        mask = np.ones((8, 8), bool)
        mask[max(start_h, 0):max(start_h + 4, 0), max(start_w, 0):max(start_w + 4, 0)] = False
        np.testing.assert_array_equal(out[i][~mask], 0.0)
        np.testing.assert_array_equal(out[i][mask], x[i][mask])
    assert (out[1] == 0).all(-1).sum() == 16  # a square fully inside: 4 x 4 pixels
    assert (out[0] == 0).all(-1).sum() == 2 * 2  # a corner: rows -2..1 and columns 6..9 clipped


@pytest.mark.parametrize("op", ["brightness", "saturation", "contrast", "translation", "cutout"])
def test_gradients_flow_to_the_input_through_every_op(op):
    x = tf.constant(images(n=2))
    draws = tf.constant(np.random.default_rng(1).uniform(0, 1, (2, da.num_draws(op))).astype(np.float32))
    weights = tf.constant(np.random.default_rng(2).normal(size=x.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = da.diff_augment(x, draws, op)
        loss = tf.reduce_sum(out * weights)
    grad = tape.gradient(loss, x).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
    # the gradient is exact: a finite difference along a random direction agrees
    v = np.random.default_rng(3).normal(size=x.shape).astype(np.float32)
    eps = 1e-2
    f = lambda y: float(tf.reduce_sum(da.diff_augment(tf.constant(y), draws, op) * weights))  # noqa: E731
    numeric = (f(x.numpy() + eps * v) - f(x.numpy() - eps * v)) / (2 * eps)
    assert numeric == pytest.approx(float((grad * v).sum()), rel=1e-2, abs=1e-3)


def test_policy_parsing_and_draw_layout():
    assert da.parse_policy("color,translation,cutout") == (
        "brightness", "saturation", "contrast", "translation", "cutout")
    assert da.num_draws("color,translation,cutout") == 7
    assert da.num_draws("color,translation,cutout", gated=True) == 12
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        da.parse_policy("color,rotate")
    with pytest.raises(ValueError, match="needs 2 draws"):
        da.diff_augment(images(), np.zeros((3, 3), np.float32), "cutout")
    # ops run in policy order, each on its own columns
    x, u = images(), np.random.default_rng(4).uniform(0, 1, (3, 3)).astype(np.float32)
    expected = da.cutout(da.brightness(x, u[:, 0]), u[:, 1], u[:, 2])
    np.testing.assert_allclose(np.asarray(da.diff_augment(x, u, "brightness,cutout")), np.asarray(expected))


def test_ada_gates_apply_each_op_with_probability_p():
    x = images(n=4)
    # columns: brightness, its gate, cutout (2), its gate
    u = np.random.default_rng(5).uniform(0, 1, (4, 5)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(da.diff_augment(x, u, "brightness,cutout", probability=0.0)), x)
    full = da.cutout(da.brightness(x, u[:, 0]), u[:, 2], u[:, 3])
    np.testing.assert_allclose(np.asarray(da.diff_augment(x, u, "brightness,cutout", probability=1.0)),
                               np.asarray(full), atol=1e-6)
    # p = 0.5: exactly the samples whose gate draw is below 0.5 get each op
    u[:, 1] = [0.1, 0.9, 0.4, 0.6]
    u[:, 4] = [0.9, 0.9, 0.2, 0.2]
    out = np.asarray(da.diff_augment(x, u, "brightness,cutout", probability=0.5))
    bright = np.asarray(da.brightness(x, u[:, 0]))
    np.testing.assert_allclose(out[0], bright[0], atol=1e-6)
    np.testing.assert_array_equal(out[1], x[1])
    np.testing.assert_allclose(out[2], np.asarray(da.cutout(bright, u[:, 2], u[:, 3]))[2], atol=1e-6)
    np.testing.assert_allclose(out[3], np.asarray(da.cutout(x, u[:, 2], u[:, 3]))[3], atol=1e-6)
    assert not np.allclose(out[3], x[3])  # the cutout really removed something


def test_a_pyramid_gets_the_same_draws_at_every_scale():
    x16 = images(n=2, h=16, w=16)
    x8 = x16.reshape(2, 8, 2, 8, 2, 3).mean((2, 4))
    u = np.array([[0.9, 0.3, 0.7, 0.999, 0.0, 0.5, 0.5]] * 2, np.float32)
    out8, out16 = da.diff_augment([x8, x16], u)
    np.testing.assert_allclose(np.asarray(out8), np.asarray(da.diff_augment(x8, u)))
    np.testing.assert_allclose(np.asarray(out16), np.asarray(da.diff_augment(x16, u)))
    # the same translation relative to the size: +1 row at 8x8 (s = 1), +2 rows at 16x16 (s = 2)
    th8, _ = da.translation_shifts(u[:, 3], u[:, 4], 8, 8)
    th16, _ = da.translation_shifts(u[:, 3], u[:, 4], 16, 16)
    assert int(th8[0]) == 1 and int(th16[0]) == 2


def test_pure_keras_under_jax():
    """The module imports no TensorFlow and gives the same values under the JAX backend."""
    x = images(n=2)
    u = np.random.default_rng(6).uniform(0, 1, (2, da.num_draws(da.DEFAULT_POLICY, gated=True))).astype(np.float32)
    expected = np.asarray(da.diff_augment(x, u, probability=0.7))
    code = textwrap.dedent(f"""
        import sys, numpy as np, keras
        assert keras.backend.backend() == "jax"
        from keras_pgen.layers import diffaugment as da
        assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow"]
        x = np.asarray({x.tolist()!r}, np.float32)
        u = np.asarray({u.tolist()!r}, np.float32)
        np.save(sys.argv[1], np.asarray(da.diff_augment(x, u, probability=0.7)))
    """)
    out_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"diffaugment_jax_{os.getpid()}.npy")
    proc = subprocess.run([sys.executable, "-c", code, out_path], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                                         "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.load(out_path), expected, atol=1e-6)
    os.remove(out_path)
