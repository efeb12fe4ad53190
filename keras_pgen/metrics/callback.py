"""KID and FID of a training run's generator, every `eval_every` steps, logged to TensorBoard."""
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_pgen import images as images_lib
from keras_pgen.metrics import distances, features as features_lib


def generator_samples(model, z, batch_size=50):
    """uint8 samples of a model's exported generator (the EMA generator of a GAN) for latents z.

    Uses `model.export_generator()` when the method has it, else `model.ema_generator`,
    else `model.generator`; a multi-scale output gives its last (largest) scale. The images
    are quantised exactly as the exported SavedModel does.
    """
    network = sampling_network(model)
    batches = []
    for start in range(0, len(z), batch_size):
        out = network(z[start:start + batch_size], training=False)
        out = out[-1] if isinstance(out, (list, tuple)) else out
        batches.append(images_lib.to_uint8(np.asarray(out)))
    return np.concatenate(batches)


def sampling_network(model):
    """The network a method samples from (see `generator_samples`); ValueError for methods without one."""
    if hasattr(model, "export_generator"):
        return model.export_generator()
    for name in ("ema_generator", "generator"):
        if getattr(model, name, None) is not None:
            return getattr(model, name)
    raise ValueError(f"eval_every needs a generator (z -> images); {type(model).__name__} has none: "
                     "set eval_every=0 and evaluate its export with bin/evaluate")


def match_resolution(images, resolution):
    """Area-resizes uint8 `images` to `resolution` (ProGAN's early stages generate smaller images)."""
    if images.shape[1] == resolution:
        return images
    resized = tf.image.resize(tf.constant(images, tf.float32), (resolution, resolution), "area")
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


class GeneratorMetrics(keras.callbacks.Callback):
    """Every `every` steps: KID (mean, std) and FID of generated samples against real images.

    The generated samples come from fixed latents (`seed`), so successive evaluations
    differ only by the generator. The real features are computed once. Values go to
    TensorBoard (`eval/kid`, `eval/kid_std`, `eval/fid`), to the log, and to `history`.

    Args:
        real_images: uint8 [N, H, W, C], the real images compared against.
        extractor: a feature extractor (`features.make_feature_extractor`), or a name for it.
        every: int, steps between evaluations.
        num_samples: int, generated images per evaluation.
        logdir: str or None, TensorBoard directory.
        seed: int, default 0, for the latents and the KID subsets.
        batch_size: int, default 50.
        subset_size, num_subsets: KID's subsets (default 1000 and 100; subsets shrink to the set sizes).
    """

    def __init__(self, real_images, extractor, every, num_samples, logdir=None, seed=0, batch_size=50,
                 subset_size=1000, num_subsets=100):
        super().__init__()
        self.real_images = np.asarray(real_images)
        self.extractor = features_lib.make_feature_extractor(extractor) if isinstance(extractor, str) else extractor
        self.every = int(every)
        self.num_samples = int(num_samples)
        self.seed = seed
        self.batch_size = batch_size
        self.subset_size = subset_size
        self.num_subsets = num_subsets
        self.writer = tf.summary.create_file_writer(logdir) if logdir else None
        self.history = []
        self._real_features = {}
        self._last_step = None

    def real_features(self, resolution):
        if resolution not in self._real_features:
            real = match_resolution(self.real_images, resolution)
            self._real_features[resolution] = features_lib.extract_features(self.extractor, real, self.batch_size)
        return self._real_features[resolution]

    def evaluate(self, model):
        """{"kid", "kid_std", "fid"} of `model`'s samples now."""
        z = tf.random.stateless_normal((self.num_samples, model.latent_dim), seed=[self.seed, 1543])
        fake = generator_samples(model, z, self.batch_size)
        fake_features = features_lib.extract_features(self.extractor, fake, self.batch_size)
        real_features = self.real_features(fake.shape[1])
        kid, kid_std = distances.kid_from_features(fake_features, real_features, self.subset_size,
                                                   self.num_subsets, self.seed)
        return {"kid": kid, "kid_std": kid_std, "fid": distances.fid_from_features(fake_features, real_features)}

    def on_train_begin(self, logs=None):
        sampling_network(self.model)  # fails before the first step, not at the first evaluation
        if not getattr(self.model, "latent_dim", None):
            raise ValueError(f"eval_every needs a model with a latent_dim; {type(self.model).__name__} has none")

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.step.numpy())
        if self.every <= 0 or step % self.every or step == self._last_step:
            return
        if logs and not all(np.isfinite(float(v)) for v in logs.values()):
            return  # the NaN guard stops the run; nothing to evaluate
        self._last_step = step
        results = self.evaluate(self.model)
        self.history.append((step, results))
        logging.info("step %d: KID %.5f +- %.5f, FID %.3f", step, results["kid"], results["kid_std"], results["fid"])
        if self.writer:
            with self.writer.as_default(step=step):
                for name, value in results.items():
                    tf.summary.scalar(f"eval/{name}", value)
            self.writer.flush()


def evaluation_callbacks(config, source, workdir):
    """[GeneratorMetrics] for a training config with `eval_every` > 0, else []."""
    every = config.get("eval_every", 0)
    if not every:
        return []
    num = int(config.eval_num_samples)
    real, _ = source.get(np.arange(min(num, len(source))))
    extractor = features_lib.make_feature_extractor(config.eval_features, config.eval_image_size)
    return [GeneratorMetrics(np.asarray(real, np.uint8), extractor, every, num,
                             logdir=os.path.join(workdir, "tensorboard"), seed=config.seed)]
