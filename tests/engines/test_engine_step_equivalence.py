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

Mixed precision (engine_script.MIXED_PRECISION: msg_gan under mixed_bfloat16 and mixed_float16,
ProGAN under mixed_float16 with a LossScaleOptimizer that updates only the current stage's
variables; Adam epsilon 1e-3): integers and the loss-scale state exactly; each network's and each
Adam slot's change over the step, as one vector per group, to ||jax - tf|| <= 128 u ||tf||, u the
dtype's unit roundoff (2**-11 float16, 2**-8 bfloat16): 1/16 and 1/2. The engines round
differently (XLA:CPU sums bias gradients, the transposes of broadcasts, in the low dtype: 8-13 u
on a 2048-term sum, where TensorFlow accumulates in float32: < 1 u), and the tiny networks'
gradients are sums that largely cancel, so the engines' steps differ by a multiple of u: measured
worst 44u in float16 (msg_gan's D first moments, 0.022) and 52u in bfloat16 (msg_gan's G weights,
0.20, as far as TensorFlow's own bfloat16 step is from its float32 step; D's first moments: JAX
0.17 from float32, TensorFlow 0.09, the bias sums). A JAX step that applied none, or twice, of the
update would be 1.0 away.
"""
import os

import numpy as np
import pytest

from tests.engines.conftest import assert_same_checkpoint, read_checkpoint, run_script

METHODS = ("gan", "msg_gan", "progan", "vae", "vae_gan", "deepsim", "cond_decoder", "pgen")
RTOL = {"deepsim": 2e-4}
DEFAULT_RTOL = 2e-5
PROGAN_STEP = 7  # engine_script.PROGAN_STEP: the middle of the 16x16 fade-in (steps 6..8)
MIXED_PRECISION = ("msg_gan-bfloat16", "msg_gan-float16", "progan-float16", "progan-float16-overflow")
UNIT_ROUNDOFF = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}
# what each LossScaleOptimizer's update does in the compared step (engine_script.MIXED_PRECISION's set-ups)
LOSS_SCALE_OUTCOMES = {"msg_gan-float16": {"g": "finite", "d": "finite"},
                       "progan-float16": {"g": "finite", "d": "grow"},
                       "progan-float16-overflow": {"g": "overflow", "d": "finite"}}


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("engine_steps")
    run_script("tensorflow", "tf-steps", out, *METHODS, *MIXED_PRECISION)  # one subprocess per engine
    run_script("jax", "jax-steps", out, *METHODS, *MIXED_PRECISION)
    return out


def read_step(directory):
    """`(items, before, tf_after, jax_after)` of one case's compared step (the same items and shapes in all three)."""
    _, items, before = read_checkpoint(directory / "ckpt-0.npz")
    _, tf_items, tf_after = read_checkpoint(directory / "ckpt-1.npz")
    _, jax_items, jax_after = read_checkpoint(directory / "jax" / "ckpt-1.npz")
    shapes = [{name: [s for _, s in variables] for name, variables in i.items()} for i in (items, tf_items, jax_items)]
    assert shapes[0] == shapes[1] == shapes[2]
    return items, before, tf_after, jax_after


@pytest.mark.parametrize("method", METHODS)
def test_jax_step_equals_tensorflow_step(steps, method):
    directory = steps / method
    items, before, tf_after, jax_after = read_step(directory)
    rtol = RTOL.get(method, DEFAULT_RTOL)
    ratios = assert_same_checkpoint((items, tf_after), (items, jax_after), rtol=rtol)

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


@pytest.mark.parametrize("case", MIXED_PRECISION)
def test_mixed_precision_step_equals_tensorflow_step(steps, case):
    """Under mixed_float16 / mixed_bfloat16 the JAX step equals TensorFlow's to 128 u (module doc)."""
    u = UNIT_ROUNDOFF[case.split("-")[1]]
    items, before, tf_after, jax_after = read_step(steps / case)
    changes = {}  # group -> [(tf change, jax change)]
    for key in tf_after:
        item, index = key.split("/")
        path = items[item][int(index)][0]
        x, y, start = (a[key].astype(np.float64) for a in (tf_after, jax_after, before))
        if tf_after[key].dtype.kind in "iub" or path.endswith("dynamic_scale") or np.array_equal(x, start):
            np.testing.assert_array_equal(y, x, err_msg=f"{key} ({path})")  # counters, loss scale, frozen, skipped
            continue
        group = f"{item}/{path.rsplit('_', 1)[-1]}" if item.endswith("optimizer") else item
        changes.setdefault(group, []).append(((x - start).ravel(), (y - start).ravel()))
    assert {"generator", "discriminator", "ema_generator", "d_optimizer/momentum"} <= set(changes), sorted(changes)
    for group, pairs in changes.items():
        tf_change, jax_change = (np.concatenate(c) for c in zip(*pairs))
        error = np.linalg.norm(jax_change - tf_change) / np.linalg.norm(tf_change)
        assert error <= 128 * u, f"{case} {group}: |jax - tf| / |tf| = {error:.3g} > 128 u = {128 * u:.3g}"

    with np.load(steps / case / "logs.npz") as tf_logs, np.load(steps / case / "jax-logs.npz") as jax_logs:
        assert tf_logs.files and set(tf_logs.files) <= set(jax_logs.files)
        for name in tf_logs.files:
            np.testing.assert_allclose(np.mean(jax_logs[name]), tf_logs[name], rtol=8 * u, atol=8 * u, err_msg=name)


@pytest.mark.parametrize("case", sorted(LOSS_SCALE_OUTCOMES))
def test_float16_loss_scale_follows_keras_rule(steps, case):
    """Both engines' loss-scale state after the step follows LossScaleOptimizer's rule (the outcome named).

    finite: the inner Adam steps, the count of finite steps rises; grow: the same at the
    dynamic_growth_steps-th (2000th) finite step, where the scale doubles and the count restarts;
    overflow: non-finite float16 gradients, the step is skipped (network and Adam state untouched)
    and the scale halves. The JAX optimizers update part of their variables (ProGAN's stage).
    """
    items, before, tf_after, jax_after = read_step(steps / case)
    for name, outcome in LOSS_SCALE_OUTCOMES[case].items():
        optimizer, network = f"{name}_optimizer", {"g": "generator", "d": "discriminator"}[name]
        scale, count, iteration = loss_scale_state(items, before, optimizer)
        assert outcome != "grow" or count == 2000 - 1  # Keras' dynamic_growth_steps
        expected = {"finite": (scale, count + 1, iteration + 1), "grow": (2 * scale, 0, iteration + 1),
                    "overflow": (scale / 2, 0, iteration)}[outcome]
        # the network's weights (not ProGAN's fade-in alpha, which follows the step counter) and the inner Adam's state
        keys = [f"{network}/{i}" for i, (path, _) in enumerate(items[network]) if not path.endswith("/alpha")] + \
               [f"{optimizer}/{i}" for i, (path, _) in enumerate(items[optimizer]) if not path.startswith("loss_scale")]
        for engine, after in (("tf", tf_after), ("jax", jax_after)):
            assert loss_scale_state(items, after, optimizer) == expected, (engine, name, outcome)
            changed = [k for k in keys if not np.array_equal(after[k], before[k])]
            assert (not changed) if outcome == "overflow" else any(k.startswith(network) for k in changed), \
                (engine, name, outcome, changed[:5])


def loss_scale_state(items, arrays, optimizer):
    """(dynamic scale, count of finite steps, inner optimizer's iteration) of a LossScaleOptimizer's checkpoint item."""
    values = {}
    for i, (path, _) in enumerate(items[optimizer]):
        owner, name = path.split("/")[-2:]
        values[name if owner.startswith("loss_scale") else "inner_" + name] = arrays[f"{optimizer}/{i}"]
    return float(values["dynamic_scale"]), int(values["step_counter"]), int(values["inner_iteration"])
