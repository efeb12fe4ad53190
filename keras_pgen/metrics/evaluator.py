"""Training-time evaluation (`config.eval_every`) without an engine: KID / FID (and the shapes judge) of a generator.

`GeneratorEvaluator` holds the real images and their features, samples a model's generator
for fixed latents (numpy's `default_rng([seed, 1543])`, so both engines judge the same
latents), and logs its numbers through a `write_scalar(tag, value, step)` function. It
imports only Keras and numpy: the TensorFlow engine wraps it in a Keras callback
(`callback.GeneratorMetrics`, tf.summary), the JAX engine calls it from its loop
(`engines/jax_trainer.py`, `events.EventWriter`). The feature extractors are those of
`features.py` ("pixels", "shapes", InceptionV3 weights).

TensorBoard tags: `eval/kid`, `eval/kid_std`, `eval/fid`; with the shapes judge also
`eval/fid_real_floor`, `eval/kid_real_floor`, `eval/kid_real_floor_std`, `eval/kinds_covered`,
`eval/mean_confidence` and `eval/kinds/<kind>` (the fraction of samples given each kind).
"""
import keras
import numpy as np
from absl import logging

from keras_pgen import images as images_lib
from keras_pgen.metrics import distances, features as features_lib, shapes_judge

LATENT_SEED = 1543  # the latents are default_rng([config.seed, LATENT_SEED]).standard_normal


def is_judge(extractor):
    """Whether `extractor` is the shapes judge (features and kind probabilities)."""
    return isinstance(extractor, shapes_judge.ShapesJudge)


def sampling_network(model):
    """The network a method samples from; ValueError for methods without one.

    `model.export_generator()` (the network the SavedModel serves) under TensorFlow when the
    method has it, else `model.ema_generator`, else `model.generator`. Under other backends
    the EMA generator itself: ProGAN's `export_generator()` wraps it in a `tf.function` (the
    export's strips and XLA; the same images).
    """
    if hasattr(model, "export_generator") and keras.backend.backend() == "tensorflow":
        return model.export_generator()
    for name in ("ema_generator", "generator"):
        if getattr(model, name, None) is not None:
            return getattr(model, name)
    raise ValueError(f"eval_every needs a generator (z -> images); {type(model).__name__} has none: "
                     "set eval_every=0 and evaluate its export with bin/evaluate")


def generator_samples(model, z, batch_size=50):
    """uint8 samples of a model's generator (`sampling_network`) for latents z, `batch_size` at a time.

    A multi-scale output gives its last (largest) scale. The images are quantised exactly as
    the exported SavedModel does (cast to float32, then `images.to_uint8`).
    """
    network = sampling_network(model)
    batches = []
    for start in range(0, len(z), batch_size):
        out = network(z[start:start + batch_size], training=False)
        out = out[-1] if isinstance(out, (list, tuple)) else out
        batches.append(images_lib.to_uint8(np.asarray(out).astype(np.float32)))  # mixed precision: as export.py
    return np.concatenate(batches)


def latents(num_samples, latent_dim, seed):
    """The evaluation latents: float32 [num_samples, latent_dim], the same under every backend."""
    return np.random.default_rng([int(seed), LATENT_SEED]).standard_normal((num_samples, latent_dim)).astype(np.float32)


def match_resolution(images, resolution):
    """Area-resizes uint8 `images` down to `resolution` (ProGAN's early stages generate smaller images).

    The side must divide the images' side: the area resize is then the mean of each
    factor x factor block (what `tf.image.resize(..., "area")` computes), rounded half to even.
    """
    images = np.asarray(images)
    side = images.shape[1]
    if side == resolution:
        return images
    if side % resolution or images.shape[2] % resolution:
        raise ValueError(f"cannot area-resize {images.shape[1]}x{images.shape[2]} images to {resolution}x{resolution}: "
                         "the evaluation resizes real images by whole factors only")
    n, height, width, channels = images.shape
    fy, fx = height // resolution, width // resolution
    blocks = images.astype(np.float64).reshape(n, resolution, fy, resolution, fx, channels).mean(axis=(2, 4))
    return np.clip(np.round(blocks), 0, 255).astype(np.uint8)


def eval_features(config):
    """The extractor name a config evaluates with: `eval_features`, "auto" resolved.

    "auto" is the shapes judge when the data is the built-in shapes, else "" (no evaluation:
    there is no offline judge of other data; name "imagenet" or "pixels" for them).
    """
    features = config.get("eval_features", "imagenet")
    if features == "auto":
        return "shapes" if config.get("data") == "shapes" else ""
    return features


def scalars(results):
    """{TensorBoard tag: float} of an evaluation's results (the judge's histogram as fractions per kind)."""
    tags = {}
    for name, value in results.items():
        if name == "class_histogram":
            total = max(1, sum(value.values()))
            tags.update({f"eval/kinds/{kind}": count / total for kind, count in value.items()})
        else:
            tags[f"eval/{name}"] = float(value)
    return tags


def summary_line(step, results):
    """The one log line of an evaluation."""
    if "kinds_covered" in results:
        return (f"step {step}: shapes judge: {results['kinds_covered']} kinds covered, mean confidence "
                f"{results['mean_confidence']:.3f}, FID {results['fid']:.3f} (real vs real "
                f"{results['fid_real_floor']:.3f}), KID {results['kid']:.5f} (real vs real "
                f"{results['kid_real_floor']:.5f})")
    return f"step {step}: KID {results['kid']:.5f} +- {results['kid_std']:.5f}, FID {results['fid']:.3f}"


class GeneratorEvaluator:
    """KID (mean, std) and FID of a model's generated samples against real images, at step 0 and every `every` steps.

    The samples come from fixed latents (`latents(num_samples, latent_dim, seed)`), so
    successive evaluations differ only by the generator; the real features are computed once
    per resolution. An engine calls `check(model)` before its first step, then `log(model,
    step)` where `due(step)`: it evaluates, appends (step, results) to `history`, logs one
    line and writes the `scalars` through `write_scalar(tag, value, step)` (the engine
    flushes its writer).

    With the shapes judge as extractor (`eval_features="shapes"`, shapes_judge.py) the results
    also hold its kind report and, beside FID and KID, their real-vs-real floors for
    `floor_images` (real images disjoint from `real_images`, as many as the samples where the
    data has them).

    Args:
        real_images: uint8 [N, H, W, C], the real images compared against.
        extractor: a feature extractor (`features.make_feature_extractor`), or a name for it.
        every: int, steps between evaluations (0: never).
        num_samples: int, generated images per evaluation.
        seed: int, default 0, for the latents and the KID subsets.
        batch_size: int, default 50.
        subset_size, num_subsets: KID's subsets (default 1000 and 100; subsets shrink to the set sizes).
        floor_images: uint8 [M, H, W, C] or None: real images disjoint from `real_images`
            for the floors (judge only; None: `real_images` is halved, see `shapes_judge.split_real`).
        write_scalar: callable (tag, value, step) or None (log only).

    Example:
    >>> evaluator = GeneratorEvaluator(real, "pixels", every=100, num_samples=1000)   # doctest: +SKIP
    >>> evaluator.evaluate(model)["fid"]   # doctest: +SKIP
    """

    def __init__(self, real_images, extractor, every, num_samples, seed=0, batch_size=50, subset_size=1000,
                 num_subsets=100, floor_images=None, write_scalar=None):
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
        self.write_scalar = write_scalar
        self.history = []
        self.last_step = None
        self._real_features = {}
        self._floor_features = {}

    def real_features(self, resolution):
        if resolution not in self._real_features:
            real = match_resolution(self.real_images, resolution)
            self._real_features[resolution] = features_lib.extract_features(self.extractor, real, self.batch_size)
            if self.floor_images is not None:
                floor = match_resolution(self.floor_images, resolution)
                self._floor_features[resolution] = features_lib.extract_features(self.extractor, floor,
                                                                                 self.batch_size)
        return self._real_features[resolution]

    @staticmethod
    def check(model):
        """Raises the one-line ValueError of a model that cannot be evaluated (before the first step)."""
        sampling_network(model)
        if not getattr(model, "latent_dim", None):
            raise ValueError(f"eval_every needs a model with a latent_dim; {type(model).__name__} has none")

    def due(self, step):
        """Whether step `step` is evaluated: a multiple of `every`, not evaluated yet."""
        return self.every > 0 and step % self.every == 0 and step != self.last_step

    def evaluate(self, model):
        """{"kid", "kid_std", "fid"} of `model`'s samples now; with the shapes judge also its report and floors."""
        z = latents(self.num_samples, model.latent_dim, self.seed)
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

    def log(self, model, step):
        """Evaluates `model` at `step`: history, one log line, `write_scalar` of every scalar; returns the results."""
        self.last_step = step
        results = self.evaluate(model)
        self.history.append((step, results))
        logging.info("%s", summary_line(step, results))
        if self.write_scalar is not None:
            for tag, value in scalars(results).items():
                self.write_scalar(tag, value, step)
        return results


def evaluator_from_config(config, source, write_scalar=None):
    """The `GeneratorEvaluator` of a training config with `eval_every` > 0, else None.

    The real images are the data's first `eval_num_samples`; with the shapes judge the floor
    set is the next `eval_num_samples` (or, for a smaller data set, its two halves).
    """
    every = config.get("eval_every", 0)
    features = eval_features(config)
    if not every:
        return None
    if not features:
        logging.info("eval_every: eval_features=auto evaluates the built-in shapes only (data is %r); "
                     "set --config.eval_features=imagenet or pixels to evaluate this data", config.get("data"))
        return None
    num = int(config.eval_num_samples)
    extractor = features_lib.make_feature_extractor(features, config.eval_image_size)
    count = min((2 if is_judge(extractor) else 1) * num, len(source))
    real, _ = source.get(np.arange(count))
    real = np.asarray(real, np.uint8)
    floor = None
    if is_judge(extractor):
        real, floor = shapes_judge.split_real(real, num)
    return GeneratorEvaluator(real, extractor, every, num, seed=config.seed, floor_images=floor,
                              write_scalar=write_scalar)
