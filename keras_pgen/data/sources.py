"""`load_source`: one entry point for every kind of training data."""

import itertools
import os

import numpy as np
from absl import logging

from keras_pgen.data import images as image_lib
from keras_pgen.data.base import ArraySource, dataset_info
from keras_pgen.data.patches import load_patches
from keras_pgen.data.shapes import ShapesSource

DEFAULT_NUM_IMAGES = 4096

# name -> (class names, the file keras caches under $KERAS_HOME/datasets).
KERAS_DATASETS = {
    "mnist": ([str(i) for i in range(10)], "mnist.npz"),
    "fashion_mnist": (["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                       "sneaker", "bag", "ankle boot"], "fashion-mnist/train-*-ubyte.gz (2 files)"),
    "cifar10": (["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"], "cifar-10-python.tar.gz, extracted as cifar-10-batches-py-target/"),
}


def load_source(spec, resolution, channels=3, *, resize_mode="crop", seed=0, cache_dir=None,
                cache_max_bytes=2**31, num_images=None, patch_max_scale=1.0):
    """Loads training images as a `Source`.

    Args:
      spec: str, one of
        "shapes": the built-in generated data set (default length 4096);
        "mnist", "fashion_mnist", "cifar10": keras.datasets train split (downloaded once);
        "tfds:NAME" or "tfds:NAME:SPLIT": a TensorFlow Datasets set (default split "train");
        "patches:IMAGE_OR_FOLDER": random crops of a few large images (default 4096);
        a folder (recursive), a glob pattern (`**` allowed) or a `.zip` file of images
        (png, jpg, jpeg, bmp, gif, webp, tif, tiff). Labels come from the first-level
        sub-folders when there are at least two, else the images are unlabelled.
      resolution: int, the side of the square images.
      channels: int, 3 (RGB) or 1 (luminance). Default 3.
      resize_mode: "crop" (centre crop, default), "pad" (black borders) or "stretch".
      seed: int >= 0, for the generated sources ("shapes", "patches:"). Default 0.
      cache_dir: str or None: decoded images larger than `cache_max_bytes` are memory-mapped
        in a temporary file there (default: the system temporary folder).
      cache_max_bytes: int, default 2 GiB.
      num_images: int or None: the length of generated sources ("shapes", "patches:");
        else only the first `num_images` files / examples are read.
      patch_max_scale: float >= 1, for "patches:": the largest crop side relative to
        `resolution` (larger crops are resized down). Default 1: exact crops.

    Returns:
      A `Source`.

    Raises:
      FileNotFoundError: a path does not exist.
      ValueError: no (readable) images, or a bad argument.
      RuntimeError: a keras data set could not be downloaded.
      ImportError: "tfds:" without tensorflow-datasets installed.
    """
    spec = os.fspath(spec)
    if resize_mode not in image_lib.RESIZE_MODES:
        raise ValueError(f"unknown resize_mode {resize_mode!r}; choose from {image_lib.RESIZE_MODES}")
    if channels not in (1, 3) or int(resolution) < 1:
        raise ValueError(f"need channels 1 or 3 and a positive resolution, got {channels!r} and {resolution!r}")
    common = dict(resolution=resolution, channels=channels, resize_mode=resize_mode,
                  cache_dir=cache_dir, cache_max_bytes=cache_max_bytes)
    if spec == "shapes":
        source = ShapesSource(resolution, channels, num_images or DEFAULT_NUM_IMAGES, seed)
    elif spec in KERAS_DATASETS:
        source = _load_keras(spec, num_images, **common)
    elif spec.startswith("tfds:"):
        source = _load_tfds(spec[len("tfds:"):], num_images, **common)
    elif spec.startswith("patches:"):
        source = load_patches(spec[len("patches:"):], resolution, channels, num_images or DEFAULT_NUM_IMAGES,
                              seed, patch_max_scale)
    else:
        source = _load_files(spec, num_images, **common)
    logging.info("loaded %s", dataset_info(source))
    return source


def _load_files(spec, num_images, resolution, channels, resize_mode, cache_dir, cache_max_bytes):
    root, names, open_fn = image_lib.list_images(spec)
    names = names[:num_images]
    labels, class_names = image_lib.labels_from_names(names)
    images, kept = image_lib.convert_all(
        lambda name: image_lib.decode_file(open_fn(name), resolution, channels, resize_mode),
        names, names, (resolution, resolution, channels), cache_dir, cache_max_bytes)
    return ArraySource(images, labels[kept], class_names, description=spec)


def _convert_examples(examples, name, resolution, channels, resize_mode, cache_dir, cache_max_bytes):
    """Converts image arrays of any size (TFDS examples) into one uint8 array."""
    return image_lib.convert_all(
        lambda e: image_lib.to_array(image_lib.from_array(e["image"]), resolution, channels, resize_mode),
        examples, [f"{name}[{i}]" for i in range(len(examples))], (resolution, resolution, channels),
        cache_dir, cache_max_bytes)


def _keras_dataset_dir():
    return os.path.join(os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras"), "datasets")


def _read_keras_dataset(name):
    """Returns the train split `(x, y)`; mnist.npz is read directly when present (keras would
    check its hash and look in the KERAS_HOME of import time)."""
    cached = os.path.join(_keras_dataset_dir(), "mnist.npz")
    if name == "mnist" and os.path.exists(cached):
        with np.load(cached) as data:
            return data["x_train"], data["y_train"]
    import keras  # pylint: disable=import-outside-toplevel

    (x, y), _ = getattr(keras.datasets, name).load_data()
    return x, y


def _load_keras(name, num_images, **common):
    class_names, cached_file = KERAS_DATASETS[name]
    try:
        x, y = _read_keras_dataset(name)
    except Exception as e:  # noqa: BLE001 - keras raises a bare Exception on a failed download.
        raise RuntimeError(
            f"could not load or download the keras data set {name!r} ({type(e).__name__}: {e}). "
            f"Offline, put {cached_file} in {_keras_dataset_dir()}/ (or $KERAS_HOME/datasets/), "
            f"or train on a folder of images with --data=FOLDER") from e
    x, y = x[:num_images], np.asarray(y).reshape(-1)[:num_images]
    return ArraySource(x, y, class_names, description=f"keras.datasets.{name}", **common)


def _load_tfds(spec, num_images, **common):
    try:
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise ImportError(f"'tfds:{spec}' needs TensorFlow Datasets: pip install tensorflow-datasets") from e
    name, _, split = spec.partition(":")
    dataset, info = tfds.load(name, split=split or "train", with_info=True)
    examples = list(itertools.islice(tfds.as_numpy(dataset), num_images))
    label = info.features["label"] if "label" in info.features else None
    images, kept = _convert_examples(examples, spec, **common)
    labels = np.array([examples[i].get("label", 0) for i in kept], np.int32) if label else None
    return ArraySource(images, labels, getattr(label, "names", None), description=f"tfds:{spec}")
