"""A judge for the built-in shapes: a small Keras classifier of the main shape's kind, shipped with its weights.

What Inception features are to photographs, this is to `data/shapes.py`'s images, offline:
`ShapesJudge` maps images to the penultimate features of a small CNN (a feature extractor
in the sense of `features.py`, for FID / KID) and to the probabilities of the 7 kinds
(circle, square, triangle, ring, ellipse, star, cross). `judge(samples)` turns them into
what a person would ask of a generator trained on shapes:

- `kinds_covered`: the kinds the judge gives to at least 5% of the samples;
- `class_histogram`: samples per kind (the judge's top-1 choice);
- `mean_confidence`: the mean top-1 probability (recognisable shapes score high, blobs low);
- `fid` and `kid` (mean, std) in the judge's penultimate features against real renders, each
  beside its real-vs-real floor (`fid_real_floor`, `kid_real_floor`): the same computation
  between two disjoint real sets of the same size, the value a perfect generator would get.

The network sees 32x32 RGB in [-1, 1]: other sides are resized (bilinear, antialiased) and
grey images repeat their channel, so runs at 16 or 64 pixels, or with `channels=1`, are
judged too (it was trained on renders at 32 and 16 pixels, a fifth of them turned grey). The
weights (`shapes_judge.npz`, beside this file) were written by

    python -m keras_pgen.metrics.shapes_judge --train      # ~4 CPU minutes, deterministic given --seed

which renders its training images from data seeds `TRAIN_SEEDS` (never the default data's
seed 0) and prints its accuracy on held-out renders of seed 0. Only Keras and numpy are
imported here: the judge runs under the TensorFlow and the JAX backends alike.

Example:
>>> from keras_pgen.data.shapes import ShapesSource
>>> images, labels = ShapesSource(32, num_images=200).get(np.arange(200))
>>> report = judge(images)
>>> report["kinds_covered"], round(report["mean_confidence"], 2)   # doctest: +SKIP
(7, 0.99)
"""
import functools
import json
import os

import numpy as np

from keras_pgen.data.shapes import KINDS, ShapesSource

INPUT_SIZE = 32
WEIGHTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shapes_judge.npz")
MIN_FRACTION = 0.05  # a kind is covered when the judge gives it at least this share of the samples
TRAIN_SEEDS = (101, 102)  # data seeds of the training renders
HELD_OUT_SEED = 0  # the default data set's seed: the judge never trains on it


NETWORK = {"width": 16, "feature_dim": 64}  # build_network's arguments for the shipped weights


def build_network(width=16, feature_dim=64):
    """The judge's CNN: 32x32x3 in [-1, 1] -> (features [N, feature_dim] after ReLU, logits [N, 7]).

    Six 3x3 convolutions (ReLU; strides 2 at 32, 16 and 8 pixels) widening from `width` to
    8 x `width` channels, global average pooling, a `feature_dim` dense layer (the features)
    and the 7-way linear classifier. ~9 M multiply-adds per image at the defaults.
    """
    import keras

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="images")
    x = inputs
    for i, (channels, strides) in enumerate(((width, 1), (2 * width, 2), (2 * width, 1), (4 * width, 2),
                                             (4 * width, 1), (8 * width, 2))):
        x = keras.layers.Conv2D(channels, 3, strides=strides, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"norm{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    features = keras.layers.Dense(feature_dim, activation="relu", name="features")(x)
    logits = keras.layers.Dense(len(KINDS), name="logits")(features)
    return keras.Model(inputs, [features, logits], name="shapes_judge")


def preprocess(images):
    """uint8 [N, H, W, C] (or float in [-1, 1]; C = 1 or 3) -> float32 [N, 32, 32, 3] in [-1, 1] (a Keras tensor)."""
    from keras import ops

    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"the shapes judge needs images [N, H, W, 1 or 3], got shape {images.shape}")
    x = images.astype(np.float32) / 127.5 - 1.0 if images.dtype == np.uint8 else images.astype(np.float32)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    x = ops.convert_to_tensor(x)
    if x.shape[1] != INPUT_SIZE or x.shape[2] != INPUT_SIZE:
        x = ops.image.resize(x, (INPUT_SIZE, INPUT_SIZE), interpolation="bilinear", antialias=True)
    return ops.clip(x, -1.0, 1.0)


class ShapesJudge:
    """Penultimate features (for FID / KID) and kind probabilities of the built-in shapes' classifier.

    Called on images it returns the features [N, 64] (float64), like the extractors of
    `features.py`; `predict` returns features and probabilities, `probabilities` the latter.
    The features are the 64 ReLU units before the classifier times the weights file's
    `feature_scale` (set by `calibrate`: root mean square 1 over real renders), so that
    KID's kernel (x . y / 64 + 1)^3 sees inputs of the scale it was made for.

    Args:
        weights: str, default: the packaged `shapes_judge.npz`. A file written by `save_weights`.
        batch_size: int, default 500. Images per forward pass.

    Example:
    >>> judge_network = ShapesJudge()
    >>> judge_network(np.zeros((2, 32, 32, 3), np.uint8)).shape
    (2, 64)

    Reference: Heusel et al., https://arxiv.org/abs/1706.08500 (FID); Binkowski et al.,
    https://arxiv.org/abs/1801.01401 (KID): the same distances, in this classifier's features.
    """

    name = "shapes"

    def __init__(self, weights=None, batch_size=500):
        self.weights = weights or WEIGHTS_FILE
        self.batch_size = int(batch_size)
        self.network, self.info = load_network(self.weights)
        self.feature_scale = float(self.info.get("feature_scale", 1.0))
        self._forward = None

    def _run(self, x):
        if self._forward is None:
            import keras

            network = self.network
            if keras.backend.backend() == "jax":
                import jax

                self._forward = jax.jit(lambda tv, ntv, t: network.stateless_call(tv, ntv, t, training=False)[0])
                trainable = [v.value for v in network.trainable_variables]
                non_trainable = [v.value for v in network.non_trainable_variables]
                self._call = lambda t: self._forward(trainable, non_trainable, t)
            else:
                self._call = lambda t: network(t, training=False)
                self._forward = True
        return self._call(x)

    def predict(self, images):
        """(features [N, D] float64, probabilities [N, 7] float64) of uint8 or [-1, 1] `images`."""
        from keras import ops

        features, probabilities = [], []
        for start in range(0, len(images), self.batch_size):
            f, logits = self._run(preprocess(images[start:start + self.batch_size]))
            features.append(np.asarray(ops.convert_to_numpy(f), np.float64) * self.feature_scale)
            probabilities.append(np.asarray(ops.convert_to_numpy(ops.softmax(logits, axis=-1)), np.float64))
        if not features:
            raise ValueError("no images to judge")
        return np.concatenate(features), np.concatenate(probabilities)

    def probabilities(self, images):
        """Kind probabilities [N, 7] (float64; the order of `data.shapes.KINDS`)."""
        return self.predict(images)[1]

    def __call__(self, images):
        return self.predict(images)[0]


def save_weights(network, path, info=None):
    """Writes the network's weights (float32, in `network.weights` order) and a JSON `info` to an .npz file."""
    arrays = {f"w{i:02d}": np.asarray(w, np.float32) for i, w in enumerate(network.get_weights())}
    info = dict(info or {}, kinds=list(KINDS), input_size=INPUT_SIZE)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, info=np.array(json.dumps(info, sort_keys=True)), **arrays)
    os.replace(tmp, path)


@functools.lru_cache(maxsize=4)
def load_network(path=WEIGHTS_FILE):
    """(network, info dict) from a file of `save_weights`; cached per path.

    Raises:
        FileNotFoundError: no such file (the package's own file is missing: reinstall, or
            rerun `python -m keras_pgen.metrics.shapes_judge --train`).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no shapes judge weights at {path}; write them with "
                                "`python -m keras_pgen.metrics.shapes_judge --train`")
    with np.load(path) as stored:
        info = json.loads(str(stored["info"]))
        weights = [stored[k] for k in sorted(k for k in stored.files if k.startswith("w"))]
    network = build_network(**info.get("network", NETWORK))
    network.set_weights(weights)
    return network, info


@functools.lru_cache(maxsize=1)
def default_judge():
    """The packaged judge, built once per process."""
    return ShapesJudge()


def kind_report(probabilities, min_fraction=MIN_FRACTION):
    """{"kinds_covered", "class_histogram", "mean_confidence"} of kind probabilities [N, 7].

    Args:
        probabilities: [N, 7], rows summing to 1 (the judge's output).
        min_fraction: float, default 0.05. A kind is covered when at least this fraction of
            the rows have it as their most probable kind.

    Example:
    >>> kind_report(np.eye(7)[[0, 0, 1, 2]])
    {'kinds_covered': 3, 'class_histogram': {'circle': 2, 'square': 1, 'triangle': 1, 'ring': 0, 'ellipse': 0, \
'star': 0, 'cross': 0}, 'mean_confidence': 1.0}
    """
    probabilities = np.asarray(probabilities, np.float64)
    counts = np.bincount(probabilities.argmax(axis=1), minlength=len(KINDS))
    return {"kinds_covered": int(np.sum(counts >= min_fraction * len(probabilities))),
            "class_histogram": {kind: int(c) for kind, c in zip(KINDS, counts)},
            "mean_confidence": float(probabilities.max(axis=1).mean())}


def split_real(real, num):
    """(reference, floor set): the first `num` real images, and the next `num` (disjoint).

    When there are fewer than 2 x `num` images, the real images are halved instead, and
    both sets have len(real) // 2 images.
    """
    if len(real) >= 2 * num:
        return real[:num], real[num:2 * num]
    half = len(real) // 2
    return real[:half], real[half:2 * half]


def distances_with_floor(fake_features, real_features, floor_features, subset_size=1000, num_subsets=100, seed=0):
    """FID and KID of fake vs real features, beside the same numbers for a disjoint real set vs the real one.

    Returns:
        {"fid", "fid_real_floor", "kid", "kid_std", "kid_real_floor", "kid_real_floor_std"}.
        For a fair floor, `floor_features` should be as many as `fake_features`.
    """
    from keras_pgen.metrics import distances

    kid, kid_std = distances.kid_from_features(fake_features, real_features, subset_size, num_subsets, seed)
    floor_kid, floor_kid_std = distances.kid_from_features(floor_features, real_features, subset_size, num_subsets,
                                                           seed)
    return {"fid": distances.fid_from_features(fake_features, real_features),
            "fid_real_floor": distances.fid_from_features(floor_features, real_features),
            "kid": kid, "kid_std": kid_std, "kid_real_floor": floor_kid, "kid_real_floor_std": floor_kid_std}


def real_shapes(num, resolution=INPUT_SIZE, channels=3, seed=HELD_OUT_SEED):
    """The first `num` images of `ShapesSource(resolution, channels, seed=seed)` (uint8)."""
    return ShapesSource(resolution, channels, num_images=num, seed=seed, cache_max_bytes=0).render(np.arange(num))[0]


def judge(images, real=None, extractor=None, min_fraction=MIN_FRACTION, subset_size=1000, num_subsets=100,
          seed=0):
    """The judge's verdict on generated `images`: kinds covered, histogram, confidence, FID / KID with floors.

    Args:
        images: uint8 [N, H, W, C] (or float in [-1, 1]), C = 1 or 3, any side (resized to 32).
        real: uint8 real images to compare with, or None (default): 2 N renders of the
            default data set (`ShapesSource` at the images' side and channels, seed 0), as a
            default training run sees them. The first N are the reference set; the floor is
            the next N against them (with fewer than 2 N: the two halves, see `split_real`).
        extractor: a `ShapesJudge`, default the packaged one.
        min_fraction: float, default 0.05 (see `kind_report`).
        subset_size, num_subsets, seed: KID's subsets (default 1000, 100, 0).

    Returns:
        dict: `kind_report`'s keys, "fid", "fid_real_floor", "kid", "kid_std",
        "kid_real_floor", "kid_real_floor_std", "num_images", "num_real" (the reference set)
        and "real_mean_confidence" (of the reference set).

    Example:
    >>> judge(generator.sample(1000, seed=0))["kinds_covered"]   # doctest: +SKIP
    """
    images = np.asarray(images)
    extractor = extractor or default_judge()
    if real is None:
        channels = images.shape[-1] if images.ndim == 4 else 1
        real = real_shapes(2 * len(images), images.shape[1], channels)
    reference, floor = split_real(np.asarray(real), len(images))
    if len(reference) < 2:
        raise ValueError(f"the shapes judge needs at least 4 real images, got {len(real)}")
    results, _, _ = verdict(extractor, images, reference, floor, min_fraction, subset_size, num_subsets, seed)
    return {"num_images": len(images), **results}


def verdict(extractor, images, reference, floor, min_fraction=MIN_FRACTION, subset_size=1000, num_subsets=100,
            seed=0):
    """`judge`'s numbers for given real sets, with the features: (results, fake features, reference features).

    `reference` and `floor` are disjoint real sets (see `split_real`); `results` holds
    `kind_report`'s keys, `distances_with_floor`'s, "num_real" and "real_mean_confidence".
    """
    fake_features, probabilities = extractor.predict(images)
    real_features, real_probabilities = extractor.predict(reference)
    results = dict(kind_report(probabilities, min_fraction))
    results.update(distances_with_floor(fake_features, real_features, extractor(floor), subset_size, num_subsets, seed))
    results.update(num_real=len(reference), real_mean_confidence=kind_report(real_probabilities)["mean_confidence"])
    return results, fake_features, real_features


# ---- training (python -m keras_pgen.metrics.shapes_judge --train) ----------------------------------------------

def training_images(seed, num_images, resolutions=(32, 16, 32), grey_fraction=0.2):
    """(images float32 [N, 32, 32, 3] in [-1, 1], labels [N]) rendered from data seed `seed`.

    Image i is rendered at `resolutions[i % len(resolutions)]` and resized to 32 as
    `preprocess` resizes; a `grey_fraction` of them (every 1 / grey_fraction-th) is turned
    to luminance (repeated to 3 channels), as a `channels=1` run would be judged.
    """
    from keras import ops

    images, labels = np.empty((num_images, INPUT_SIZE, INPUT_SIZE, 3), np.float32), np.empty(num_images, np.int32)
    for r, resolution in enumerate(resolutions):
        indices = np.arange(r, num_images, len(resolutions))
        rendered, labels[indices] = ShapesSource(resolution, seed=seed, num_images=num_images,
                                                 cache_max_bytes=0).render(indices)
        grey = (indices % max(1, round(1 / grey_fraction)) == 0) if grey_fraction else np.zeros(len(indices), bool)
        luma = np.round(rendered.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        rendered = np.where(grey[:, None, None, None], luma[..., None].astype(np.uint8), rendered)
        images[indices] = ops.convert_to_numpy(preprocess(rendered))
    return images, labels


def train(seed=0, num_images=8192, epochs=5, batch_size=32, learning_rate=3e-3, seeds=TRAIN_SEEDS, verbose=1,
          **network_args):
    """Trains the judge's network from scratch on renders of the data seeds `seeds`; returns it.

    Deterministic given `seed` (initial weights, shuffling) on one backend and machine:
    the same arguments give the same weights.

    Args:
        seed: int, default 0. `keras.utils.set_random_seed` before building and training.
        num_images: int, default 8192. Images rendered per data seed.
        epochs: int, default 5. Passes over the rendered images.
        batch_size, learning_rate: Adam's batches and step size (cosine decay to 0).
        seeds: data seeds of the training renders (default `TRAIN_SEEDS`; keep 0 out: it is
            the default data set, on which accuracy is measured).
        verbose: 0 silent, 1 Keras progress per epoch.
        **network_args: for `build_network`.
    """
    import keras

    keras.utils.set_random_seed(seed)
    parts = [training_images(s, num_images) for s in seeds]
    images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    flipped = np.arange(len(images)) % 2 == 1  # the training pipeline flips images (config.flip): so do half
    images[flipped] = images[flipped, :, ::-1]
    network = build_network(**network_args)
    steps = epochs * (len(images) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    classifier = keras.Model(network.input, network.output[1])
    classifier.compile(keras.optimizers.Adam(schedule),
                       keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    classifier.fit(images, labels, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=2 if verbose else 0)
    return network


def calibrate(network, num_images=2000, seed=TRAIN_SEEDS[0]):
    """The feature scale of the judge's features: 1 / root mean square of the network's features of renders.

    Uses the first `num_images` 32x32 renders of data seed `seed` (a training seed); a pure
    function of the weights, rounded to 6 significant digits.
    """
    from keras import ops

    images = ShapesSource(INPUT_SIZE, num_images=num_images, seed=seed, cache_max_bytes=0).render(
        np.arange(num_images))[0]
    features = np.concatenate([np.asarray(ops.convert_to_numpy(network(preprocess(images[i:i + 500]),
                                                                       training=False)[0]), np.float64)
                               for i in range(0, num_images, 500)])
    return float(f"{1.0 / np.sqrt(np.mean(features ** 2)):.6g}")


def held_out_accuracy(extractor, num_images=2000, resolution=INPUT_SIZE, channels=3, seed=HELD_OUT_SEED):
    """Top-1 accuracy of the judge on the first `num_images` renders of `ShapesSource(resolution, channels, seed)`."""
    images, labels = ShapesSource(resolution, channels, num_images=num_images, seed=seed,
                                  cache_max_bytes=0).render(np.arange(num_images))
    return float(np.mean(extractor.probabilities(images).argmax(axis=1) == labels))


def main(argv=None):
    """`python -m keras_pgen.metrics.shapes_judge [--train] [--seed=0] [--output=FILE]`: (trains and) scores the judge."""
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m keras_pgen.metrics.shapes_judge",
                                     description="Train (--train) and score the built-in shapes' judge.")
    parser.add_argument("--train", action="store_true", help="train the judge and write --output")
    parser.add_argument("--seed", type=int, default=0, help="initial weights and shuffling")
    parser.add_argument("--num_images", type=int, default=8192, help="renders per training data seed")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--output", default=WEIGHTS_FILE, help="weights file (default: the packaged one)")
    args = parser.parse_args(argv)
    if args.train:
        start = time.time()
        network = train(args.seed, args.num_images, args.epochs)
        info = {"seed": args.seed, "num_images": args.num_images, "epochs": args.epochs, "network": NETWORK,
                "train_seeds": list(TRAIN_SEEDS), "train_seconds": round(time.time() - start, 1),
                "feature_scale": calibrate(network)}
        save_weights(network, args.output, info)
        load_network.cache_clear()
    extractor = ShapesJudge(args.output)
    accuracies = {}
    for resolution, channels in ((32, 3), (16, 3), (64, 3), (32, 1)):
        name = f"{resolution}x{resolution}x{channels}"
        accuracies[name] = held_out_accuracy(extractor, resolution=resolution, channels=channels)
        print(f"held-out accuracy (2000 renders of data seed {HELD_OUT_SEED}, {name}): {accuracies[name]:.4f}",
              flush=True)
    if args.train:
        save_weights(network, args.output, dict(info, held_out_accuracy=accuracies))
        print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes, trained in {info['train_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
