"""`keras_pgen.train(backend="jax")`: resume equals an uninterrupted run; 2 devices equal 1.

One JAX subprocess with two host CPU devices (`--xla_force_host_platform_device_count=2`) runs
(engine_script.py jax-runs), recording the sharding of what each jitted step was given:
- msg_gan tiny for 6 steps in one run, and for 2 steps then 4 more in a second `train` call
  (a new model restored from the checkpoint), as tests/models/test_gan_training.py does for
  TensorFlow; both with strategy "default" (one device);
- msg_gan tiny for 4 steps with strategy "auto" (the batch split over both devices by
  `jax_trainer.placement`), against the one-device run's ckpt-4; vae tiny for 3 steps with
  "default" and "auto".
msg_gan runs with adam_epsilon=1e-3 (see engine_script.py: Adam's first step with beta_1 = 0
turns float noise in gradients that are zero in exact arithmetic into +-lr).
"""
import os

import numpy as np
import pytest

from tests.engines.conftest import assert_same_checkpoint, read_checkpoint, result_line, run_script


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("jax_runs")
    result = run_script("jax", "jax-runs", root, devices=2)
    return root, result_line(result.stdout)


def checkpoint(root, run, step):
    return read_checkpoint(os.path.join(root, run, "checkpoints", f"ckpt-{step}.npz"))


def test_resume_equals_uninterrupted(runs):
    """6 steps == 2 steps, a stop (new model restored from ckpt-2.npz), then 4 more: every array."""
    root, result = runs
    assert (result["full"], result["first"], result["resumed"]) == (6, 2, 6)
    # the second call trained 4 steps, not 6 from scratch (which would also end equal to the full run)
    assert len(result["runs"]["resume_split"]["batch_devices"]) == 2 + 4
    assert os.path.exists(os.path.join(root, "resume_split", "checkpoints", "ckpt-2.npz"))
    _, full_items, full = checkpoint(root, "resume_full", 6)
    _, split_items, split = checkpoint(root, "resume_split", 6)
    assert_same_checkpoint((full_items, full), (split_items, split), rtol=1e-6)  # measured: bit for bit
    # the optimizers really were restored: Adam's moments are non-zero, the iteration counts 6
    moments = [f"g_optimizer/{i}" for i, (path, _) in enumerate(split_items["g_optimizer"])
               if "momentum" in path or "velocity" in path]
    assert moments and all(np.any(split[k] != 0) for k in moments)
    iterations = [f"{o}/{i}" for o in ("g_optimizer", "d_optimizer") for i, (path, _) in enumerate(split_items[o])
                  if path.endswith("iteration")]
    assert len(iterations) == 2 and all(int(split[k]) == 6 for k in iterations)
    assert int(split["step/0"]) == 6
    # and the resumed run did not merely repeat the first 2 steps
    _, _, early = checkpoint(root, "resume_split", 2)
    assert not np.allclose(early["generator/0"], split["generator/0"])


PAIRS = {"msg_gan": ("resume_full", "msg_gan_auto", 4), "vae": ("vae_default", "vae_auto", 3)}


def test_the_two_device_runs_used_two_devices(runs):
    _, result = runs
    assert result["local_devices"] == 2
    for one_run, two_run, steps in PAIRS.values():
        one, two = result["runs"][one_run], result["runs"][two_run]
        assert set(one["batch_devices"]) == {1} and one["state_devices"] == one["output_devices"] == 1, one
        assert two["batch_devices"] == [2] * steps, two
        assert two["batch_spec"] == ["batch"], two  # split along the batch axis, the state replicated
        assert two["state_devices"] == two["output_devices"] == 2 and two["state_spec"] == [], two


@pytest.mark.parametrize("method", ["msg_gan", "vae"])
def test_two_devices_equal_one(runs, method):
    """Same global batches split over 2 devices: the 1-device weights, EMA, optimizer states and counters."""
    root, result = runs
    one_run, two_run, steps = PAIRS[method]
    assert result[two_run] == steps
    _, one_items, one = checkpoint(root, one_run, steps)
    _, two_items, two = checkpoint(root, two_run, steps)
    assert int(one["step/0"]) == int(two["step/0"]) == steps
    assert_same_checkpoint((one_items, one), (two_items, two), rtol=1e-5)


def test_jax_trainer_does_not_import_tensorflow(runs):
    """TensorFlow is installed here, yet the JAX runs above never imported it."""
    _, result = runs
    assert result["tensorflow_imported"] is False
