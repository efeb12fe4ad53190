"""layers/, networks/ and losses/ are pure Keras 3: they import no TensorFlow and run under JAX.

One subprocess with KERAS_BACKEND=jax builds and runs every layer and network,
evaluates every loss against hand values and differentiates a generator loss
with jax.grad. The parent test asserts the marker line it prints.
"""
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKER = "KERAS_PGEN_JAX_BACKEND_OK"

CODE = textwrap.dedent(r'''
    import math
    import sys

    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    import keras_pgen.layers
    import keras_pgen.losses
    import keras_pgen.networks
    tf_modules = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
    assert not tf_modules, f"tensorflow imported by keras_pgen: {tf_modules[:5]}"

    import jax
    import jax.numpy as jnp
    import numpy as np
    from keras import ops

    from keras_pgen.layers import EqualizedConv2D, EqualizedDense, MinibatchStdDev, PixelNormalization
    from keras_pgen.losses import adversarial as adv
    from keras_pgen.networks import DCGANDiscriminator, DCGANGenerator, MSGGANDiscriminator, MSGGANGenerator

    rng = np.random.default_rng(0)
    rand = lambda *shape: rng.normal(size=shape).astype(np.float32)
    out = lambda x: np.asarray(ops.convert_to_numpy(x), np.float64)

    # ---- layers, against numpy
    x = rand(2, 5, 5, 3)
    for k, padding, hw in ((3, "same", 5), (3, "valid", 3)):
        conv = EqualizedConv2D(4, k, padding=padding)
        y = out(conv(x))
        assert isinstance(conv(x), jax.Array)
        assert y.shape == (2, hw, hw, 4)
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))) if padding == "same" else x
        win = np.lib.stride_tricks.sliding_window_view(xp.astype(np.float64), (k, k), axis=(1, 2))
        kernel = out(conv.kernel) * math.sqrt(2.0) / math.sqrt(k * k * 3)
        np.testing.assert_allclose(y, np.einsum("nhwcab,abco->nhwo", win, kernel), rtol=1e-4, atol=1e-5)
    dense = EqualizedDense(3, lr_multiplier=0.5)
    v = rand(2, 4)
    np.testing.assert_allclose(out(dense(v)), v @ (out(dense.kernel) * math.sqrt(2.0) / 2 * 0.5),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out(PixelNormalization()(x)),
                               x / np.sqrt(np.mean(x.astype(np.float64) ** 2, -1, keepdims=True) + 1e-8),
                               rtol=1e-5)
    xb = rand(6, 2, 2, 3)  # batch 6, group 4 -> groups of 3 consecutive samples
    s = np.sqrt(xb.astype(np.float64).reshape(2, 3, 2, 2, 3).var(axis=1) + 1e-8).mean(axis=(1, 2, 3))
    expected = np.concatenate([xb, np.broadcast_to(np.repeat(s, 3)[:, None, None, None], (6, 2, 2, 1))], -1)
    np.testing.assert_allclose(out(MinibatchStdDev(4)(xb)), expected, rtol=1e-5, atol=1e-6)

    # ---- networks (forward passes jitted: one compilation per network instead of one per op)
    g = MSGGANGenerator(latent_dim=8, resolution=16, fmap_base=64, fmap_max=16)
    d = MSGGANDiscriminator(resolution=16, fmap_base=64, fmap_max=16)
    g_fn, d_fn = jax.jit(lambda t: g(t)), jax.jit(lambda t: d(t))
    z = rand(4, 8)
    fakes = g_fn(z)
    assert [tuple(i.shape) for i in fakes] == [(4, 4, 4, 3), (4, 8, 8, 3), (4, 16, 16, 3)]
    reals = [rand(4, r, r, 3) for r in (4, 8, 16)]
    real_logits, fake_logits = d_fn(reals), d_fn(fakes)
    assert tuple(fake_logits.shape) == (4, 1) and np.all(np.isfinite(out(fake_logits)))
    assert np.all(np.isfinite(out(real_logits))) and np.max(np.abs(out(real_logits) - out(fake_logits))) > 0
    dg = DCGANGenerator(latent_dim=8, resolution=16, base_filters=4, max_filters=16, norm="none")
    dd = DCGANDiscriminator(resolution=16, base_filters=4, max_filters=16, norm="none")
    dcgan_images = jax.jit(lambda t: dg(t))(z)
    assert tuple(dcgan_images.shape) == (4, 16, 16, 3)
    dcgan_logits = jax.jit(lambda t: dd(t))(dcgan_images)
    assert tuple(dcgan_logits.shape) == (4, 1) and np.all(np.isfinite(out(dcgan_logits)))

    # ---- losses, hand values (real = [1, -0.5], fake = [0.2, 2])
    r, f = ops.convert_to_tensor([1.0, -0.5]), ops.convert_to_tensor([0.2, 2.0])
    sp = lambda t: math.log(1 + math.exp(t))
    checks = {
        "ns_d": (adv.non_saturating_discriminator_loss(r, f), (sp(-1) + sp(0.5)) / 2 + (sp(0.2) + sp(2)) / 2),
        "ns_g": (adv.non_saturating_generator_loss(f, r), (sp(-0.2) + sp(-2)) / 2),
        "hinge_d": (adv.hinge_discriminator_loss(r, f), 0.75 + 2.1),
        "hinge_g": (adv.hinge_generator_loss(f, r), -1.1),
        "wgan_d": (adv.wasserstein_discriminator_loss(r, f), 0.85),
        "wgan_g": (adv.wasserstein_generator_loss(f, r), -1.1),
        "ra_d": (adv.relativistic_average_hinge_discriminator_loss(r, f), 3.7),
        "ra_g": (adv.relativistic_average_hinge_generator_loss(f, r), 0.975),
        "gp": (adv.gradient_penalty([ops.convert_to_tensor([[3.0, 0.0], [0.0, 0.0]]),
                                     ops.convert_to_tensor([[4.0], [1.0]])]), 8.0),
        "r1": (adv.r1_penalty([ops.convert_to_tensor([[3.0, 0.0], [0.0, 0.0]]),
                               ops.convert_to_tensor([[4.0], [1.0]])]), 13.0),
        "drift": (adv.drift_penalty(r), 0.625),
    }
    for name, (got, want) in checks.items():
        assert abs(float(got) - want) < 1e-5 * max(1.0, abs(want)), (name, float(got), want)
    for name, (d_loss, g_loss, _) in adv.ADVERSARIAL_LOSSES.items():
        assert np.isfinite(float(d_loss(real_logits, fake_logits)))
        assert np.isfinite(float(g_loss(fake_logits, real_logits)))

    # ---- jax.grad of a generator loss w.r.t. the latent input, and R1 w.r.t. the real images
    # (jitted: one compilation instead of one per op and per VJP)
    def generator_loss(latent):
        return adv.relativistic_average_hinge_generator_loss(d(g(latent)), real_logits)
    grad = np.asarray(jax.jit(jax.grad(generator_loss))(jnp.asarray(z)))
    assert grad.shape == z.shape and np.all(np.isfinite(grad)) and np.any(grad != 0), grad
    dcgan_grad = np.asarray(jax.jit(jax.grad(lambda latent: adv.non_saturating_generator_loss(dd(dg(latent)))))(
        jnp.asarray(z)))
    assert np.all(np.isfinite(dcgan_grad)) and np.any(dcgan_grad != 0)
    input_grads = jax.jit(jax.grad(lambda images: jnp.sum(d(images))))([jnp.asarray(i) for i in reals])
    r1 = float(adv.r1_penalty(input_grads))
    assert np.isfinite(r1) and r1 > 0
    print("''' + MARKER + r'''", flush=True)

    # ---- DCGAN with its default norm ("batch") under JAX: reported separately
    try:
        bg = DCGANGenerator(latent_dim=8, resolution=16, base_filters=4, max_filters=16, norm="batch")
        bd = DCGANDiscriminator(resolution=16, base_filters=4, max_filters=16, norm="batch")
        assert tuple(bd(bg(z)).shape) == (4, 1)
        print("DCGAN_BATCH_NORM_OK", flush=True)
    except Exception as e:
        print(f"DCGAN_BATCH_NORM_FAILED: {type(e).__name__}: {e}", flush=True)
''')


@pytest.fixture(scope="module")
def jax_run():
    # XLA's CPU backend optimizations make every eager op (each weight initializer, each layer)
    # compile for ~1 s; level 0 keeps the run short and does not change any result checked here.
    xla_flags = " ".join(f for f in (os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0") if f)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags,
           "PYTHONPATH": os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-c", CODE], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_layers_networks_losses_run_under_jax_without_tensorflow(jax_run):
    assert jax_run.returncode == 0, jax_run.stdout[-3000:] + jax_run.stderr[-3000:]
    assert MARKER in jax_run.stdout.splitlines()


def test_dcgan_default_batch_norm_builds_under_jax(jax_run):
    assert MARKER in jax_run.stdout.splitlines(), jax_run.stderr[-3000:]
    assert "DCGAN_BATCH_NORM_OK" in jax_run.stdout.splitlines(), jax_run.stdout[-2000:]
