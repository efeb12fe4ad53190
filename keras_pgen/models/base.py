"""`Method`: the hooks every trainable method gives `training.train` (GANs, autoencoders, pgen).

training.py never asks which method it runs; it calls these hooks:

- `noise_spec()`: per-sample random inputs the input pipeline draws (stateless, keyed on the
  global sample index, so 1 and N replicas see the same batch).
- `uses_labels`: whether batches carry integer "labels".
- `stages(total_steps, batch_size)`: the schedule as a list of `Stage`s (one by default;
  ProGAN has one per resolution and phase, with its own batch sizes).
- `prepare(step)`: called before restoring a checkpoint, so the model has the shape that
  step needs (idempotent; ProGAN builds the resolution of that step). The checkpoint's
  object structure must not depend on the step.
- `start_stage(stage)`: called when training reaches the first step of a stage (also right
  after restoring a checkpoint taken exactly there): `prepare` plus whatever a fresh stage
  does (ProGAN resets its optimizers' state as the paper does).
- `preview(batch)`: named image batches in [-1, 1] for the sample PNGs and TensorBoard.
- `scalars()`: extra values logged to TensorBoard each log interval (ProGAN's alpha).
- `export_to(export_dir, name, metadata)`: writes the SavedModel, returns its path.
- `checkpoint_items()`, `optimizers()`: what a resumed run restores; the learning rates logged.
"""
import collections

import keras
import tensorflow as tf

Stage = collections.namedtuple("Stage", ["start_step", "end_step", "batch_size", "resolution"])
Stage.__doc__ = """Steps [start_step, end_step) trained with `batch_size` images at `resolution` (None: the data's)."""


def num_replicas():
    """Replicas of the current strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def gather_replicas(x):
    """Concatenates `x` over replicas along the batch axis (identity on one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_gather(x, axis=0)


class Method(keras.Model):
    """Base of every method's model: a step counter, loss trackers and the training hooks.

    Subclasses create their networks, call `self.track(names)` for the values their
    `train_step` reports, and override the hooks they need (see the module docstring).

    Args:
        latent_dim: int or None. Size of the latent the sample previews draw (None: none).
    """

    uses_labels = False

    def __init__(self, latent_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.step = self.add_weight(name="step", shape=(), dtype="int64", initializer="zeros",
                                    trainable=False, aggregation="only_first_replica")
        self.trackers = {}

    def track(self, names):
        """Mean trackers for the named losses (reset every log interval by Keras)."""
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}

    def update_trackers(self, values):
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}

    @property
    def metrics(self):
        return list(self.trackers.values())

    # ---- hooks (defaults) ----------------------------------------------------------------------
    def noise_spec(self):
        return {}

    def stages(self, total_steps, batch_size):
        return [Stage(0, total_steps, batch_size, None)]

    def prepare(self, step):
        """Shapes the model for `step` (no-op unless the architecture changes during training)."""

    def start_stage(self, stage):
        """Called at the first step of `stage`; by default just `prepare(stage.start_step)`."""
        self.prepare(stage.start_step)

    def preview(self, batch):
        """Named float image batches in [-1, 1] from `batch` ({"z", "images", "labels"})."""
        raise NotImplementedError

    def scalars(self):
        return {}

    def export_to(self, export_dir, name, metadata):
        raise NotImplementedError

    def checkpoint_items(self):
        raise NotImplementedError

    def optimizers(self):
        raise NotImplementedError


# ---- optimizers and mixed precision (shared by every method) ------------------------------------
def make_adam(config, learning_rate):
    """Adam with the config's betas and epsilon; under `config.mixed_precision`, in a LossScaleOptimizer.

    The loss-scale state (dynamic scale, steps since its last change) is part of the
    optimizer's variables, so checkpoints save and restore it with the Adam moments.
    """
    optimizer = keras.optimizers.Adam(learning_rate, beta_1=config.beta_1, beta_2=config.beta_2,
                                      epsilon=config.adam_epsilon)
    if config.get("mixed_precision", False):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def gradients(optimizer, tape, loss, variables):
    """d loss / d variables, times the loss scale when `optimizer` is a LossScaleOptimizer.

    `optimizer.apply` then unscales them (and skips the step, lowering the scale, when a
    float16 gradient overflowed). Scaling through `output_gradients` equals differentiating
    `loss * scale` without recording the product on the tape.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        scale = tf.cast(optimizer.dynamic_scale, loss.dtype)
        return tape.gradient(loss, variables, output_gradients=scale)
    return tape.gradient(loss, variables)


class precision_policy:  # noqa: N801 (a context manager used like a function)
    """`with precision_policy(config):` builds networks under mixed_float16 when config.mixed_precision is set.

    Variables stay float32, computations run in float16; losses, perceptual features and
    optimizer math are float32 (the losses cast their inputs, the VGG16 extractor is built
    float32).
    """

    def __init__(self, config):
        self.policy = "mixed_float16" if config.get("mixed_precision", False) else None

    def __enter__(self):
        self.previous = keras.config.dtype_policy()
        if self.policy:
            keras.config.set_dtype_policy(self.policy)
        return self

    def __exit__(self, *exc):
        keras.config.set_dtype_policy(self.previous)
