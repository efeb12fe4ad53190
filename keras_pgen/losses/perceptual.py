"""Perceptual (feature-space) distances through a frozen VGG16, and the distances themselves.

The comparator is pluggable: anything that maps images in [-1, 1] to a list of feature
maps works with `feature_distance` (a `VGGFeatureExtractor`, a discriminator's
intermediate features, an encoder's).

VGG16 weights (`weights` / the `vgg_weights` config field):
- "imagenet": Keras's ImageNet weights, from the Keras cache (`$KERAS_HOME/models`, default
  `~/.keras/models`) or downloaded there when online; offline without the file, a
  `VGGWeightsError` says where to get it and how to pass it.
- a path to a weights file of `keras.applications.VGG16(include_top=False)` (e.g. a Kaggle
  input), loaded by Keras;
- "none" / None: random weights (tests; a random conv net is still a feature space).

References: Johnson et al., https://arxiv.org/abs/1603.08155 (perceptual losses);
Gatys et al., https://arxiv.org/abs/1508.06576 (Gram matrices);
Simonyan & Zisserman, https://arxiv.org/abs/1409.1556 (VGG16).
"""
import os
import re

import keras
from keras import ops

VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
# caffe preprocessing of keras.applications.vgg16: BGR channel means of ImageNet, in [0, 255]
VGG_BGR_MEAN = (103.939, 116.779, 123.68)
VGG_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG_NOTOP_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + VGG_NOTOP_FILE
DISTANCES = ("l2", "l1", "gram")


class VGGWeightsError(RuntimeError):
    """The VGG16 ImageNet weights are neither cached nor downloadable (offline)."""


def vgg_layer_name(name):
    """Keras VGG16 layer name for a torchvision-style alias: relu1_2 -> block1_conv2, pool3 -> block3_pool.

    Keras names (block3_conv3) pass through. Keras's VGG16 convolutions include their ReLU,
    so a block*_conv* output is the relu*_* activation.
    """
    match = re.fullmatch(r"relu(\d)_(\d)", name)
    if match:
        return f"block{match.group(1)}_conv{match.group(2)}"
    match = re.fullmatch(r"pool(\d)", name)
    if match:
        return f"block{match.group(1)}_pool"
    return name


def vgg_preprocess(images):
    """RGB images in [-1, 1] -> VGG16's caffe input: [0, 255], BGR, ImageNet mean subtracted.

    One-channel images are repeated to three. Equals
    `keras.applications.vgg16.preprocess_input((images + 1) * 127.5)`.
    """
    images = ops.cast(images, "float32")
    if images.shape[-1] == 1:
        images = ops.repeat(images, 3, axis=-1)
    bgr = ops.flip((images + 1.0) * 127.5, axis=-1)
    return bgr - ops.convert_to_tensor(VGG_BGR_MEAN, "float32")


def _keras_cache_file(filename):
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(base, "models", filename)


def resolve_weights(weights, filename, url, config_key):
    """The `weights` argument for a keras.applications constructor, with a clear offline error.

    Args:
        weights: "imagenet", a file path, or "none"/""/None (random).
        filename, url: the Keras cache file name and the download address of the ImageNet weights.
        config_key: the config field a user sets to pass a local file (named in errors).

    Returns:
        None, or a path to a local weights file.
    """
    if weights in (None, "", "none", "None", "random"):
        return None
    if weights != "imagenet":
        if not os.path.exists(weights):
            raise FileNotFoundError(f"{config_key}={weights!r}: no such weights file")
        return weights
    cached = _keras_cache_file(filename)
    if os.path.exists(cached):
        return cached
    try:
        return keras.utils.get_file(filename, url, cache_subdir="models")
    except Exception as error:  # noqa: BLE001 (URL, socket and HTTP errors all mean: not available)
        raise VGGWeightsError(
            f"could not download the ImageNet weights {filename} ({error.__class__.__name__}: {error}); "
            f"this machine looks offline. Download {url} elsewhere and pass its path with "
            f"--config.{config_key}=/path/to/{filename} (on Kaggle: add it as an input), or copy it to {cached}; "
            f"--config.{config_key}=none trains with random features") from None


def _float32_policy_scope():
    """Builds frozen feature networks in float32 even under mixed precision (features stay float32)."""
    class _Scope:
        def __enter__(self):
            self.previous = keras.config.dtype_policy()
            keras.config.set_dtype_policy("float32")

        def __exit__(self, *exc):
            keras.config.set_dtype_policy(self.previous)

    return _Scope()


class VGGFeatureExtractor(keras.layers.Layer):
    """Frozen VGG16 (no top) returning the activations of chosen layers for images in [-1, 1].

    The caffe preprocessing is applied inside (`vgg_preprocess`); the network is called
    with `training=False`, is not trainable, and is cut after the deepest requested layer.

    Args:
        layers: sequence of str, default `VGG_LAYERS` (the ReLU output of each block). Aliases
            relu{b}_{i} / pool{b} or Keras names (block3_conv3).
        weights: "imagenet" (default), a weights file path, or "none" (random).
        layer_weights: optional sequence of floats, one per layer: the default weights
            `feature_distance` uses with these features (e.g. down-weighting relu1_2).
        input_channels: int, default 3. 1 for grayscale (repeated to RGB).

    Example:
    >>> vgg = VGGFeatureExtractor(["relu1_2", "relu3_3"], weights="none")
    >>> feats = vgg(keras.random.uniform((2, 32, 32, 3), -1, 1))   # two feature maps
    >>> d = feature_distance(feats, vgg(images_b), vgg.layer_weights)  # [2]

    Reference: Simonyan & Zisserman, https://arxiv.org/abs/1409.1556.
    """

    def __init__(self, layers=VGG_LAYERS, weights="imagenet", layer_weights=None, input_channels=3, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.layer_names = tuple(layers)
        self.weights_source = weights
        self.layer_weights = tuple(float(w) for w in layer_weights) if layer_weights else None
        self.input_channels = input_channels
        if self.layer_weights and len(self.layer_weights) != len(self.layer_names):
            raise ValueError(f"{len(self.layer_weights)} layer weights for {len(self.layer_names)} layers")
        path = resolve_weights(weights, VGG_NOTOP_FILE, VGG_NOTOP_URL, "vgg_weights")
        with _float32_policy_scope():
            vgg = keras.applications.VGG16(include_top=False, weights=path, input_shape=(None, None, 3))
            names = [vgg_layer_name(n) for n in self.layer_names]
            known = [layer.name for layer in vgg.layers]
            unknown = [n for n in self.layer_names if vgg_layer_name(n) not in known]
            if unknown:
                raise ValueError(f"unknown VGG16 layer(s) {unknown}; choose from {known[1:]} "
                                 "or aliases relu{block}_{conv}, pool{block}")
            self.network = keras.Model(vgg.input, [vgg.get_layer(n).output for n in names], name="vgg16_features")
        self.network.trainable = False

    def call(self, images):
        outputs = self.network(vgg_preprocess(images), training=False)
        # one requested layer: Keras returns the tensor itself, not a list of one
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    def get_config(self):
        config = super().get_config()
        config.update(layers=list(self.layer_names), weights=self.weights_source,
                      layer_weights=list(self.layer_weights) if self.layer_weights else None,
                      input_channels=self.input_channels)
        return config


def _per_sample_mean(x):
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def squared_l2_distance(a, b, reduction="mean"):
    """Per-sample squared L2 distance of two feature maps: [N].

    reduction "mean" averages over the feature elements; "sum" sums them (seed 001's code,
    which scales with the layer's size).
    """
    d = _per_sample_mean(ops.square(ops.cast(a, "float32") - ops.cast(b, "float32")))
    if reduction == "sum":
        return d * float(_size(a))
    return d


def l1_distance(a, b):
    """Per-sample mean absolute difference of two feature maps: [N]."""
    return _per_sample_mean(ops.abs(ops.cast(a, "float32") - ops.cast(b, "float32")))


def _size(x):
    size = 1
    for d in x.shape[1:]:
        size *= int(d)
    return size


def gram_matrix(features):
    """Gram matrices of feature maps [N, H, W, C]: F^T F / (H W), shape [N, C, C] (Gatys et al.)."""
    features = ops.cast(features, "float32")
    n, c = ops.shape(features)[0], features.shape[-1]
    flat = ops.reshape(features, (n, -1, c))
    return ops.matmul(ops.transpose(flat, (0, 2, 1)), flat) / ops.cast(ops.shape(flat)[1], "float32")


def gram_distance(a, b):
    """Per-sample mean squared difference of the Gram matrices (style distance): [N]."""
    return _per_sample_mean(ops.square(gram_matrix(a) - gram_matrix(b)))


_DISTANCE_FNS = {"l2": squared_l2_distance, "l1": l1_distance, "gram": gram_distance}


def feature_distance(features_a, features_b, layer_weights=None, distance="l2"):
    """Weighted sum over layers of a per-sample distance between two lists of feature maps: [N].

    Args:
        features_a, features_b: lists of [N, H, W, C] tensors (same layers).
        layer_weights: optional sequence of floats (default 1 for every layer).
        distance: "l2" (mean squared), "l1" (mean absolute) or "gram".
    """
    if distance not in _DISTANCE_FNS:
        raise ValueError(f"unknown feature distance {distance!r}; choose from {list(DISTANCES)}")
    if len(features_a) != len(features_b):
        raise ValueError(f"{len(features_a)} vs {len(features_b)} feature maps")
    weights = layer_weights or [1.0] * len(features_a)
    if len(weights) != len(features_a):
        raise ValueError(f"{len(weights)} layer weights for {len(features_a)} feature maps")
    fn = _DISTANCE_FNS[distance]
    return sum(float(w) * fn(a, b) for w, a, b in zip(weights, features_a, features_b))


def perceptual_loss(comparator, images_a, images_b, layer_weights=None, distance="l2"):
    """Per-sample feature distance of two image batches through `comparator` (images -> feature list): [N]."""
    if layer_weights is None:
        layer_weights = getattr(comparator, "layer_weights", None)
    return feature_distance(comparator(images_a), comparator(images_b), layer_weights, distance)
