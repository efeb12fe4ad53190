"""bin/evaluate --workdir: `diversity_ratio_discriminator`, the pairwise-diversity ratio in the penultimate
features of the run's discriminator, against features computed here from a discriminator restored another way.

One tiny run per method (module fixture): gan (DCGAN) and msg_gan with the TensorFlow engine, msg_gan
with the JAX engine (a subprocess, as tests/engines run JAX).
"""
import json
import os
import shutil
import subprocess
import sys

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.distance import pdist

import keras_pgen
from keras_pgen import checkpoints, cli, evaluate, registry, training
from keras_pgen import runs as runs_lib
from keras_pgen import export as export_lib
from tests.conftest import REPO
from tests.engines.conftest import backend_env

NUM = 64  # samples and real images of the ratio
LOGIT = {"gan": "logit", "msg_gan": "d4_logit"}  # the discriminators' final Dense layers


def _train_tf(method, root):
    config = keras_pgen.get_config(method, "tiny")
    config.update(total_steps=2, log_every=2, sample_every=2, checkpoint_every=2, num_images=16,
                  export_dir=str(root / "saved_models"))
    result = keras_pgen.train(config, str(root / method), verbose=0)
    return {"workdir": str(root / method), "export": result["export_path"], "config": config}


def _start_jax_run(workdir):
    """bin/train --backend=jax in a subprocess (Keras runs one backend per process), started now."""
    return subprocess.Popen([sys.executable, os.path.join(REPO, "bin", "train"), "--method=msg_gan", "--preset=tiny",
                             "--backend=jax", f"--workdir={workdir}", "--config.total_steps=2",
                             "--config.export=false", "--config.num_images=16"],
                            env=backend_env("jax"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs of 2 steps and their exports; the JAX run is evaluated with the TF msg_gan run's export
    (any export of the method and shape will do: it only makes the samples)."""
    root = tmp_path_factory.mktemp("evaluate_discriminator")
    jax_run = _start_jax_run(root / "msg_gan_jax")  # runs beside the TensorFlow runs
    try:
        runs = {"root": root, "gan": _train_tf("gan", root), "msg_gan": _train_tf("msg_gan", root)}
        _, err = jax_run.communicate(timeout=400)
    finally:
        if jax_run.poll() is None:
            jax_run.kill()
    assert jax_run.returncode == 0, err[-3000:]
    return {**runs, "msg_gan_jax": {"workdir": str(root / "msg_gan_jax"), "export": runs["msg_gan"]["export"]}}


def _run_config(workdir):
    with open(os.path.join(workdir, "config.json")) as f:
        return ml_collections.ConfigDict(json.load(f))


def _inputs_and_samples(run):
    """The first 64 generated (uint8, from the export, evaluate's latents) and real images evaluate uses."""
    generator = export_lib.load_generator(run["export"])
    z = np.random.default_rng(0).standard_normal((NUM, generator.latent_dim)).astype(np.float32)
    fake = generator.generate(z)
    real = evaluate.real_images("shapes", 16, 3, NUM, seed=0)
    return fake, real


def _features_by_hand(discriminator, method, images):
    """D's logit layer input for uint8 `images`, as the model feeds reals, computed here (one batch)."""
    x = images.astype(np.float32) / 127.5 - 1.0
    if method == "msg_gan":  # the average-pooled pyramid, lowest resolution first
        pyramid = [x]
        while pyramid[-1].shape[1] > 4:
            p = pyramid[-1]
            pyramid.append(p.reshape(p.shape[0], p.shape[1] // 2, 2, p.shape[2] // 2, 2, -1).mean(axis=(2, 4)))
        x = pyramid[::-1]
    penultimate = keras.Model(discriminator.input, discriminator.get_layer(LOGIT[method]).input)
    return keras.ops.convert_to_numpy(penultimate(x, training=False)).astype(np.float64).reshape(len(images), -1)


def _ratio(fake_features, real_features):
    return float(np.mean(pdist(fake_features)) / np.mean(pdist(real_features)))


def _mean_colour(images):
    """Cheap features for the rest of the report (pixel FID's 768x768 eigendecompositions take seconds)."""
    return images.astype(np.float64).mean(axis=(1, 2))


def _evaluate(run, workdir):
    return evaluate.evaluate(run["export"], "shapes", num_samples=NUM, features=_mean_colour, num_pairs=0,
                             subset_size=NUM, num_subsets=2, workdir=workdir)


@pytest.mark.parametrize("method", ["gan", "msg_gan"])
def test_discriminator_ratio_equals_features_of_the_checkpoint_restored_directly(runs, method):
    run = runs[method]
    results = _evaluate(run, run["workdir"])
    assert results["discriminator_step"] == 2 and results["workdir"] == run["workdir"]
    # a second model of the run's config, its D restored straight from TensorFlow's checkpoint
    keras.utils.set_random_seed(run["config"].seed)  # the run's initial weights
    model = registry.build_model(_run_config(run["workdir"]))
    fake, real = _inputs_and_samples(run)
    fresh = _features_by_hand(model.discriminator, method, real)
    prefix = os.path.join(run["workdir"], "checkpoints", "ckpt-2")
    tf.train.Checkpoint(discriminator=model.discriminator).restore(prefix).expect_partial()
    real_features = _features_by_hand(model.discriminator, method, real)
    fake_features = _features_by_hand(model.discriminator, method, fake)
    assert results["diversity_ratio_discriminator"] == pytest.approx(_ratio(fake_features, real_features), rel=1e-5)
    # the restored D is the trained one, not its initial weights
    assert np.max(np.abs(fresh - real_features)) > 1e-4 * np.max(np.abs(real_features))
    # and the library's features (batches of 16 through GAN.discriminator_features) are these
    ours = evaluate.discriminator_features(run["workdir"], {"method": method})[0](real)
    np.testing.assert_allclose(ours, real_features, rtol=1e-4, atol=1e-5 * np.max(np.abs(real_features)))
    assert 0.0 < results["diversity_ratio_discriminator"] < 10.0


def test_jax_workdir_ratio_equals_hand_computation(runs):
    run = runs["msg_gan_jax"]
    directory = os.path.join(run["workdir"], "checkpoints")
    assert checkpoints.steps(directory) == [2] and not checkpoints.tf_steps(directory)  # the JAX engine's npz
    results = _evaluate(run, run["workdir"])
    assert results["discriminator_step"] == 2
    # D's variables assigned here from the npz archive (not through checkpoints.restore)
    model = registry.build_model(_run_config(run["workdir"]))
    _, items, arrays = checkpoints.read(checkpoints.path(directory, 2))
    before = [np.array(v.numpy()) for v in model.discriminator.variables]
    for i, variable in enumerate(model.discriminator.variables):
        assert items["discriminator"][i][1] == list(variable.shape)
        variable.assign(arrays[f"discriminator/{i}"])
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(before, model.discriminator.variables))
    fake, real = _inputs_and_samples(run)
    expected = _ratio(_features_by_hand(model.discriminator, "msg_gan", fake),
                      _features_by_hand(model.discriminator, "msg_gan", real))
    assert results["diversity_ratio_discriminator"] == pytest.approx(expected, rel=1e-5)


def test_progan_discriminator_features_are_what_the_logit_layer_sees():
    """ProGAN mid fade-in (step 7 of the tiny schedule): GAN.discriminator_features through D's final
    Dense gives D's logits (gan and msg_gan: the tests above compare with a sub-model built here)."""
    model = registry.build_model(keras_pgen.get_config("progan", "tiny"))
    model.prepare(7)
    assert model.discriminator_resolution() == 16 and model.phase.fading
    images = keras.random.uniform((8, 16, 16, 3), -1.0, 1.0, seed=1)
    inputs = model.real_inputs(images)
    features = model.discriminator_features(inputs)
    head = model.discriminator.head
    assert tuple(features.shape) == (8, head.layers[-1].input.shape[-1])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(head.layers[-1](features)),
                               keras.ops.convert_to_numpy(model.discriminator(inputs, training=False)),
                               rtol=1e-5, atol=1e-5)


def _cli_evaluate(capsys, *args):
    """bin/evaluate in-process: (exit code, stderr lines)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.run("evaluate", ["bin/evaluate", "--data=shapes", "--features=pixels", "--num_samples=8",
                             "--num_pairs=0", "--num_subsets=2", *args])
    return info.value.code, capsys.readouterr().err.strip().splitlines()


def test_workdir_errors_are_one_line(runs, capsys, tmp_path):
    msg_gan, gan = runs["msg_gan"], runs["gan"]
    model = f"--model={msg_gan['export']}"
    code, err = _cli_evaluate(capsys, model, f"--workdir={tmp_path}")  # no config.json
    assert code == 1 and err == [f"error: {tmp_path / 'config.json'} not found: is {str(tmp_path)!r} a keras_pgen "
                                 "training workdir?"]
    # a method without a discriminator: a VAE workdir (refused before its checkpoints are looked at)
    vae = tmp_path / "vae"
    vae.mkdir()
    runs_lib._write_config(keras_pgen.get_config("vae", "tiny"), str(vae))
    code, err = _cli_evaluate(capsys, model, f"--workdir={vae}")
    assert code == 1 and err == [f"error: --workdir: method 'vae' of {vae} has no GAN discriminator "
                                 "(runs of gan, msg_gan or progan have one)"]
    code, err = _cli_evaluate(capsys, model, f"--workdir={gan['workdir']}")  # another method's run
    assert code == 1 and err == [f"error: --workdir: {gan['workdir']} trained 'gan', the export is of 'msg_gan'"]
    # resolution and channels that differ from the export's (the run's config.json edited)
    for field, value, says in (("resolution", 32, "takes 32x32 images (step 0), the export makes 16x16"),
                               ("channels", 1, "trained on 1-channel images, the export makes 3-channel ones")):
        other = tmp_path / f"other_{field}"
        other.mkdir()
        saved = json.loads((runs["root"] / "msg_gan" / "config.json").read_text())
        (other / "config.json").write_text(json.dumps({**saved, field: value}))
        if field == "resolution":  # a run of its own at 32x32: its checkpoint fits its config
            c = keras_pgen.get_config("msg_gan", "tiny")
            c.update(resolution=32, export=False)
            checkpoints.save(registry.build_model(c), str(other / "checkpoints"), 0)
        code, err = _cli_evaluate(capsys, model, f"--workdir={other}")
        assert code == 1 and len(err) == 1 and err[0].startswith("error: --workdir: ") and says in err[0], err
    # a JAX checkpoint holding only the EMA generator (an export-only one)
    jax_run = runs["msg_gan_jax"]
    ema_only = tmp_path / "ema_only"
    (ema_only / "checkpoints").mkdir(parents=True)
    shutil.copy(os.path.join(jax_run["workdir"], "config.json"), ema_only / "config.json")
    file = checkpoints.path(os.path.join(jax_run["workdir"], "checkpoints"), 2)
    checkpoints.keep_items(file, str(ema_only / "checkpoints" / "ckpt-2.npz"), ["ema_generator"])
    code, err = _cli_evaluate(capsys, f"--model={jax_run['export']}", f"--workdir={ema_only}")
    assert code == 1 and len(err) == 1 and "holds only ['ema_generator'], not ['discriminator']" in err[0], err
    # what bin/export does with it: load_from_workdir restores the items it holds (the EMA generator)
    model, _ = training.load_from_workdir(str(ema_only))
    _, _, arrays = checkpoints.read(str(ema_only / "checkpoints" / "ckpt-2.npz"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.ema_generator.variables[0]),
                                  arrays["ema_generator/0"])
