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

and its training step, `train_updates(batch) -> logs`, written once in `keras.ops` with the
engine primitives (`keras_pgen.engines.minimize`, ...): Keras `fit()` calls it through
`train_step` under TensorFlow, the JAX engine inside its jitted stateless step.
"""
import collections

import keras

from keras_pgen.engines import gather_replicas, num_replicas  # noqa: F401 (the methods' imports)

Stage = collections.namedtuple("Stage", ["start_step", "end_step", "batch_size", "resolution"])
Stage.__doc__ = """Steps [start_step, end_step) trained with `batch_size` images at `resolution` (None: the data's)."""



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

    # ---- training ----------------------------------------------------------------------------
    def train_updates(self, data):
        """One training step on the batch `data` (see the module docstring); returns the values to log."""
        raise NotImplementedError

    def train_step(self, data):
        """Keras `fit()`'s step (the TensorFlow engine): `train_updates` plus the loss trackers."""
        return self.update_trackers(self.train_updates(data))

    # ---- hooks (defaults) ----------------------------------------------------------------------
    def noise_spec(self):
        return {}

    def check_source(self, source):
        """Raises ValueError when the data cannot train this model (before anything is built); default: any data."""

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
    """Adam with the config's betas and epsilon; under float16 mixed precision, in a LossScaleOptimizer.

    The loss-scale state (dynamic scale, steps since its last change) is part of the
    optimizer's variables, so checkpoints save and restore it with the Adam moments.
    """
    optimizer = keras.optimizers.Adam(learning_rate, beta_1=config.beta_1, beta_2=config.beta_2,
                                      epsilon=config.adam_epsilon)
    if policy_name(config) == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer



MIXED_PRECISION_DTYPES = ("float16", "bfloat16")


def policy_name(config):
    """The Keras dtype policy of `config.mixed_precision` / `config.mixed_precision_dtype` (None: float32).

    float16 needs loss scaling (a LossScaleOptimizer, `make_adam`); bfloat16 (GPUs from Ampere
    on, TPUs) has float32's range and needs none.
    """
    if not config.get("mixed_precision", False):
        return None
    dtype = config.get("mixed_precision_dtype", "float16")
    if dtype not in MIXED_PRECISION_DTYPES:
        raise ValueError(f"unknown mixed_precision_dtype {dtype!r}; choose from {list(MIXED_PRECISION_DTYPES)}")
    return f"mixed_{dtype}"


class precision_policy:  # noqa: N801 (a context manager used like a function)
    """`with precision_policy(config):` builds networks under `policy_name(config)` (mixed float16 / bfloat16).

    Variables stay float32, computations run in float16 or bfloat16; losses, perceptual features and
    optimizer math are float32 (the losses cast their inputs, the VGG16 extractor is built
    float32).
    """

    def __init__(self, config):
        self.policy = policy_name(config)

    def __enter__(self):
        self.previous = keras.config.dtype_policy()
        if self.policy:
            keras.config.set_dtype_policy(self.policy)
        return self

    def __exit__(self, *exc):
        keras.config.set_dtype_policy(self.previous)
