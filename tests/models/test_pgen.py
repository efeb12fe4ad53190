"""PGen (--method=pgen): one step by hand, 1 vs 2 replicas, resume, bin/train end to end with export."""
import numpy as np
import pytest

import keras_pgen
from keras_pgen import data, export, images, registry, training
from keras_pgen.losses import diversity as div
from keras_pgen.models import ema
from keras_pgen.networks import StyleGenerator
from tests.conftest import run_bin, two_replica_strategy
from tests.models.test_gan_training import assert_same_state, run


def state(model):
    variables = model.generator.weights + model.ema_generator.weights + model.g_optimizer.variables + [model.step]
    return {f"{i}:{v.name}": np.asarray(v) for i, v in enumerate(variables)}


def test_one_step_by_hand(tiny_config):
    """The pipeline batch is 2x the generated batch; z of every 2nd sample; loss and EMA as documented."""
    config = tiny_config("pgen", ema_decay=0.999)
    model = registry.build_model(config)
    [stage] = model.stages(config.total_steps, config.batch_size)
    assert stage.batch_size == 2 * config.batch_size == 8
    batch = next(iter(data.make_train_dataset(data.load_source("shapes", 16, num_images=64), stage.batch_size,
                                              noise_spec=model.noise_spec())))
    weights = [np.asarray(w) for w in model.generator.trainable_weights]
    ema_before = [np.asarray(w) for w in model.ema_generator.trainable_weights]
    fake = model.generator(batch["z"][::2], training=True)
    fake_f, real_f = model.feature_extractor(fake), model.feature_extractor(batch["images"])
    expected_div = div.perceptual_diversity_loss(fake_f, [f[:4] for f in real_f], [0.5, 1.0])
    expected_match, _, matched = div.perceptual_matching_loss(fake_f, real_f, batch["match_u"], 5, [0.5, 1.0])
    logs = model.train_step(batch)
    assert float(logs["diversity"]) == pytest.approx(float(expected_div), rel=1e-5)
    assert float(logs["matching"]) == pytest.approx(float(expected_match), rel=1e-5)
    assert float(logs["loss"]) == pytest.approx(float(expected_div) + float(expected_match), rel=1e-5)
    assert float(logs["top_k_matched"]) == pytest.approx(float(np.mean(np.asarray(matched))))
    assert any(not np.allclose(w, np.asarray(v)) for w, v in zip(weights, model.generator.trainable_weights))
    decay = float(ema.ema_decay_at(0, 0.999))
    assert decay == pytest.approx(0.1)
    for before, w, e in zip(ema_before, model.generator.trainable_weights, model.ema_generator.trainable_weights):
        np.testing.assert_allclose(np.asarray(e), np.asarray(w) + decay * (before - np.asarray(w)), rtol=1e-5,
                                   atol=1e-7)
    assert int(model.step.numpy()) == 1 and model.optimizers().keys() == {"g"}


def test_two_replicas_equal_one(tiny_config, tmp_path):
    """Same global batch on 2 replicas: gathered features, same matching, same weights and Adam state."""
    config = tiny_config("pgen", total_steps=2, export=False, ema_decay=0.5, adam_epsilon=1e-3)
    one = run(config, tmp_path / "one")
    two = run(config, tmp_path / "two", strategy=two_replica_strategy())
    assert two["model"].distribute_strategy.num_replicas_in_sync == 2
    assert int(one["model"].step.numpy()) == int(two["model"].step.numpy()) == 2
    assert_same_state(state(one["model"]), state(two["model"]), atol=2e-6)


def test_resume_equals_uninterrupted(tiny_config, tmp_path):
    config = tiny_config("pgen", total_steps=4, checkpoint_every=2, log_every=2, export=False)
    full = run(config, tmp_path / "full")
    config.total_steps = 2
    assert run(config, tmp_path / "resumed")["step"] == 2
    config.total_steps = 4
    resumed = run(config, tmp_path / "resumed")
    assert resumed["step"] == 4
    assert_same_state(state(full["model"]), state(resumed["model"]), atol=1e-5)
    moments = [v for v in resumed["model"].g_optimizer.variables if "momentum" in v.path or "velocity" in v.path]
    assert moments and all(np.any(np.asarray(v) != 0) for v in moments)


def test_tiny_preset_trains_end_to_end_and_the_export_serves_the_ema_generator(tmp_path):
    work, saved = tmp_path / "w", tmp_path / "sm"
    proc = run_bin("train", "--method=pgen", "--preset=tiny", f"--workdir={work}", f"--config.export_dir={saved}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "diversity" in proc.stdout and "matching" in proc.stdout and "top_k_matched" in proc.stdout
    assert (work / "samples" / "step_0000004_samples.png").exists()
    assert (work / "checkpoints" / "ckpt-4.index").exists()
    path = str(saved / "pgen" / "1")
    assert f"exported: {path}" in proc.stdout
    # the in-memory EMA generator of that run, restored from its workdir
    config = keras_pgen.get_config("pgen", "tiny")
    config.export_dir = str(saved)
    model = registry.build_model(config)
    training._restore(model, str(work))
    assert int(model.step.numpy()) == 4
    z = np.random.RandomState(3).randn(5, config.latent_dim).astype("float32")
    loaded = export.load_generator(path)
    np.testing.assert_array_equal(loaded.generate(z), images.to_uint8(np.asarray(model.ema_generator(z))))
    metadata = loaded.metadata
    assert (metadata["method"], metadata["kind"], metadata["resolution"]) == ("pgen", "generator", 16)
    assert loaded.sample(3, seed=1).shape == (3, 16, 16, 3)


def test_gan_method_with_the_style_generator(tiny_config):
    """`--method=gan --config.generator=style`: the DCGAN template trains a StyleGenerator (one eager step)."""
    config = tiny_config("gan", generator="style")
    model = registry.build_model(config)
    assert isinstance(model.generator, StyleGenerator) and isinstance(model.ema_generator, StyleGenerator)
    assert model.generator.get_config()["fmap_base"] == config.base_filters * 8  # base_filters at 16x16
    batch = next(iter(data.make_train_dataset(data.load_source("shapes", 16, num_images=64), config.batch_size,
                                              noise_spec=model.noise_spec())))
    before = [np.asarray(w) for w in model.generator.trainable_weights]
    logs = model.train_step(batch)
    assert np.isfinite(float(logs["g_loss"])) and np.isfinite(float(logs["d_loss"]))
    assert any(not np.allclose(b, np.asarray(w)) for b, w in zip(before, model.generator.trainable_weights))
    with pytest.raises(ValueError, match="unknown generator 'nope'"):
        registry.build_model(tiny_config("gan", generator="nope"))
