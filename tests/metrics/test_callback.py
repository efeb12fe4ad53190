"""KID/FID during training (eval_every): logged to TensorBoard, equal to a recomputation from the EMA generator."""
import types

import numpy as np
import pytest
import tensorflow as tf

from keras_pgen import data, images, metrics
from keras_pgen.data.shapes import KINDS
from keras_pgen.metrics import evaluator, shapes_judge
from tests.conftest import tensorboard_scalars
from tests.models.test_gan_training import run


def latents(config, num=16):
    """The documented evaluation latents: numpy's standard normal from default_rng([seed, 1543]), float32."""
    return np.random.default_rng([config.seed, 1543]).standard_normal((num, config.latent_dim)).astype(np.float32)


def test_eval_every_logs_kid_and_fid_of_the_ema_generator(tiny_config, tmp_path):
    config = tiny_config("msg_gan", total_steps=4, eval_every=2, eval_num_samples=16, eval_features="pixels",
                         export=False)
    result = run(config, tmp_path / "w")
    values = tensorboard_scalars(tmp_path / "w", "eval/")
    # step 0 (the untrained generator, before the first step) and every 2 steps
    assert set(values) == {(f"eval/{n}", s) for n in ("kid", "kid_std", "fid") for s in (0, 2, 4)}
    # the numbers at the last step, recomputed from the EMA generator's largest scale, quantised as the
    # export does (test_gan_training checks the export equals it), with the evaluator's latents (numpy's,
    # the same under both engines)
    z = latents(config)
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
    assert values[("eval/fid", 0)] != values[("eval/fid", 2)]


def test_eval_features_shapes_logs_the_judge_with_floors(tiny_config, tmp_path):
    """The judge's report at steps 0, 2, 4; at the last step it equals `shapes_judge` on the EMA generator's
    samples, against the data's first 16 images, with the next 16 as the floor set."""
    config = tiny_config("msg_gan", total_steps=4, eval_every=2, eval_num_samples=16, eval_features="shapes",
                         export=False)
    result = run(config, tmp_path / "w")
    values = tensorboard_scalars(tmp_path / "w", "eval/")
    names = {"kid", "kid_std", "fid", "fid_real_floor", "kid_real_floor", "kid_real_floor_std", "kinds_covered",
             "mean_confidence", *(f"kinds/{kind}" for kind in KINDS)}
    assert set(values) == {(f"eval/{n}", s) for n in names for s in (0, 2, 4)}
    z = latents(config)
    fake = images.to_uint8(np.asarray(result["model"].ema_generator(z, training=False)[-1]))
    real, _ = data.load_source("shapes", 16, num_images=config.num_images).get(np.arange(32))
    expected = shapes_judge.judge(fake, real=real, seed=config.seed)
    for name in ("fid", "fid_real_floor", "kid", "kid_real_floor", "mean_confidence"):
        assert values[(f"eval/{name}", 4)] == pytest.approx(expected[name], rel=1e-4, abs=1e-7), name
    assert values[("eval/kinds_covered", 4)] == expected["kinds_covered"]
    for kind in KINDS:
        assert values[(f"eval/kinds/{kind}", 4)] == pytest.approx(expected["class_histogram"][kind] / 16)
    # the floor does not depend on the generator
    assert values[("eval/fid_real_floor", 0)] == pytest.approx(values[("eval/fid_real_floor", 4)], rel=1e-6)


def test_eval_features_auto_is_the_judge_for_shapes_and_off_otherwise(tiny_config, tmp_path):
    config = tiny_config("msg_gan", eval_every=5, eval_features="auto", eval_num_samples=8)
    assert evaluator.eval_features(config) == "shapes"
    (metrics_callback,) = metrics.evaluation_callbacks(config, data.load_source("shapes", 16, num_images=64), str(tmp_path))
    judged = metrics_callback.evaluator
    assert isinstance(judged.extractor, shapes_judge.ShapesJudge)
    assert len(judged.real_images) == len(judged.floor_images) == 8  # the first 8 images, then the next 8
    source = data.load_source("shapes", 16, num_images=64)
    np.testing.assert_array_equal(judged.floor_images, source.get(np.arange(8, 16))[0])
    config.data = "/some/folder/of/faces"
    assert evaluator.eval_features(config) == "" and metrics.evaluation_callbacks(config, None, str(tmp_path)) == []


def test_eval_is_off_by_default_and_needs_a_generator(tiny_config, tmp_path):
    assert tiny_config("msg_gan").eval_every == 0
    assert metrics.evaluation_callbacks(tiny_config("msg_gan"), source=None, workdir=str(tmp_path)) == []
    # methods without export_generator() (pgen) are sampled through their EMA generator
    sampled = types.SimpleNamespace(ema_generator="ema", generator="raw")
    assert evaluator.sampling_network(sampled) == "ema"
    with pytest.raises(ValueError, match="eval_every needs a generator"):
        evaluator.sampling_network(types.SimpleNamespace(encoder="an autoencoder"))


@pytest.mark.parametrize("factor", [2, 4])
def test_match_resolution_is_tensorflows_area_resize(factor):
    """ProGAN's early stages: the real images shrunk by a whole factor, as `tf.image.resize(..., "area")` does."""
    real = np.random.default_rng(factor).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    side = 16 // factor
    expected = tf.image.resize(tf.constant(real, tf.float32), (side, side), "area").numpy()
    expected = np.clip(np.round(expected), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(evaluator.match_resolution(real, side), expected)
    assert evaluator.match_resolution(real, 16) is real
    with pytest.raises(ValueError, match="whole factors"):
        evaluator.match_resolution(real, 6)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_samples_of_a_mixed_precision_generator_are_quantised_as_the_export(dtype):
    """A generator under a mixed policy returns bfloat16 / float16 images: cast to float32 first, as the export does."""
    from keras_pgen import export

    low = tf.cast(tf.linspace(-1.0, 1.0, 2 * 8 * 8 * 3), dtype).numpy().reshape(2, 8, 8, 3)
    pick = lambda z: low[z[:, 0].astype(int)]  # noqa: E731 - latent [i] -> image i
    model = types.SimpleNamespace(ema_generator=lambda z, training: [pick(z)[:, ::2, ::2], pick(z)])
    samples = evaluator.generator_samples(model, np.array([[0.0], [1.0]], np.float32), batch_size=1)
    np.testing.assert_array_equal(samples, export._to_uint8(low).numpy())
