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

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_pgen import checkpoints
from keras_pgen import data as data_lib
from keras_pgen import images as images_lib
from keras_pgen import metrics as metrics_lib
from keras_pgen import registry
from keras_pgen import runs
from keras_pgen.runs import (NonFiniteLossError, TrainingInterrupted, _stage_start_sample,  # noqa: F401
                             _write_config, warn_if_grey)
from keras_pgen.models.base import precision_policy


_STRATEGIES = {}


def make_strategy(name="auto"):
    """tf.distribute strategy by name: auto (mirrored when >1 GPU), default, mirrored, multi_worker.

    multi_worker is MultiWorkerMirroredStrategy, configured by the TF_CONFIG environment
    variable (the cluster's workers and this process's index; see the README).

    A mirrored strategy is created once per process and reused: two MirroredStrategy
    objects in one process (a notebook training twice) reuse the same collective
    instance keys and abort with "Shape mismatch in the collective instance".
    """
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name in ("mirrored", "multi_worker"):
        if name == "multi_worker" and not os.environ.get("TF_CONFIG"):
            raise ValueError("strategy 'multi_worker' needs the TF_CONFIG environment variable (the cluster and "
                             "this worker's index); see the README's multi-host section")
        if name not in _STRATEGIES:
            _STRATEGIES[name] = (tf.distribute.MirroredStrategy() if name == "mirrored"
                                 else tf.distribute.MultiWorkerMirroredStrategy())
        return _STRATEGIES[name]
    raise ValueError(f"unknown strategy {name!r}; choose from ['auto', 'default', 'mirrored', 'multi_worker']")


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._num_workers > 1


def worker_role(strategy):
    """(is_chief, worker index) of this process: the chief writes samples, logs, checkpoints and exports."""
    if not is_multi_worker(strategy):
        return True, 0
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return (task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)), task_id


def preview_batch(config, source, latent_dim):
    """The fixed inputs of every sample grid (`runs.preview_batch`), latents from TensorFlow's stateless normal."""
    batch = runs.preview_batch(config, source, latent_dim,
                               lambda shape: tf.random.stateless_normal(shape, seed=[config.seed, 7919]))
    return {k: tf.constant(v) for k, v in batch.items()}


class TrainingMonitor(keras.callbacks.Callback):
    """Per-step bookkeeping: NaN guard, samples, checkpoints, TensorBoard, stop at the last step, signals.

    Args:
        config: the run's ConfigDict.
        workdir: str. Samples go to workdir/samples, TensorBoard events to workdir/tensorboard.
        manager: tf.train.CheckpointManager.
    """

    def __init__(self, config, workdir, manager, preview, end_step=None, is_chief=True):
        super().__init__()
        self.config = config
        self.is_chief = is_chief
        self.preview = preview
        self.end_step = config.total_steps if end_step is None else end_step
        self.workdir = workdir
        self.manager = manager
        self.writer = (tf.summary.create_file_writer(os.path.join(workdir, "tensorboard")) if is_chief
                       else tf.summary.create_noop_writer())
        self.failure = None
        self._signals = runs.StopSignals()
        self.signals = self._signals  # what records the signal this process received (.signum): the run's
        # Multi-worker: stop only on a stop the workers agreed on (run_custom_loop sets both), so that
        # a signal arriving in the middle of a step cannot make one worker leave before the others.
        self.coordinated = False
        self.agreed_signum = None

    @property
    def signum(self):
        return self.signals.signum

    def on_train_begin(self, logs=None):
        self.signals = self._signals.__enter__()  # the run's (`train`), else this callback's own
        self.signals.then = runs.StopSignals.TRAINING  # the first SIGINT/SIGTERM: a clean stop after this step

    def on_train_end(self, logs=None):
        self._signals.__exit__()  # a no-op under the run's
        self.writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.step.numpy())
        bad = {k: float(v) for k, v in (logs or {}).items() if not np.isfinite(float(v))}
        if bad:
            self.failure = (step, bad)
            self.model.stop_training = True
            return  # never checkpoint the broken state
        if self.is_chief and (step % self.config.sample_every == 0 or step == self.config.total_steps):
            self.write_samples(step)
        done = step >= self.config.total_steps
        stop_signal = self.stop_signal()
        if step % self.config.checkpoint_every == 0 or done or stop_signal is not None:
            self.manager.save(checkpoint_number=step)
        if done or step >= self.end_step or stop_signal is not None:
            self.model.stop_training = True

    def stop_signal(self):
        """The signal that stops training after this step (None: go on)."""
        return self.agreed_signum if self.coordinated else self.signum

    def on_epoch_end(self, epoch, logs=None):
        if self.failure or not self.is_chief:
            return
        step = int(self.model.step.numpy())
        with self.writer.as_default(step=step):
            for name, value in (logs or {}).items():
                tf.summary.scalar(f"train/{name}", float(value))
            for name, optimizer in self.model.optimizers().items():
                tf.summary.scalar(f"learning_rate/{name}", float(optimizer.learning_rate.numpy()))
            for name, value in self.model.scalars().items():
                tf.summary.scalar(name, float(value))

    def write_samples(self, step):
        """One PNG grid per named preview of the model (scales, reconstructions, ...), also to TensorBoard."""
        os.makedirs(os.path.join(self.workdir, "samples"), exist_ok=True)
        with self.writer.as_default(step=step):
            for name, images in self.model.preview(self.preview).items():
                grid = images_lib.upscale_nearest(images_lib.make_grid(np.asarray(images)), 64)
                images_lib.save_image(os.path.join(self.workdir, "samples", f"step_{step:07d}_{name}.png"), grid)
                tf.summary.image(f"samples/{name}", grid[None])


def checkpoint_step(path):
    """The training step stored in checkpoint `path`, after reading every tensor of it.

    Read before restoring (ProGAN grows to the step first); reading it all makes a truncated
    or half-deleted checkpoint fail here, where the one before it can be used instead.
    """
    reader = tf.train.load_checkpoint(path)
    for key in reader.get_variable_to_shape_map():
        reader.get_tensor(key)
    return int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


def latest_checkpoint(directory):
    """`(path, step)` of the newest checkpoint in `directory` that reads, or None when there is none.

    Found from the checkpoint files themselves (`checkpoints.tf_steps`), not from TensorFlow's
    state file, which may be missing or stale. A newer checkpoint that does not read is named
    in a warning and skipped (`checkpoints.newest_readable`).

    Raises:
        FileNotFoundError: there are checkpoints but none reads.
    """
    prefixes = [os.path.join(directory, f"ckpt-{step}") for step in checkpoints.tf_steps(directory)]
    return checkpoints.newest_readable(prefixes, checkpoint_step)


def _restore(model, workdir, changes=(), flags=()):
    """Restores the newest readable checkpoint of `workdir` into `model` (prepared for its step first).

    The optimizers keep the model's learning rates, from its config (`runs.learning_rates_kept`).
    Returns the checkpoint's path, or None when the workdir has none (`model` prepared for step 0).

    Raises:
        ValueError: the checkpoint does not fit the model (other networks, shapes or optimizer
            state); the message names `changes`, the config fields that differ from the run's, and
            `flags`, those that give back the values of fields the run began without. Also a
            workdir of the JAX engine.
        FileNotFoundError: checkpoints exist but none reads.
    """
    directory = os.path.join(workdir, "checkpoints")
    if not checkpoints.tf_steps(directory) and checkpoints.steps(directory):
        raise ValueError(f"{workdir} was trained with the JAX engine (checkpoints/ckpt-N.npz): resume it with "
                         "--backend=jax (a run resumes under the engine that began it; bin/export exports either)")
    latest, step = latest_checkpoint(directory) or (None, 0)
    model.prepare(step)
    if latest:
        checkpoint = tf.train.Checkpoint(**model.checkpoint_items())
        try:
            with runs.learning_rates_kept(model):
                checkpoint.restore(latest).assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as error:
            raise runs.resume_error(workdir, latest, error, changes, flags) from error
        logging.info("resumed from %s (step %d)", latest, int(model.step.numpy()))
    return latest


def export_model(model, config):
    """Exports the model as its method does to config.export_dir/<name>/<next version>/; returns the path."""
    name = config.export_name or config.method
    return model.export_to(config.export_dir, name, {"method": config.method, "step": int(model.step.numpy())})


def _checkpoint_dir(workdir, is_chief, worker):
    """The chief's checkpoints are the run's; other workers save (every worker must) to a scratch dir."""
    return os.path.join(workdir, "checkpoints" if is_chief else f".worker{worker}_checkpoints")


def train(config, workdir, strategy=None, verbose=1):
    """Trains (or resumes) the configured method in `workdir`.

    Args:
        config: ml_collections.ConfigDict from `keras_pgen.get_config(method, preset)`.
        workdir: str. Checkpoints, samples, TensorBoard logs and config.json go here;
            an existing workdir is resumed. Multi-worker runs need it on a file system
            every worker sees (the chief writes, every worker restores from it).
        strategy: optional tf.distribute.Strategy (default: from `config.strategy`).
        verbose: Keras progress bar verbosity (1 = bar, 2 = one line per log interval, 0 = silent).

    Returns:
        dict with "step", "workdir", "export_path" (None when config.export is False or on a
        non-chief worker) and "model".

    Raises:
        NonFiniteLossError: a loss became NaN/inf (the last good checkpoint is kept).
        TrainingInterrupted: SIGINT/SIGTERM stopped the run: before training, with nothing written;
            during training, after a step, with its checkpoint saved; after training, before the
            export. On several workers, a signal to any one of them during training stops all of
            them after the same step.
        FileNotFoundError: the workdir has checkpoints but none reads.
    """
    with runs.StopSignals() as stop:
        return _train(config, workdir, strategy, verbose, stop)


def _train(config, workdir, strategy, verbose, stop):
    """`train`'s body, with the run's `runs.StopSignals`."""
    strategy = strategy or make_strategy(config.strategy)
    is_chief, worker = worker_role(strategy)
    changes, flags = runs.resume_changes(config, workdir)
    if changes and is_chief:
        logging.warning("config differs from the run in %s: %s", workdir, ", ".join(changes))
    source = data_lib.load_source(config.data, config.resolution, config.channels, resize_mode=config.resize_mode,
                                  seed=config.seed, num_images=config.num_images or None,
                                  cache_dir=os.path.join(workdir, "data_cache" if is_chief else f".worker{worker}_cache"))
    if is_chief:
        warn_if_grey(source)
    before_training = f"interrupted before training: nothing written in {workdir}"
    stop.check(before_training)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope(), precision_policy(config):
        model = registry.build_model(config)
    _restore(model, workdir, changes=changes, flags=flags)
    first_step = int(model.step.numpy())
    stop.check(before_training)  # the last moment before anything is written
    stop.then = runs.StopSignals.TRAINING  # from here on a signal stops the run after a step, with a checkpoint
    os.makedirs(workdir, exist_ok=True)
    if is_chief:
        _write_config(config, workdir)
    checkpoint = tf.train.Checkpoint(**model.checkpoint_items())
    manager = tf.train.CheckpointManager(checkpoint, _checkpoint_dir(workdir, is_chief, worker),
                                         max_to_keep=config.keep_checkpoints if is_chief else 1)
    preview = preview_batch(config, source, model.latent_dim)
    stages = model.stages(config.total_steps, config.batch_size)
    evaluation = metrics_lib.evaluation_callbacks(config, source, workdir)  # KID/FID every eval_every steps
    custom_loop = is_multi_worker(strategy)
    for index, stage in enumerate(stages):
        start = int(model.step.numpy())
        end = min(stage.end_step, config.total_steps)
        if start >= end:
            continue  # finished before (this run or the one resumed)
        if start == stage.start_step:
            model.start_stage(stage)  # ProGAN: grow, fresh optimizer state; after a restore too

        def dataset(shard=None, stage=stage, index=index, start=start):
            return data_lib.make_train_dataset(
                source, stage.batch_size, seed=config.seed, start_sample=_stage_start_sample(stages, index, start),
                resolution=stage.resolution, flip=config.flip, noise_spec=model.noise_spec(),
                with_labels=model.uses_labels, shard=shard)

        monitor = TrainingMonitor(config, workdir, manager, preview, end_step=end, is_chief=is_chief)
        if custom_loop:
            run_custom_loop(model, strategy, dataset, stage.batch_size, start, end, monitor, config,
                            verbose=verbose if is_chief else 0)
        else:
            initial_epoch = start // config.log_every
            epochs = initial_epoch + math.ceil((end - start) / config.log_every)
            model.fit(dataset(), steps_per_epoch=config.log_every, epochs=epochs, initial_epoch=initial_epoch,
                      callbacks=[monitor, *evaluation], verbose=verbose, shuffle=False)
        step = int(model.step.numpy())
        if monitor.failure:
            bad_step, bad = monitor.failure
            raise NonFiniteLossError(
                f"non-finite loss at step {bad_step} ({', '.join(f'{k}={v}' for k, v in bad.items())}); "
                "training stopped, " + (f"last good checkpoint kept: {manager.latest_checkpoint}"
                                        if manager.latest_checkpoint else "no checkpoint had been saved yet"))
        if monitor.stop_signal() is not None:
            raise TrainingInterrupted(f"interrupted at step {step}; checkpoint saved in {workdir}/checkpoints; "
                                      "run the same command again to continue", monitor.stop_signal())
    stop.then = runs.StopSignals.AFTER_TRAINING
    step = int(model.step.numpy())
    export_path = runs.export_new_steps(stop, workdir, first_step, step, config.export and is_chief,
                                        lambda: export_model(model, config))
    return {"step": step, "workdir": workdir, "export_path": export_path, "model": model}


def run_custom_loop(model, strategy, make_dataset, batch_size, start, end, monitor, config, verbose=1):
    """Steps [start, end) without `fit()`: the loop for MultiWorkerMirroredStrategy.

    Keras 3's `fit()` does not work with MultiWorkerMirroredStrategy on several workers
    (keras-team/keras#20585). This loop runs the model's own `train_step` per replica with
    `strategy.run` and drives the same `TrainingMonitor` as `fit()` does. Each worker's input
    pipeline makes only its rows of every global batch (`make_train_dataset(shard=...)`), so
    N workers see exactly the global batch of one process. A stop request (a signal to any
    worker) is summed over the replicas inside the step, so every worker stops, and saves,
    after the same step.
    """
    def dataset_fn(context):
        shard = (context.input_pipeline_id, context.num_input_pipelines)
        per_replica = context.get_per_replica_batch_size(batch_size)
        dataset = make_dataset(shard=shard)
        if per_replica * context.num_input_pipelines != batch_size:  # several replicas on this worker
            dataset = dataset.unbatch().batch(per_replica, drop_remainder=True)
        return dataset

    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))
    replica_step = tf.function(model.train_step, jit_compile=bool(config.jit_compile), reduce_retracing=True)

    @tf.function
    def distributed_step(iterator, stop):
        logs = strategy.run(replica_step, args=(next(iterator),))
        stops = strategy.run(lambda s: tf.identity(s), args=(stop,))
        logs = {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in logs.items()}
        return logs, strategy.reduce(tf.distribute.ReduceOp.SUM, stops, axis=None)

    monitor.set_model(model)
    monitor.coordinated = True
    monitor.on_train_begin()
    model.stop_training = False
    try:
        for metric in model.metrics:
            metric.reset_state()
        for step in range(start, end):
            stop = tf.constant(0 if monitor.signum is None else 1, tf.int32)
            logs, stops = distributed_step(iterator, stop)
            logs = {k: float(v) for k, v in logs.items()}
            if int(stops):  # some worker was told to stop before this step: all stop after it
                monitor.agreed_signum = monitor.signum or signal.SIGTERM
            monitor.on_train_batch_end(step - start, logs)
            if (step + 1) % config.log_every == 0 or model.stop_training or step + 1 == end:
                monitor.on_epoch_end(step // config.log_every, logs)
                for metric in model.metrics:
                    metric.reset_state()
                if verbose:
                    print(f"step {step + 1}/{config.total_steps} - "
                          + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()), flush=True)
            if model.stop_training:
                break
    finally:
        monitor.on_train_end()


def load_from_workdir(workdir, require=(), check=None):
    """`(model, config)` of a training workdir: its method rebuilt from config.json, its newest checkpoint restored.

    The checkpoint is TensorFlow's (this engine's runs: every item) or a numpy archive of the JAX
    engine (`keras_pgen.checkpoints`), which may hold only some items (an export-only checkpoint
    with the EMA generator alone restores that); `require` names the items it must hold
    (e.g. ("discriminator",)). `check(model, config)`, when given, runs on the built model before its
    checkpoint is read (raise to refuse it). The model is prepared for the checkpoint's step (ProGAN's stage).

    Raises:
        FileNotFoundError: no config.json (not a keras_pgen workdir), or no checkpoint.
        ValueError: the checkpoint does not fit the config's model, or lacks an item of `require`.
    """
    import ml_collections

    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {workdir!r} a keras_pgen training workdir?")
    with open(path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    with precision_policy(config):
        model = registry.build_model(config)
    if check is not None:
        check(model, config)
    directory = os.path.join(workdir, "checkpoints")
    if not checkpoints.tf_steps(directory) and checkpoints.steps(directory):
        _, step = checkpoints.restore_latest(model, directory, workdir, subset=True, require=require)
        model.step.assign(step)
    elif not _restore(model, workdir):
        raise FileNotFoundError(f"no checkpoint in {directory}")
    return model, config


def export_from_workdir(workdir, name=None, export_dir=None):
    """Rebuilds the model of `workdir` from its config.json and latest checkpoint and exports it.

    The checkpoint is TensorFlow's (this engine's runs) or a numpy archive of the JAX engine
    (`keras_pgen.checkpoints`; one holding only the EMA generator exports too): `load_from_workdir`.
    """
    model, config = load_from_workdir(workdir)
    if name:
        config.export_name = name
    if export_dir:
        config.export_dir = export_dir
    return export_model(model, config)
