"""What both engines do the same way around a run: its errors, config.json, the data's checks, stages.

No TensorFlow and no JAX here: `keras_pgen.training` (TensorFlow) and
`keras_pgen.engines.jax_trainer` (JAX) share it.
"""
import json
import os
import signal
import sys
import threading

from absl import logging

from keras_pgen import config as config_lib
from keras_pgen import data as data_lib


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM arrived; a checkpoint of the last finished step was saved."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum


def _config_changes(config, workdir):
    """How `config` differs from the workdir's config.json; ([], []) for a new run.

    Returns:
        (changes, flags): "name: old -> new" for each field that differs ('<absent>' for one the
        run's config.json lacks), and for the absent fields whose earlier value the method's
        configs/<method>.py records (`BEFORE_FIELDS`), the `--config.name=value` that restores it.
    """
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return [], []
    with open(path) as f:
        previous = json.load(f)
    current = json.loads(config.to_json())
    changed = sorted(k for k in set(current) | set(previous) if current.get(k) != previous.get(k))
    before = config_lib.before_fields(config.method)
    flags = [f"--config.{k}={str(before[k]).lower() if isinstance(before[k], bool) else before[k]}"
             for k in changed if k not in previous and k in before]
    return [f"{k}: {previous.get(k, '<absent>')!r} -> {current.get(k)!r}" for k in changed], flags


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


class StopSignals:
    """The first SIGINT / SIGTERM asks for a stop after the current step; a second SIGINT aborts."""

    def __init__(self):
        self.signum, self._old = None, {}

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: stopping after this step and saving a checkpoint",
              file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}
