"""The TensorFlow engine's primitives (see keras_pgen/engines/__init__.py): tapes and tf.distribute.

`train_step` runs once per replica on 1/N of the global batch and the optimizers SUM the
replicas' gradients, so each update's loss is divided by the number of replicas here;
batch-coupled losses gather logits across replicas (`gather_replicas`, differentiable).
"""
import keras
import tensorflow as tf


def num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def gather_replicas(x):
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_gather(x, axis=0)


def global_mean(x):
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x) / ctx.num_replicas_in_sync


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


def minimize(optimizer, variables, loss_fn, apply_if=None):
    variables = list(variables)
    with tf.GradientTape() as tape:
        loss, aux = loss_fn()
        scaled = loss / num_replicas()
    grads = gradients(optimizer, tape, scaled, variables)
    if apply_if is None:
        optimizer.apply(grads, variables)
    else:
        _apply_if(apply_if(loss, aux), optimizer, grads, variables)
    return loss, aux


def _apply_if(update, optimizer, grads, variables):
    """optimizer.apply only where `update` holds (the same on every replica).

    A tf.cond around `apply` is not allowed under MirroredStrategy (its gradient all-reduce
    is a synchronisation point), so the update is always computed and then undone: the
    variables and the optimizer's state (moments, iteration count) are put back.
    """
    state = list(variables) + list(optimizer.variables)
    before = [tf.identity(v) for v in state]
    optimizer.apply(grads, variables)
    for variable, old in zip(state, before):
        variable.assign(tf.where(update, variable, old))


def input_gradients(fn, inputs):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        total = tf.reduce_sum(fn(inputs))
    return tape.gradient(total, inputs)


def check_range(labels, upper, message):
    labels = tf.convert_to_tensor(labels)
    checks = [tf.debugging.assert_non_negative(labels, message=message),
              tf.debugging.assert_less(labels, tf.cast(upper, labels.dtype), message=message)]
    with tf.control_dependencies(checks):
        return tf.identity(labels)
