"""What the bin/ scripts call: flag parsing helpers and error reporting, kept out of the scripts."""
import os
import sys

from absl import flags, logging

PREFIX = "--config."


def parse_flags_with_overrides(argv):
    """absl flags_parser that leaves `--config.KEY=VALUE` arguments in argv for `config_overrides`."""
    overrides = [a for a in argv[1:] if a.startswith(PREFIX)]
    rest = [argv[0]] + [a for a in argv[1:] if not a.startswith(PREFIX)]
    remaining = flags.FLAGS(rest)
    return remaining + overrides


def config_overrides(argv):
    """["KEY=VALUE", ...] from the `--config.KEY=VALUE` arguments; other leftovers are an error."""
    extra = [a for a in argv[1:] if not a.startswith(PREFIX)]
    if extra:
        raise SystemExit(f"error: unexpected arguments {extra}")
    return [a[len(PREFIX):] for a in argv[1:] if a.startswith(PREFIX)]


def quiet_logs():
    """Shows keras_pgen's INFO lines and only warnings from TensorFlow's internals."""
    import logging as py_logging

    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(
        lambda record: record.levelno >= py_logging.WARNING or "keras_pgen" in record.pathname)


def fail(message, code=1):
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def run_training(method, preset, workdir, overrides, backend=None):
    """bin/train's body: config, overrides, train; returns the process exit code."""
    import keras_pgen
    from keras_pgen import config as config_lib
    from keras_pgen import runs

    quiet_logs()
    try:
        keras_pgen.select_backend(backend)
        config = keras_pgen.get_config(method, preset)
        config_lib.apply_overrides(config, overrides)
    except ValueError as e:
        return fail(e, 2)
    workdir = workdir or os.path.join("runs", method)
    try:
        result = keras_pgen.train(config, workdir, backend=backend)
    except runs.NonFiniteLossError as e:
        return fail(e, 1)
    except runs.TrainingInterrupted as e:
        print(str(e), file=sys.stderr, flush=True)
        return 128 + e.signum
    except (ValueError, FileNotFoundError, RuntimeError, ImportError) as e:
        return fail(e, 1)
    print(f"trained {method} to step {result['step']} in {workdir}")
    if result["export_path"]:
        print(f"exported: {result['export_path']}")
    return 0


def run_export(workdir, name, export_dir):
    from keras_pgen import training

    try:
        path = training.export_from_workdir(workdir, name, export_dir)
    except (FileNotFoundError, ValueError) as e:
        return fail(e, 1)
    print(path)
    return 0
