"""bin/train and bin/export end to end, in subprocesses, as a user runs them."""
import glob
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from tests.conftest import REPO, run_bin, tensorboard_summaries


def _train_args(tmp_path, method="msg_gan", *extra):
    return (f"--method={method}", "--preset=tiny", f"--workdir={tmp_path / 'w'}",
            f"--config.export_dir={tmp_path / 'sm'}", *extra)


def test_train_msg_gan_tiny_end_to_end(tmp_path):
    proc = run_bin("train", *_train_args(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    work = tmp_path / "w"
    # Keras progress bars with the GAN losses
    assert "d_loss" in proc.stdout and "g_loss" in proc.stdout and "Epoch 2/2" in proc.stdout
    # one sample grid per scale, at every sample step
    for step in (2, 4):
        for res in (4, 8, 16):
            assert (work / "samples" / f"step_{step:07d}_{res}x{res}.png").exists()
    assert glob.glob(str(work / "tensorboard" / "events.out.tfevents.*"))
    tags = {tag for tag, _, _ in tensorboard_summaries(work)}  # losses, learning rates and sample grids
    assert {"train/d_loss", "train/g_loss", "learning_rate/g", "learning_rate/d"} <= tags
    assert {"samples/4x4", "samples/8x8", "samples/16x16"} <= tags
    assert (work / "checkpoints" / "ckpt-4.index").exists()
    assert (work / "config.json").exists()
    export = tmp_path / "sm" / "msg_gan" / "1"
    assert (export / "saved_model.pb").exists()
    assert f"exported: {export}" in proc.stdout
    # the same command again: nothing left to train, resumes at step 4 and exports nothing new
    again = run_bin("train", *_train_args(tmp_path))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from" in again.stderr and "(step 4)" in again.stderr
    assert "exported:" not in again.stdout and sorted(os.listdir(tmp_path / "sm" / "msg_gan")) == ["1"]


def test_train_dcgan_on_a_folder_then_export_and_generate(tmp_path):
    folder = tmp_path / "images" / "nested"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for i in range(12):
        Image.fromarray(rng.randint(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    proc = run_bin("train", *_train_args(tmp_path, "gan", f"--data={tmp_path / 'images'}"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "loaded 12 images" in proc.stderr
    exported = run_bin("export", f"--workdir={tmp_path / 'w'}", "--name=faces", f"--export_dir={tmp_path / 'sm'}")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert exported.stdout.strip().endswith(os.path.join("faces", "1"))
    grid = tmp_path / "grid.png"
    gen = run_bin("generate", f"--model={tmp_path / 'sm' / 'faces'}", "--num=4", f"--out={grid}")
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert Image.open(grid).size[0] >= 2 * 16


def test_bad_command_lines_fail_with_one_line_errors(tmp_path):
    cases = {
        ("--method=nope",): "unknown method 'nope'; choose from ['cond_decoder', 'deepsim', 'gan', 'msg_gan'",
        ("--method=msg_gan", "--preset=huge"): "unknown preset 'huge' for msg_gan",
        ("--method=msg_gan", "--preset=tiny", "--config.nope=1"): "unknown config key 'nope'",
        ("--method=msg_gan", "--preset=tiny", "--config.batch_size=abc"): "config key 'batch_size': expected a int",
    }
    for args, message in cases.items():
        proc = run_bin("train", *args, f"--workdir={tmp_path / 'w'}")
        assert proc.returncode == 2, (args, proc.stderr[-2000:])
        assert message in proc.stderr, (args, proc.stderr[-2000:])
    missing = run_bin("train", *_train_args(tmp_path, "msg_gan", f"--data={tmp_path / 'nowhere'}"))
    assert missing.returncode == 1 and "nowhere" in missing.stderr.splitlines()[-1]


def test_nonfinite_loss_exits_nonzero_naming_the_step(tmp_path):
    # g_lr=1e30 blows the generator up after its first update; the loss turns non-finite a step or
    # two later (when depends on the networks): the run stops there (training.NonFiniteLossError,
    # which bin/train turns into this exit) with the step before kept as the latest checkpoint.
    proc = run_bin("train", *_train_args(tmp_path, "msg_gan", "--config.g_lr=1e30", "--config.total_steps=6",
                                         "--config.checkpoint_every=1", "--config.log_every=1"))
    assert proc.returncode == 1
    found = re.search(r"error: non-finite loss at step (\d+) .*ckpt-(\d+)", proc.stderr)
    assert found, proc.stderr[-2000:]
    bad, kept = map(int, found.groups())
    assert 2 <= bad < 6 and kept == bad - 1  # stopped at the first bad step, the one before kept
    import tensorflow as tf

    checkpoints = tf.train.get_checkpoint_state(str(tmp_path / "w" / "checkpoints"))
    assert checkpoints.model_checkpoint_path.endswith(f"ckpt-{kept}")  # what a resume restores
    assert not (tmp_path / "w" / "checkpoints" / f"ckpt-{bad}.index").exists()
    assert not (tmp_path / "sm").exists()  # nothing exported from a broken run


def test_sigterm_saves_a_checkpoint_and_the_same_command_resumes(tmp_path):
    args = _train_args(tmp_path, "msg_gan", "--config.total_steps=100000", "--config.log_every=1",
                       "--config.sample_every=1", "--config.checkpoint_every=100000", "--config.export=false")
    cmd = [sys.executable, os.path.join(REPO, "bin", "train"), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not glob.glob(str(tmp_path / "w" / "samples" / "step_0000003_*")) and time.time() < deadline:
        time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()[-3000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "SIGTERM received" in err and "run the same command again" in err
    import tensorflow as tf

    saved = tf.train.latest_checkpoint(str(tmp_path / "w" / "checkpoints"))
    step = int(saved.rsplit("-", 1)[1])
    assert step >= 3
    resumed = run_bin("train", *args[:-4], f"--config.total_steps={step + 2}", "--config.log_every=1",
                      "--config.sample_every=1", "--config.export=false")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"(step {step})" in resumed.stderr
    assert f"trained msg_gan to step {step + 2}" in resumed.stdout
