"""The GAN template trained through keras_pgen.train: resume, checkpoints, export, one step by hand, the EMA.

Two replicas and XLA: tests/models/test_gan_replicas.py; the non-finite-loss stop: tests/test_cli.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_pgen
from keras_pgen import training


def state(model):
    """Every variable a run must reproduce: networks, EMA generator, both optimizers, step."""
    variables = (model.generator.weights + model.discriminator.weights + model.ema_generator.weights
                 + model.g_optimizer.variables + model.d_optimizer.variables + [model.step])
    return {f"{i}:{v.name}": np.asarray(v) for i, v in enumerate(variables)}


def assert_same_state(a, b, atol, rtol=1e-4):
    """Each variable agrees to atol + rtol * its largest magnitude.

    The relative part matters for Adam's moments (velocities are ~grad**2, far below
    atol): a wrong loss scale on N replicas multiplies them by N**2, which Adam's
    scale-invariant weight update alone would hide.
    """
    assert a.keys() == b.keys()
    for k in a:
        err = float(np.max(np.abs(a[k] - b[k]), initial=0))
        assert err <= atol + rtol * float(np.max(np.abs(a[k]), initial=0)), (k, err)


def run(config, workdir, strategy=None):
    return keras_pgen.train(config, str(workdir), strategy=strategy, verbose=0)


@pytest.mark.parametrize("method", ["msg_gan", "gan"])
def test_resume_equals_uninterrupted(method, tiny_config, tmp_path):
    """6 steps in one run == 2 steps, a stop (new model, restored from the checkpoint), then 4 more."""
    config = tiny_config(method, total_steps=6, checkpoint_every=2, log_every=2, export=False)
    full = run(config, tmp_path / "full")
    config.total_steps = 2
    first = run(config, tmp_path / "resumed")
    assert first["step"] == 2
    config.total_steps = 6
    resumed = run(config, tmp_path / "resumed")
    assert resumed["step"] == 6
    assert_same_state(state(full["model"]), state(resumed["model"]), atol=1e-5)
    # the optimizers really were restored (Adam's moments are non-zero and equal)
    moments = [v for v in resumed["model"].g_optimizer.variables if "momentum" in v.path or "velocity" in v.path]
    assert moments and all(np.any(np.asarray(v) != 0) for v in moments)


def test_checkpoint_restores_every_variable(tiny_config, tmp_path):
    """A fresh model restored from the workdir has the trained networks, EMA, both optimizers and step."""
    from keras_pgen import registry

    config = tiny_config("msg_gan", total_steps=2, export=False)
    trained = run(config, tmp_path / "w")["model"]
    keras.utils.set_random_seed(123)  # a different initialisation, overwritten by the restore
    fresh = registry.build_model(config)
    assert int(fresh.step.numpy()) == 0
    training._restore(fresh, str(tmp_path / "w"))
    a, b = state(trained), state(fresh)
    assert len(a) == len(b)
    for (ka, va), (kb, vb) in zip(a.items(), b.items()):
        np.testing.assert_array_equal(va, vb, err_msg=ka)
    assert int(fresh.g_optimizer.iterations.numpy()) == 2


def test_resume_of_a_run_begun_before_a_field_existed(tiny_config, tmp_path):
    """A run from before `fused_upscale` (unfused G; its config.json lacks the field) meets today's default.

    The resume fails with one error naming the changed field and the flag that gives the run's value
    back (configs/msg_gan.py BEFORE_FIELDS); config.json and the checkpoints are left as they were; the
    run resumes with that flag, and load_from_workdir (how bin/export and bin/evaluate rebuild a run) builds its
    unfused networks from its config.json, into which alone its checkpoint restores.
    """
    import json
    import os

    config = tiny_config("msg_gan", total_steps=2, export=False, fused_upscale=False)
    trained = run(config, tmp_path / "w")["model"]
    with open(tmp_path / "w" / "config.json") as f:
        saved = json.load(f)
    del saved["fused_upscale"]  # as written before the option existed
    with open(tmp_path / "w" / "config.json", "w") as f:
        json.dump(saved, f)
    checkpoints = sorted(os.listdir(tmp_path / "w" / "checkpoints"))
    config.update(total_steps=4, fused_upscale=True)  # today's default
    with pytest.raises(ValueError) as error:
        run(config, tmp_path / "w")
    message = str(error.value)
    assert "cannot resume" in message and "fused_upscale: '<absent>' -> True" in message
    assert "(fields it began without: --config.fused_upscale=false)" in message
    with open(tmp_path / "w" / "config.json") as f:
        assert json.load(f) == saved  # the run's record is left as it was
    assert sorted(os.listdir(tmp_path / "w" / "checkpoints")) == checkpoints
    loaded, _ = training.load_from_workdir(str(tmp_path / "w"))  # the field absent: the run's unfused G
    assert len(trained.ema_generator.weights) == len(loaded.ema_generator.weights)
    for a, b in zip(trained.ema_generator.weights, loaded.ema_generator.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    config.fused_upscale = False  # the flag the error names: the run resumes
    assert run(config, tmp_path / "w")["step"] == 4


def test_export_matches_ema_generator(tiny_config, tmp_path):
    """The SavedModel's serving_default gives the in-memory EMA generator's final images."""
    from keras_pgen import export, images

    config = tiny_config("msg_gan", total_steps=2)
    result = run(config, tmp_path / "w")
    assert result["export_path"].endswith("msg_gan/1")
    model = result["model"]
    z = np.random.RandomState(3).randn(5, config.latent_dim).astype("float32")
    expected = images.to_uint8(np.asarray(model.ema_generator(z, training=False)[-1]))
    loaded = export.load_generator(result["export_path"])
    np.testing.assert_array_equal(loaded.generate(z), expected)
    # the EMA generator differs from the raw generator after training (ema_decay < 1 and steps > 0)
    raw = np.asarray(model.generator(z, training=False)[-1])
    assert not np.allclose(raw, np.asarray(model.ema_generator(z, training=False)[-1]))
    # a second export never overwrites the first
    second = training.export_model(model, config)
    assert second.endswith("msg_gan/2")


def test_export_from_workdir_equals_training_export(tiny_config, tmp_path):
    from keras_pgen import export

    config = tiny_config("gan", total_steps=2)
    result = run(config, tmp_path / "w")
    path = training.export_from_workdir(str(tmp_path / "w"), name="again", export_dir=str(tmp_path / "sm2"))
    a, b = export.load_generator(result["export_path"]), export.load_generator(path)
    np.testing.assert_array_equal(a.sample(4, seed=1), b.sample(4, seed=1))


def test_one_step_is_a_generator_update_then_a_discriminator_update_by_hand(tiny_config):
    """G update on G(z_g) against D0, then D update on G1(z_d) against D0; one D(reals) pass serves both.

    Rebuilt with plain SGD and the relativistic average hinge written out here, on copies of the
    networks. The order is what the test checks: with D updated first the generator ends elsewhere.
    """
    from keras_pgen import data, registry
    from keras_pgen.models.gan import clone_network

    lr = 0.05
    model = registry.build_model(tiny_config("msg_gan", loss="ra_hinge"))
    model.compile(g_optimizer=keras.optimizers.SGD(lr), d_optimizer=keras.optimizers.SGD(lr))
    batch = next(iter(data.make_train_dataset(data.load_source("shapes", 16, num_images=64), 8,
                                              noise_spec=model.noise_spec())))
    g, d = clone_network(model.generator), clone_network(model.discriminator)
    real = model.real_inputs(batch["images"])
    relu = tf.nn.relu

    def sgd(network, loss_fn):
        with tf.GradientTape() as tape:
            loss = loss_fn()
        for v, grad in zip(network.trainable_variables, tape.gradient(loss, network.trainable_variables)):
            v.assign_sub(lr * grad)
        return float(loss)

    def g_loss(d_now):
        r, f = d_now(real), d_now(g(batch["z_g"]))
        return tf.reduce_mean(relu(1 + (r - tf.reduce_mean(f)))) + tf.reduce_mean(relu(1 - (f - tf.reduce_mean(r))))

    def d_loss():
        r, f = d(real), d(g(batch["z_d"]))
        return tf.reduce_mean(relu(1 - (r - tf.reduce_mean(f)))) + tf.reduce_mean(relu(1 + (f - tf.reduce_mean(r))))

    d_first_g = clone_network(g)  # the other order, for contrast: D updated, then G against the new D
    d_first_d = clone_network(d)
    expected_g_loss = sgd(g, lambda: g_loss(d))
    expected_d_loss = sgd(d, d_loss)
    logs = model.train_step(batch)
    for network, expected in ((model.generator, g), (model.discriminator, d)):
        for a, b in zip(network.get_weights(), expected.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert float(logs["g_loss"]) == pytest.approx(expected_g_loss, rel=1e-5)
    assert float(logs["d_loss"]) == pytest.approx(expected_d_loss, rel=1e-5)
    g, d = d_first_g, d_first_d
    sgd(d, d_loss)  # D first (uses G0's fakes), then G against the updated D
    sgd(g, lambda: g_loss(d))
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(model.generator.get_weights(), g.get_weights())) > 1e-4


def test_ema_update_follows_the_warmed_up_formula(tiny_config):
    """ema' = w' + d * (ema - w'), d = min(ema_decay, (1 + step) / (10 + step)), step counted before the update."""
    from keras_pgen import data, registry

    config = tiny_config("msg_gan", ema_decay=0.999)
    model = registry.build_model(config)
    assert float(model.ema_decay_at(0)) == pytest.approx(0.1)
    assert float(model.ema_decay_at(5)) == pytest.approx(6 / 15)
    assert float(model.ema_decay_at(10**6)) == pytest.approx(0.999)
    batches = iter(data.make_train_dataset(data.load_source("shapes", 16, num_images=64), 8,
                                           noise_spec=model.noise_spec()))
    for step in range(2):
        ema_before = [np.asarray(w) for w in model.ema_generator.trainable_weights]
        model.train_step(next(batches))
        decay = min(0.999, (1 + step) / (10 + step))
        for before, w, ema in zip(ema_before, model.generator.trainable_weights, model.ema_generator.trainable_weights):
            w = np.asarray(w)
            np.testing.assert_allclose(np.asarray(ema), w + decay * (before - w), rtol=1e-5, atol=1e-7)
    assert int(model.step.numpy()) == 2
