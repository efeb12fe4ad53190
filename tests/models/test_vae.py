"""--method=vae: bin/train end to end with export equality, loss assembly, resume, replicas, sharpness."""
import json
import os

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

import keras_pgen
from keras_pgen import data, images, registry, training
from tests.conftest import SHARED_DATA, run_bin, two_replica_strategy
from tests.models.test_gan_training import assert_same_state


def state(model):
    """Every variable a run must reproduce: encoder, decoder, optimizer, step."""
    variables = model.encoder.weights + model.decoder.weights + model.ae_optimizer.variables + [model.step]
    return {f"{i}:{v.name}": np.asarray(v) for i, v in enumerate(variables)}


def run(config, workdir, strategy=None):
    return keras_pgen.train(config, str(workdir), strategy=strategy, verbose=0)


def test_tiny_vae_trains_through_bin_train_and_exports_its_signatures(tmp_path):
    work, saved = tmp_path / "w", tmp_path / "sm"
    proc = run_bin("train", "--method=vae", "--preset=tiny", f"--workdir={work}", f"--config.export_dir={saved}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pixel" in proc.stdout and "kl" in proc.stdout
    for name in ("reconstructions", "samples"):
        assert (work / "samples" / f"step_0000004_{name}.png").exists()
    path = saved / "vae" / "1"
    metadata = json.loads((path / "keras_pgen.json").read_text())
    assert metadata["kind"] == "autoencoder" and metadata["method"] == "vae"
    assert (metadata["resolution"], metadata["channels"], metadata["code_shape"]) == (16, 3, [8])
    assert set(metadata["signatures"]) == {"serving_default", "reconstruct", "encode", "decode", "sample"}

    # the trained model, rebuilt from the workdir's config and checkpoint
    config = ml_collections.ConfigDict(json.loads((work / "config.json").read_text()))
    model = registry.build_model(config)
    training._restore(model, str(work))
    assert int(model.step.numpy()) == 4
    loaded = tf.saved_model.load(str(path))
    sig = loaded.signatures
    x = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    mean, log_variance = model.encoder(x.astype("float32") / 127.5 - 1.0, training=False)
    encoded = sig["encode"](images=tf.constant(x))
    np.testing.assert_allclose(encoded["mean"].numpy(), np.asarray(mean), atol=1e-5)
    np.testing.assert_allclose(encoded["log_variance"].numpy(), np.asarray(log_variance), atol=1e-5)
    expected = images.to_uint8(np.asarray(model.decoder(mean, training=False)))
    for name in ("serving_default", "reconstruct"):
        out = sig[name](images=tf.constant(x))
        np.testing.assert_array_equal(out["images"].numpy(), expected)
        np.testing.assert_array_equal(tf.io.decode_png(out["png_bytes"][0]).numpy(), expected[0])
    z = np.random.default_rng(1).normal(size=(3, 8)).astype("float32")
    np.testing.assert_array_equal(sig["decode"](z=tf.constant(z))["images"].numpy(),
                                  images.to_uint8(np.asarray(model.decoder(z, training=False))))
    prior = tf.random.stateless_normal([3, 8], seed=[5, 0])
    sampled = sig["sample"](num_images=tf.constant(3), seed=tf.constant(5))["images"].numpy()
    np.testing.assert_array_equal(sampled, images.to_uint8(np.asarray(model.decoder(prior, training=False))))


@pytest.mark.parametrize("pixel_loss", ["mse", "l1"])
def test_loss_terms_equal_numpy_with_pipeline_eps_and_kl_warmup(pixel_loss, tiny_config):
    """z = mean + exp(lv / 2) * eps with the pipeline's eps; pixel + warmed-up KL by hand."""
    config = tiny_config("vae", pixel_loss=pixel_loss, pixel_weight=0.7, kl_weight=0.3, kl_warmup_steps=4)
    model = registry.build_model(config)
    assert model.noise_spec() == {"eps": ("normal", (8,))}
    source = data.load_source("shapes", 16, num_images=64)
    batch = next(iter(data.make_train_dataset(source, 8, noise_spec=model.noise_spec())))
    model.step.assign(1)
    outputs = model.forward(batch, training=True)
    terms = {k: np.asarray(v) for k, v in model.loss_terms(batch, outputs).items()}

    x, eps = batch["images"].numpy(), batch["eps"].numpy()
    mean, log_variance = (np.asarray(t, np.float64) for t in model.encoder(x))
    z = mean + np.exp(0.5 * log_variance) * eps
    np.testing.assert_allclose(np.asarray(outputs["z"]), z, rtol=1e-5, atol=1e-6)
    recon = np.asarray(model.decoder(z.astype("float32")), np.float64)
    diff = (x - recon).reshape(8, -1)
    pixel = np.mean(diff**2 if pixel_loss == "mse" else np.abs(diff), axis=1)
    kl = 0.5 * np.sum(np.exp(log_variance) + mean**2 - 1 - log_variance, axis=1)
    assert set(terms) == {"pixel", "kl"}
    np.testing.assert_allclose(terms["pixel"], 0.7 * pixel, rtol=1e-4)
    np.testing.assert_allclose(terms["kl"], 0.3 * (1 / 4) * kl, rtol=1e-4)
    model.step.assign(10)  # past the warm-up: full weight
    np.testing.assert_allclose(np.asarray(model.loss_terms(batch, outputs)["kl"]), 0.3 * kl, rtol=1e-4)


def test_perceptual_term_is_the_comparators_feature_distance(tiny_config):
    from keras_pgen.losses import perceptual

    config = tiny_config("vae", perceptual_weight=2.0, pixel_loss="none", vgg_weights="none",
                         perceptual_layers=("relu1_2", "relu2_2"), perceptual_layer_weights=(0.5, 1.0),
                         perceptual_distance="l1")
    model = registry.build_model(config)
    assert isinstance(model.comparator, perceptual.VGGFeatureExtractor) and not model.comparator.trainable_weights
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(-1, 1, (2, 16, 16, 3)).astype("float32") for _ in range(2))
    terms = model.reconstruction_terms(a, b)
    assert set(terms) == {"perceptual"}
    fa, fb = model.comparator(a), model.comparator(b)
    expected = sum(w * np.mean(np.abs(np.asarray(u) - np.asarray(v)).reshape(2, -1), axis=1)
                   for w, u, v in zip((0.5, 1.0), fa, fb))
    np.testing.assert_allclose(np.asarray(terms["perceptual"]), 2.0 * expected, rtol=1e-4)


def test_bad_loss_settings_fail_loudly(tiny_config):
    with pytest.raises(ValueError, match="unknown pixel_loss"):
        registry.build_model(tiny_config("vae", pixel_loss="l3"))
    with pytest.raises(ValueError, match="unknown comparator"):
        registry.build_model(tiny_config("vae", perceptual_weight=1.0, comparator="alexnet"))
    with pytest.raises(ValueError, match="unknown perceptual_distance"):
        registry.build_model(tiny_config("vae", perceptual_distance="cosine"))


def test_resume_equals_uninterrupted(tiny_config, tmp_path):
    """6 steps in one run == 2 steps, a stop, then 4 more (KL warm-up spanning the stop)."""
    config = tiny_config("vae", total_steps=6, checkpoint_every=2, log_every=2, export=False, kl_warmup_steps=4)
    full = run(config, tmp_path / "full")
    config.total_steps = 2
    assert run(config, tmp_path / "resumed")["step"] == 2
    config.total_steps = 6
    resumed = run(config, tmp_path / "resumed")
    assert resumed["step"] == 6
    assert_same_state(state(full["model"]), state(resumed["model"]), atol=1e-5)


def test_two_replicas_equal_one_with_perceptual_and_kl(tiny_config, tmp_path):
    """Same global batch: 2 steps on 2 replicas == 1 replica (VGG features with random weights, KL)."""
    config = tiny_config("vae", total_steps=2, export=False, perceptual_weight=1e-4, pixel_weight=0.5,
                         vgg_weights="none", perceptual_layers=("relu1_2", "relu2_2"), kl_weight=0.01,
                         adam_epsilon=1e-3)
    one = run(config, tmp_path / "one")
    two = run(config, tmp_path / "two", strategy=two_replica_strategy())
    assert two["model"].distribute_strategy.num_replicas_in_sync == 2
    assert int(one["model"].step.numpy()) == int(two["model"].step.numpy()) == 2
    assert_same_state(state(one["model"]), state(two["model"]), atol=2e-6)


OLIVETTI = os.path.join(SHARED_DATA, "olivetti_faces", "olivetti_400x57x47_uint8.npy")


@pytest.mark.skipif(not os.path.exists(OLIVETTI), reason="../shared/data/olivetti_faces is absent")
def test_perceptual_vae_reconstructs_sharper_than_mse_vae_on_faces():
    """Olivetti faces, 32x32 grey, 120 steps each: the sharpness figure (Laplacian variance of the
    reconstructions over the inputs') of a VAE with a VGG16 relu1_2 feature loss (random weights:
    nothing can be downloaded; 0.1 x MSE kept) beats the MSE VAE's, at a comparable PSNR.

    Measured (2-core CPU): perceptual 0.30 vs MSE 0.10, PSNR 17.1 vs 16.8 dB.
    """
    from keras_pgen.metrics import image_quality

    source = data.ArraySource(np.load(OLIVETTI), resolution=32, channels=1)
    held_out = source.get(np.arange(0, len(source), 10))[0]

    def train(**overrides):
        config = keras_pgen.get_config("vae", "default")
        config.update(resolution=32, channels=1, latent_dim=32, base_filters=16, max_filters=64, batch_size=16,
                      kl_weight=1e-3, kl_warmup_steps=0, lr=2e-3, **overrides)
        keras.utils.set_random_seed(0)
        model = registry.build_model(config)
        model.fit(data.make_train_dataset(source, config.batch_size, noise_spec=model.noise_spec()),
                  steps_per_epoch=120, epochs=1, verbose=0)
        reconstructions = images.to_uint8(np.asarray(model(held_out.astype("float32") / 127.5 - 1.0)))
        return (image_quality.sharpness(held_out, reconstructions), image_quality.psnr(held_out, reconstructions))

    mse_sharpness, mse_psnr = train()
    sharp_sharpness, sharp_psnr = train(perceptual_weight=1.0, pixel_weight=0.1, comparator="vgg",
                                        vgg_weights="none", perceptual_layers=("relu1_2",))
    assert sharp_sharpness > 1.5 * mse_sharpness, (sharp_sharpness, mse_sharpness)
    assert sharp_psnr > mse_psnr - 1.5, (sharp_psnr, mse_psnr)  # sharper, not noise
