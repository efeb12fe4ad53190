"""--method=cond_decoder: labels -> images through bin/train, export equality, replicas, bad labels."""
import json

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

import keras_pgen
from keras_pgen import images, registry, training
from tests.conftest import run_bin, two_replica_strategy
from tests.models.test_gan_training import assert_same_state


def state(model):
    variables = model.decoder.weights + model.ae_optimizer.variables + [model.step]
    return {f"{i}:{v.name}": np.asarray(v) for i, v in enumerate(variables)}


def run(config, workdir, strategy=None):
    return keras_pgen.train(config, str(workdir), strategy=strategy, verbose=0)


def test_tiny_cond_decoder_trains_through_bin_train_and_exports(tmp_path):
    work, saved = tmp_path / "w", tmp_path / "sm"
    proc = run_bin("train", "--method=cond_decoder", "--preset=tiny", f"--workdir={work}",
                   f"--config.export_dir={saved}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(7 classes)" in proc.stderr and "pixel" in proc.stdout
    for name in ("reconstructions", "classes"):
        assert (work / "samples" / f"step_0000004_{name}.png").exists()
    path = saved / "cond_decoder" / "1"
    metadata = json.loads((path / "keras_pgen.json").read_text())
    assert (metadata["kind"], metadata["method"], metadata["resolution"], metadata["channels"],
            metadata["num_classes"]) == ("conditional_decoder", "cond_decoder", 16, 3, 7)

    config = ml_collections.ConfigDict(json.loads((work / "config.json").read_text()))
    model = registry.build_model(config)
    training._restore(model, str(work))
    assert int(model.step.numpy()) == 4
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    labels = np.array([0, 6, 3, 3], np.int32)
    out = serve(labels=tf.constant(labels))
    expected = images.to_uint8(np.asarray(model.decoder(np.eye(7, dtype="float32")[labels], training=False)))
    np.testing.assert_array_equal(out["images"].numpy(), expected)
    np.testing.assert_array_equal(tf.io.decode_png(out["png_bytes"][1]).numpy(), expected[1])
    np.testing.assert_array_equal(expected[2], expected[3])  # one image per label: the "average" of its class
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be < 7"):
        serve(labels=tf.constant([7], tf.int32))


def test_two_replicas_equal_one(tiny_config, tmp_path):
    config = tiny_config("cond_decoder", total_steps=2, export=False, adam_epsilon=1e-3)
    one = run(config, tmp_path / "one")
    two = run(config, tmp_path / "two", strategy=two_replica_strategy())
    assert two["model"].distribute_strategy.num_replicas_in_sync == 2
    assert int(one["model"].step.numpy()) == int(two["model"].step.numpy()) == 2
    assert_same_state(state(one["model"]), state(two["model"]), atol=2e-6)


def test_pixel_loss_is_against_the_decoding_of_each_label(tiny_config):
    """loss term = mean over pixels of (image - decoder(one_hot(label)))**2, per sample."""
    from keras_pgen import data

    model = registry.build_model(tiny_config("cond_decoder"))
    assert model.uses_labels and model.noise_spec() == {}
    batch = next(iter(data.make_train_dataset(data.load_source("shapes", 16, num_images=64), 8, with_labels=True)))
    terms = model.loss_terms(batch, model.forward(batch, training=True))
    decoded = np.asarray(model.decoder(np.eye(7, dtype="float32")[batch["labels"].numpy()]))
    expected = np.mean((batch["images"].numpy() - decoded).reshape(8, -1) ** 2, axis=1)
    np.testing.assert_allclose(np.asarray(terms["pixel"]), expected, rtol=1e-5)


def test_labels_beyond_num_classes_stop_training_with_a_clear_error(tiny_config, tmp_path):
    config = tiny_config("cond_decoder", num_classes=3, export=False)  # the shapes have 7 kinds
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes=3"):
        run(config, tmp_path / "w")
