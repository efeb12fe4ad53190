"""KID and FID of a training run's generator, every `eval_every` steps, logged to TensorBoard (with the shapes
judge: kinds covered, confidence and real-vs-real floors too): the TensorFlow engine's Keras callback.

The evaluation itself is `evaluator.GeneratorEvaluator` (Keras and numpy only, shared with the
JAX engine); this callback runs it from `fit()` and writes its scalars with `tf.summary`.
"""
import os

import keras
import numpy as np
import tensorflow as tf

from keras_pgen.metrics.evaluator import evaluator_from_config


class GeneratorMetrics(keras.callbacks.Callback):
    """Runs a `GeneratorEvaluator` at step 0 and every `evaluator.every` steps of `fit()`.

    A fresh run (step 0) is evaluated before its first step, so the curve starts from the
    untrained generator; a step whose losses are not finite is not evaluated (the NaN guard
    stops the run). Values go to TensorBoard under `eval/` (see `evaluator`), to the log, and
    to `evaluator.history`.

    Args:
        evaluator: a `GeneratorEvaluator`.
        logdir: str or None, TensorBoard directory (None: the evaluator's own `write_scalar`, if any).

    Example:
    >>> evaluator = GeneratorEvaluator(real, "pixels", every=100, num_samples=1000)   # doctest: +SKIP
    >>> model.fit(dataset, callbacks=[GeneratorMetrics(evaluator, "runs/x/tensorboard")])   # doctest: +SKIP
    """

    def __init__(self, evaluator, logdir=None):
        super().__init__()
        self.evaluator = evaluator
        self.writer = tf.summary.create_file_writer(logdir) if logdir else None
        if self.writer is not None:
            evaluator.write_scalar = self._write_scalar

    def _write_scalar(self, tag, value, step):
        with self.writer.as_default(step=step):
            tf.summary.scalar(tag, value)

    def _log(self, step):
        self.evaluator.log(self.model, step)
        if self.writer is not None:
            self.writer.flush()

    def on_train_begin(self, logs=None):
        self.evaluator.check(self.model)  # fails before the first step, not at the first evaluation
        step = int(self.model.step.numpy())
        if step == 0 and self.evaluator.due(0):
            self._log(0)  # the untrained generator: where the curve starts

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.step.numpy())
        if not self.evaluator.due(step):
            return
        if logs and not all(np.isfinite(float(v)) for v in logs.values()):
            return  # the NaN guard stops the run; nothing to evaluate
        self._log(step)


def evaluation_callbacks(config, source, workdir):
    """[GeneratorMetrics] for a training config with `eval_every` > 0, else [] (see `evaluator_from_config`)."""
    evaluator = evaluator_from_config(config, source)
    if evaluator is None:
        return []
    return [GeneratorMetrics(evaluator, logdir=os.path.join(workdir, "tensorboard"))]
