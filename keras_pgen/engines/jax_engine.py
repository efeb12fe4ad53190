"""The JAX engine's primitives (see keras_pgen/engines/__init__.py): one jitted, stateless step.

The step runs a method's `train_updates(batch)` under a `keras.StatelessScope` that holds the
value of every variable of the run (networks, EMA networks, optimizers, counters). Each
`minimize` differentiates its `loss_fn` with `jax.value_and_grad` under an inner scope where
the updated variables are the arguments, then applies the optimizer in the outer scope, so
the next update (and the EMA) sees the new values, as with TensorFlow's in-place updates.
The step returns the new values of every variable: nothing is assigned until the trainer
says so (`write_back`).

Several devices: the batch is sharded along its first axis and the state replicated
(`jax.sharding`, what `keras.distribution.DataParallel` lays out); `jax.jit` partitions the
step, so every loss sees the global batch, as on one device, without a gather.
"""
import jax
import jax.numpy as jnp
import keras


class _Scope(keras.StatelessScope):
    """A StatelessScope over a mapping `id(variable) -> value` that records which variables were assigned."""

    def __init__(self, mapping):
        super().__init__()
        self.state_mapping = dict(mapping)
        self.updated = {}

    def add_update(self, update):
        variable, value = update
        self.state_mapping[id(variable)] = value
        self.updated[id(variable)] = variable


def _scope():
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    scope = get_stateless_scope()
    if not isinstance(scope, _Scope):
        raise RuntimeError("the JAX engine's minimize runs inside its step function (jax_engine.stateless_step)")
    return scope


def num_replicas():
    return 1


def gather_replicas(x):
    return x


def global_mean(x):
    return x


def minimize(optimizer, variables, loss_fn, apply_if=None):
    outer = _scope()
    variables = list(variables)
    assigned = {}  # id -> variable assigned inside loss_fn (BatchNorm statistics, ...)

    def loss_of(values):
        inner = _Scope(outer.state_mapping)
        inner.state_mapping.update((id(v), x) for v, x in zip(variables, values))
        with inner:
            loss, aux = loss_fn()
            scaled = (optimizer.scale_loss(loss) if isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
                      else loss)
        assigned.update(inner.updated)
        return scaled, (loss, aux, {i: inner.state_mapping[i] for i in inner.updated})

    values = [outer.state_mapping[id(v)] for v in variables]
    (_, (loss, aux, updates)), grads = jax.value_and_grad(loss_of, has_aux=True)(values)
    for i, value in updates.items():
        assigned[i].assign(value)
    _apply(optimizer, grads, variables, None if apply_if is None else apply_if(loss, aux))
    return loss, aux


def _apply(optimizer, grads, variables, where=None):
    """`optimizer.apply(grads, variables)` on the current values (assignments land in the step's scope).

    With `where` (a bool scalar), the update is computed and then undone where it does not
    hold: the variables and the optimizer's state (moments, iteration count, loss scale) keep
    their values, as `tf_engine._apply_if` does.
    """
    scope = _scope()
    state = list(variables) + list(optimizer.variables)
    before = [scope.state_mapping[id(v)] for v in state]
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        _apply_loss_scaled(optimizer, grads, variables)
    else:
        optimizer.apply(grads, variables)
    if where is not None:
        for v, old in zip(state, before):
            v.assign(jnp.where(where, scope.state_mapping[id(v)], old))


def _apply_loss_scaled(optimizer, grads, variables):
    """`LossScaleOptimizer.apply(grads, variables)`: dynamic loss scaling of any subset of its variables.

    Keras' `apply` assigns inside `ops.cond`, which JAX cannot trace in a scope, and its
    `stateless_apply` updates every variable the optimizer was built with (ProGAN updates the
    current stage's). The same rule without branches: the gradients (of the scaled loss) are
    divided by the scale and applied by the inner optimizer only where all are finite;
    otherwise the step is skipped and the scale halves. After `dynamic_growth_steps` finite
    steps in a row the scale doubles; either change restarts the count.
    """
    finite = optimizer.check_finite(grads)
    scale, count = optimizer.dynamic_scale.value, optimizer.step_counter.value
    unscaled = [g if optimizer._overwrite_variable_with_gradient(v) else g / scale for g, v in zip(grads, variables)]
    _apply(optimizer.inner_optimizer, unscaled, variables, where=finite)
    grow = finite & (count == optimizer.dynamic_growth_steps - 1)
    optimizer.dynamic_scale.assign(jnp.where(finite, jnp.where(grow, scale * 2.0, scale), scale * 0.5))
    optimizer.step_counter.assign(jnp.where(finite & ~grow, count + 1, jnp.zeros_like(count)))


def input_gradients(fn, inputs):
    outer = _scope()

    def total(x):
        with _Scope(outer.state_mapping):  # what fn assigns here (BatchNorm statistics) is dropped
            return jnp.sum(fn(x))

    return jax.grad(total)(inputs)


def state_variables(model):
    """Every variable a training step reads or writes: the model's (networks, EMA, counters) and its optimizers'."""
    seen, out = set(), []
    for v in list(model.variables) + [v for o in model.optimizers().values() for v in o.variables]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def stateless_step(model, variables):
    """`step(values, batch) -> (new values, logs)`: `model.train_updates(batch)` as a pure function of `values`."""

    def step(values, batch):
        scope = _Scope({id(v): jnp.asarray(x, v.dtype) for v, x in zip(variables, values)})
        with scope:
            logs = model.train_updates(batch)
        return [scope.state_mapping[id(v)] for v in variables], logs

    return step


def read_state(variables):
    return [v.value for v in variables]


def write_back(variables, values):
    """Assigns the step's values to the Keras variables (before saving, sampling or a new stage)."""
    for v, x in zip(variables, values):
        v.assign(x)


def check_range(labels, upper, message):
    return labels
