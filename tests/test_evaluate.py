"""bin/evaluate and keras_pgen.evaluate: KID/FID and the memorisation check for generators; PSNR/SSIM/sharpness
for autoencoders (a SavedModel written with export.export_endpoints as the export contract says)."""
import json
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_pgen import evaluate, export, images, metrics
from keras_pgen.metrics import image_quality
from tests.conftest import run_bin

LATENT = 4


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A folder of 8 images, a generator that always outputs image 3 (a copier) and a noise generator."""
    root = tmp_path_factory.mktemp("evaluate")
    rng = np.random.default_rng(0)
    real = np.zeros((8, 16, 16, 3), np.uint8)
    (root / "images").mkdir()
    for i in range(8):  # smooth images: a colour ramp plus a square
        ramp = np.linspace(0, 200, 16)[None, :, None] * rng.uniform(0.3, 1.0, 3)
        real[i] = np.broadcast_to(ramp, (16, 16, 3)).astype(np.uint8)
        real[i, 2 + i % 6:8 + i % 6, 3:9] = rng.integers(0, 256, 3)
        Image.fromarray(real[i]).save(root / "images" / f"{i}.png")

    def dense_generator(kernel, bias, activation=None):
        z = keras.Input((LATENT,))
        x = keras.layers.Dense(16 * 16 * 3, activation=activation, kernel_initializer=keras.initializers.Constant(kernel),
                               bias_initializer=keras.initializers.Constant(bias))(z)
        return keras.Model(z, keras.layers.Reshape((16, 16, 3))(x))

    copier = dense_generator(0.0, real[3].reshape(-1).astype(np.float32) / 127.5 - 1.0)
    noise = dense_generator(rng.normal(size=(LATENT, 16 * 16 * 3)).astype(np.float32), 0.0, "tanh")
    paths = {name: export.export_generator(net, str(root / "sm"), name, method="test")
             for name, net in (("copier", copier), ("noise", noise))}
    return {"root": root, "data": str(root / "images"), "real": real, "noise_network": noise, **paths}


def test_generator_metrics_and_memorisation_check(setup, tmp_path):
    pairs = str(tmp_path / "pairs.png")
    copies = evaluate.evaluate(setup["copier"], setup["data"], num_samples=12, features="pixels", num_pairs=4,
                               pairs_path=pairs, subset_size=6, num_subsets=5)
    assert copies["kind"] == "generator" and copies["num_real"] == 8 and copies["num_generated"] == 12
    # every sample is a copy of real image 3: distance 0 to it
    assert copies["memorisation_ratio_min"] < 1e-6 and copies["memorisation_ratio_median"] < 1e-6
    grid = np.asarray(Image.open(pairs))
    # 4 pairs in one row of 64x64 tiles, 2 px padding: each sample next to its nearest real (image 3 itself)
    assert grid.shape == (2 + 66, 2 + 8 * 66, 3)
    tile = lambda k: grid[2:66, 2 + 66 * k:66 + 66 * k][::4, ::4]  # noqa: E731
    for k in range(8):
        np.testing.assert_array_equal(tile(k), setup["real"][3])
    # a noise generator is far from the data (ratios well above 0), and its KID/FID are the direct computation
    fresh = evaluate.evaluate(setup["noise"], setup["data"], num_samples=12, features="pixels", num_pairs=0,
                              subset_size=6, num_subsets=5, seed=3)
    assert fresh["memorisation_ratio_min"] > 0.5
    z = np.random.default_rng(3).standard_normal((12, LATENT)).astype(np.float32)
    fake = metrics.PixelFeatures()(images.to_uint8(np.asarray(setup["noise_network"](z))))  # what the export gives
    real = metrics.PixelFeatures()(setup["real"])
    assert fresh["fid"] == pytest.approx(metrics.fid_from_features(fake, real), rel=1e-9)
    assert (fresh["kid"], fresh["kid_std"]) == pytest.approx(metrics.kid_from_features(fake, real, 6, 5, 3), rel=1e-9)
    # pairwise diversity (numpy): mean distance over pairs of the first min(64, 12, 8) = 8 samples and reals
    spread = lambda x: np.mean([np.linalg.norm(x[i] - x[j]) for i in range(8) for j in range(i + 1, 8)])  # noqa: E731
    real_pixels = metrics.PixelFeatures()(evaluate.real_images(setup["data"], 16, 3, 12, seed=3))
    assert fresh["diversity_ratio_pixels"] == pytest.approx(spread(fake) / spread(real_pixels), rel=1e-9)
    assert fresh["diversity_ratio_features"] == pytest.approx(fresh["diversity_ratio_pixels"], rel=1e-12)
    assert copies["diversity_ratio_pixels"] < 1e-6  # twelve identical samples: one template
    # the frame check: every sample is real image 3, so the samples' border step is that image's
    real_uint8 = evaluate.real_images(setup["data"], 16, 3, 12)
    assert copies["border_step"] == pytest.approx(image_quality.border_step(setup["real"][3:4]), rel=1e-12)
    assert copies["border_step_real"] == pytest.approx(image_quality.border_step(real_uint8), rel=1e-12)
    assert copies["border_step_ratio"] == pytest.approx(copies["border_step"] / copies["border_step_real"])


def test_bin_evaluate_generator(setup, tmp_path):
    output = tmp_path / "out" / "copier.json"
    proc = run_bin("evaluate", f"--model={setup['root'] / 'sm' / 'copier'}", f"--data={setup['data']}",
                   "--num_samples=8", "--features=pixels", "--num_subsets=3", "--num_pairs=2", f"--output={output}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results == json.loads(output.read_text())
    assert results["model"] == setup["copier"] and results["features"] == "pixels"  # the model dir's version 1
    assert {"kid", "kid_std", "fid", "memorisation_ratio_median"} <= set(results)
    assert results["memorisation_ratio_min"] < 1e-6
    assert (tmp_path / "out" / "copier_pairs.png").exists() and results["pairs_png"].endswith("copier_pairs.png")


class Blur(keras.layers.Layer):
    def call(self, x):
        return keras.ops.average_pool(x, 3, strides=1, padding="same")


def test_bin_evaluate_autoencoder_psnr_ssim_sharpness(setup, tmp_path):
    """An 'autoencoder' that blurs (3x3 mean): its numbers equal the hand computation, sharpness below 1."""
    blur = Blur()

    def reconstruct(batch):
        out = tf.cast(tf.round(blur(tf.cast(batch, tf.float32))), tf.uint8)
        return {"images": out, "png_bytes": tf.map_fn(tf.io.encode_png, out, fn_output_signature=tf.string)}

    path = export.export_endpoints(
        str(tmp_path / "sm"), "blur_ae", {"reconstruct": (reconstruct, [tf.TensorSpec([None, 16, 16, 3], tf.uint8,
                                                                                      name="images")])},
        metadata={"kind": "autoencoder", "method": "test", "resolution": 16, "channels": 3})
    proc = run_bin("evaluate", f"--model={path}", f"--data={setup['data']}", "--num_samples=5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["kind"] == "autoencoder" and results["num_real"] == 5
    # the 5 real images are the seed-0 subset evaluate draws; the blur recomputed here
    real = evaluate.real_images(setup["data"], 16, 3, 5, seed=0)
    padded = np.pad(real.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    counts = np.pad(np.ones((16, 16)), 1)
    window = lambda a: sum(a[..., i:i + 16, j:j + 16, :] if a.ndim == 4 else a[i:i + 16, j:j + 16]  # noqa: E731
                           for i in range(3) for j in range(3))
    blurred = np.round(window(padded) / window(counts)[None, :, :, None]).astype(np.uint8)  # mean over valid pixels
    assert results["psnr"] == pytest.approx(metrics.psnr(real, blurred), rel=1e-9)
    assert results["ssim"] == pytest.approx(metrics.ssim(real, blurred), rel=1e-6)
    assert results["sharpness"] == pytest.approx(metrics.sharpness(real, blurred), rel=1e-9)
    assert results["sharpness"] < 0.7 and results["ssim"] < 1.0


def test_unsupported_kinds_and_missing_models_fail_clearly(setup, tmp_path, capsys):
    flags = types.SimpleNamespace(model=str(tmp_path / "nothing"), data=setup["data"], num_samples=4,
                                  features="pixels", image_size=299, batch_size=50, seed=0, subset_size=10,
                                  num_subsets=2, num_pairs=0, pairs=None, resize_mode="crop", output=None)
    assert evaluate.run_cli(flags) == 1  # what bin/evaluate exits with
    assert "error: no exported SavedModel" in capsys.readouterr().err
    decoder = tmp_path / "dec" / "1"
    decoder.mkdir(parents=True)
    (decoder / "saved_model.pb").write_bytes(b"")
    (decoder / "keras_pgen.json").write_text(json.dumps({"kind": "conditional_decoder", "resolution": 16}))
    with pytest.raises(ValueError, match="conditional_decoder"):
        evaluate.evaluate(str(decoder), setup["data"])


@pytest.fixture(scope="module")
def shapes_copier(tmp_path_factory):
    """An export that always draws one real 32x32 render of the built-in shapes (a ring)."""
    from keras_pgen.data.shapes import KINDS, ShapesSource

    images, labels = ShapesSource(32, num_images=64, seed=9).get(np.arange(64))
    index = int(np.flatnonzero(labels == KINDS.index("ring"))[0])
    z = keras.Input((LATENT,))
    x = keras.layers.Dense(32 * 32 * 3, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(
        images[index].reshape(-1).astype(np.float32) / 127.5 - 1.0))(z)
    net = keras.Model(z, keras.layers.Reshape((32, 32, 3))(x))
    return export.export_generator(net, str(tmp_path_factory.mktemp("shapes") / "sm"), "ring", method="test")


def test_bin_evaluate_features_shapes(shapes_copier, tmp_path):
    """The judge's report: one kind covered, confident; FID / KID beside floors recomputed from two disjoint
    real subsets; a diversity ratio of 0 (every sample is the same image)."""
    proc = run_bin("evaluate", f"--model={shapes_copier}", "--data=shapes", "--num_samples=40", "--features=shapes",
                   "--num_pairs=0", f"--output={tmp_path / 'ring.json'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["features"] == "shapes" and results["num_real"] == results["num_real_floor"] == 40
    assert results["kinds_covered"] == 1 and results["class_histogram"]["ring"] == 40
    assert results["mean_confidence"] > 0.9 and results["real_mean_confidence"] > 0.9
    assert results["diversity_ratio_pixels"] < 1e-6 and results["diversity_ratio_features"] < 1e-6
    # the floors: the judge on 40 further real images (disjoint from the 40 compared with) against those 40
    real, floor = evaluate.real_images("shapes", 32, 3, 40, seed=0, num_floor=40)
    assert len(floor) == 40 and not any((f == r).all() for f in floor for r in real)
    np.testing.assert_array_equal(real, evaluate.real_images("shapes", 32, 3, 40, seed=0))  # the usual subset
    judge = metrics.ShapesJudge()
    real_f, floor_f = judge(real), judge(floor)
    assert results["fid_real_floor"] == pytest.approx(metrics.fid_from_features(floor_f, real_f), rel=1e-6)
    assert results["kid_real_floor"] == pytest.approx(metrics.kid_from_features(floor_f, real_f)[0], rel=1e-5)
    assert results["fid"] > 10 * results["fid_real_floor"]
    assert list(results).index("fid_real_floor") == list(results).index("fid") + 1  # printed beside each other


def test_shapes_floor_halves_a_small_data_set(setup):
    """8 images for 12 samples: the floor compares the subset's two halves, and the report says 4 and 4."""
    results = evaluate.evaluate(setup["copier"], setup["data"], num_samples=12, features="shapes", num_pairs=0)
    assert results["num_real"] == results["num_real_floor"] == 4 and results["num_generated"] == 12
    real = evaluate.real_images(setup["data"], 16, 3, 12)
    judge = metrics.ShapesJudge()
    assert results["fid_real_floor"] == pytest.approx(metrics.fid_from_features(judge(real[4:]), judge(real[:4])),
                                                      rel=1e-6)


def test_diversity_ratio_of_real_images_is_about_one():
    """Two sets of 64 renders of the built-in data: as varied as each other (numpy reference)."""
    from keras_pgen.data.shapes import ShapesSource

    a = metrics.PixelFeatures()(ShapesSource(32, num_images=64, seed=0).get(np.arange(64))[0])
    b = metrics.PixelFeatures()(ShapesSource(32, num_images=64, seed=1).get(np.arange(64))[0])
    spread = lambda x: np.mean([np.linalg.norm(x[i] - x[j]) for i in range(64) for j in range(i + 1, 64)])  # noqa: E731
    assert metrics.diversity_ratio(a, b) == pytest.approx(spread(a) / spread(b), rel=1e-9)
    assert 0.9 < metrics.diversity_ratio(a, b) < 1.1
    assert metrics.diversity_ratio(np.repeat(a[:1], 64, axis=0), b) < 1e-6
