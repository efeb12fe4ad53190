"""Tests for keras_pgen.export: signatures vs the Keras model, versions, loading, bin/generate."""
import io
import json
import os
import subprocess
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_pgen import export
from keras_pgen.images import to_uint8
from tests.conftest import snapshot as _snapshot

LATENT = 8
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBPROCESS_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _tiny_generator(seed=0, channels=3, multi_scale=False):
    """z [N, 8] -> 16x16 images in (-1, 1), or the list [8x8, 16x16] when multi_scale."""
    keras.utils.set_random_seed(seed)
    z = keras.Input((LATENT,))
    x = keras.layers.Reshape((4, 4, 8))(keras.layers.Dense(4 * 4 * 8)(z))
    x8 = keras.layers.UpSampling2D()(x)
    x16 = keras.layers.UpSampling2D()(x8)
    outputs = [
        keras.layers.Conv2D(channels, 3, padding="same", activation="tanh")(h) for h in (x8, x16)
    ]
    return keras.Model(z, outputs if multi_scale else outputs[-1])


def _latents(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, LATENT)).astype(np.float32)


def _decode_pngs(png_bytes):
    return np.stack([np.asarray(Image.open(io.BytesIO(b))) for b in png_bytes.numpy()])


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Model dir `gen` with version 1 (generator a) and 2 (generator b), snapshot of 1 before 2."""
    base = str(tmp_path_factory.mktemp("saved_models"))
    gen_a, gen_b = _tiny_generator(seed=0), _tiny_generator(seed=1)
    v1 = export.export_generator(gen_a, base, "gen", method="test", metadata={"note": "a"})
    snapshot = _snapshot(v1)
    v2 = export.export_generator(gen_b, base, "gen")
    return types.SimpleNamespace(
        model_dir=os.path.join(base, "gen"), v1=v1, v2=v2, gen_a=gen_a, gen_b=gen_b,
        snapshot=snapshot,
    )


def test_serving_default_matches_keras_model(exports):
    z = _latents(5)
    outputs = tf.saved_model.load(exports.v1).signatures["serving_default"](z=tf.constant(z))
    expected = to_uint8(exports.gen_a(z, training=False).numpy())
    assert outputs["images"].dtype == tf.uint8 and expected.shape == (5, 16, 16, 3)
    assert 0 < expected.std()  # Not a constant image: the comparison means something.
    np.testing.assert_array_equal(outputs["images"].numpy(), expected)
    np.testing.assert_array_equal(_decode_pngs(outputs["png_bytes"]), expected)


def test_multi_scale_generator_exports_last_scale(tmp_path):
    generator = _tiny_generator(channels=1, multi_scale=True)
    version_dir = export.export_generator(generator, tmp_path, "ms")
    z = _latents(3, seed=1)
    outputs = tf.saved_model.load(version_dir).signatures["serving_default"](z=tf.constant(z))
    expected = to_uint8(generator(z, training=False)[-1].numpy())
    assert expected.shape == (3, 16, 16, 1)
    np.testing.assert_array_equal(outputs["images"].numpy(), expected)
    np.testing.assert_array_equal(_decode_pngs(outputs["png_bytes"]), expected[..., 0])  # Mode L.
    with open(os.path.join(version_dir, export.METADATA_FILE)) as f:
        assert json.load(f)["channels"] == 1
    with pytest.raises(ValueError, match="output_index=2 but .* has 2 outputs"):
        export.export_generator(generator, tmp_path, "ms", output_index=2)
    assert os.listdir(tmp_path / "ms") == ["1"]


@pytest.mark.parametrize("images_per_call", [1, 2, 7])
def test_images_per_call_serves_the_same_batch(images_per_call, exports, tmp_path):
    """A batch of 5 made 1, 2 (the last call takes 1) or 7 (one call) images at a time: the same outputs."""
    version_dir = export.export_generator(exports.gen_a, tmp_path, "gen", images_per_call=images_per_call)
    signatures = tf.saved_model.load(version_dir).signatures
    z = tf.constant(_latents(5))
    outputs = signatures["serving_default"](z=z)
    whole = tf.saved_model.load(exports.v1).signatures["serving_default"](z=z)
    assert outputs["images"].shape == (5, 16, 16, 3) and outputs["png_bytes"].shape == (5,)
    np.testing.assert_array_equal(outputs["images"].numpy(), whole["images"].numpy())
    np.testing.assert_array_equal(_decode_pngs(outputs["png_bytes"]), whole["images"].numpy())
    assert signatures["sample"](num_images=tf.constant(0), seed=tf.constant(1))["images"].shape == (0, 16, 16, 3)
    with open(os.path.join(version_dir, export.METADATA_FILE)) as f:
        assert json.load(f)["images_per_call"] == images_per_call
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match=f"images_per_call must be an integer >= 0, got {bad}"):
            export.export_generator(exports.gen_a, tmp_path, "gen", images_per_call=bad)


def test_sample_matches_serving_default_and_is_deterministic(exports):
    signatures = tf.saved_model.load(exports.v1).signatures
    sample = lambda n, seed: signatures["sample"](  # noqa: E731
        num_images=tf.constant(n), seed=tf.constant(seed)
    )
    first, again = sample(4, 3), sample(4, 3)
    z = tf.random.stateless_normal([4, LATENT], seed=[3, 0])
    served = signatures["serving_default"](z=z)
    np.testing.assert_array_equal(first["images"].numpy(), served["images"].numpy())
    np.testing.assert_array_equal(first["images"].numpy(), again["images"].numpy())
    assert first["png_bytes"].shape == (4,)
    assert not np.array_equal(sample(4, 4)["images"].numpy(), first["images"].numpy())


def test_versions_increment_without_touching_existing_ones(exports):
    assert os.path.basename(exports.v1) == "1" and os.path.basename(exports.v2) == "2"
    assert sorted(os.listdir(exports.model_dir)) == ["1", "2"]  # No temporary dir left.
    assert _snapshot(exports.v1) == exports.snapshot


def test_export_endpoints_after_existing_version_ignores_other_dirs(tmp_path):
    model_dir = tmp_path / "m"
    for entry in ("7", "latest", "3.bak", "12x", "007x"):
        (model_dir / entry).mkdir(parents=True)
    (model_dir / "7" / "saved_model.pb").write_bytes(b"keep me")
    double = lambda x: {"y": 2.0 * x}  # noqa: E731
    version_dir = export.export_endpoints(
        tmp_path, "m", {"double": (double, [tf.TensorSpec([None], tf.float32, name="x")])}
    )
    assert version_dir == str(model_dir / "8")
    assert (model_dir / "7" / "saved_model.pb").read_bytes() == b"keep me"
    assert sorted(os.listdir(model_dir)) == ["007x", "12x", "3.bak", "7", "8", "latest"]
    signatures = tf.saved_model.load(version_dir).signatures
    assert sorted(signatures) == ["double", "serving_default"]
    np.testing.assert_allclose(signatures["serving_default"](x=tf.constant([1.5]))["y"], [3.0])
    with open(os.path.join(version_dir, export.METADATA_FILE)) as f:
        assert json.load(f) == {"signatures": ["double", "serving_default"]}


def test_publish_takes_next_number_when_a_race_took_the_target(tmp_path, monkeypatch):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "f").write_text("old")
    (tmp_path / ".tmp-x").mkdir()
    (tmp_path / ".tmp-x" / "f").write_text("new")
    # A stale view of the directory: the rename itself must refuse to replace "1".
    monkeypatch.setattr(export, "_integer_versions", lambda model_dir: [])
    monkeypatch.setattr(export.os.path, "lexists", lambda path: False)
    assert export._publish(str(tmp_path / ".tmp-x"), str(tmp_path)) == str(tmp_path / "2")
    assert (tmp_path / "1" / "f").read_text() == "old"
    assert (tmp_path / "2" / "f").read_text() == "new"


def test_metadata_file(exports):
    with open(os.path.join(exports.v1, export.METADATA_FILE)) as f:
        metadata = json.load(f)
    per_image = metadata.pop("activation_bytes_per_image")  # tests/test_serving_limits.py checks the value
    assert metadata == {
        "latent_dim": LATENT,
        "resolution": 16,
        "image_shape": [16, 16, 3],
        "channels": 3,
        "images_per_call": 256 * 2**20 // per_image,  # derived from the activations (below the cap here)
        "max_images_per_request": 256 * 2**20 // (6 * 16 * 16 * 3),  # export.default_max_images_per_request (58,254)
        "method": "test",
        "note": "a",
        "signatures": ["generate", "sample", "serving_default"],
    }


def test_saved_model_cli_lists_named_signatures(exports):
    shown = subprocess.run(
        ["saved_model_cli", "show", "--dir", exports.v1, "--all"],
        capture_output=True, text=True, check=True, env=SUBPROCESS_ENV,
    ).stdout
    blocks = {block.split("'")[0]: block for block in shown.split("signature_def['")[1:]}
    outputs = ["outputs['images']", "DT_UINT8", "outputs['png_bytes']", "DT_STRING"]
    inputs = {"serving_default": ["z"], "sample": ["num_images", "seed"]}
    for name, names in inputs.items():
        for text in [f"inputs['{n}']" for n in names] + outputs:
            assert text in blocks[name], f"{text} missing from signature {name}:\n{blocks[name]}"
    assert "args_0" not in shown and "output_0" not in shown


def test_load_generator_picks_highest_version(exports):
    latest, explicit = export.load_generator(exports.model_dir), export.load_generator(exports.v2)
    assert latest.path == exports.v2 and (latest.latent_dim, latest.resolution) == (LATENT, 16)
    z = _latents(4, seed=2)
    images = latest.generate(z)
    np.testing.assert_array_equal(images, explicit.generate(z))
    np.testing.assert_array_equal(images, to_uint8(exports.gen_b(z, training=False).numpy()))
    assert not np.array_equal(images, export.load_generator(exports.v1).generate(z))
    pngs = latest.png_bytes(z)
    assert len(pngs) == 4 and np.array_equal(np.asarray(Image.open(io.BytesIO(pngs[0]))), images[0])
    assert latest.sample(2, seed=5).shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match=r"z must have shape \[N, 8\]"):
        latest.generate(np.zeros((2, 3), np.float32))


def test_load_generator_missing_path_says_what_it_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="saved_model.pb.*does not exist"):
        export.load_generator(tmp_path / "nope")
    (tmp_path / "empty" / "latest").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="<integer version>"):
        export.load_generator(tmp_path / "empty")


def test_latent_walk_starts_at_a_point_and_loops():
    walk = export.latent_walk(LATENT, frames=20, num_points=4, seed=3)
    points = np.random.default_rng(3).standard_normal((4, LATENT)).astype(np.float32)
    assert walk.shape == (20, LATENT) and walk.dtype == np.float32
    np.testing.assert_allclose(walk[0], points[0], rtol=1e-6)
    np.testing.assert_allclose(walk[5], points[1], rtol=1e-5)  # 20 frames / 4 points.
    # Loop closure: a fine walk ends next to its start, with no jump anywhere.
    fine = export.latent_walk(LATENT, frames=400, num_points=4, seed=3)
    steps = np.linalg.norm(np.diff(np.concatenate([fine, fine[:1]]), axis=0), axis=1)
    assert steps[-1] < 0.05 * np.linalg.norm(points[0]) and steps.max() < 2 * np.median(steps)
    np.testing.assert_allclose(fine[::20], walk, rtol=1e-5)
    with pytest.raises(ValueError, match="num_points >= 2"):
        export.latent_walk(LATENT, frames=10, num_points=1)


def test_bin_generate_writes_grid_and_gif(exports, tmp_path):
    grid, gif = tmp_path / "grid.png", tmp_path / "walk.gif"
    common = [sys.executable, "bin/generate", f"--model={exports.model_dir}", "--min_size=32"]
    commands = [
        common + ["--num=4", f"--out={grid}"],
        common + ["--interpolate", "--frames=8", f"--out={gif}"],
    ]
    processes = [
        subprocess.Popen(
            command, cwd=REPO_ROOT, env=SUBPROCESS_ENV, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for command in commands
    ]
    for process in processes:
        output = process.communicate(timeout=120)[0]
        assert process.returncode == 0, output
    assert Image.open(grid).size == (2 * (32 + 2) + 2,) * 2  # 2x2 tiles of 16 -> 32 pixels.
    walk = Image.open(gif)
    assert walk.size == (32, 32) and walk.n_frames == 8


def test_every_weight_is_stored_once(tmp_path):
    """The SavedModel holds each generator weight once (keras-team/keras#23553 stored them twice)."""
    from keras_pgen.networks import MSGGANGenerator

    generator = MSGGANGenerator(16, resolution=16, fmap_base=64, fmap_max=32)
    path = export.export_generator(generator, str(tmp_path), "g", latent_dim=16)
    stored = [shape for name, shape in tf.train.list_variables(os.path.join(path, "variables", "variables"))
              if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert sum(int(np.prod(shape)) for shape in stored) == generator.count_params()
