"""The JAX engine's training loop (`bin/train --backend=jax`): every method, without TensorFlow.

The same run as `keras_pgen.training.train` (TensorFlow's `fit()`), in another engine:

- the model and its `train_updates` are the method's own (models/), run by
  `jax_engine.stateless_step` inside one `jax.jit` together with the batch's device side
  (uint8 -> [-1, 1], flips, every per-sample noise draw, keyed on (seed, name, global sample
  index) as in the tf.data pipeline): the host only gathers uint8 images by index;
- several local devices (GPUs): the batch is split over them (`keras.distribution.DataParallel`'s
  mesh), the state replicated; the losses see the global batch;
- losses stay on the device and are read every `log_every` steps (and before every checkpoint
  and sample grid): no host round trip per step. The NaN guard checks every step's losses
  then, and saves nothing after a non-finite one;
- checkpoints are numpy archives (`keras_pgen.checkpoints`), TensorBoard events are written
  by `keras_pgen.events`, sample grids by PIL;
- `eval_every`: `metrics.evaluator.GeneratorEvaluator` (the TF engine's callback's evaluation:
  the same latents, real images, floors and `eval/` tags) at step 0 of a fresh run and every
  `eval_every` steps, after the step's checkpoint;
- the SavedModel export needs TensorFlow: where it is installed, a TensorFlow subprocess
  exports the run (`training.export_from_workdir`); elsewhere the run says how to export it
  later.

Resume, SIGINT / SIGTERM and the config checks behave as under TensorFlow. The data order
and draws differ from the tf.data pipeline's (another permutation and random generator):
a run resumes under the engine that began it.
"""
import importlib.util
import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import keras
import numpy as np
from absl import logging

from keras_pgen import checkpoints
from keras_pgen import data as data_lib
from keras_pgen import events
from keras_pgen import images as images_lib
from keras_pgen import registry
from keras_pgen import runs
from keras_pgen.data.draws import _FLIP, _draw_specs, _key
from keras_pgen.engines import jax_engine
from keras_pgen.metrics import evaluator as evaluator_lib
from keras_pgen.models.base import precision_policy

# The step counter is int64; JAX without x64 holds it as int32 (2**31 steps), and says so at every read.
warnings.filterwarnings("ignore", message="Explicitly requested dtype int64")

STRATEGIES = ("auto", "default", "mirrored")


# ---- input -----------------------------------------------------------------------------------------
class HostBatches:
    """The host side of the input: global sample indices of each step and their uint8 images and labels.

    Sample g of the run is image `perm_e(g mod N)`, `e = g // N`, with a numpy permutation per
    epoch keyed on (seed, e): every epoch visits every image once, and step k of a resumed
    run gets exactly the samples of step k of an uninterrupted one.
    """

    def __init__(self, source, batch_size, seed, start_sample, with_labels):
        if len(source) < batch_size:
            raise ValueError(f"the data set has {len(source)} image(s), fewer than the batch size {batch_size}; "
                             f"use a smaller batch size or more images")
        self.source, self.batch_size, self.start_sample = source, int(batch_size), int(start_sample)
        self.key, self.with_labels, self._perms = _key(seed, "permutation"), with_labels, {}

    def _permutation(self, epoch):
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = np.random.default_rng([self.key, epoch]).permutation(len(self.source))
        return self._perms[epoch]

    def __call__(self, index):
        """Batch `index` of the stage: {"images" uint8, "samples" int32 [, "labels" int32]}."""
        samples = self.start_sample + index * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
        n = len(self.source)
        indices = np.array([self._permutation(int(g // n))[g % n] for g in samples], np.int64)
        images, labels = self.source.get(indices)
        batch = {"images": np.asarray(images, np.uint8), "samples": samples.astype(np.int32)}
        if self.with_labels:
            batch["labels"] = np.asarray(labels, np.int32)
        return batch


def device_batch(raw, seed, noise_spec, flip, factor):
    """The training batch from a host batch, on the device: images in [-1, 1] (flipped, pooled) and draws.

    Every draw of sample g comes from `jax.random` keyed on (seed, name) folded with g.
    """
    draws = _draw_specs(noise_spec, flip)
    samples = raw["samples"].astype(jnp.uint32)

    def per_sample(dist, shape, name):
        key = jax.random.PRNGKey(_key(seed, name) % (2**31))
        sample = jax.random.normal if dist == "normal" else jax.random.uniform
        return jax.vmap(lambda g: sample(jax.random.fold_in(key, g), shape, jnp.float32))(samples)

    values = {name: per_sample(dist, shape, key) for name, (dist, shape, key) in draws.items()}
    images = raw["images"].astype(jnp.float32) / 127.5 - 1.0
    if flip:
        flips = values.pop(_FLIP) < 0.5
        images = jnp.where(flips[:, None, None, None], images[:, :, ::-1], images)
    if factor > 1:
        b, h, w, c = images.shape
        images = images.reshape(b, h // factor, factor, w // factor, factor, c).mean((2, 4))
    batch = {"images": images, **values}
    if "labels" in raw:
        batch["labels"] = raw["labels"]
    return batch


def placement(strategy, batch_size):
    """(state sharding, batch sharding), or (None, None) on one device.

    "auto" and "mirrored" split each batch over every local device with
    `keras.distribution.DataParallel`'s mesh; "default" uses one device.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is not available under the JAX engine; choose from {list(STRATEGIES)}")
    devices = jax.local_devices()
    if strategy == "default" or len(devices) == 1:
        return None, None
    if batch_size % len(devices):
        raise ValueError(f"batch size {batch_size} does not split evenly over {len(devices)} devices")
    parallel = keras.distribution.DataParallel(devices=devices)
    mesh = parallel.device_mesh.backend_mesh
    spec = jax.sharding.PartitionSpec
    return (jax.sharding.NamedSharding(mesh, spec()),
            jax.sharding.NamedSharding(mesh, spec(parallel.batch_dim_name)))


class StageSteps:
    """The steps of one stage from global sample `start_sample` on: `values` (the state) and `run(index)`.

    Holds the stage's host input, its jitted step (`jax_engine.stateless_step` with the batch's
    device side) and the state placed on the devices (`placement`). `run(index)` trains batch
    `index` of the stage and returns its logs, still on the device.
    """

    def __init__(self, model, config, source, batch_size, resolution, start_sample):
        factor = 1 if resolution is None else source.resolution // int(resolution)
        self.host = HostBatches(source, batch_size, config.seed, start_sample, model.uses_labels)
        state_sharding, self.batch_sharding = placement(config.strategy, batch_size)
        self.variables = jax_engine.state_variables(model)
        step = jax_engine.stateless_step(model, self.variables)
        seed, noise_spec, flip = config.seed, model.noise_spec(), config.flip
        self.step = jax.jit(lambda values, raw: step(values, device_batch(raw, seed, noise_spec, flip, factor)))
        self.values = jax_engine.read_state(self.variables)
        if state_sharding is not None:
            self.values = jax.device_put(self.values, state_sharding)

    def run(self, index):
        raw = self.host(index)
        if self.batch_sharding is not None:
            raw = jax.device_put(raw, self.batch_sharding)
        self.values, logs = self.step(self.values, raw)
        return logs

    def write_back(self):
        jax_engine.write_back(self.variables, self.values)


# ---- bookkeeping --------------------------------------------------------------------------------------
def _to_float(x):
    return float(np.asarray(jax.device_get(x), np.float64))


def current_step(model):
    return int(keras.ops.convert_to_numpy(model.step.value))


def _restore(model, directory, workdir, changes, flags):
    """Restores the newest readable checkpoint into `model` (grown to its step first); returns its step or 0."""
    if checkpoints.tf_steps(directory) and not checkpoints.steps(directory):
        raise ValueError(f"{workdir} holds TensorFlow checkpoints: resume it with --backend=tensorflow "
                         "(a run resumes under the engine that began it)")
    restored = checkpoints.restore_latest(model, directory, workdir, changes=changes, flags=flags)
    if restored is None:
        model.prepare(0)
        return 0
    logging.info("resumed from %s (step %d)", *restored)
    return restored[1]


def write_samples(model, preview, workdir, writer, step):
    """One PNG grid per named preview of the model, also to TensorBoard."""
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
    for name, images in model.preview(preview).items():
        grid = images_lib.upscale_nearest(images_lib.make_grid(np.asarray(images)), 64)
        images_lib.save_image(os.path.join(workdir, "samples", f"step_{step:07d}_{name}.png"), grid)
        writer.image(f"samples/{name}", grid, step)


def set_random_seed(seed):
    """`keras.utils.set_random_seed` (Keras' global seed: the networks' initial weights), without TensorFlow.

    Keras' own also seeds TensorFlow, importing it wherever it is installed (seconds, and a
    JAX run that imports TensorFlow); the rest is the same: Python's and numpy's seeds and
    Keras' global seed generator.
    """
    import random

    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, int(seed))
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)


def tensorflow_available():
    """Whether a TensorFlow can export (not imported here: `sys.modules['tensorflow'] = None` counts as absent)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is not None
    return importlib.util.find_spec("tensorflow") is not None


def export_with_tensorflow(workdir):
    """Exports the workdir's latest checkpoint in a TensorFlow subprocess; returns the version path or None."""
    if not tensorflow_available():
        logging.warning("TensorFlow is not installed: no SavedModel exported. The checkpoints in %s/checkpoints are "
                        "complete: export them on a machine with TensorFlow with bin/export --workdir=%s",
                        workdir, workdir)
        return None
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    code = "import sys; from keras_pgen import training; print(training.export_from_workdir(sys.argv[1]))"
    # In a session of its own: the terminal's Ctrl-C goes to the run, which lets the export finish
    # (runs.export_new_steps); a second Ctrl-C ends the run, and subprocess.run kills the export.
    result = subprocess.run([sys.executable, "-c", code, workdir], env=env, capture_output=True, text=True,
                            start_new_session=True)
    if result.returncode:
        raise RuntimeError(f"the TensorFlow export of {workdir} failed: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout.strip().splitlines()[-1]


def set_xla_flags(flags):
    """Adds `flags` to XLA_FLAGS when JAX has not started its backends yet; returns whether they apply."""
    from jax._src import xla_bridge

    missing = [f for f in flags if f not in os.environ.get("XLA_FLAGS", "")]
    if not missing:
        return True
    if xla_bridge.backends_are_initialized():
        logging.warning("JAX is already running: XLA_FLAGS=%s (needed by this method on GPUs) cannot take effect; "
                        "set it before the first JAX computation", " ".join(missing))
        return False
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", "")] + missing).strip()
    return True


# ---- the loop -------------------------------------------------------------------------------------------
def train(config, workdir, verbose=1):
    """Trains (or resumes) the configured method in `workdir` with the JAX engine.

    Returns and raises as `keras_pgen.training.train`.
    """
    if keras.backend.backend() != "jax":
        raise RuntimeError(f"the JAX engine needs Keras' jax backend, but Keras runs {keras.backend.backend()!r}: "
                           "set KERAS_BACKEND=jax before Keras is imported (bin/train --backend=jax does)")
    with runs.StopSignals() as stop:
        return _train(config, workdir, verbose, stop)


def _train(config, workdir, verbose, stop):
    """`train`'s body, with the run's `runs.StopSignals`."""
    set_xla_flags(registry.xla_gpu_flags(config.method))
    changes, flags = runs.resume_changes(config, workdir)
    if changes:
        logging.warning("config differs from the run in %s: %s", workdir, ", ".join(changes))
    source = data_lib.load_source(config.data, config.resolution, config.channels, resize_mode=config.resize_mode,
                                  seed=config.seed, num_images=config.num_images or None,
                                  cache_dir=os.path.join(workdir, "data_cache"))
    runs.warn_if_grey(source)
    evaluator = evaluator_lib.evaluator_from_config(config, source)  # KID/FID every eval_every steps, or None
    before_training = f"interrupted before training: nothing written in {workdir}"
    stop.check(before_training)
    set_random_seed(config.seed)
    with precision_policy(config):
        model = registry.build_model(config)
    model.check_source(source)
    if evaluator is not None:
        evaluator.check(model)  # a method without a generator fails here, before anything is written
    directory = os.path.join(workdir, "checkpoints")
    first_step = _restore(model, directory, workdir, changes, flags)
    stop.check(before_training)  # the last moment before anything is written
    stop.then = runs.StopSignals.TRAINING  # from here on a signal stops the run after a step, with a checkpoint
    os.makedirs(workdir, exist_ok=True)
    runs._write_config(config, workdir)
    writer = events.EventWriter(os.path.join(workdir, "tensorboard"))
    if evaluator is not None:
        evaluator.write_scalar = writer.scalar
    rng = np.random.default_rng([config.seed, 7919])
    preview = runs.preview_batch(config, source, model.latent_dim, lambda shape: rng.standard_normal(shape))
    stages = model.stages(config.total_steps, config.batch_size)
    progress = keras.utils.Progbar(config.total_steps, verbose=verbose) if verbose else None
    for index, stage in enumerate(stages):
        start, end = current_step(model), min(stage.end_step, config.total_steps)
        if start >= end:
            continue
        if start == stage.start_step:
            model.start_stage(stage)
        _train_stage(model, config, workdir, source, stages, index, start, end, writer, preview, progress, stop,
                     evaluator)
    stop.then = runs.StopSignals.AFTER_TRAINING
    writer.close()
    step = current_step(model)
    export_path = runs.export_new_steps(stop, workdir, first_step, step, config.export,
                                        lambda: export_with_tensorflow(workdir))
    return {"step": step, "workdir": workdir, "export_path": export_path, "model": model}


def evaluate(evaluator, model, writer, step):
    """`evaluator.log` at `step` (the Keras variables hold the step's weights), flushed to TensorBoard."""
    evaluator.log(model, step)
    writer.flush()


def _train_stage(model, config, workdir, source, stages, index, start, end, writer, preview, progress, stop,
                 evaluator=None):
    """Steps [start, end) of stage `index`, with logs, samples, checkpoints, evaluations, the NaN guard and signals."""
    stage = stages[index]
    if evaluator is not None and start == 0 and evaluator.due(0):
        evaluate(evaluator, model, writer, 0)  # a fresh run: the untrained generator, where the curve starts
    steps = StageSteps(model, config, source, stage.batch_size, stage.resolution,
                       runs._stage_start_sample(stages, index, start))
    pending = []  # (step, logs on the device) since the last read
    totals = {}
    for step in range(start, end):
        logs = steps.run(step - start)
        pending.append((step + 1, logs))
        done = step + 1
        stopping = stop.signum is not None  # read once: a signal during the bookkeeping below stops after the next step
        sample = done % config.sample_every == 0 or done == config.total_steps
        save = done % config.checkpoint_every == 0 or done == end or stopping
        log = done % config.log_every == 0 or done == end or stopping
        judge = evaluator is not None and evaluator.due(done)
        if not (sample or save or log or judge):
            continue
        for at, logged in jax.device_get(pending):  # the NaN guard: every step since the last read
            bad = {k: float(v) for k, v in logged.items() if not np.isfinite(np.asarray(v, np.float64)).all()}
            if bad:
                kept = checkpoints.steps(os.path.join(workdir, "checkpoints"))
                raise runs.NonFiniteLossError(
                    f"non-finite loss at step {at} ({', '.join(f'{k}={v}' for k, v in bad.items())}); training "
                    "stopped, " + (f"last good checkpoint kept: {checkpoints.path(os.path.join(workdir, 'checkpoints'), kept[0])}"
                                   if kept else "no checkpoint had been saved yet"))
            for k, v in logged.items():
                totals.setdefault(k, []).append(float(np.mean(v)))
        pending = []
        steps.write_back()
        if log:
            means = {k: float(np.mean(v)) for k, v in totals.items()}
            totals = {}
            for name, value in means.items():
                writer.scalar(f"train/{name}", value, done)
            for name, optimizer in model.optimizers().items():
                writer.scalar(f"learning_rate/{name}", _to_float(optimizer.learning_rate), done)
            for name, value in model.scalars().items():
                writer.scalar(name, float(value), done)
            writer.flush()
            if progress is not None:
                progress.update(done, list(means.items()), finalize=done == config.total_steps)
        if sample:
            write_samples(model, preview, workdir, writer, done)
        if save:
            checkpoints.save(model, os.path.join(workdir, "checkpoints"), done, keep=config.keep_checkpoints)
        if judge:
            evaluate(evaluator, model, writer, done)
        if stopping:
            raise runs.TrainingInterrupted(f"interrupted at step {done}; checkpoint saved in {workdir}/checkpoints; "
                                           "run the same command again to continue", stop.signum)
    steps.write_back()
