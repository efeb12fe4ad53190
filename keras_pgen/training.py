"""Training: strategy scope, resume, Keras progress bars, samples, TensorBoard, checkpoints, NaN guard, export.

`train(config, workdir)` is the one entry point (bin/train and notebooks call it).
Running it again with the same workdir continues from the last checkpoint:
networks, EMA generator, both optimizers' state and the step counter are
restored, and the input pipeline restarts at that step (the data order,
flips and latents are pure functions of the step, see data/pipeline.py), so
a resumed run equals an uninterrupted one.
"""
import json
import math
import os
import signal
import sys
import threading

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_pgen import data as data_lib
from keras_pgen import export as export_lib
from keras_pgen import images as images_lib
from keras_pgen import registry


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM arrived; a checkpoint of the last finished step was saved."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum


_STRATEGIES = {}


def make_strategy(name="auto"):
    """tf.distribute strategy by name: auto (mirrored when >1 GPU), default, mirrored.

    A mirrored strategy is created once per process and reused: two MirroredStrategy
    objects in one process (a notebook training twice) reuse the same collective
    instance keys and abort with "Shape mismatch in the collective instance".
    """
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if name not in _STRATEGIES:
            _STRATEGIES[name] = tf.distribute.MirroredStrategy()
        return _STRATEGIES[name]
    raise ValueError(f"unknown strategy {name!r}; choose from ['auto', 'default', 'mirrored']")


def _sample_latents(config, latent_dim):
    return tf.random.stateless_normal((config.num_samples, latent_dim), seed=[config.seed, 7919])


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


class TrainingMonitor(keras.callbacks.Callback):
    """Per-step bookkeeping: NaN guard, samples, checkpoints, TensorBoard, stop at the last step, signals.

    Args:
        config: the run's ConfigDict.
        workdir: str. Samples go to workdir/samples, TensorBoard events to workdir/tensorboard.
        manager: tf.train.CheckpointManager.
    """

    def __init__(self, config, workdir, manager):
        super().__init__()
        self.config = config
        self.workdir = workdir
        self.manager = manager
        self.writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
        self.failure = None
        self.signum = None
        self._old_handlers = {}

    # signals: the first SIGINT/SIGTERM asks for a clean stop after the current step
    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: stopping after this step and saving a checkpoint",
              file=sys.stderr, flush=True)

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old_handlers[s] = signal.signal(s, self._handle)

    def on_train_end(self, logs=None):
        for s, h in self._old_handlers.items():
            signal.signal(s, h)
        self._old_handlers = {}
        self.writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.step.numpy())
        bad = {k: float(v) for k, v in (logs or {}).items() if not np.isfinite(float(v))}
        if bad:
            self.failure = (step, bad)
            self.model.stop_training = True
            return  # never checkpoint the broken state
        if step % self.config.sample_every == 0 or step == self.config.total_steps:
            self.write_samples(step)
        done = step >= self.config.total_steps
        if step % self.config.checkpoint_every == 0 or done or self.signum is not None:
            self.manager.save(checkpoint_number=step)
        if done or self.signum is not None:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.failure:
            return
        step = int(self.model.step.numpy())
        with self.writer.as_default(step=step):
            for name, value in (logs or {}).items():
                tf.summary.scalar(f"train/{name}", float(value))
            for name, optimizer in self.model.optimizers().items():
                tf.summary.scalar(f"learning_rate/{name}", float(optimizer.learning_rate.numpy()))

    def write_samples(self, step):
        """One PNG grid per scale of the EMA generator's fixed-latent samples, also to TensorBoard."""
        z = _sample_latents(self.config, self.model.latent_dim)
        outputs = _as_list(self.model(z, training=False))
        os.makedirs(os.path.join(self.workdir, "samples"), exist_ok=True)
        with self.writer.as_default(step=step):
            for images in outputs:
                res = images.shape[1]
                grid = images_lib.upscale_nearest(images_lib.make_grid(np.asarray(images)), 64)
                images_lib.save_image(os.path.join(self.workdir, "samples", f"step_{step:07d}_{res}x{res}.png"), grid)
                tf.summary.image(f"samples/{res}x{res}", grid[None])


def _write_config(config, workdir):
    """Saves config.json; on resume, warns about fields that changed since the first run."""
    path = os.path.join(workdir, "config.json")
    current = json.loads(config.to_json())
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        changed = sorted(k for k in set(current) | set(previous) if current.get(k) != previous.get(k))
        if changed:
            logging.warning("config differs from the run in %s: %s", workdir,
                            ", ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}" for k in changed))
    with open(path, "w") as f:
        json.dump(current, f, indent=2, sort_keys=True)


def _restore(model, workdir, keep):
    checkpoint = tf.train.Checkpoint(**model.checkpoint_items())
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(workdir, "checkpoints"), max_to_keep=keep)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info("resumed from %s (step %d)", manager.latest_checkpoint, int(model.step.numpy()))
    return manager


def export_model(model, config):
    """Exports the EMA generator to config.export_dir/<name>/<next version>/; returns the path."""
    name = config.export_name or config.method
    return export_lib.export_generator(model.export_generator(), config.export_dir, name,
                                       latent_dim=model.latent_dim, method=config.method,
                                       metadata={"step": int(model.step.numpy())})


def train(config, workdir, strategy=None, verbose=1):
    """Trains (or resumes) the configured method in `workdir`.

    Args:
        config: ml_collections.ConfigDict from `keras_pgen.get_config(method, preset)`.
        workdir: str. Checkpoints, samples, TensorBoard logs and config.json go here;
            an existing workdir is resumed.
        strategy: optional tf.distribute.Strategy (default: from `config.strategy`).
        verbose: Keras progress bar verbosity (1 = bar, 2 = one line per log interval, 0 = silent).

    Returns:
        dict with "step", "workdir" and "export_path" (None when config.export is False).

    Raises:
        NonFiniteLossError: a loss became NaN/inf (the last good checkpoint is kept).
        TrainingInterrupted: SIGINT/SIGTERM stopped the run (a checkpoint was saved).
    """
    os.makedirs(workdir, exist_ok=True)
    _write_config(config, workdir)
    strategy = strategy or make_strategy(config.strategy)
    source = data_lib.load_source(config.data, config.resolution, config.channels, resize_mode=config.resize_mode,
                                  seed=config.seed, cache_dir=os.path.join(workdir, "data_cache"),
                                  num_images=config.num_images or None)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = registry.build_model(config)
    manager = _restore(model, workdir, config.keep_checkpoints)
    start = int(model.step.numpy())
    if start < config.total_steps:
        dataset = data_lib.make_train_dataset(source, config.batch_size, seed=config.seed, start_step=start,
                                              flip=config.flip, noise_spec=model.noise_spec())
        monitor = TrainingMonitor(config, workdir, manager)
        initial_epoch = start // config.log_every
        epochs = initial_epoch + math.ceil((config.total_steps - start) / config.log_every)
        model.fit(dataset, steps_per_epoch=config.log_every, epochs=epochs, initial_epoch=initial_epoch,
                  callbacks=[monitor], verbose=verbose, shuffle=False)
        step = int(model.step.numpy())
        if monitor.failure:
            bad_step, bad = monitor.failure
            raise NonFiniteLossError(
                f"non-finite loss at step {bad_step} ({', '.join(f'{k}={v}' for k, v in bad.items())}); "
                "training stopped, " + (f"last good checkpoint kept: {manager.latest_checkpoint}"
                                        if manager.latest_checkpoint else "no checkpoint had been saved yet"))
        if monitor.signum is not None:
            raise TrainingInterrupted(f"interrupted at step {step}; checkpoint saved in {workdir}/checkpoints; "
                                      "run the same command again to continue", monitor.signum)
    step = int(model.step.numpy())
    export_path = export_model(model, config) if config.export else None
    if export_path:
        logging.info("exported the generator to %s", export_path)
    return {"step": step, "workdir": workdir, "export_path": export_path, "model": model}


def export_from_workdir(workdir, name=None, export_dir=None):
    """Rebuilds the model of `workdir` from its config.json and latest checkpoint and exports it."""
    import ml_collections

    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {workdir!r} a keras_pgen training workdir?")
    with open(path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    if name:
        config.export_name = name
    if export_dir:
        config.export_dir = export_dir
    model = registry.build_model(config)
    manager = _restore(model, workdir, config.keep_checkpoints)
    if not manager.latest_checkpoint:
        raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints to export")
    return export_model(model, config)
