"""DeePSiM (seed 004): the autoencoder, VAE and feature-inversion modes through bin/train, their exports,
the three-part loss, the discriminator pause, and 1 vs 2 replicas (random VGG16 weights: no download)."""
import numpy as np
import pytest

import keras_pgen
from keras_pgen import data, registry
from tests.conftest import two_replica_strategy
from tests.models.test_gan_training import assert_same_state
from tests.models.test_vae_gan import assert_export_matches, state, train_with_bin


@pytest.mark.parametrize("mode", ["autoencoder", "vae", "inversion"])
def test_deepsim_tiny_trains_with_bin_train_and_exports(mode, tmp_path):
    model, config, path = train_with_bin(tmp_path, "deepsim", f"--config.mode={mode}")
    assert config.vgg_weights == "none" and config.comparator == "vgg"
    meta = assert_export_matches(model, config, path)
    assert meta["variational"] is (mode == "vae")
    if mode == "autoencoder":
        assert meta["code_shape"] == [4, 4, 4]  # the paper's spatial code, at tiny size
    if mode == "inversion":
        # the frozen VGG16 relu3_3 (4x4x256 at 16x16) is the encoder; only the decoder is trained
        assert meta["code_shape"] == [4, 4, 256] and meta["mode"] == "inversion"
        assert model.encoder is None and not model.feature_network.trainable_weights
        assert {id(v) for v in model.autoencoder_variables()} == {id(v) for v in model.decoder.trainable_variables}


def test_loss_is_the_weighted_three_part_sum(tiny_config):
    """loss = lambda_pix * mse + lambda_feat * VGG feature distance + lambda_adv * -log sigmoid(D(G(x))) (+ KL)."""
    config = tiny_config("deepsim", mode="autoencoder", pixel_weight=2.0, perceptual_weight=0.3,
                         adversarial_weight=0.7)
    model = registry.build_model(config)
    x = np.random.RandomState(4).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    outputs = model.forward({"images": x})
    terms = model.loss_terms({"images": x}, outputs)
    assert sorted(terms) == ["adversarial", "perceptual", "pixel"]
    recon = np.asarray(outputs["reconstructions"])
    np.testing.assert_allclose(np.asarray(terms["pixel"]), 2.0 * ((x - recon) ** 2).reshape(2, -1).mean(-1),
                               rtol=1e-5)
    fx = [np.asarray(f) for f in model.comparator(x)]
    fy = [np.asarray(f) for f in model.comparator(recon)]
    assert len(fx) == len(config.perceptual_layers)
    feat = sum(((a - b) ** 2).reshape(2, -1).mean(-1) for a, b in zip(fx, fy))
    np.testing.assert_allclose(np.asarray(terms["perceptual"]), 0.3 * feat, rtol=1e-4)
    logits = np.asarray(model.discriminator(recon)).astype(np.float64)
    np.testing.assert_allclose(float(terms["adversarial"]), 0.7 * np.mean(np.log1p(np.exp(-logits))), rtol=1e-5)


def test_ratio_rule_pauses_a_too_strong_discriminator(tiny_config):
    """The paper's rule: no D update while d_loss / g_adv_loss < threshold (hand-set thresholds around the ratio)."""
    from keras_pgen.losses import feature_matching as fm

    config = tiny_config("deepsim", mode="vae", d_pause_rule="ratio")
    model = registry.build_model(config)
    batch = next(iter(data.make_train_dataset(data.load_source("shapes", 16, num_images=64), 8,
                                              noise_spec=model.noise_spec())))
    recon = model.forward(batch, training=True)["reconstructions"]
    real_logits, fake_logits = model.discriminator(batch["images"]), model.discriminator(recon)
    ratio = float(model.d_loss_fn(real_logits, fake_logits)) / float(model.g_loss_fn(fake_logits))
    assert bool(fm.discriminator_update_allowed("ratio", ratio * 0.99, d_loss=ratio, g_adversarial_loss=1.0))
    before = [np.asarray(v) for v in model.discriminator.weights]
    model.d_pause_threshold = ratio * 1.01  # D "too strong" for this batch: paused
    assert float(model.discriminator_step(batch)["d_updated"]) == 0.0
    for a, v in zip(before, model.discriminator.weights):
        np.testing.assert_array_equal(a, np.asarray(v))
    model.d_pause_threshold = ratio * 0.99
    assert float(model.discriminator_step(batch)["d_updated"]) == 1.0
    assert any(not np.array_equal(a, np.asarray(v)) for a, v in zip(before, model.discriminator.weights))


def test_two_replicas_equal_one(tiny_config, tmp_path):
    """VAE mode, VGG comparator, D paused every step (ratio threshold 1e9): 1 == 2 replicas, D untouched.

    The update undone on every replica must leave the same state as on one (tests/models/test_vae_gan.py
    covers 1 vs 2 replicas with the discriminator updated)."""
    threshold = 1e9
    config = tiny_config("deepsim", mode="vae", total_steps=2, export=False, sample_every=100,
                         adam_epsilon=1e-3, d_pause_threshold=threshold)
    one = keras_pgen.train(config, str(tmp_path / "one"), verbose=0)["model"]
    two = keras_pgen.train(config, str(tmp_path / "two"), strategy=two_replica_strategy(), verbose=0)["model"]
    assert_same_state(state(one), state(two), atol=2e-6)
    assert int(one.d_optimizer.iterations.numpy()) == (2 if threshold < 1 else 0)
