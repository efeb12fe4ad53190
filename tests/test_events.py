"""keras_pgen.events: TensorBoard events without TensorFlow, read back by TF's own readers."""
import io
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

from keras_pgen.events import EventWriter
from tests.conftest import REPO, tensorboard_scalars, tensorboard_summaries


def _write(workdir, scalars=(), images=()):
    writer = EventWriter(os.path.join(str(workdir), "tensorboard"))
    for tag, value, step in scalars:
        writer.scalar(tag, value, step)
    for tag, image, step in images:
        writer.image(tag, image, step)
    writer.flush()
    writer.close()
    return writer


def test_scalars_read_back(tmp_path):
    scalars = [("loss/g", 1.5, 0), ("loss/g", -0.25, 7), ("loss/d", 3.0, 7), ("lr", 1e-3, 10**10)]
    writer = _write(tmp_path, scalars)
    assert os.path.basename(writer.path).startswith("events.out.tfevents.")
    got = tensorboard_scalars(tmp_path, "")
    assert got == {(tag, step): float(np.float32(value)) for tag, value, step in scalars}


def test_images_read_back(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (4, 6, 1), dtype=np.uint8)
    _write(tmp_path, images=[("samples", rgb, 3), ("gray", gray, 4)])
    values = {tag: (step, value) for tag, step, value in tensorboard_summaries(tmp_path)}
    for tag, array, step in [("samples", rgb, 3), ("gray", gray, 4)]:
        got_step, value = values[tag]
        assert got_step == step
        assert value.metadata.plugin_data.plugin_name == "images"
        width, height, png = tf.make_ndarray(value.tensor)
        assert (width, height) == (str(array.shape[1]).encode(), str(array.shape[0]).encode())
        np.testing.assert_array_equal(tf.io.decode_png(png).numpy(), array)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))).reshape(array.shape), array)


def test_matches_tf_summary(tmp_path):
    _write(tmp_path / "ours", [("loss", 0.5, 2)], [("img", np.zeros((2, 3, 3), np.uint8), 2)])
    with tf.summary.create_file_writer(str(tmp_path / "tf" / "tensorboard")).as_default():
        tf.summary.scalar("loss", 0.5, step=2)
        tf.summary.image("img", np.zeros((1, 2, 3, 3), np.uint8), step=2)
    ours = {tag: value for tag, _, value in tensorboard_summaries(tmp_path / "ours")}
    theirs = {tag: value for tag, _, value in tensorboard_summaries(tmp_path / "tf")}
    assert sorted(ours) == sorted(theirs) == ["img", "loss"]
    for tag in ours:
        assert ours[tag].metadata.plugin_data.plugin_name == theirs[tag].metadata.plugin_data.plugin_name
        assert ours[tag].tensor.dtype == theirs[tag].tensor.dtype
        assert ours[tag].tensor.tensor_shape == theirs[tag].tensor.tensor_shape
    assert tf.make_ndarray(ours["loss"].tensor) == tf.make_ndarray(theirs["loss"].tensor)
    assert list(tf.make_ndarray(ours["img"].tensor)[:2]) == list(tf.make_ndarray(theirs["img"].tensor)[:2])


def test_no_tensorflow_import(tmp_path):
    code = """if True:
        import sys
        if sys.argv[2] == "block":
            sys.modules["tensorflow"] = None
        import numpy as np
        from keras_pgen.events import EventWriter
        writer = EventWriter(sys.argv[1])
        writer.scalar("loss", 1.0, 0)
        writer.image("img", np.zeros((2, 2, 3), np.uint8), 0)
        writer.close()
        assert sys.modules.get("tensorflow") is None, "tensorflow was imported"
    """
    for mode, logdir in [("block", tmp_path / "a" / "tensorboard"), ("installed", tmp_path / "b" / "tensorboard")]:
        result = subprocess.run([sys.executable, "-c", code, str(logdir), mode], cwd=REPO, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    assert tensorboard_scalars(tmp_path / "a", "loss") == {("loss", 0): 1.0}
