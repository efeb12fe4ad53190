"""--strategy=multi_worker: two worker processes on localhost, a custom loop instead of fit().

The workers stay in sync (every variable equal), match a single-process run with two
replicas on the same global batch (tests/models show two replicas equal one), and a SIGTERM to one worker stops both after the same step with a checkpoint
that the same commands resume from.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

import keras_pgen
from keras_pgen.config import apply_overrides
from tests.conftest import REPO, two_replica_strategy

# combine=from_rgb: over these 24 steps the simple combine's discriminator amplifies the rounding
# of a cross-process all-reduce (summed in another order than in one process) to ~1e-4 in a few
# weights; the from_rgb one keeps it below the 1e-5 compared here. What is tested is the loop.
ARGS = ["--method=msg_gan", "--preset=tiny", "--config.export=false", "--config.adam_epsilon=0.001",
        "--config.g_lr=0.001", "--config.d_lr=0.001", "--config.combine=from_rgb"]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_workers(workdir, extra):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(REPO, "bin", "train"), *ARGS, f"--workdir={workdir}",
             "--config.strategy=multi_worker", *extra], env=env, cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def finish(procs, timeout=240):
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    return [p.returncode for p in procs], outputs


def checkpoint_values(path):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
            if not name.startswith("_CHECKPOINTABLE") and "save_counter" not in name}


def assert_close(a, b, atol, rtol=1e-4):
    assert a.keys() == b.keys()
    for k in a:
        err = float(np.max(np.abs(a[k].astype(np.float64) - b[k]), initial=0))
        assert err <= atol + rtol * float(np.max(np.abs(a[k]), initial=0)), (k, err)


def test_two_workers_sync_match_one_process_and_resume_after_sigterm(tmp_path):
    steps = 24
    extra = [f"--config.total_steps={steps}", "--config.checkpoint_every=2", "--config.log_every=2",
             "--config.sample_every=1000"]
    workdir = tmp_path / "multi"
    procs = start_workers(workdir, extra)
    deadline = time.time() + 180
    while not tf.train.latest_checkpoint(str(workdir / "checkpoints")):  # the run is under way
        assert time.time() < deadline and procs[1].poll() is None, finish(procs)[1]
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGTERM)  # only the second worker is told
    codes, outputs = finish(procs)
    for index, output in enumerate(outputs):
        print(f"---- worker {index} (exit {codes[index]}) ----\n{output[-3000:]}")
    assert codes == [128 + signal.SIGTERM] * 2
    stopped = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    stopped_step = int(checkpoint_values(stopped)["step/.ATTRIBUTES/VARIABLE_VALUE"])
    assert 0 < stopped_step < steps, outputs

    codes, outputs = finish(start_workers(workdir, extra))  # the same commands continue
    assert codes == [0, 0], outputs
    chief = checkpoint_values(tf.train.latest_checkpoint(str(workdir / "checkpoints")))
    other = checkpoint_values(tf.train.latest_checkpoint(str(workdir / ".worker1_checkpoints")))
    assert int(chief["step/.ATTRIBUTES/VARIABLE_VALUE"]) == steps
    assert_close(chief, other, atol=0, rtol=0)  # the workers are in sync, bit for bit

    # One process with two replicas (MirroredStrategy over two logical CPUs), uninterrupted:
    # the same global batch and the same sum of two replica gradients.
    config = keras_pgen.get_config("msg_gan", "tiny")
    apply_overrides(config, [a.removeprefix("--config.") for a in ARGS + extra if a.startswith("--config.")])
    keras_pgen.train(config, str(tmp_path / "single"), strategy=two_replica_strategy(), verbose=0)
    alone = checkpoint_values(tf.train.latest_checkpoint(str(tmp_path / "single" / "checkpoints")))
    assert_close(alone, chief, atol=1e-6, rtol=1e-5)
