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
# Each op runs on one thread: `-n 3` puts three test processes (and their subprocesses) on two
# cores, where TensorFlow's default of one intra-op thread per core per process makes them spin
# against each other for the tiny tensors the tests use. Subprocesses (bin/train, the engine
# scripts) keep TensorFlow's default, as users run it.
_cpu = tf.config.list_physical_devices("CPU")[0]
try:
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.config.threading.set_intra_op_parallelism_threads(1)
except RuntimeError:  # already initialised by an earlier import
    pass

# pytest-xdist's `--dist loadfile` hands each worker one test file at a time, by default the files
# with the most tests first. These files take the longest (seconds on the 2-core CPU, three
# workers, 2026-11-26), so they go first and the last files to start are short ones: the suite
# does not end with one worker still on a long file while the others wait (longest-first).
SLOWEST_FILES = (
    "tests/models/test_gan_training.py",  # ~250 s
    "tests/models/test_gan_replicas.py",  # ~250
    "tests/models/test_progan.py",  # 215-285
    "tests/models/test_pgen.py",  # 125-250
    "tests/models/test_deepsim.py",  # 110-240
    "tests/test_multi_worker.py",  # 185-190
    "tests/test_cli.py",  # 170-175
    "tests/models/test_vae_gan.py",  # 85-150
    "tests/engines/test_engine_step_equivalence.py",  # 115-145
    "tests/models/test_vae.py",  # 125-140
    "tests/models/test_mixed_precision.py",  # 55-135
    "tests/engines/test_engine_without_tensorflow.py",  # 55-85
    "tests/metrics/test_shapes_judge.py",  # 25-80
    "tests/test_export.py",  # 40-75
    "tests/test_evaluate_discriminator.py",  # 65-70
    "tests/test_resume_hardening.py",  # 55-60
    "tests/test_serving_limits.py",  # 50-55
    "tests/test_evaluate.py",  # 25-55
    "tests/models/test_gan_augment.py",  # 40-50
    "tests/metrics/test_features.py",  # 15-50
)


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: keep the order below
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """SLOWEST_FILES first, in that order; the rest after them as collected (each file's tests keep their order)."""
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


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
