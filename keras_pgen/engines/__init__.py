"""Training engines: how a method's updates run on a backend. Only this package knows the backend.

A method writes its training step once, in `keras.ops`, as a sequence of updates
(`Method.train_updates`): each update is `minimize(optimizer, variables, loss_fn)`, where
`loss_fn()` calls the networks as usual and returns `(loss, aux)`. The engine of Keras'
backend runs it:

- `tf_engine` (KERAS_BACKEND=tensorflow, the default): `tf.GradientTape`, `optimizer.apply`,
  one call per replica under `tf.distribute` (losses divided by the number of replicas, which
  the optimizers sum), driven by Keras `fit()` in `keras_pgen.training`.
- `jax_engine` (KERAS_BACKEND=jax): `jax.value_and_grad` of `loss_fn` run under a
  `keras.StatelessScope` holding the values of every variable, the whole step in one `jax.jit`
  over the global batch (data parallel by sharding, so batch-coupled losses see the global
  batch), driven by `keras_pgen.engines.jax_trainer` without TensorFlow.

The functions below dispatch on `keras.backend.backend()`. models/ imports these, never
`tensorflow` or `jax`.
"""
import importlib

import keras

ENGINES = {"tensorflow": "keras_pgen.engines.tf_engine", "jax": "keras_pgen.engines.jax_engine"}


def backend():
    return keras.backend.backend()


def engine():
    """The engine module of Keras' backend (a clear error for backends without one)."""
    name = backend()
    if name not in ENGINES:
        raise RuntimeError(f"keras_pgen trains with the tensorflow or jax backend of Keras, not {name!r}; "
                           f"set KERAS_BACKEND to one of {sorted(ENGINES)}")
    return importlib.import_module(ENGINES[name])


def minimize(optimizer, variables, loss_fn, apply_if=None):
    """One optimizer update of `variables` down the gradient of `loss_fn()`'s loss; returns `(loss, aux)`.

    Args:
        optimizer: a built keras optimizer (a LossScaleOptimizer scales the gradients).
        variables: the trainable variables to update.
        loss_fn: `() -> (loss, aux)`: a scalar loss, this replica's mean over its samples, and any
            structure of tensors to return (logits, values to log).
        apply_if: optional `(loss, aux) -> bool scalar`: the update (variables and optimizer
            state) only takes effect where it holds (DeePSiM's discriminator pause).
    """
    return engine().minimize(optimizer, variables, loss_fn, apply_if)


def input_gradients(fn, inputs):
    """d sum(fn(inputs)) / d inputs, a tensor or a list like `inputs` (gradient penalties, R1)."""
    return engine().input_gradients(fn, inputs)


def num_replicas():
    """Replicas that each run the step on a part of the batch (TF strategies; 1 under JAX)."""
    return engine().num_replicas()


def gather_replicas(x):
    """`x` of every replica concatenated along the batch axis (identity on one replica and under JAX)."""
    return engine().gather_replicas(x)


def global_mean(x):
    """The mean over replicas of a per-replica mean: the global batch's mean (identity on one replica)."""
    return engine().global_mean(x)


def check_range(labels, upper, message):
    """`labels`, checked to lie in [0, upper) where the engine can check inside the step (TensorFlow).

    The JAX engine cannot raise from inside a jitted step; its trainer checks the data before
    training instead (`Method.check_source`).
    """
    return engine().check_range(labels, upper, message)
