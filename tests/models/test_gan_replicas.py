"""The GAN template on two replicas (MirroredStrategy over two logical CPUs) and under XLA.

Split from tests/models/test_gan_training.py (whose helpers it uses) so that pytest-xdist's
`--dist loadfile` runs the two halves on different workers.
"""
import numpy as np
import pytest

import keras_pgen
from tests.conftest import two_replica_strategy
from tests.models.test_gan_training import assert_same_state, run, state


CASES = {
    "msg_gan-ra_hinge": ("msg_gan", dict(loss="ra_hinge")),
    # both input-gradient penalties and the drift term in one run (each a distributed replica's tape in a tape)
    "msg_gan-wgan_gp-drift-r1": ("msg_gan", dict(loss="wgan_gp", drift_weight=0.001, r1_gamma=1.0)),
    "gan-ns-syncbn": ("gan", dict(loss="ns", norm="batch")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_replicas_equal_one(case, tiny_config, tmp_path):
    """Same global batch: one step on 2 replicas gives the 1-replica weights and optimizer state."""
    method, overrides = CASES[case]
    # adam_epsilon=1e-3: some gradients are zero in exact arithmetic (a relativistic loss is blind
    # to a shift of all logits; a bias before batch norm) and float noise there is ~1e-9. Adam's
    # g / (|g| + eps) turns such noise into a visible step when eps is 1e-8; with SGD at lr=1 the
    # two runs agree to 1e-6. The relative check on Adam's moments still catches a wrong loss scale.
    config = tiny_config(method, total_steps=2, export=False, g_lr=1e-3, d_lr=1e-3, ema_decay=0.5,
                         adam_epsilon=1e-3, **overrides)
    one = run(config, tmp_path / "one")
    two = run(config, tmp_path / "two", strategy=two_replica_strategy())
    assert two["model"].distribute_strategy.num_replicas_in_sync == 2
    assert int(one["model"].step.numpy()) == int(two["model"].step.numpy()) == 2
    assert_same_state(state(one["model"]), state(two["model"]), atol=2e-6)


def test_replicas_see_different_latents():
    """The latents come from the pipeline, per sample: the two halves of a global batch differ."""
    from keras_pgen import data

    source = data.load_source("shapes", 16, num_images=64)
    batch = next(iter(data.make_train_dataset(source, 8, seed=0, noise_spec={"z_d": ("normal", (4,))})))
    z = batch["z_d"].numpy()
    assert not np.allclose(z[:4], z[4:])


def test_dcgan_batchnorm_with_coupled_loss_on_replicas_is_refused(tiny_config, tmp_path):
    config = tiny_config("gan", loss="ra_hinge", norm="batch", export=False)
    with pytest.raises(ValueError, match="needs the global batch"):
        run(config, tmp_path / "w", strategy=two_replica_strategy())


@pytest.mark.parametrize("method", ["msg_gan", "gan"])
def test_xla_step_equals_the_graph_step(method, tiny_config, tmp_path):
    """jit_compile=True (the default of these methods' real presets) trains the same as the plain graph."""
    config = tiny_config(method, total_steps=2, export=False, adam_epsilon=1e-3)
    plain = run(config, tmp_path / "plain")
    config.jit_compile = True
    xla = run(config, tmp_path / "xla")
    assert xla["model"].jit_compile and not plain["model"].jit_compile
    assert keras_pgen.get_config(method, "default").jit_compile
    assert_same_state(state(plain["model"]), state(xla["model"]), atol=2e-5, rtol=1e-3)
