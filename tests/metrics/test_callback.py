"""KID/FID during training (eval_every): logged to TensorBoard, equal to a recomputation from the EMA generator."""
import types

import numpy as np
import pytest
import tensorflow as tf

from keras_pgen import data, images, metrics
from keras_pgen.metrics import callback
from tests.conftest import tensorboard_scalars
from tests.models.test_gan_training import run


def test_eval_every_logs_kid_and_fid_of_the_ema_generator(tiny_config, tmp_path):
    config = tiny_config("msg_gan", total_steps=4, eval_every=2, eval_num_samples=16, eval_features="pixels",
                         export=False)
    result = run(config, tmp_path / "w")
    values = tensorboard_scalars(tmp_path / "w", "eval/")
    assert set(values) == {(f"eval/{n}", s) for n in ("kid", "kid_std", "fid") for s in (2, 4)}
    # the numbers at the last step, recomputed from the EMA generator's largest scale, quantised as the
    # export does (test_gan_training checks the export equals it), with the callback's latents
    z = tf.random.stateless_normal((16, config.latent_dim), seed=[config.seed, 1543])
    fake = images.to_uint8(np.asarray(result["model"].ema_generator(z, training=False)[-1]))
    source = data.load_source("shapes", 16, num_images=config.num_images)
    real, _ = source.get(np.arange(16))
    pixels = metrics.PixelFeatures()
    fid = metrics.fid_from_features(pixels(fake), pixels(real))
    kid, kid_std = metrics.kid_from_features(pixels(fake), pixels(real), seed=config.seed)
    assert values[("eval/fid", 4)] == pytest.approx(fid, rel=1e-5)
    assert values[("eval/kid", 4)] == pytest.approx(kid, rel=1e-5)
    assert values[("eval/kid_std", 4)] == pytest.approx(kid_std, rel=1e-5)
    assert values[("eval/fid", 2)] != values[("eval/fid", 4)]  # the generator changed between evaluations


def test_eval_is_off_by_default_and_needs_a_generator(tiny_config):
    assert tiny_config("msg_gan").eval_every == 0
    assert metrics.evaluation_callbacks(tiny_config("msg_gan"), source=None, workdir="unused") == []
    # methods without export_generator() (pgen) are sampled through their EMA generator
    sampled = types.SimpleNamespace(ema_generator="ema", generator="raw")
    assert callback.sampling_network(sampled) == "ema"
    with pytest.raises(ValueError, match="eval_every needs a generator"):
        callback.sampling_network(types.SimpleNamespace(encoder="an autoencoder"))
