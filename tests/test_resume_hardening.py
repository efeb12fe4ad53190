"""Resuming a run: overrides that take effect or are refused, checkpoints found from their files, interrupts.

Issue 16, items 3-7. The TensorFlow side runs in this process on copies of one tiny msg_gan run
(4 steps, ckpt-2 and ckpt-4); the JAX side runs in one subprocess (`python
tests/test_resume_hardening.py jax ROOT` under KERAS_BACKEND=jax), and Ctrl-C during start-up
goes to real `bin/train` processes. Nothing here imports TensorFlow or Keras at module level, so
the JAX subprocess can run this file.
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import snapshot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(**overrides):
    import keras_pgen

    config = keras_pgen.get_config("msg_gan", "tiny")
    config.update(total_steps=4, checkpoint_every=2, log_every=2, sample_every=4, export=False)
    config.update(overrides)
    return config


def train(config, workdir):
    import keras_pgen

    return keras_pgen.train(config, str(workdir), verbose=0)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A finished TensorFlow run: 4 steps, checkpoints ckpt-2 and ckpt-4, no export."""
    workdir = tmp_path_factory.mktemp("base") / "w"
    assert train(tiny(), workdir)["step"] == 4
    return workdir


@pytest.fixture
def run_copy(base, tmp_path):
    workdir = tmp_path / "w"
    shutil.copytree(base, workdir)
    return workdir


@contextlib.contextmanager
def absl_info():
    """absl's verbosity at INFO inside the block: an absl app run earlier in this process may have raised it."""
    from absl import logging as absl_logging

    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        yield
    finally:
        absl_logging.set_verbosity(verbosity)


def messages(caplog):
    return [r.getMessage() for r in caplog.records]


# ---- items 4-5: overrides on resume; no state file -----------------------------------------------
@pytest.fixture(scope="module")
def resumed(base, tmp_path_factory):
    """`base` resumed to step 6 with other learning rates, its TensorFlow state file `checkpoint` removed."""
    import logging

    workdir = tmp_path_factory.mktemp("resumed") / "w"
    shutil.copytree(base, workdir)
    os.remove(workdir / "checkpoints" / "checkpoint")
    before = snapshot(workdir / "checkpoints")
    records, root = [], logging.getLogger()
    handler, level = logging.Handler(logging.INFO), root.level
    handler.emit = lambda record: records.append(record.getMessage())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with absl_info():
            result = train(tiny(total_steps=6, log_every=1, g_lr=1e-4, d_lr=2e-4), workdir)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return dict(workdir=workdir, result=result, before=before, logs=records)


def test_learning_rate_override_on_resume_is_what_the_optimizers_use(resumed):
    from tests.conftest import tensorboard_scalars

    model, workdir = resumed["result"]["model"], resumed["workdir"]
    assert float(model.g_optimizer.learning_rate.numpy()) == pytest.approx(1e-4)
    assert float(model.d_optimizer.learning_rate.numpy()) == pytest.approx(2e-4)
    assert int(model.g_optimizer.iterations.numpy()) == 6  # the Adam state itself was restored
    scalars = tensorboard_scalars(workdir, "learning_rate/")
    assert scalars[("learning_rate/g", 6)] == pytest.approx(1e-4)
    assert scalars[("learning_rate/d", 6)] == pytest.approx(2e-4)
    assert scalars[("learning_rate/g", 4)] == pytest.approx(tiny().g_lr)  # the first run's
    with open(workdir / "config.json") as f:
        assert json.load(f)["g_lr"] == 1e-4


def test_without_the_state_file_the_run_resumes_from_its_newest_checkpoint(resumed):
    assert resumed["result"]["step"] == 6
    assert any(m.startswith("resumed from") and m.endswith("ckpt-4 (step 4)") for m in resumed["logs"])
    after = snapshot(resumed["workdir"] / "checkpoints")
    assert {k: after[k] for k in resumed["before"]} == resumed["before"]  # ckpt-2 and ckpt-4 byte for byte
    assert "ckpt-6.index" in after


def test_override_a_resume_cannot_honour_is_refused_before_anything_is_built(run_copy, monkeypatch, capsys):
    from keras_pgen import cli, registry

    before = snapshot(run_copy)
    monkeypatch.setattr(registry, "build_model", lambda config: pytest.fail("built a model"))
    with pytest.raises(ValueError) as error:
        train(tiny(resolution=32, g_lr=1e-4), run_copy)
    message = str(error.value)
    assert "\n" not in message and "resolution: 16 -> 32" in message and "--config.resolution=16" in message
    assert "g_lr" not in message  # honoured, not refused
    # the command line: one line, exit code 1, nothing changed
    assert cli.run_training("msg_gan", "tiny", str(run_copy), ["latent_dim=8"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot resume") and "latent_dim: 16 -> 8" in err[-1]
    assert snapshot(run_copy) == before


# ---- item 6: a damaged newest checkpoint -----------------------------------------------------------
def cut(path):
    """Truncates a file to half its size."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(run_copy, caplog, capsys):
    import logging

    from keras_pgen import cli

    caplog.set_level(logging.INFO)
    cut(run_copy / "checkpoints" / "ckpt-4.data-00000-of-00001")  # the state file still names ckpt-4
    with absl_info():
        assert cli.run_export(str(run_copy), None, str(run_copy / "sm")) == 0  # bin/export's body
    warnings = [m for m in messages(caplog) if "does not read" in m]
    assert len(warnings) == 1 and "ckpt-4 does not read" in warnings[0] and "ckpt-2" not in warnings[0]
    assert any(m.startswith("resumed from") and m.endswith("ckpt-2 (step 2)") for m in messages(caplog))
    with open(os.path.join(capsys.readouterr().out.strip(), "keras_pgen.json")) as f:
        assert json.load(f)["step"] == 2


def test_no_readable_checkpoint_is_refused_in_one_line(run_copy, capsys):
    from keras_pgen import cli

    for step in (2, 4):
        cut(run_copy / "checkpoints" / f"ckpt-{step}.data-00000-of-00001")
    before = snapshot(run_copy)
    with pytest.raises(FileNotFoundError, match=r"^no checkpoint in .*checkpoints reads: each of \['ckpt-4', "
                                                r"'ckpt-2'\] is damaged$"):
        train(tiny(total_steps=6), run_copy)
    assert cli.run_export(str(run_copy), None, str(run_copy / "sm")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no checkpoint in") and err[-1].endswith("is damaged")
    assert snapshot(run_copy) == before  # nothing overwritten, nothing exported


# ---- item 3: a run that trained no step --------------------------------------------------------------
def test_a_finished_run_resumed_trains_no_step_and_exports_nothing(run_copy, tmp_path):
    result = train(tiny(export=True, export_dir=str(tmp_path / "sm")), run_copy)
    assert result["step"] == 4 and result["export_path"] is None
    assert not (tmp_path / "sm").exists()


# ---- item 7: Ctrl-C during start-up -------------------------------------------------------------------
MOMENTS = {  # where a SIGINT arrives: (module, function) whose call it interrupts
    "loading data": ("keras_pgen.data", "load_source"),
    "building": ("keras_pgen.registry", "build_model"),
    "restoring": ("keras_pgen.training", "_restore"),
}


@pytest.mark.parametrize("moment, resuming", [("loading data", False), ("loading data", True), ("building", False),
                                              ("restoring", True)])
def test_sigint_during_start_up_stops_before_anything_is_written(moment, resuming, base, tmp_path, monkeypatch):
    import importlib

    from keras_pgen import runs

    workdir = tmp_path / "w"
    if resuming:
        shutil.copytree(base, workdir)
    before, handler = snapshot(tmp_path), signal.getsignal(signal.SIGINT)
    module, name = MOMENTS[moment]
    module = importlib.import_module(module)
    original = getattr(module, name)

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # recorded by the run's handler, which raises nothing
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, interrupted)
    with pytest.raises(runs.TrainingInterrupted, match="^interrupted before training: nothing written") as error:
        train(tiny(total_steps=6, export=True, export_dir=str(tmp_path / "sm")), workdir)
    assert error.value.signum == signal.SIGINT
    assert snapshot(tmp_path) == before  # no checkpoint, config.json, event file, sample or export
    assert signal.getsignal(signal.SIGINT) is handler  # the run's handler is gone


def stop_signals_set(pid):
    """Whether process `pid` catches SIGTERM: bin/train has set `runs.StopSignals` (Python itself catches SIGINT only)."""
    with open(f"/proc/{pid}/status") as f:
        caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(caught >> (signal.SIGTERM - 1) & 1)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc/PID/status (Linux)")
def test_ctrl_c_at_several_moments_of_start_up_exits_130_with_nothing_written(tmp_path):
    """bin/train (TensorFlow, JAX) gets SIGINT 0-2 s after its first lines: exit 130, one line, no file.

    The moments are counted from when bin/train's handler is set (its first lines, before TensorFlow or
    JAX is imported; before it, Python's own KeyboardInterrupt ends the process): they fall in the
    imports, in the JAX trainer's gc callbacks (issue 16), in loading and building.
    """
    from tests.engines.conftest import backend_env

    runs = {}
    for backend, delay in (("tensorflow", 0.0), ("jax", 1.0), ("jax", 2.0)):
        workdir = tmp_path / f"{backend}_{delay}"
        cmd = [sys.executable, os.path.join(REPO, "bin", "train"), f"--backend={backend}", "--method=msg_gan",
               "--preset=tiny", f"--workdir={workdir}", f"--config.export_dir={tmp_path / 'sm'}"]
        runs[workdir] = (subprocess.Popen(cmd, cwd=tmp_path, env=backend_env(backend), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True), delay)
    set_at, sent, deadline = {}, set(), time.time() + 120
    while len(sent) < len(runs):
        for workdir, (proc, delay) in runs.items():
            if workdir in sent:
                continue
            assert proc.poll() is None and time.time() < deadline, (workdir.name, proc.communicate()[1][-3000:])
            if workdir not in set_at and stop_signals_set(proc.pid):
                set_at[workdir] = time.time()
            if workdir in set_at and time.time() - set_at[workdir] >= delay:
                proc.send_signal(signal.SIGINT)
                sent.add(workdir)
        time.sleep(0.01)
    for workdir, (proc, _) in runs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 130, (workdir.name, err[-3000:])
        lines = [line for line in err.splitlines() if "interrupted" in line]
        assert lines == [f"interrupted before training: nothing written in {workdir}"], (workdir.name, err[-3000:])
        assert "Traceback" not in err and "trained" not in out
        assert not workdir.exists(), (workdir.name, snapshot(workdir).keys())
    assert not (tmp_path / "sm").exists()


# ---- the JAX engine ----------------------------------------------------------------------------------
def jax_side(root):
    """Under KERAS_BACKEND=jax: the runs of `test_jax_engine_resumes_with_overrides_and_refuses_tf_checkpoints`."""
    import keras_pgen

    result = {}
    workdir = os.path.join(root, "jax")
    train(tiny(total_steps=2, log_every=1, checkpoint_every=2), workdir)
    model = train(tiny(total_steps=3, log_every=1, g_lr=1e-4, d_lr=2e-4), workdir)["model"]
    result["lr"] = {name: float(o.learning_rate.numpy()) for name, o in model.optimizers().items()}
    result["iterations"] = int(model.g_optimizer.iterations.numpy())
    result["no_step"] = train(tiny(total_steps=3, export=True, export_dir=os.path.join(root, "sm")), workdir)
    result["no_step"] = {k: result["no_step"][k] for k in ("step", "export_path")}
    for name, config, folder in (("refused", tiny(resolution=32), workdir),
                                 ("tf_run", tiny(total_steps=6), os.path.join(root, "tf"))):
        try:
            train(config, folder)
        except ValueError as error:
            result[name] = str(error)
    result["backend"] = keras_pgen.select_backend()
    print("RESULT " + json.dumps(result))


def test_jax_engine_resumes_with_overrides_and_refuses_tf_checkpoints(base, tmp_path):
    """The JAX engine: the same learning-rate override, refusal and no-step export; and a TensorFlow run
    without its state file is refused there (named), not restarted beside its checkpoints."""
    from tests.conftest import tensorboard_scalars
    from tests.engines.conftest import backend_env, result_line

    shutil.copytree(base, tmp_path / "tf")
    os.remove(tmp_path / "tf" / "checkpoints" / "checkpoint")
    before = snapshot(tmp_path / "tf")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "jax", str(tmp_path)], cwd=REPO,
                          env=backend_env("jax"), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-5000:]
    result = result_line(proc.stdout)
    assert result["backend"] == "jax"
    assert result["lr"] == {"g": pytest.approx(1e-4), "d": pytest.approx(2e-4)} and result["iterations"] == 3
    scalars = tensorboard_scalars(tmp_path / "jax", "learning_rate/")
    assert scalars[("learning_rate/g", 3)] == pytest.approx(1e-4)
    assert scalars[("learning_rate/g", 2)] == pytest.approx(tiny().g_lr)
    assert result["no_step"] == {"step": 3, "export_path": None} and not (tmp_path / "sm").exists()
    assert "resolution: 16 -> 32" in result["refused"] and "\n" not in result["refused"]
    assert "holds TensorFlow checkpoints" in result["tf_run"]
    assert snapshot(tmp_path / "tf") == before


if __name__ == "__main__" and sys.argv[1:2] == ["jax"]:
    sys.path.insert(0, REPO)
    jax_side(sys.argv[2])
