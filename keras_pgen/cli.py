"""The command line: `keras-pgen COMMAND [--flag=value ...]`, with COMMAND one of `COMMANDS`.

The same commands run as `python -m keras_pgen COMMAND ...` and, from a source checkout, as
`bin/COMMAND ...` (five-line shims). Each command is a table of absl flags, defined on a fresh
`flags.FlagValues` when it runs, and a function of the parsed values that calls one library
function. `--config.KEY=VALUE` arguments (train, benchmark) are kept for
`config.apply_overrides`.

Exit codes: 0 done; 2 a bad command line (unknown command or flag, a missing or bad flag value,
a bad config override or value); 1 a path that cannot be used (a missing workdir, model or data
set, a corrupt file) or a run that failed; train also 128 + N when signal N stopped it (train
records SIGINT / SIGTERM from its first moment, `runs.StopSignals`; the other commands stop at
once with 130). Errors are one line on stderr, `error: ...` (generate: `bin/generate: error: ...`),
no traceback.
TensorFlow is imported only by the commands that run it, after their flags are checked: `--help`
and command-line errors answer at once, and `train --backend=jax` runs where TensorFlow is not installed.
"""
import contextlib
import difflib
import os
import shutil
import signal
import sys
from typing import Callable, NamedTuple

from absl import app, flags, logging

PREFIX = "--config."
HELP_ARGS = ("-h", "-?", "--help", "-help", "--helpshort", "--helpfull")


class UsageError(ValueError):
    """A bad command line: one line on stderr, exit code 2."""


def fail(message, code=1, prefix=""):
    """Prints `{prefix}error: {first line of message}` on stderr; returns `code`."""
    lines = str(message).strip().splitlines()
    print(f"{prefix}error: {lines[0] if lines else repr(message)}", file=sys.stderr, flush=True)
    return code


def quiet_logs():
    """Shows keras_pgen's INFO lines and only warnings from TensorFlow's internals."""
    import logging as py_logging

    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(
        lambda record: record.levelno >= py_logging.WARNING or "keras_pgen" in record.pathname)


def _require(values, *names):
    """UsageError unless each flag in `names` is given and non-empty."""
    for name in names:
        if values[name].value is None:
            raise UsageError(f"--{name} is required")
        if not str(values[name].value).strip():
            raise UsageError(f"--{name} must not be empty")


def _at_least(values, minimum, *names):
    for name in names:
        if values[name].value < minimum:
            raise UsageError(f"--{name} must be >= {minimum}, got {values[name].value}")


def _no_empty(values, *names):
    """UsageError for an optional flag given as an empty string (`--data=`)."""
    for name in names:
        if values[name].value is not None and not str(values[name].value).strip():
            raise UsageError(f"--{name} must not be empty (leave it out for the default)")


def _missing_export(path):
    """The error of `export.resolve_export_dir` for a path that does not exist, without importing TensorFlow."""
    if os.path.exists(path):
        return None
    return (f"no exported SavedModel at {path!r}: looked for {os.path.join(path, 'saved_model.pb')} and "
            f"{os.path.join(path, '<integer version>', 'saved_model.pb')} ({path!r} does not exist)")


# ---- train --------------------------------------------------------------------------------------
TRAIN_DOC = """Train (or resume) a keras_pgen method.

    {prog} --method=msg_gan [--preset=tiny] [--workdir=runs/msg_gan] [--data=FOLDER] \\
        [--strategy=mirrored] [--backend=jax] [--config.KEY=VALUE ...]

Running the same command again continues from the last checkpoint in --workdir.
Exit codes: 0 trained; 2 a bad flag, preset, config key or value; 1 missing or unreadable data,
a non-finite loss or another failed run; 130 / 143 stopped by Ctrl-C / SIGTERM (during training: after
a step, its checkpoint saved; before training: nothing written).
"""

TRAIN_FLAGS = (
    ("string", "method", "msg_gan", "Method to train (see keras_pgen.registry.METHODS)."),
    ("string", "preset", "default", "Preset of configs/<method>.py."),
    ("string", "workdir", None, "Checkpoints, samples, TensorBoard logs (default runs/<method>)."),
    ("string", "data", None, "Training data (overrides config.data): folder, glob, zip, mnist, fashion_mnist, "
     "cifar10, tfds:NAME, patches:PATH, shapes."),
    ("string", "strategy", None, "auto | default | mirrored (overrides config.strategy). Under JAX: auto and "
     "mirrored split each batch over every local GPU, default uses one."),
    ("enum", "backend", None, "Training engine (default: $KERAS_BACKEND, else tensorflow). jax: Keras-JAX, for GPUs, "
     "needs no TensorFlow (the SavedModel export then runs where TensorFlow is installed, or later with "
     "the export command). On a CPU keep tensorflow: JAX steps measured about 2x slower there.",
     ["tensorflow", "jax"]),
)


def _train(f, overrides, prog):
    _no_empty(f, "workdir", "data", "strategy")
    if f.data is not None:
        overrides.append(f"data={f.data}")
    if f.strategy is not None:
        overrides.append(f"strategy={f.strategy}")
    return run_training(f.method, f.preset, f.workdir, overrides, backend=f.backend)


def run_training(method, preset, workdir, overrides, backend=None):
    """train's body: config, overrides (validated), train; returns the process exit code."""
    import keras_pgen
    from keras_pgen import config as config_lib

    quiet_logs()
    try:
        keras_pgen.select_backend(backend)
        config = keras_pgen.get_config(method, preset)
        config_lib.apply_overrides(config, overrides)
    except ValueError as e:
        return fail(e, 2)
    workdir = workdir or os.path.join("runs", method)
    for what, folder in (("--workdir", workdir), ("config.export_dir", config.export_dir if config.export else "")):
        if folder and os.path.exists(folder) and not os.path.isdir(folder):  # found now, not after training
            return fail(f"{what} {folder!r} is a file, not a folder", 1)
    from keras_pgen import runs

    try:
        with runs.StopSignals() as stop:  # bin/train's (`run`): a signal since its start stops the run here
            stop.check(f"interrupted before training: nothing written in {workdir}")
            result = keras_pgen.train(config, workdir, backend=backend)
    except runs.NonFiniteLossError as e:
        return fail(e, 1)
    except runs.TrainingInterrupted as e:
        print(str(e), file=sys.stderr, flush=True)
        return 128 + e.signum
    except (ValueError, OSError, RuntimeError, ImportError) as e:
        return fail(e, 1)
    print(f"trained {method} to step {result['step']} in {workdir}")
    if result["export_path"]:
        print(f"exported: {result['export_path']}")
    return 0


# ---- export -------------------------------------------------------------------------------------
EXPORT_DOC = """Export the EMA generator of a training workdir as a TF Serving SavedModel.

    {prog} --workdir=runs/msg_gan [--name=msg_gan] [--export_dir=saved_models]

Writes saved_models/<name>/<next integer version>/ and prints its path.
Exit codes: 0 exported; 2 a bad flag; 1 not a training workdir, no checkpoint, or the export failed.
"""

EXPORT_FLAGS = (
    ("string", "workdir", None, "Training workdir (has config.json and checkpoints/). Required."),
    ("string", "name", None, "Model name under --export_dir (default: the config's export name or method)."),
    ("string", "export_dir", None, "Export root (default: the config's export_dir, saved_models)."),
)


def _export(f, overrides, prog):
    _require(f, "workdir")
    _no_empty(f, "name", "export_dir")
    if f.name is not None and ("/" in f.name or os.sep in f.name or f.name in (".", "..")):
        raise UsageError(f"--name must be a name, not a path, got {f.name!r}")
    return run_export(f.workdir, f.name, f.export_dir)


def _missing_workdir(workdir):
    """The error for a path without config.json (no training workdir), without importing TensorFlow."""
    config_path = os.path.join(workdir, "config.json")
    if not os.path.isfile(config_path):
        return f"{config_path} not found: is {workdir!r} a keras_pgen training workdir?"
    return None


def run_export(workdir, name, export_dir):
    missing = _missing_workdir(workdir)
    if missing:  # before TensorFlow is imported: one line, at once
        return fail(missing, 1)
    from keras_pgen import training

    try:
        path = training.export_from_workdir(workdir, name, export_dir)
    except (OSError, ValueError, RuntimeError) as e:
        return fail(e, 1)
    print(path)
    return 0


# ---- generate -----------------------------------------------------------------------------------
GENERATE_DOC = """Writes a grid of samples or a looping latent-walk GIF from an exported generator.

  {prog} --model=saved_models/msg_gan/1 --num=64 --out=grid.png [--seed=0]
  {prog} --model=saved_models/msg_gan --interpolate --frames=60 --out=walk.gif [--num=4]

--model is a version directory or a model directory (its highest version is used).
--num must be >= 1 and at most the export's max_images_per_request (keras_pgen.json).
Exit codes: 0 written, 1 the model could not be loaded or generation failed, 2 a bad flag
value; errors are one line on stderr.
"""

GENERATE_FLAGS = (
    ("string", "model", None, "Export: saved_models/<name>[/<version>]. Required."),
    ("string", "out", None, "Output .png/.jpg grid, or .gif (--interpolate). Required."),
    ("integer", "num", None, "Grid samples (default 64), or parallel walks (default 1)."),
    ("integer", "seed", 0, "Random seed."),
    ("bool", "interpolate", False, "Write a latent-walk GIF instead of a grid."),
    ("integer", "frames", 60, "Frames of the latent walk."),
    ("integer", "min_size", 64, "Upscale (nearest) samples smaller than this many pixels."),
    ("integer", "duration_ms", 60, "Display time of each GIF frame."),
)


def _generate(f, overrides, prog):
    _require(f, "model", "out")
    num = f.num if f.num is not None else (1 if f.interpolate else 64)
    if num < 1:
        raise UsageError(f"--num must be >= 1, got {num}")
    if f.interpolate:
        _at_least(f, 1, "frames", "duration_ms")
    _at_least(f, 0, "min_size")
    if not -2**31 <= f.seed < 2**31:
        raise UsageError(f"--seed must be an integer in [-2**31, 2**31), got {f.seed}")
    prefix = f"{prog}: "
    missing = _missing_export(f.model)
    if missing:
        return fail(missing, 1, prefix)
    import tensorflow as tf

    from keras_pgen import export

    try:
        generator = export.load_generator(f.model)
    except Exception as error:  # noqa: BLE001 - missing, corrupt or not a generator: say so in one line
        return fail(error, 1, prefix)
    try:
        generator.check_num_images(num, "--num")
    except ValueError as error:
        return fail(error, 2, prefix)
    try:
        if f.interpolate:
            export.generate_walk(generator, f.out, frames=f.frames, num=num, seed=f.seed, min_size=f.min_size,
                                 duration_ms=f.duration_ms)
        else:
            export.generate_grid(generator, num, f.out, seed=f.seed, min_size=f.min_size)
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:  # e.g. an unwritable --out, a bad suffix
        return fail(error, 1, prefix)
    print(f"wrote {f.out}")
    return 0


# ---- evaluate -----------------------------------------------------------------------------------
EVALUATE_DOC = """Evaluate an exported model against a data set; prints one JSON line.

    {prog} --model=saved_models/msg_gan --data=../shared/data/olivetti_faces [--num_samples=1000]
        [--features=imagenet|/path/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5|none|pixels|shapes]
        [--output=results.json] [--pairs=pairs.png] [--workdir=runs/msg_gan]

Generators: KID, FID and the memorisation check (nearest real image of each sample in feature
space, with a PNG of sample / nearest-real pairs), and diversity ratios (with --workdir, also in
the run's discriminator's features). Autoencoders: PSNR, SSIM and sharpness.
Exit codes: 0 evaluated; 2 a bad flag; 1 a missing or unusable model, data set or weights file.
"""

EVALUATE_FLAGS = (
    ("string", "model", None, "Export: a version directory or a model directory (highest version). Required."),
    ("string", "data", None, "Real images: folder, glob, zip, shapes, mnist, tfds:NAME, ... Required."),
    ("integer", "num_samples", 1000, "Generated images, and real images at most."),
    ("string", "features", "imagenet", "InceptionV3 weights: imagenet | weights file | none; or pixels; or shapes (the built-in data's judge)."),
    ("integer", "image_size", 299, "InceptionV3 input side (>= 75)."),
    ("integer", "batch_size", 50, "Images per batch."),
    ("integer", "seed", 0, "Seed of the latents, the real subset and KID's subsets."),
    ("integer", "subset_size", 1000, "KID subset size (shrunk to the number of images)."),
    ("integer", "num_subsets", 100, "KID subsets."),
    ("integer", "num_pairs", 16, "Sample / nearest-real pairs in the memorisation PNG."),
    ("string", "pairs", None, "Memorisation PNG (default: beside --output, else ./memorisation_pairs.png)."),
    ("enum", "resize_mode", "crop", "How data images are fitted.", ["crop", "pad", "stretch"]),
    ("string", "output", None, "Also write the JSON line to this file."),
    ("string", "workdir", "", "The GAN's training workdir (gan, msg_gan, progan): adds diversity_ratio_discriminator, "
     "the diversity ratio in its discriminator's penultimate features."),
)


def _evaluate(f, overrides, prog):
    _require(f, "model", "data", "features")
    _no_empty(f, "pairs", "output")
    _at_least(f, 1, "num_samples", "batch_size", "subset_size", "num_subsets")
    _at_least(f, 0, "num_pairs", "seed")
    if f.features not in ("pixels", "shapes"):
        _at_least(f, 75, "image_size")
    missing = _missing_export(f.model) or (f.workdir and _missing_workdir(f.workdir))
    if missing:
        return fail(missing, 1)
    from keras_pgen import evaluate

    try:
        return evaluate.run_cli(f)
    except OSError as e:  # e.g. an unwritable --output or --pairs
        return fail(e, 1)


# ---- benchmark ----------------------------------------------------------------------------------
BENCHMARK_DOC = """Benchmarks; each task prints one JSON line (see keras_pgen/benchmark.py for the tasks).

    {prog} --task=generate --method=progan --preset=faces1024 [--batch_sizes=1,8] [--repeats=5] \\
        [--intra_op_threads=0] [--inter_op_threads=0] [--xla] [--mmap_threshold=0] [--serving_python=PATH] \\
        [--malloc_arenas=0] [--config.KEY=VALUE ...]
    {prog} --task=train --method=msg_gan --preset=bench64 [--steps=10 --warmup=3] \\
        [--torch_python=/tmp/torchref/bin/python] [--config.jit_compile=true]
    {prog} --task=pipeline --method=msg_gan --preset=bench64 [--steps=50]

generate: the exported generator of the preset (random weights), timed on the CPU in a fresh
process per batch size: seconds per image and peak resident memory.
train: training images/s (median step, warm-up excluded), optionally with the PyTorch peer and the ratio.
pipeline: the input pipeline's images/s on its own.
Exit codes: 0 measured; 2 a bad flag, task, method, preset or config value; 1 a run that failed.
"""

BENCHMARK_FLAGS = (
    ("string", "task", "generate", "Benchmark task (keys of keras_pgen.benchmark.TASKS)."),
    ("string", "method", "progan", "Method (see keras_pgen.registry.METHODS)."),
    ("string", "preset", "default", "Preset of configs/<method>.py."),
    ("list", "batch_sizes", ["1", "8"], "generate: batch sizes, each timed in a fresh process."),
    ("integer", "repeats", 5, "generate: timed calls per batch size (median reported; one warm-up excluded)."),
    ("integer", "intra_op_threads", 0, "generate: TensorFlow intra-op threads (0: TensorFlow's default)."),
    ("integer", "inter_op_threads", 0, "generate: TensorFlow inter-op threads (0: TensorFlow's default; 1: one op "
     "at a time: less peak memory, sometimes slower)."),
    ("integer", "mmap_threshold", 0, "generate: glibc mmap threshold in bytes set in the timing process, as "
     "MALLOC_MMAP_THRESHOLD_ would (keras_pgen.memory; e.g. 131072: less peak memory, slower); 0: glibc's moving "
     "default."),
    ("integer", "malloc_arenas", 0, "generate: at most this many glibc malloc arenas in the timing process, as "
     "MALLOC_ARENA_MAX would (keras_pgen.memory; 1: less peak memory, as fast); 0: glibc's default."),
    ("string", "serving_python", "", "generate: time the export with this Python instead (e.g. a virtual "
     "environment with only keras_pgen's dependencies, as a server has; it needs TensorFlow and numpy)."),
    ("bool", "xla", False, "generate: XLA auto-clustering (TF_XLA_FLAGS) of the loaded SavedModel."),
    ("integer", "steps", 10, "train/pipeline: timed steps (train: median reported)."),
    ("integer", "warmup", 3, "train/pipeline: untimed warm-up steps (tracing, XLA compilation)."),
    ("string", "torch_python", "", "train: a Python with torch to run ../shared/bench/torch_msg_gan.py right "
     "after, for the ratio (msg_gan/bench64)."),
    ("enum", "backend", None, "train: the engine timed (default: $KERAS_BACKEND, else tensorflow).",
     ["tensorflow", "jax"]),
    ("string", "torch_device", "cpu", "train: the PyTorch peer's device (cpu or cuda)."),
    ("bool", "torch_compile", False, "train: torch.compile the PyTorch peer."),
    ("string", "bench_dir", "", "train: folder of torch_msg_gan.py (default ../shared/bench)."),
)


def _benchmark(f, overrides, prog):
    from keras_pgen import benchmark

    if f.task not in benchmark.TASKS:
        raise UsageError(f"unknown benchmark task {f.task!r}; choose from {sorted(benchmark.TASKS)}")
    _at_least(f, 0, "intra_op_threads", "inter_op_threads", "mmap_threshold", "malloc_arenas", "warmup")
    _at_least(f, 1, "repeats", "steps")
    for option in ("serving_python", "torch_python"):
        if f[option].value and shutil.which(f[option].value) is None:
            raise UsageError(f"--{option}: no such executable {f[option].value!r}")
    options = dict(method=f.method, preset=f.preset, overrides=overrides)
    if f.task == "generate":
        if not f.batch_sizes or not all(b.strip().isdigit() and int(b) >= 1 for b in f.batch_sizes):
            raise UsageError(f"--batch_sizes must be a comma-separated list of ints >= 1, got {f.batch_sizes}")
        options.update(batch_sizes=[int(b) for b in f.batch_sizes], repeats=f.repeats,
                       intra_op_threads=f.intra_op_threads, inter_op_threads=f.inter_op_threads, xla=f.xla,
                       mmap_threshold=f.mmap_threshold, serving_python=f.serving_python,
                       malloc_arenas=f.malloc_arenas)
    elif f.task == "train":
        options.update(steps=f.steps, warmup=f.warmup, torch_python=f.torch_python, backend=f.backend,
                       torch_device=f.torch_device, torch_compile=f.torch_compile, bench_dir=f.bench_dir)
    else:
        options.update(steps=f.steps, warmup=f.warmup)
    try:
        benchmark.run_task(f.task, **options)
    except ValueError as e:
        return fail(e, 2)
    except (OSError, RuntimeError, ImportError) as e:
        return fail(e, 1)
    return 0


# ---- dispatch -----------------------------------------------------------------------------------
class Command(NamedTuple):
    doc: str  # usage text; {prog} is the command as typed
    flags: tuple  # (kind, name, default, help[, enum values]): absl's DEFINE_<kind>
    run: Callable  # (flag values, config overrides, prog) -> exit code
    takes_overrides: bool = False  # --config.KEY=VALUE
    stops_cleanly: bool = False  # SIGINT / SIGTERM recorded from the start (`runs.StopSignals`), not raised


COMMANDS = {
    "train": Command(TRAIN_DOC, TRAIN_FLAGS, _train, takes_overrides=True, stops_cleanly=True),
    "export": Command(EXPORT_DOC, EXPORT_FLAGS, _export),
    "generate": Command(GENERATE_DOC, GENERATE_FLAGS, _generate),
    "evaluate": Command(EVALUATE_DOC, EVALUATE_FLAGS, _evaluate),
    "benchmark": Command(BENCHMARK_DOC, BENCHMARK_FLAGS, _benchmark, takes_overrides=True),
}

USAGE = """usage: {prog} COMMAND [--flag=value ...]

Commands:
  train       train (or resume) a method: train --method=msg_gan [--preset=tiny] [--config.KEY=VALUE ...]
  export      export a training workdir's generator as a TF Serving SavedModel
  generate    write a sample grid or a latent-walk GIF from an export
  evaluate    KID / FID / memorisation (generators) or PSNR / SSIM (autoencoders) of an export
  benchmark   time generation, training or the input pipeline

`{prog} COMMAND --help` lists the flags of COMMAND.
"""


def define_flags(command):
    """A fresh `flags.FlagValues` holding `command`'s flags."""
    values = flags.FlagValues()
    for kind, name, default, help_text, *extra in COMMANDS[command].flags:
        getattr(flags, f"DEFINE_{kind}")(name, default, *extra, help_text, flag_values=values)
    return values


def help_text(command, prog):
    flag_lines = [line for line in define_flags(command).get_help(include_special_flags=False).splitlines()
                  if line.startswith("  ")]
    return COMMANDS[command].doc.format(prog=prog) + "\nFlags:\n" + "\n".join(flag_lines) + "\n"


def _flag_error(error, values):
    """One line for an absl flag parsing error (unknown flags suggest the closest of `values`)."""
    if isinstance(error, flags.UnrecognizedFlagError):
        name = error.flagname
        close = difflib.get_close_matches(name, list(values), n=1)
        return f"unknown flag --{name}" + (f" (did you mean --{close[0]}?)" if close else "")
    return str(error).splitlines()[0]


def parse(command, argv, prog):
    """Parses `argv` (program name first) for `command`.

    Returns (flag values, config overrides as KEY=VALUE). Exits 0 after printing the help for
    --help / -h; raises UsageError for an unknown flag, a bad value or a stray argument.
    """
    spec = COMMANDS[command]
    args = list(argv[1:])
    if any(a in HELP_ARGS for a in args):
        print(help_text(command, prog), end="")
        if "--helpfull" in args:
            print("\nabsl flags:\n" + flags.FLAGS.get_help())
        raise SystemExit(0)
    overrides = [a[len(PREFIX):] for a in args if a.startswith(PREFIX)]
    if overrides and not spec.takes_overrides:
        raise UsageError(f"unknown flag {next(a for a in args if a.startswith(PREFIX)).split('=')[0]} "
                         f"({prog} takes no --config.KEY=VALUE overrides)")
    values = define_flags(command)
    rest = [prog] + [a for a in args if not a.startswith(PREFIX)]
    try:
        rest = values(rest, known_only=True)  # this command's flags
        rest = flags.FLAGS(rest)  # absl's own (--verbosity, --flagfile, ...); unknown flags fail here
    except flags.Error as error:
        raise UsageError(_flag_error(error, values)) from None
    if rest[1:]:
        raise UsageError(f"unexpected argument(s) {rest[1:]}; flags are --name=value")
    return values, overrides


def run(command, argv=None, prog=None):
    """Runs `command` under absl.app with `argv` (default sys.argv; program name first, then its flags).

    What bin/<command> calls, and `main` for `keras-pgen <command>`. `prog` (default argv[0])
    names the command in help and error text. Exits with the command's code.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv if argv is None else argv)
    prog = prog or argv[0]
    state = {}
    prefix = f"{prog}: " if command == "generate" else ""  # generate's documented error lines

    def parser(args):
        try:
            state["values"], state["overrides"] = parse(command, args, prog)
        except UsageError as error:
            raise SystemExit(fail(error, 2, prefix)) from None
        return args[:1]

    def command_main(_):
        try:
            return COMMANDS[command].run(state["values"], list(state["overrides"]), prog)
        except UsageError as error:
            return fail(error, 2, prefix)

    try:
        with _signals(command):
            app.run(command_main, argv=argv, flags_parser=parser)
    except KeyboardInterrupt:  # Ctrl-C (train: a second one, or one before its handler was set)
        raise SystemExit(fail("interrupted", 128 + signal.SIGINT, prefix)) from None


def _signals(command):
    """train: `runs.StopSignals`, entered before TensorFlow or JAX is imported (no signal of start-up is lost)."""
    if not COMMANDS[command].stops_cleanly:
        return contextlib.nullcontext()
    from keras_pgen import runs

    return runs.StopSignals()


def main(argv=None, prog=None):
    """`keras-pgen COMMAND [--flag=value ...]`: the console entry point, also `python -m keras_pgen`.

    argv: the arguments after the program name (default sys.argv[1:]); prog: the program's name
    in messages (default: the name of sys.argv[0]). Runs `run(COMMAND, ...)`, as bin/COMMAND does.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = prog or os.path.basename(sys.argv[0] or "keras-pgen")
    if not argv:
        raise SystemExit(fail(f"no command; choose from {list(COMMANDS)} (`{prog} --help` says more)", 2))
    if argv[0] in HELP_ARGS or argv[0] == "help":
        print(USAGE.format(prog=prog), end="")
        raise SystemExit(0)
    command = argv[0]
    if command not in COMMANDS:
        raise SystemExit(fail(f"unknown command {command!r}; choose from {list(COMMANDS)}", 2))
    run(command, [f"{prog} {command}", *argv[1:]])
