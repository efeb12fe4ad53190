"""`make_train_dataset`: an infinite, deterministic, resumable tf.data pipeline of batches."""

import numpy as np
import tensorflow as tf

from keras_pgen.data.draws import _FLIP, _draw_specs, _key  # noqa: F401


def make_train_dataset(source, batch_size, *, seed=0, start_step=0, start_sample=None, resolution=None, flip=False,
                       noise_spec=None, with_labels=False, prefetch=True, shard=None):
    """An infinite `tf.data.Dataset` of training batches drawn from `source`.

    Batch s holds the global samples `g = s * batch_size + j`. Sample g is image
    `perm_e(g mod N)` of the source, where `e = g // N` is its epoch and `perm_e` a permutation
    that depends on `(seed, e)`, so every epoch visits every image once, and
    `start_step=k` resumes exactly at batch k. Flips and noise are drawn per sample from
    stateless generators seeded by `(seed, name, g)`: independent of the batch size and of
    how a batch is split across replicas.

    Args:
      source: a `Source` (see `load_source`).
      batch_size: int, the global batch size; every batch has exactly this size.
      seed: int, selects the permutations, flips and noise. Default 0.
      start_step: int, the first batch number (to resume training). Default 0.
      start_sample: int or None, the global index of the first sample instead of
        `start_step * batch_size` (schedules whose batch size changes, ProGAN's).
      resolution: int or None. Images are average-pooled from the source's resolution down to
        this one (a power-of-two fraction of it); None keeps the source's.
      flip: bool, flip half of the images horizontally. Default False.
      noise_spec: dict `name -> (dist, shape)`, dist "normal" or "uniform" ([0, 1)): each
        adds a float32 entry `[batch_size, *shape]`, e.g. `{"z": ("normal", (128,))}`.
      with_labels: bool, add the int32 `"labels"` `[batch_size]`. Default False.
      prefetch: bool, prefetch batches (AUTOTUNE). Default True.
      shard: optional `(index, count)`: this input pipeline (one per worker of a multi-worker
        run) makes only rows `[index * B / count, (index + 1) * B / count)` of every global
        batch of size B, the rows its replicas train on; together the shards are the global
        batch exactly.

    Returns:
      A dataset of dicts with float32 `"images"` `[batch_size, R, R, C]` in [-1, 1], the
      optional `"labels"` and one entry per `noise_spec` item.

    Raises:
      ValueError: fewer images than `batch_size`, or a bad `noise_spec`.

    Example:
      >>> ds = make_train_dataset(load_source("shapes", 32), 16, noise_spec={"z": ("normal", (64,))})
    """
    num_images, batch_size = len(source), int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if num_images < batch_size:
        raise ValueError(f"the data set has {num_images} image(s), fewer than the batch size {batch_size}; "
                         f"use a smaller batch size or more images")
    draws = _draw_specs(noise_spec, flip)
    index, count = shard or (0, 1)
    if batch_size % count or not 0 <= index < count:
        raise ValueError(f"shard {shard}: the batch size {batch_size} must split evenly over {count} input pipelines")
    rows = batch_size // count
    shape = (rows, source.resolution, source.resolution, source.channels)
    factor = 1 if resolution is None else source.resolution // int(resolution)
    if factor < 1 or factor * int(resolution or source.resolution) != source.resolution or factor & (factor - 1):
        raise ValueError(f"resolution {resolution} must be the source's {source.resolution} divided by a power of two")
    first = int(start_step) * batch_size if start_sample is None else int(start_sample)

    def fetch(indices, flips):
        images, labels = source.get(indices)
        images = np.array(images, np.uint8)  # a writable copy
        images[flips] = images[flips, :, ::-1]
        return images, np.asarray(labels, np.int32)

    def make_batch(step):
        samples = first + step * batch_size + index * rows + tf.range(rows, dtype=tf.int64)
        indices = _shuffled_indices(samples, num_images, _key(seed, "permutation"))
        values = _per_sample_draws(samples, seed, draws)
        flips = values.pop(_FLIP) < 0.5 if flip else tf.zeros([rows], tf.bool)
        images, labels = tf.numpy_function(fetch, [indices, flips], [tf.uint8, tf.int32], stateful=False)
        images = tf.cast(tf.ensure_shape(images, shape), tf.float32) / 127.5 - 1.0
        if factor > 1:
            images = tf.nn.avg_pool2d(images, factor, factor, "VALID")
        batch = {"images": images, **values}
        if with_labels:
            batch["labels"] = tf.ensure_shape(labels, [rows])
        return batch

    dataset = tf.data.Dataset.range(0, 2**62).map(
        make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    dataset = dataset.with_options(options)
    return dataset.prefetch(tf.data.AUTOTUNE) if prefetch else dataset


def _shuffled_indices(samples, num_images, key):
    """`perm_e(g mod N)` with e = g // N. A batch spans at most two epochs (batch <= N)."""
    epoch, position = samples // num_images, samples % num_images
    first = epoch[0]

    def permute(e):
        seed = tf.stack([tf.constant(key, tf.int64), e])
        return tf.random.experimental.index_shuffle(position, seed, num_images - 1)

    return tf.where(epoch == first, permute(first), permute(first + 1))


def _per_sample_draws(samples, seed, draws):
    """Stateless per-sample draws: sample g's values depend only on `(seed, name, g)`.

    One Philox op per entry: with key `_key(seed, name)`, the counter-based stream position
    p of a StatelessRandom*V2 op comes from counter `start + p // 4` (Philox yields 4 values
    per counter), so giving sample g the positions `[g * D4, g * D4 + D)` (D rounded up to a
    multiple of 4) makes its values independent of the batch it is in. Vectorised, unlike
    one `tf.random.stateless_normal` call per sample; tests check the invariance.
    """
    ops = {"normal": tf.raw_ops.StatelessRandomNormalV2, "uniform": tf.raw_ops.StatelessRandomUniformV2}
    batch = tf.size(samples, tf.int64)
    values = {}
    for name, (dist, shape, key) in draws.items():
        size = int(np.prod(shape, dtype=np.int64))
        padded = -(-size // 4) * 4
        counter = tf.cast(tf.stack([samples[0] * (padded // 4), tf.constant(0, tf.int64)]), tf.uint64)
        flat = ops[dist](shape=tf.stack([batch * padded]), key=tf.constant([_key(seed, key)], tf.uint64),
                         counter=counter, alg=1, dtype=tf.float32)  # alg 1: Philox
        values[name] = tf.reshape(tf.reshape(flat, [-1, padded])[:, :size], [-1, *shape])
    return values
