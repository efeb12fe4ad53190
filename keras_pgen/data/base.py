"""The `Source` interface (an indexable set of images) and `ArraySource`."""

import numpy as np

from keras_pgen.data import images as image_lib


class Source:
    """An indexable, deterministic set of square uint8 images with integer labels.

    Subclasses implement `__len__` and `get`. Plain Python and numpy: no TensorFlow needed.

    Args:
      resolution: int, the image side.
      channels: int, 1 or 3.
      class_names: list of str, empty when unlabelled.
      description: str, where the images come from (for `dataset_info`).
    """

    def __init__(self, resolution, channels, class_names=(), description=""):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        if int(resolution) < 1:
            raise ValueError(f"resolution must be a positive int, got {resolution!r}")
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.class_names = list(class_names)
        self.description = description

    @property
    def num_classes(self):
        return len(self.class_names)

    def __len__(self):
        raise NotImplementedError

    def get(self, indices):
        """Returns `(images uint8 [n, R, R, C], labels int32 [n])` for int indices `[n]`."""
        raise NotImplementedError

    def _check(self, indices):
        indices = np.asarray(indices, np.int64).reshape(-1)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"indices must be in [0, {len(self)}), got {indices.min()}..{indices.max()}")
        return indices


class ArraySource(Source):
    """Images held in a uint8 array (in memory or an `np.memmap`).

    Args:
      images: uint8 array `[n, h, w, c]` or `[n, h, w]` (grayscale).
      labels: int array `[n]`, or None for unlabelled (all zeros).
      class_names: list of str; default: `[]` when unlabelled, else "0", "1", ...
      resolution: int or None (the array's smaller side); when it (or `channels`) differs
        from the array, every image is converted with `resize_mode` ("crop", "pad" or "stretch").
      channels: 1, 3 or None (keep).
      resize_mode: str, default "crop".
      description: str, for `dataset_info`.
      cache_dir, cache_max_bytes: where converted images larger than `cache_max_bytes`
        are memory-mapped (see `images.allocate`).

    Example:
      >>> source = ArraySource(np.load("faces.npy"), resolution=32, channels=3)
    """

    def __init__(self, images, labels=None, class_names=None, *, resolution=None, channels=None,
                 resize_mode="crop", description="array", cache_dir=None, cache_max_bytes=2**31):
        images = np.asanyarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3, 4):
            raise ValueError(f"images must be uint8 [n, h, w, 1|3|4], got {images.dtype} {images.shape}")
        resolution = resolution or min(images.shape[1:3])
        channels = channels or min(images.shape[-1], 3)
        if labels is None:
            labels, class_names = np.zeros(len(images), np.int32), class_names or []
        labels = np.asarray(labels, np.int32).reshape(-1)
        if len(labels) != len(images):
            raise ValueError(f"{len(labels)} labels for {len(images)} images")
        if class_names is None:
            class_names = [str(i) for i in range(int(labels.max(initial=0)) + 1)]
        super().__init__(resolution, channels, class_names, description)
        if images.shape[1:] != (resolution, resolution, channels):
            images, kept = image_lib.convert_all(
                lambda a: image_lib.to_array(image_lib.from_array(a), resolution, channels, resize_mode),
                images, [f"{description}[{i}]" for i in range(len(images))],
                (resolution, resolution, channels), cache_dir, cache_max_bytes)
            labels = labels[kept]
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def get(self, indices):
        indices = self._check(indices)
        return np.asarray(self.images[indices]), self.labels[indices]


def dataset_info(source):
    """One line describing a source: count, resolution, channels, classes, origin."""
    classes = f"{source.num_classes} classes" if source.num_classes else "unlabelled"
    return (f"{len(source)} images of {source.resolution}x{source.resolution}x{source.channels}"
            f" ({classes}) from {source.description}")


def looks_grey(source, max_images=256):
    """Whether an RGB source holds grey images: R = G = B in every pixel of every image checked.

    Checks up to `max_images` images spread evenly over the source (all of a small one).

    Returns:
        (bool, int): grey or not (False for one-channel or empty sources), images checked.
    """
    if source.channels != 3 or not len(source):
        return False, 0
    indices = np.unique(np.linspace(0, len(source) - 1, min(len(source), int(max_images))).astype(np.int64))
    images, _ = source.get(indices)
    grey = bool(np.all(images[..., :1] == images[..., 1:]))
    return grey, len(indices)
