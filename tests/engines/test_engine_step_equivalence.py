"""One training step of every method: the JAX engine's jitted stateless step equals TensorFlow's.

A TensorFlow subprocess builds each method's tiny model, takes one warm-up step (so Adam's
moments, the EMA generator and ProGAN's schedule are past their initial values), saves the
state (`checkpoints.save`, the format both engines read) and one tf.data batch, then runs ONE
more step through Keras' train function (eagerly: `fit(run_eagerly=True)`'s step, the same
TensorFlow ops as the traced one without seconds of tracing per method). A JAX subprocess
builds the same model, restores that state, runs `jax_engine.stateless_step` jitted on the
same batch, writes it back and saves. Every array of the two final checkpoints (networks,
EMA networks, both optimizers' moments and iteration counts, step counters) must agree.

Tolerances, per array: |tf - jax| <= rtol * max|tf| (integers exactly), rtol 2e-5, DeePSiM
2e-4. Measured worst (2-core x86 CPU, TF 2.21 / Keras 3.15 / JAX 0.10): 7.7e-6 for ProGAN (a
discriminator kernel after the gradient penalty's double backward), <= 5.2e-6 for the other
GANs, pgen and the autoencoders; 6.1e-5 for DeePSiM, in its encoder and decoder biases: the
gradient of its random-VGG16 perceptual term agrees to 6e-7 at the reconstructions, but a bias
gradient sums it over every position where it largely cancels (absolute errors ~1e-6 on
~1e-2, spread over the elements: float32 noise, not a routing difference).
"""
import os

import numpy as np
import pytest

from tests.engines.conftest import assert_same_checkpoint, read_checkpoint, run_script

METHODS = ("gan", "msg_gan", "progan", "vae", "vae_gan", "deepsim", "cond_decoder", "pgen")
RTOL = {"deepsim": 2e-4}
DEFAULT_RTOL = 2e-5
PROGAN_STEP = 7  # engine_script.PROGAN_STEP: the middle of the 16x16 fade-in (steps 6..8)


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("engine_steps")
    run_script("tensorflow", "tf-steps", out, *METHODS)
    run_script("jax", "jax-steps", out, *METHODS)
    return out


@pytest.mark.parametrize("method", METHODS)
def test_jax_step_equals_tensorflow_step(steps, method):
    directory = steps / method
    _, items, before = read_checkpoint(directory / "ckpt-0.npz")
    _, tf_items, tf_after = read_checkpoint(directory / "ckpt-1.npz")
    _, jax_items, jax_after = read_checkpoint(directory / "jax" / "ckpt-1.npz")
    rtol = RTOL.get(method, DEFAULT_RTOL)
    ratios = assert_same_checkpoint((tf_items, tf_after), (jax_items, jax_after), rtol=rtol)

    # the step counter advanced by one in both engines
    start = int(before["step/0"])
    assert int(tf_after["step/0"]) == int(jax_after["step/0"]) == start + 1
    # the step moved most arrays by 10x the tolerance or more: a JAX step that left the state
    # as restored (or applied another update) would fail the comparison
    moved = [k for k in ratios
             if np.max(np.abs(tf_after[k].astype(np.float64) - before[k]), initial=0.0)
             > 10 * rtol * np.max(np.abs(tf_after[k].astype(np.float64)), initial=0.0)]
    assert len(moved) >= len(ratios) // 2, (len(moved), len(ratios))
    for name in items:
        if name.endswith("generator") or name in ("decoder", "encoder", "discriminator"):
            assert any(k.startswith(name + "/") for k in moved), f"{name} did not move"

    # the logged losses agree too
    with np.load(directory / "logs.npz") as tf_logs, np.load(directory / "jax-logs.npz") as jax_logs:
        assert tf_logs.files and set(tf_logs.files) <= set(jax_logs.files), (tf_logs.files, jax_logs.files)
        for name in tf_logs.files:
            np.testing.assert_allclose(np.mean(jax_logs[name]), tf_logs[name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_progan_step_is_inside_a_fade_in(steps):
    """The compared ProGAN step starts at alpha 0.5 of the 16x16 fade-in and ends at alpha(8) = 1."""
    _, items, before = read_checkpoint(steps / "progan" / "ckpt-0.npz")
    _, _, after = read_checkpoint(steps / "progan" / "jax" / "ckpt-1.npz")
    assert int(before["step/0"]) == PROGAN_STEP
    alphas = [f"{name}/{i}" for name in ("generator", "discriminator", "ema_generator")
              for i, (path, _) in enumerate(items[name]) if path.endswith("alpha")]
    assert len(alphas) == 3, alphas
    for key in alphas:
        assert float(before[key]) == pytest.approx(0.5) and float(after[key]) == pytest.approx(1.0), key


def test_batches_hold_what_the_methods_draw(steps):
    """The saved batches carry each method's pipeline draws (what both engines consumed)."""
    expected = {"gan": {"z_d", "z_g"}, "progan": {"z_d", "z_g", "gp_eps"}, "vae": {"eps"},
                "cond_decoder": {"labels"}, "pgen": {"z", "match_u"}}
    for method, keys in expected.items():
        with np.load(os.path.join(steps, method, "batch.npz")) as batch:
            assert {"images"} | keys <= set(batch.files), (method, batch.files)
