"""Shared test set-up: two logical CPU devices (for 1-vs-2-replica tests) and tiny configs."""
import functools
import glob
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# Must run before TensorFlow initialises its devices: every test process sees /cpu:0 and /cpu:1.
_cpu = tf.config.list_physical_devices("CPU")[0]
try:
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
except RuntimeError:  # already initialised by an earlier import
    pass


@functools.lru_cache(maxsize=None)
def two_replica_strategy():
    """MirroredStrategy over the two logical CPUs, one per test process (see training.make_strategy)."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture
def tiny_config(tmp_path):
    """tiny_config(method, **overrides) -> ConfigDict exporting under tmp_path."""
    import keras_pgen

    def make(method, **overrides):
        config = keras_pgen.get_config(method, "tiny")
        config.export_dir = str(tmp_path / "saved_models")
        config.update(overrides)
        return config

    return make


def run_bin(script, *args, timeout=300, env=None, **kwargs):
    """Runs bin/<script> in a subprocess from the repo root; returns CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, os.path.join(REPO, "bin", script), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=kwargs.pop("cwd", REPO),
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}, **kwargs)


def tensorboard_summaries(workdir):
    """(tag, step, summary value) of every event a run wrote to `workdir`/tensorboard."""
    for path in sorted(glob.glob(os.path.join(str(workdir), "tensorboard", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                yield value.tag, event.step, value


def tensorboard_scalars(workdir, prefix):
    """{(tag, step): float} of the scalars whose tag starts with `prefix`."""
    return {(tag, step): float(tf.make_ndarray(value.tensor))
            for tag, step, value in tensorboard_summaries(workdir) if tag.startswith(prefix)}


def snapshot(folder):
    """{relative path: bytes} of every file under `folder` ({} when it does not exist)."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files
