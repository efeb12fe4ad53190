"""KID and FID of a training run's generator, every `eval_every` steps, logged to TensorBoard (with the shapes
judge: kinds covered, confidence and real-vs-real floors too)."""
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_pgen import images as images_lib
from keras_pgen.metrics import distances, features as features_lib, shapes_judge


def is_judge(extractor):
    """Whether `extractor` is the shapes judge (features and kind probabilities)."""
    return isinstance(extractor, shapes_judge.ShapesJudge)


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
    """At step 0 and every `every` steps: KID (mean, std) and FID of generated samples against real images.

    The generated samples come from fixed latents (`seed`), so successive evaluations
    differ only by the generator. The real features are computed once. Values go to
    TensorBoard (`eval/kid`, `eval/kid_std`, `eval/fid`), to the log, and to `history`.
    A fresh run (step 0) is evaluated before its first step, so the curve starts from the
    untrained generator.

    With the shapes judge as extractor (`eval_features="shapes"`, shapes_judge.py) it also
    logs `eval/kinds_covered`, `eval/mean_confidence`, `eval/kinds/<kind>` (the fraction of
    samples the judge gives each kind), and beside FID and KID their real-vs-real floors
    `eval/fid_real_floor`, `eval/kid_real_floor`: the same numbers for `floor_images` (real
    images disjoint from `real_images`, as many as the samples where the data has them).

    Args:
        real_images: uint8 [N, H, W, C], the real images compared against.
        extractor: a feature extractor (`features.make_feature_extractor`), or a name for it.
        every: int, steps between evaluations.
        num_samples: int, generated images per evaluation.
        logdir: str or None, TensorBoard directory.
        seed: int, default 0, for the latents and the KID subsets.
        batch_size: int, default 50.
        subset_size, num_subsets: KID's subsets (default 1000 and 100; subsets shrink to the set sizes).
        floor_images: uint8 [M, H, W, C] or None: real images disjoint from `real_images`
            for the floors (judge only; None: `real_images` is halved, see `shapes_judge.split_real`).

    Example:
    >>> callback = GeneratorMetrics(real, "pixels", every=100, num_samples=1000, logdir="runs/x/tensorboard")
    >>> model.fit(dataset, callbacks=[callback])   # doctest: +SKIP
    """

    def __init__(self, real_images, extractor, every, num_samples, logdir=None, seed=0, batch_size=50,
                 subset_size=1000, num_subsets=100, floor_images=None):
        super().__init__()
        self.real_images = np.asarray(real_images)
        self.extractor = features_lib.make_feature_extractor(extractor) if isinstance(extractor, str) else extractor
        if floor_images is None and is_judge(self.extractor):
            self.real_images, floor_images = shapes_judge.split_real(self.real_images, len(self.real_images))
        self.floor_images = None if floor_images is None else np.asarray(floor_images)
        self.every = int(every)
        self.num_samples = int(num_samples)
        self.seed = seed
        self.batch_size = batch_size
        self.subset_size = subset_size
        self.num_subsets = num_subsets
        self.writer = tf.summary.create_file_writer(logdir) if logdir else None
        self.history = []
        self._real_features = {}
        self._floor_features = {}
        self._last_step = None

    def real_features(self, resolution):
        if resolution not in self._real_features:
            real = match_resolution(self.real_images, resolution)
            self._real_features[resolution] = features_lib.extract_features(self.extractor, real, self.batch_size)
            if self.floor_images is not None:
                floor = match_resolution(self.floor_images, resolution)
                self._floor_features[resolution] = features_lib.extract_features(self.extractor, floor,
                                                                                 self.batch_size)
        return self._real_features[resolution]

    def evaluate(self, model):
        """{"kid", "kid_std", "fid"} of `model`'s samples now; with the shapes judge also its report and floors."""
        z = tf.random.stateless_normal((self.num_samples, model.latent_dim), seed=[self.seed, 1543])
        fake = generator_samples(model, z, self.batch_size)
        real_features = self.real_features(fake.shape[1])
        if not is_judge(self.extractor):
            fake_features = features_lib.extract_features(self.extractor, fake, self.batch_size)
            kid, kid_std = distances.kid_from_features(fake_features, real_features, self.subset_size,
                                                       self.num_subsets, self.seed)
            return {"kid": kid, "kid_std": kid_std, "fid": distances.fid_from_features(fake_features, real_features)}
        fake_features, probabilities = self.extractor.predict(fake)
        results = shapes_judge.distances_with_floor(fake_features, real_features,
                                                    self._floor_features[fake.shape[1]], self.subset_size,
                                                    self.num_subsets, self.seed)
        return {**results, **shapes_judge.kind_report(probabilities)}

    def _evaluate_and_log(self, step):
        self._last_step = step
        results = self.evaluate(self.model)
        self.history.append((step, results))
        line = f"step {step}: KID {results['kid']:.5f} +- {results['kid_std']:.5f}, FID {results['fid']:.3f}"
        if "kinds_covered" in results:
            line = (f"step {step}: shapes judge: {results['kinds_covered']} kinds covered, mean confidence "
                    f"{results['mean_confidence']:.3f}, FID {results['fid']:.3f} (real vs real "
                    f"{results['fid_real_floor']:.3f}), KID {results['kid']:.5f} (real vs real "
                    f"{results['kid_real_floor']:.5f})")
        logging.info("%s", line)
        if self.writer:
            with self.writer.as_default(step=step):
                for name, value in results.items():
                    if name == "class_histogram":
                        total = max(1, sum(value.values()))
                        for kind, count in value.items():
                            tf.summary.scalar(f"eval/kinds/{kind}", count / total)
                    else:
                        tf.summary.scalar(f"eval/{name}", value)
            self.writer.flush()

    def on_train_begin(self, logs=None):
        sampling_network(self.model)  # fails before the first step, not at the first evaluation
        if not getattr(self.model, "latent_dim", None):
            raise ValueError(f"eval_every needs a model with a latent_dim; {type(self.model).__name__} has none")
        if self.every > 0 and int(self.model.step.numpy()) == 0 and self._last_step is None:
            self._evaluate_and_log(0)  # the untrained generator: where the curve starts

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.step.numpy())
        if self.every <= 0 or step % self.every or step == self._last_step:
            return
        if logs and not all(np.isfinite(float(v)) for v in logs.values()):
            return  # the NaN guard stops the run; nothing to evaluate
        self._evaluate_and_log(step)


def eval_features(config):
    """The extractor name a config evaluates with: `eval_features`, "auto" resolved.

    "auto" is the shapes judge when the data is the built-in shapes, else "" (no evaluation:
    there is no offline judge of other data; name "imagenet" or "pixels" for them).
    """
    features = config.get("eval_features", "imagenet")
    if features == "auto":
        return "shapes" if config.get("data") == "shapes" else ""
    return features


def evaluation_callbacks(config, source, workdir):
    """[GeneratorMetrics] for a training config with `eval_every` > 0, else [].

    The real images are the data's first `eval_num_samples`; with the shapes judge the floor
    set is the next `eval_num_samples` (or, for a smaller data set, its two halves).
    """
    every = config.get("eval_every", 0)
    features = eval_features(config)
    if not every:
        return []
    if not features:
        logging.info("eval_every: eval_features=auto evaluates the built-in shapes only (data is %r); "
                     "set --config.eval_features=imagenet or pixels to evaluate this data", config.get("data"))
        return []
    num = int(config.eval_num_samples)
    extractor = features_lib.make_feature_extractor(features, config.eval_image_size)
    count = min((2 if is_judge(extractor) else 1) * num, len(source))
    real, _ = source.get(np.arange(count))
    real = np.asarray(real, np.uint8)
    floor = None
    if is_judge(extractor):
        real, floor = shapes_judge.split_real(real, num)
    return [GeneratorMetrics(real, extractor, every, num, logdir=os.path.join(workdir, "tensorboard"),
                             seed=config.seed, floor_images=floor)]
