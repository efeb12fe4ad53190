"""VAE-GAN (seed 001): bin/train end to end, export equality, 1 vs 2 replicas, resume, the feature loss."""
import json
import os

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

import keras_pgen
from keras_pgen import data, images, registry, training
from tests.conftest import run_bin, two_replica_strategy
from tests.models.test_gan_training import assert_same_state


def state(model):
    """Every variable a run must reproduce: encoder, decoder, discriminator, both optimizers, step."""
    named = [(name, v) for name in ("encoder", "decoder", "discriminator") if getattr(model, name) is not None
             for v in getattr(model, name).weights]
    named += [("ae_optimizer", v) for v in model.ae_optimizer.variables]
    named += [("d_optimizer", v) for v in model.d_optimizer.variables] + [("step", model.step)]
    return {f"{i}:{owner}/{v.name}": np.asarray(v) for i, (owner, v) in enumerate(named)}


def train_with_bin(tmp_path, method, *overrides):
    """bin/train --preset=tiny in a subprocess; returns (model restored from the workdir, export path)."""
    work, exports = tmp_path / "w", tmp_path / "sm"
    proc = run_bin("train", f"--method={method}", "--preset=tiny", f"--workdir={work}",
                   f"--config.export_dir={exports}", *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "d_updated" in proc.stdout and "d_loss" in proc.stdout
    for name in ("reconstructions",):
        assert (work / "samples" / f"step_0000004_{name}.png").exists()
    with open(work / "config.json") as f:
        config = ml_collections.ConfigDict(json.load(f))
    model = registry.build_model(config)
    training._restore(model, str(work))
    assert int(model.step.numpy()) == config.total_steps
    export = exports / method / "1"
    assert (export / "saved_model.pb").exists()
    return model, config, str(export)


def assert_export_matches(model, config, path, code_input="z"):
    """Every exported signature gives what the in-memory networks give."""
    loaded = tf.saved_model.load(path)
    sig = loaded.signatures
    rng = np.random.RandomState(0)
    pixels = rng.randint(0, 256, (3, config.resolution, config.resolution, config.channels)).astype(np.uint8)
    x = pixels.astype(np.float32) / 127.5 - 1.0
    with open(os.path.join(path, "keras_pgen.json")) as f:
        meta = json.load(f)
    assert meta["kind"] == "autoencoder" and meta["method"] == config.method
    expected = images.to_uint8(np.asarray(model(x, training=False)))
    got = sig["serving_default"](images=tf.constant(pixels))
    np.testing.assert_array_equal(got["images"].numpy(), expected)
    np.testing.assert_array_equal(sig["reconstruct"](images=tf.constant(pixels))["images"].numpy(), expected)
    assert len(got["png_bytes"].numpy()) == 3
    outputs = model.forward({"images": x}, training=False)
    encoded = sig["encode"](images=tf.constant(pixels))
    np.testing.assert_allclose(encoded["mean"].numpy(), np.asarray(outputs["z"]), rtol=1e-5, atol=1e-5)
    if model.variational:
        np.testing.assert_allclose(encoded["log_variance"].numpy(), np.asarray(outputs["log_variance"]),
                                   rtol=1e-5, atol=1e-5)
        sampled = sig["sample"](num_images=tf.constant(2), seed=tf.constant(5))["images"].numpy()
        z = tf.random.stateless_normal((2, *model.code_shape), seed=[5, 0])
        np.testing.assert_array_equal(sampled, images.to_uint8(np.asarray(model.decoder(z, training=False))))
    else:
        assert "sample" not in sig
    z = rng.randn(2, *model.code_shape).astype(np.float32)
    np.testing.assert_array_equal(sig["decode"](**{code_input: tf.constant(z)})["images"].numpy(),
                                  images.to_uint8(np.asarray(model.decoder(z, training=False))))
    return meta


def test_vae_gan_tiny_trains_with_bin_train_and_exports(tmp_path):
    model, config, path = train_with_bin(tmp_path, "vae_gan")
    assert config.comparator == "discriminator" and config.adversarial_loss == "hinge"
    meta = assert_export_matches(model, config, path)
    assert meta["variational"] is True
    assert {"sample", "encode", "decode", "reconstruct", "serving_default"} <= set(meta["signatures"])


def test_perceptual_term_is_seed_001_distance_through_the_discriminator(tiny_config):
    """The model's "perceptual" term == perceptual_weight * numpy sum over every D layer (reduction sum)."""
    config = tiny_config("vae_gan", perceptual_weight=0.5, pixel_weight=0.0)
    model = registry.build_model(config)
    x = np.random.RandomState(2).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    recon = np.asarray(model(x))
    terms = model.reconstruction_terms(x, recon)
    assert sorted(terms) == ["perceptual"]
    fx = [np.asarray(f) for f in model.discriminator.features(x)]
    fy = [np.asarray(f) for f in model.discriminator.features(recon)]
    assert len(fx) == model.discriminator.num_features == 5
    expected = 0.5 * sum(((a - b) ** 2).reshape(2, -1).sum(-1) for a, b in zip(fx, fy))
    np.testing.assert_allclose(np.asarray(terms["perceptual"]), expected, rtol=1e-4)


def test_bad_settings_fail_with_the_choices(tiny_config):
    with pytest.raises(ValueError, match="unknown adversarial_loss 'ra_hinge'"):
        registry.build_model(tiny_config("vae_gan", adversarial_loss="ra_hinge"))
    with pytest.raises(ValueError, match="unknown comparator 'alexnet'"):
        registry.build_model(tiny_config("vae_gan", comparator="alexnet"))
    with pytest.raises(ValueError, match="use adversarial_loss='ns'"):
        registry.build_model(tiny_config("vae_gan", d_pause_rule="ratio"))


@pytest.fixture(scope="module")
def replica_runs(tmp_path_factory):
    """wgan_gp VAE-GAN (gradient penalty, adversarial and pixel terms): 2 steps on 1 and on 2 replicas,
    4 steps uninterrupted, and the 2-step run resumed to 4 steps."""
    tmp = tmp_path_factory.mktemp("vae_gan_runs")
    config = keras_pgen.get_config("vae_gan", "tiny")
    config.update(adversarial_loss="wgan_gp", total_steps=2, checkpoint_every=2, log_every=2, sample_every=100,
                  export=False, adam_epsilon=1e-3)
    run = lambda c, w, s=None: keras_pgen.train(c, str(tmp / w), strategy=s, verbose=0)  # noqa: E731
    runs = {"one": state(run(config, "split")["model"]),
            "two": state(run(config, "two", two_replica_strategy())["model"])}
    config.total_steps = 4
    full = run(config, "full")["model"]
    runs["full"] = state(full)
    runs["resumed"] = state(run(config, "split")["model"])
    runs["noise_spec"] = full.noise_spec()
    return runs


def test_two_replicas_equal_one(replica_runs):
    assert "gp_eps" in replica_runs["noise_spec"] and "eps" in replica_runs["noise_spec"]
    assert_same_state(replica_runs["one"], replica_runs["two"], atol=2e-6)


def test_resume_equals_uninterrupted(replica_runs):
    assert_same_state(replica_runs["full"], replica_runs["resumed"], atol=1e-5)
    # the run really moved: the discriminator and its Adam moments differ from the 2-step state
    changed = [k for k in replica_runs["full"] if "discriminator" in k
               and not np.allclose(replica_runs["full"][k], replica_runs["one"][k])]
    assert changed


def test_paused_discriminator_keeps_weights_and_optimizer_state(tiny_config):
    """accuracy rule with threshold -1 pauses D every step: D and its Adam state stay, the VAE trains."""
    config = tiny_config("vae_gan", d_pause_rule="accuracy", d_pause_threshold=-1.0)
    model = registry.build_model(config)
    batches = iter(data.make_train_dataset(data.load_source("shapes", 16, num_images=64), 8,
                                           noise_spec=model.noise_spec()))
    d_before = [np.asarray(v) for v in model.discriminator.weights]
    enc_before = [np.asarray(v) for v in model.encoder.weights]
    logs = model.train_step(next(batches))
    assert float(logs["d_updated"]) == 0.0
    for a, v in zip(d_before, model.discriminator.weights):
        np.testing.assert_array_equal(a, np.asarray(v))
    assert int(model.d_optimizer.iterations.numpy()) == 0
    assert all(not np.any(np.asarray(v)) for v in model.d_optimizer.variables if "momentum" in v.path)
    assert any(not np.array_equal(a, np.asarray(v)) for a, v in zip(enc_before, model.encoder.weights))
    model.d_pause_threshold = 2.0  # accuracy <= 2 always: updates again
    logs = model.train_step(next(batches))
    assert int(model.d_optimizer.iterations.numpy()) == 1
    assert float(logs["d_updated"]) == 0.5  # the tracker's mean over the two steps: paused, then updated


@pytest.mark.parametrize("comparator", ["encoder", "random_conv"])
def test_other_comparators_train_a_step(comparator, tiny_config):
    """The model's own encoder (trained with it) or a frozen random conv net as the comparator."""
    config = tiny_config("vae_gan", comparator=comparator, perceptual_weight=0.5)
    model = registry.build_model(config)
    batch = next(iter(data.make_train_dataset(data.load_source("shapes", 16, num_images=64), 8,
                                              noise_spec=model.noise_spec())))
    x = batch["images"]
    recon = model(x)
    expected = 0.5 * sum(np.mean((np.asarray(a) - np.asarray(b)) ** 2, axis=(1, 2, 3))
                         for a, b in zip(model.comparator(x), model.comparator(recon)))
    np.testing.assert_allclose(np.asarray(model.reconstruction_terms(x, recon)["perceptual"]), expected, rtol=1e-4)
    logs = model.train_step(batch)
    assert np.isfinite(float(logs["perceptual"])) and float(logs["d_updated"]) == 1.0
