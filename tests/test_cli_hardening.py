"""Hostile command lines and configs: one-line errors with the documented exit codes, --help, the
`keras-pgen` console command (installed into a fresh virtual environment) and `python -m keras_pgen`.

Config validation runs in-process (it needs nothing loaded); the command lines run in
subprocesses, in parallel, and answer before TensorFlow is imported.
"""
import concurrent.futures
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

import keras_pgen
from keras_pgen import cli
from keras_pgen import config as config_lib
from keras_pgen import data as data_lib
from keras_pgen import registry
from tests.conftest import REPO, run_bin

# (method, field, value, override text or None where the command line cannot spell it), each rejected
# with "config.<field> must be ...".
BAD_VALUES = [
    ("msg_gan", "total_steps", 0, "0"),
    ("msg_gan", "batch_size", -4, "-4"),
    ("msg_gan", "log_every", 0, "0"),  # was a ZeroDivisionError after the first step
    ("msg_gan", "sample_every", 0, "0"),
    ("vae", "checkpoint_every", 0, "0"),
    ("msg_gan", "keep_checkpoints", 0, "0"),
    ("vae", "latent_dim", 0, "0"),  # was a ZeroDivisionError in a layer
    ("pgen", "latent_dim", -1, "-1"),
    ("msg_gan", "resolution", 12, "12"),
    ("msg_gan", "resolution", 4, "4"),  # MSG-GAN needs two scales
    ("gan", "resolution", 2, "2"),
    ("msg_gan", "num_samples", 0, "0"),
    ("msg_gan", "g_lr", 0.0, "0"),
    ("gan", "d_lr", -1e-4, "-1e-4"),
    ("vae", "lr", math.inf, "1e999"),
    ("msg_gan", "g_lr", math.nan, None),
    ("progan", "g_lrs", (1e-3, 0.0), "(1e-3, 0.0)"),
    ("progan", "batch_sizes", (8, 0), "(8, 0)"),
    ("msg_gan", "channels", 2, "2"),
    ("msg_gan", "g_padding", "zeros", "zeros"),
    ("msg_gan", "data", "", ""),
]


@pytest.mark.parametrize("method,field,value,text", BAD_VALUES, ids=[f"{m}-{f}={v!r}" for m, f, v, _ in BAD_VALUES])
def test_impossible_config_values_are_one_line_errors_naming_the_field(method, field, value, text, tmp_path):
    message = re.escape(f"config.{field} must be ")
    if text is not None:  # the command line's path: --config.FIELD=TEXT
        with pytest.raises(ValueError, match=f"^{message}") as info:
            config_lib.apply_overrides(keras_pgen.get_config(method, "tiny"), [f"{field}={text}"])
        assert "\n" not in str(info.value)
    config = keras_pgen.get_config(method, "tiny")
    config[field] = value
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match=f"^{message}.*got {re.escape(repr(value))}$"):  # the Python API's path
        keras_pgen.train(config, str(workdir))
    assert not workdir.exists()  # rejected before anything was made or loaded


def test_every_preset_passes_validation():
    for method in sorted(registry.METHODS):
        for preset in config_lib._config_module(method).PRESETS:
            config_lib.validate(keras_pgen.get_config(method, preset))
    config_lib.apply_overrides(keras_pgen.get_config("gan", "tiny"), ["resolution=4", "g_lr=1"])  # edges that are fine


def _run_all(commands, **kwargs):
    """{args: CompletedProcess} of `run_bin(*args)`, in parallel."""
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = {args: pool.submit(run_bin, *args, timeout=120, **kwargs) for args in commands}
    return {args: future.result() for args, future in futures.items()}


def _python_m(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "keras_pgen", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, **kwargs)


def test_help_exits_zero_and_lists_the_flags():
    shown = _run_all([("train", "--help"), ("export", "-h"), ("generate", "--help"), ("evaluate", "--help"),
                      ("benchmark", "--help")])
    for (script, _), proc in shown.items():
        assert proc.returncode == 0 and not proc.stderr, (script, proc.returncode, proc.stderr)
        assert f"bin/{script} --" in proc.stdout and "Exit codes:" in proc.stdout, proc.stdout
    assert "--method: Method to train" in shown[("train", "--help")].stdout
    assert "--workdir: Training workdir" in shown[("export", "-h")].stdout
    module = _python_m("train", "--help")
    assert module.returncode == 0 and "python -m keras_pgen train --method=msg_gan" in module.stdout, module.stderr
    assert "--backend" in module.stdout and "--config.KEY=VALUE" in module.stdout
    listing = _python_m("--help")
    assert listing.returncode == 0 and all(c in listing.stdout for c in ("train", "export", "generate", "evaluate"))


def test_bad_command_lines_are_one_line_errors(tmp_path):
    missing = tmp_path / "missing"
    cases = {  # bin/<script> arguments -> (exit code, the error line's start)
        ("train", "--foo=1"): (2, "error: unknown flag --foo"),
        ("train", "--metod=gan"): (2, "error: unknown flag --metod (did you mean --method?)"),
        ("train", "--backend=torch"): (2, "error: flag --backend=torch: value should be one of"),
        ("train", "--preset=tiny", "--config.log_every=0"): (2, "error: config.log_every must be an int >= 1, got 0"),
        ("train", "--method=vae", "--preset=tiny", "--config.latent_dim=0"): (2, "error: config.latent_dim must be"),
        ("train", "--workdir="): (2, "error: --workdir must not be empty"),
        ("train", "--data"): (2, "error: Missing value for flag --data"),
        ("train", "--preset=tiny", "stray"): (2, "error: unexpected argument(s) ['stray']"),
        ("export",): (2, "error: --workdir is required"),
        ("export", f"--workdir={missing}"): (1, f"error: {missing / 'config.json'} not found"),
        ("export", f"--workdir={missing}", "--name=../up"): (2, "error: --name must be a name, not a path"),
        ("export", f"--workdir={missing}", "--config.a=1"): (2, "error: unknown flag --config.a"),
        ("evaluate", f"--model={missing}", "--data=shapes"): (1, f"error: no exported SavedModel at '{missing}'"),
        ("evaluate", f"--model={missing}", "--data=shapes", "--num_samples=0"): (
            2, "error: --num_samples must be >= 1, got 0"),
        ("evaluate", "--data=shapes"): (2, "error: --model is required"),
        ("generate", f"--model={missing}", f"--out={tmp_path / 'g.png'}"): (
            1, f"bin/generate: error: no exported SavedModel at '{missing}'"),
        ("generate", f"--model={missing}", "--out="): (2, "bin/generate: error: --out must not be empty"),
        ("benchmark", "--batch_sizes=0"): (2, "error: --batch_sizes must be a comma-separated list of ints >= 1"),
        ("benchmark", "--task=train", "--steps=-1"): (2, "error: --steps must be >= 1, got -1"),
        ("benchmark", "--task=nope"): (2, "error: unknown benchmark task 'nope'"),
    }
    results = _run_all(cases)
    results[("python -m keras_pgen", "nope")] = _python_m("nope")
    cases[("python -m keras_pgen", "nope")] = (2, "error: unknown command 'nope'; choose from ['train', 'export'")
    for args, (code, start) in cases.items():
        proc = results[args]
        assert proc.returncode == code and proc.stderr.count("\n") == 1, (args, proc.returncode, proc.stderr)
        assert proc.stderr.startswith(start), (args, proc.stderr)
    assert not (tmp_path / "g.png").exists()


def test_corrupt_zip_is_an_error_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "faces.zip"
    bad.write_bytes(b"this is not a zip archive")
    message = f"cannot read the zip file '{bad}': File is not a zip file"
    with pytest.raises(ValueError, match=re.escape(message)):
        data_lib.load_source(str(bad), 16)
    damaged = tmp_path / "damaged.zip"  # a zip whose only member fails its CRC check
    with zipfile.ZipFile(damaged, "w") as archive:
        archive.writestr("a.png", b"\x89PNG" + bytes(200))
    raw = bytearray(damaged.read_bytes())
    raw[raw.index(bytes(200)) + 10] = 1
    damaged.write_bytes(bytes(raw))
    unreadable = f"a.png: ValueError: cannot read a.png from the zip file '{damaged}'"
    with pytest.raises(ValueError, match=re.escape(unreadable)):
        data_lib.load_source(str(damaged), 16)
    # what bin/train does with it (in-process: TensorFlow is already imported here)
    capsys.readouterr()
    assert cli.run_training("msg_gan", "tiny", str(tmp_path / "w"), [f"data={bad}", "export=false"]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"


def test_installed_keras_pgen_command_from_another_directory(tmp_path):
    """A non-editable `pip install` into a fresh venv (offline: no index, no build isolation, no deps)."""
    source = tmp_path / "checkout"  # a copy, so that the build's build/ and egg-info stay out of the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".gpu", "tests", "saved_models", "runs", "workdirs", "build", "dist", "*.egg-info", "__pycache__",
        ".pytest_cache"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=600)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", TF_CPP_MIN_LOG_LEVEL="2")
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-deps", "--no-build-isolation", "--no-index",
                              str(source)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def installed(*args):
        return subprocess.run([str(venv / "bin" / "keras-pgen"), *args], capture_output=True, text=True, timeout=120,
                              env=env, cwd=elsewhere)

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import keras_pgen; print(keras_pgen.__file__)"],
                           capture_output=True, text=True, env=env, cwd=elsewhere, timeout=60)
    assert where.stdout.strip().startswith(str(venv)), where  # the installed copy, not the checkout
    assert not any((venv / "bin" / name).exists() for name in ("train", "export", "generate"))
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        shown, missing, rejected = pool.map(lambda args: installed(*args), [
            ("train", "--help"), ("export", "--workdir=nowhere"),
            # the installed configs package: msg_gan's tiny preset loads, and its bad value is rejected
            ("train", "--method=msg_gan", "--preset=tiny", "--config.total_steps=0")])
    assert shown.returncode == 0 and "keras-pgen train --method=msg_gan" in shown.stdout, shown.stderr
    assert missing.returncode == 1, missing.stderr
    assert missing.stderr == "error: nowhere/config.json not found: is 'nowhere' a keras_pgen training workdir?\n"
    assert rejected.returncode == 2 and rejected.stderr == "error: config.total_steps must be an int >= 1, got 0\n"
