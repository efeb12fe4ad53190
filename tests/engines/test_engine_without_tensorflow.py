"""`bin/train --backend=jax` where `import tensorflow` fails, then `bin/export` where it works.

The JAX engine must train, resume, write sample PNGs, TensorBoard events and numpy
checkpoints without TensorFlow, and say that it exported no SavedModel; `bin/export` then
exports the run with TensorFlow, and the SavedModel serves the JAX EMA generator's images.
"""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_bin, tensorboard_scalars
from tests.engines.conftest import result_line, run_script

NOTE = "no SavedModel exported"


@pytest.fixture(scope="module")
def blocked(tmp_path_factory):
    root = tmp_path_factory.mktemp("without_tensorflow")
    workdir, export_dir = root / "run", root / "saved_models"
    args = ["--backend=jax", "--method=msg_gan", "--preset=tiny", f"--workdir={workdir}",
            f"--config.export_dir={export_dir}"]
    first = run_script("jax", "blocked-train", root / "ema_4.npz", *args, cwd=root)
    after_first = {"checkpoints": sorted(os.listdir(workdir / "checkpoints")),
                   "samples": sorted(os.listdir(workdir / "samples"))}
    second = run_script("jax", "blocked-train", root / "ema_6.npz", *args, "--config.total_steps=6", cwd=root)
    exported_before_export = os.path.exists(export_dir)
    export = run_bin("export", f"--workdir={workdir}")
    return dict(root=root, workdir=workdir, export_dir=export_dir, first=first, second=second,
                after_first=after_first, exported_before_export=exported_before_export, export=export)


def test_trains_and_resumes_without_tensorflow(blocked):
    first, second = blocked["first"], blocked["second"]
    for run, step in ((first, 4), (second, 6)):
        result = result_line(run.stdout)
        assert result["backend"] == "jax" and result["tensorflow_modules"] == [], result
        assert f"trained msg_gan to step {step} in {blocked['workdir']}" in run.stdout
        assert result["step"] == step
    assert "resumed from" in second.stderr and "ckpt-4.npz (step 4)" in second.stderr, second.stderr[-2000:]
    assert blocked["after_first"]["checkpoints"] == ["ckpt-2.npz", "ckpt-4.npz"]
    assert sorted(os.listdir(blocked["workdir"] / "checkpoints")) == ["ckpt-2.npz", "ckpt-4.npz", "ckpt-6.npz"]


def test_says_once_per_run_that_no_savedmodel_was_exported(blocked):
    for run in (blocked["first"], blocked["second"]):
        lines = [line for line in (run.stdout + run.stderr).splitlines() if NOTE in line]
        assert len(lines) == 1, lines
        assert "bin/export --workdir=" in lines[0]
    assert not blocked["exported_before_export"]
    assert "exported:" not in blocked["first"].stdout + blocked["second"].stdout


def test_writes_samples_and_tensorboard_events(blocked):
    from PIL import Image

    workdir = blocked["workdir"]
    assert blocked["after_first"]["samples"] == sorted(
        f"step_{s:07d}_{r}x{r}.png" for s in (2, 4) for r in (4, 8, 16))
    pngs = sorted(glob.glob(str(workdir / "samples" / "*.png")))
    assert len(pngs) == 9  # steps 2, 4 and (resumed) 6, one grid per scale
    with Image.open(pngs[-1]) as image:
        pixels = np.asarray(image)
    assert pixels.ndim == 3 and pixels.std() > 0
    scalars = tensorboard_scalars(workdir, "train/")
    for step in (2, 4, 6):
        for name in ("train/g_loss", "train/d_loss"):
            assert np.isfinite(scalars[(name, step)]), (name, step)
    assert {step for _, step in tensorboard_scalars(workdir, "learning_rate/")} == {2, 4, 6}


def test_export_serves_the_jax_ema_generator(blocked):
    """bin/export (TensorFlow) of the JAX run: serving_default(z) is the JAX EMA generator's image for z."""
    export = blocked["export"]
    assert export.returncode == 0, export.stderr[-3000:]
    path = export.stdout.strip().splitlines()[-1]
    assert path.startswith(str(blocked["export_dir"])) and os.path.isdir(path), export.stdout
    with np.load(blocked["root"] / "ema_6.npz") as f:
        z, expected, step = f["z"], f["images"].astype(np.float64), int(f["step"])
    assert step == 6 and expected.shape == (5, 16, 16, 3) and expected.std() > 0.01
    served = tf.saved_model.load(path).signatures["serving_default"](z=tf.constant(z))["images"].numpy()
    assert served.dtype == np.uint8 and served.shape == expected.shape
    # the export rounds round((x + 1) * 127.5): within float noise of the JAX image before rounding,
    # equal after it except where the JAX value lies within 1e-3 of a rounding boundary
    levels = np.clip((expected + 1.0) * 127.5, 0.0, 255.0)
    assert np.max(np.abs(served - levels)) <= 0.5 + 1e-3
    clear = np.abs(levels - np.floor(levels) - 0.5) > 1e-3
    np.testing.assert_array_equal(served[clear], np.round(levels[clear]).astype(np.uint8))
    assert clear.mean() > 0.99
