"""What both engines do the same way around a run: its errors, config.json, the data's checks, stages, signals.

No TensorFlow and no JAX here: `keras_pgen.training` (TensorFlow) and
`keras_pgen.engines.jax_trainer` (JAX) share it. Importing it is quick (numpy and the
configs are imported where used): `bin/train` sets `StopSignals` from it first thing.
"""
import contextlib
import json
import os
import signal
import sys
import threading

from absl import logging


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM arrived; a checkpoint of the last finished step was saved."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum


# Fields a resumed run honours: it goes on with the new value (learning rates are taken from the config,
# not the checkpoint: `learning_rates_kept`). Also every field ending in RESUMABLE_SUFFIXES (learning
# rates, loss weights, intervals). Any other field belongs to the run for its life (the method, its
# networks and what their checkpoint holds, precision): `resume_changes` refuses a change to it.
RESUMABLE_FIELDS = frozenset({
    "preset",  # a label: what the fields say counts
    # schedule and bookkeeping
    "total_steps", "batch_size", "batch_sizes", "transition_images", "stabilize_images", "keep_checkpoints",
    "num_samples", "eval_num_samples", "eval_features", "eval_image_size",
    # data
    "data", "flip", "resize_mode", "num_images", "seed",
    # optimizers
    "lr", "beta_1", "beta_2", "adam_epsilon",
    # losses, regularisers, EMA, augmentation
    "loss", "adversarial_loss", "pixel_loss", "perceptual_distance", "perceptual_layers", "vgg_layers",
    "diversity_distance", "matching_distance", "feature_reduction", "top_k", "real_multiple", "r1_gamma",
    "kl_warmup_steps", "d_pause_rule", "d_pause_threshold", "ema_decay", "augment", "augment_policy",
    "ada_target", "ada_interval", "ada_kimg",
    # execution and export
    "strategy", "jit_compile", "export", "export_dir", "export_name", "export_jit_compile", "export_strips",
})
RESUMABLE_SUFFIXES = ("_lr", "_lrs", "_weight", "_weights", "_every")


def resumable(name):
    """Whether a resumed run honours a change of config field `name` (`RESUMABLE_FIELDS`)."""
    return name in RESUMABLE_FIELDS or name.endswith(RESUMABLE_SUFFIXES)


def _flag(name, value):
    return f"--config.{name}={str(value).lower() if isinstance(value, bool) else value}"


def _config_changes(config, workdir):
    """How `config` differs from the workdir's config.json; ([], []) for a new run.

    Returns:
        (changes, flags): "name: old -> new" for each field that differs ('<absent>' for one the
        run's config.json lacks), and for the absent fields whose earlier value the method's
        configs/<method>.py records (`BEFORE_FIELDS`), the `--config.name=value` that restores it.
    """
    changes, flags, _ = _compare(config, workdir)
    return changes, flags


def _compare(config, workdir):
    """`_config_changes` plus the changes a resumed run cannot honour, as (change, flag restoring it)."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return [], [], []
    with open(path) as f:
        previous = json.load(f)
    current = json.loads(config.to_json())
    changed = sorted(k for k in set(current) | set(previous) if current.get(k) != previous.get(k))
    from keras_pgen import config as config_lib

    before = config_lib.before_fields(config.method)
    changes = {k: f"{k}: {previous.get(k, '<absent>')!r} -> {current.get(k)!r}" for k in changed}
    flags = [_flag(k, before[k]) for k in changed if k not in previous and k in before]
    # An absent field the run began without is the default it had then (BEFORE_FIELDS records the
    # others); a field today's configs lack is no longer read.
    fixed = [(changes[k], _flag(k, previous[k] if k in previous else before[k])) for k in changed
             if not resumable(k) and k in current
             and (k in previous or (k in before and current[k] != json.loads(json.dumps(before[k]))))]
    return [changes[k] for k in changed], flags, fixed


def has_checkpoints(workdir):
    """Whether `workdir/checkpoints` holds a checkpoint of either engine (TensorFlow's or a numpy archive)."""
    from keras_pgen import checkpoints

    directory = os.path.join(workdir, "checkpoints")
    return bool(checkpoints.steps(directory) or checkpoints.tf_steps(directory))


def resume_changes(config, workdir):
    """How `config` differs from the run in `workdir` (`_config_changes`), refusing what a resume cannot honour.

    A run with a checkpoint resumes with the new values of the fields `resumable` names (learning
    rates, loss weights, intervals, total_steps, ...); any other changed field is refused here,
    before anything is loaded or built.

    Returns:
        (changes, flags) of `_config_changes`.

    Raises:
        ValueError: one line naming each changed field a resumed run cannot honour, its old and new
            values and the `--config.name=value` flags that resume with the run's own values.
    """
    changes, flags, fixed = _compare(config, workdir)
    if fixed and has_checkpoints(workdir):
        began_without = [flag for _, flag in fixed if flag in flags]
        own = [flag for _, flag in fixed if flag not in flags]
        raise ValueError(
            f"cannot resume {workdir} with {'; '.join(change for change, _ in fixed)}: a resumed run keeps "
            "its networks, optimizers and precision, so these fields cannot change. Resume with the run's own "
            "values" + (f" ({' '.join(own)})" if own else "")
            + (f" (fields it began without: {' '.join(began_without)})" if began_without else "")
            + ", or train in a new workdir.")
    return changes, flags


@contextlib.contextmanager
def learning_rates_kept(model):
    """Restoring a checkpoint inside this keeps each optimizer's learning rate as the model had it.

    Keras keeps a learning rate in a variable of its optimizer, so checkpoints hold it; a resumed
    run takes it from its config (ProGAN: `prepare` sets the phase's) like every other field, and
    from the checkpoint only the optimizers' state (moments, iterations, loss scale).
    """
    import keras

    rates = [(o.learning_rate, keras.ops.convert_to_numpy(o.learning_rate)) for o in model.optimizers().values()
             if isinstance(o.learning_rate, keras.Variable)]
    yield
    for variable, value in rates:
        variable.assign(value)


def _write_config(config, workdir):
    """Saves config.json (after a successful restore, so a run that cannot resume leaves it as it was)."""
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(json.loads(config.to_json()), f, indent=2, sort_keys=True)


def _stage_start_sample(stages, index, step):
    """Global sample index of `step` in stage `index`: earlier stages' samples plus this one's so far."""
    done = sum((s.end_step - s.start_step) * s.batch_size for s in stages[:index])
    return done + (step - stages[index].start_step) * stages[index].batch_size


def warn_if_grey(source):
    """Logs a warning when an RGB source's images are all grey (`data.looks_grey`); returns whether it did."""
    from keras_pgen import data as data_lib

    grey, checked = data_lib.looks_grey(source)
    if grey:
        logging.warning("the %d images checked of %s are all grey (R = G = B) but config.channels is 3: "
                        "--config.channels=1 trains on them as grey (in the README's Report, MSG-GAN fed "
                        "grey faces as RGB collapsed to one template where grey training learned varied faces)",
                        checked, source.description or "the data")
    return grey


def preview_batch(config, source, latent_dim, normal):
    """The fixed inputs of every sample grid: latents (`normal(shape)`), the first real images and their labels.

    Numpy arrays; each engine draws the latents with its own `normal` (TensorFlow's stateless
    normal keyed on (seed, 7919) under TensorFlow).
    """
    import numpy as np

    n = min(config.num_samples, len(source))
    images, labels = source.get(np.arange(n))
    batch = {"images": np.asarray(images, np.float32) / 127.5 - 1.0, "labels": np.asarray(labels, np.int32)}
    if latent_dim:
        batch["z"] = np.asarray(normal((config.num_samples, latent_dim)), np.float32)
    return batch


def resume_error(workdir, latest, error, changes=(), flags=()):
    """The ValueError of a checkpoint that does not fit the model the config builds."""
    return ValueError(
        f"cannot resume {workdir}: its checkpoint {latest} does not fit the model this config builds "
        f"({str(error).splitlines()[0][:300]}). Config fields that differ from its config.json: "
        f"{'; '.join(changes) or 'none'}. Resume with the run's own values"
        + (f" (fields it began without: {' '.join(flags)})" if flags else "")
        + ", or train in a new workdir.")


def export_new_steps(stop, workdir, first_step, step, export, export_fn):
    """The export at the end of a run that trained steps `[first_step, step)`: `export_fn()`'s path, or None.

    A run that trained no step (resumed at or past its total_steps) exports nothing new:
    `bin/export --workdir` exports its checkpoint again if wanted. A signal (`stop`, a
    `StopSignals`) that arrived after the last step stops the run before the export; one that
    arrives during the export lets it finish (an export is whole or absent), then stops the run.

    Raises:
        TrainingInterrupted: a signal arrived (the last step's checkpoint is saved).
    """
    after = f"interrupted after step {step}; its checkpoint is saved in {workdir}/checkpoints"
    if export and step == first_step:
        logging.info("trained no step (the run was at step %d already): nothing exported", step)
    export = export and step > first_step
    stop.check(after + (f"; not exported: bin/export --workdir={workdir} exports it" if export else ""))
    if not export:
        return None
    path = export_fn()
    if path:
        logging.info("exported the generator to %s", path)
        stop.check(f"{after}; the export it interrupted completed: {path}")
    return path


class StopSignals:
    """The first SIGINT / SIGTERM asks the run to stop; a second SIGINT aborts at once (KeyboardInterrupt).

    The handler only records the signal (`signum`); the run looks at it where it can stop
    cleanly: before training (`check`: nothing written), after a step (a checkpoint saved),
    before the export. A handler that raised instead could be lost: a KeyboardInterrupt raised
    inside a gc callback (JAX has some) is printed and dropped. `then` says what the run does
    next, in the line printed when a signal arrives.

    Nested, the inner one is the outer one (its handler set again): `bin/train` enters one before
    TensorFlow or JAX is imported, the run its own around start-up and steps (in a notebook, the
    only one), the training loop its own once the strategy exists; a signal that arrived during
    the imports stops the run before it writes anything.
    """

    BEFORE_TRAINING = "stopping before training; nothing is written"
    TRAINING = "stopping after this step and saving a checkpoint"
    AFTER_TRAINING = "stopping; the checkpoint of the last step is saved"

    def __init__(self):
        self.signum, self._old = None, {}
        self.then = self.BEFORE_TRAINING

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: {self.then}", file=sys.stderr, flush=True)

    def check(self, message):
        """Raises TrainingInterrupted(`message`) when a signal has arrived."""
        if self.signum is not None:
            raise TrainingInterrupted(message, self.signum)

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        outer = getattr(signal.getsignal(signal.SIGINT), "__self__", None)
        if isinstance(outer, StopSignals):
            for s in (signal.SIGINT, signal.SIGTERM):  # set again: a native library may have taken it since
                signal.signal(s, outer._handle)  # (TensorFlow's multi-worker runtime takes SIGTERM)
            return outer
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}
