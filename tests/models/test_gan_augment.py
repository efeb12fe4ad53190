"""DiffAugment / ADA in the GAN template: where D sees augmented images, ADA's p, replicas, checkpoints."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pgen import data, registry, training
from keras_pgen.layers import diffaugment
from tests.conftest import tensorboard_summaries, two_replica_strategy
from tests.models.test_gan_training import assert_same_state, run, state


def ada_values(model):
    return [float(model.ada_p.numpy()), float(model.ada_sign_sum.numpy()), float(model.ada_count.numpy())]


def test_ada_probability_moves_with_the_sign_of_real_logits(tiny_config):
    """p += sign(mean sign(D(real)) - target) * images / (kimg * 1000) every ada_interval steps, clipped to [0, 1]."""
    model = registry.build_model(tiny_config("msg_gan", augment="ada", ada_interval=2, ada_kimg=0.1, ada_target=0.6))
    confident = tf.constant([[2.0]] * 7 + [[-1.0]], tf.float32)  # mean sign 0.75 > 0.6: D overfits the reals
    unsure = tf.constant([[1.0]] * 6 + [[-1.0]] * 2, tf.float32)  # mean sign 0.5 < 0.6

    def step(logits):
        logs = model.update_ada(logits)
        model.step.assign_add(1)
        return float(logs["ada_p"]), float(logs["ada_rt"])

    assert step(confident) == (0.0, 0.75)  # first step of the interval: accumulated only
    assert ada_values(model) == [0.0, 6.0, 8.0]
    assert step(confident) == pytest.approx((0.16, 0.75))  # 16 images / 100 = 0.16, up
    assert ada_values(model)[1:] == [0.0, 0.0]  # the accumulators restart
    step(confident), step(confident)
    assert float(model.ada_p.numpy()) == pytest.approx(0.32)
    step(unsure), step(unsure)
    assert float(model.ada_p.numpy()) == pytest.approx(0.16)  # down
    step(confident), step(unsure)  # mean over the interval (0.75 + 0.5) / 2 = 0.625 > 0.6: up
    assert float(model.ada_p.numpy()) == pytest.approx(0.32)
    for _ in range(4):
        step(unsure)
    assert float(model.ada_p.numpy()) == 0.0  # clipped at 0
    assert model.scalars() == {"augment/ada_p": 0.0}


def test_ada_probability_is_clipped_at_one(tiny_config):
    model = registry.build_model(tiny_config("msg_gan", augment="ada", ada_interval=1, ada_kimg=0.001))
    model.update_ada(tf.ones([8, 1]))
    assert float(model.ada_p.numpy()) == 1.0


@pytest.mark.parametrize("loss", ["ra_hinge", "ns"])
def test_discriminator_sees_augmented_reals_and_fakes_in_both_steps(loss, tiny_config, monkeypatch):
    """The G update's fakes (and, for a relativistic loss, the reals as constants), then the D update's reals and fakes.

    The reals are augmented once (`d_real`): both updates see the same augmented reals, so
    their two D passes are one computation, which XLA merges (README, design notes).
    """
    keys = ["d_fake", "d_real", "g_fake"]
    config = tiny_config("msg_gan", augment="diffaugment", augment_policy="translation,cutout", loss=loss)
    model = registry.build_model(config)
    spec = model.noise_spec()
    assert {k: v for k, v in spec.items() if k.startswith("aug_")} == {f"aug_{k}": ("uniform", (4,)) for k in keys}
    batch = next(iter(data.make_train_dataset(data.load_source("shapes", 16, num_images=64), 8,
                                              noise_spec=spec)))
    augmented = {}
    original_augment = model.augment

    def recording_augment(images, data, key):
        out = original_augment(images, data, key)
        expected = diffaugment.diff_augment(images, data[f"aug_{key}"], "translation,cutout")
        for a, b in zip(out, expected):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        augmented[key] = [np.asarray(x) for x in out]
        return out

    d_inputs = []
    discriminator_call = type(model.discriminator).call

    def recording_call(self, inputs, *args, **kwargs):
        d_inputs.append([np.asarray(x) for x in inputs])
        return discriminator_call(self, inputs, *args, **kwargs)

    monkeypatch.setattr(model, "augment", recording_augment)
    monkeypatch.setattr(type(model.discriminator), "call", recording_call)
    model.train_step(batch)
    assert sorted(augmented) == keys
    pyramid = [(8, 4, 4, 3), (8, 8, 8, 3), (8, 16, 16, 3)]
    assert all([x.shape for x in images] == pyramid for images in augmented.values())  # every scale
    # D is called exactly on the augmented images, in this order
    order = ["g_fake", "d_real", "d_real", "d_fake"] if loss == "ra_hinge" else ["g_fake", "d_real", "d_fake"]
    assert len(d_inputs) == len(order)
    for seen, key in zip(d_inputs, order):
        for a, b in zip(seen, augmented[key]):
            np.testing.assert_array_equal(a, b)
    clean = model.real_inputs(batch["images"])
    assert not np.allclose(augmented["d_real"][-1], np.asarray(clean[-1]))  # cutout zeroed part of each image


def test_two_replicas_equal_one_with_ada_and_the_state_is_checkpointed_and_logged(tiny_config, tmp_path):
    """Augmentation draws come from the pipeline and ADA's statistics are global: 1 replica == 2 replicas."""
    # ada_target=-2: mean sign(D(real)) is always above it, so p rises by 8 / 20 = 0.4 a step and
    # the gated augmentations are active in the second step
    config = tiny_config("msg_gan", total_steps=2, log_every=1, export=False, g_lr=1e-3, d_lr=1e-3, ema_decay=0.5,
                         adam_epsilon=1e-3, augment="ada", ada_interval=1, ada_kimg=0.02, ada_target=-2.0)
    one = run(config, tmp_path / "one")
    two = run(config, tmp_path / "two", strategy=two_replica_strategy())
    assert two["model"].distribute_strategy.num_replicas_in_sync == 2
    assert_same_state(state(one["model"]), state(two["model"]), atol=2e-6)
    assert ada_values(one["model"]) == pytest.approx([0.8, 0.0, 0.0])
    assert ada_values(two["model"]) == pytest.approx(ada_values(one["model"]))
    # a fresh model restored from the workdir has p back
    keras.utils.set_random_seed(1)
    fresh = registry.build_model(config)
    training._restore(fresh, str(tmp_path / "one"))
    assert ada_values(fresh) == pytest.approx([0.8, 0.0, 0.0])
    # TensorBoard: the probability (scalars()) and the logged mean of p and of sign(D(real))
    tags = {tag for tag, _, _ in tensorboard_summaries(tmp_path / "one")}
    assert {"augment/ada_p", "train/ada_p", "train/ada_rt"} <= tags


def test_bad_augment_settings_fail_loudly(tiny_config):
    with pytest.raises(ValueError, match="unknown augment 'diffaug'"):
        registry.build_model(tiny_config("msg_gan", augment="diffaug"))
    with pytest.raises(ValueError, match="unknown augmentation 'zoom'"):
        registry.build_model(tiny_config("msg_gan", augment="diffaugment", augment_policy="color,zoom"))
