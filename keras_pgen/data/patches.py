"""Random square patches of a few large images (the "doodle" / single-image case)."""

import os

import numpy as np

from keras_pgen.data import images as image_lib
from keras_pgen.data.base import Source


class PatchesSource(Source):
    """A virtual source of random square crops of a few large images.

    Patch i is cut from image `i % len(images)` at a position (and, when `max_scale > 1`,
    a side between `resolution` and `max_scale * resolution`, resized down) drawn from a
    generator seeded by `(seed, i)`. Unlabelled.

    Args:
      images: list of uint8 arrays `[h, w, channels]`, each at least `resolution` on a side.
      names: list of str, the images' names (for errors).
      resolution: int, the patch side.
      num_patches: int, the length of the source. Default 4096.
      seed: int >= 0. Default 0.
      max_scale: float >= 1, the largest crop side relative to `resolution`. Default 1
        (exact crops, no resampling).

    Raises:
      ValueError: an image is smaller than a patch.
    """

    def __init__(self, images, names, resolution, num_patches=4096, seed=0, max_scale=1.0):
        channels = images[0].shape[-1]
        super().__init__(resolution, channels, [], f"{num_patches} patches of {len(images)} image(s)")
        for image, name in zip(images, names):
            if min(image.shape[:2]) < resolution:
                raise ValueError(f"image {name!r} is {image.shape[1]}x{image.shape[0]}, smaller than "
                                 f"the {resolution}x{resolution} patches")
        if max_scale < 1:
            raise ValueError(f"max_scale must be >= 1, got {max_scale}")
        self.images, self.names = list(images), list(names)
        self.num_patches, self.seed, self.max_scale = int(num_patches), int(seed), float(max_scale)

    def __len__(self):
        return self.num_patches

    def crop_box(self, index):
        """Returns `(image_index, top, left, side)` of patch `index`."""
        image_index = index % len(self.images)
        h, w = self.images[image_index].shape[:2]
        rng = np.random.default_rng((self.seed, int(index)))
        side = self.resolution
        if self.max_scale > 1:
            side = int(rng.integers(side, min(int(side * self.max_scale), h, w) + 1))
        return image_index, int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side

    def get(self, indices):
        indices = self._check(indices)
        out = np.empty((len(indices), self.resolution, self.resolution, self.channels), np.uint8)
        for j, index in enumerate(indices):
            image_index, top, left, side = self.crop_box(index)
            patch = self.images[image_index][top:top + side, left:left + side]
            if side != self.resolution:
                patch = image_lib.to_array(image_lib.from_array(patch), self.resolution, self.channels, "stretch")
            out[j] = patch
        return out, np.zeros(len(indices), np.int32)


def load_patches(spec, resolution, channels=3, num_patches=4096, seed=0, max_scale=1.0):
    """Decodes the full-size images of `spec` (file, folder, glob or zip) into a `PatchesSource`."""
    root, names, open_fn = image_lib.list_images(spec)
    decoded = list(image_lib.iter_converted(
        lambda name: image_lib.decode_file(open_fn(name), None, channels), names))
    image_lib.check_failures([(n, a) for n, a in zip(names, decoded) if isinstance(a, Exception)], len(names))
    kept = [(n, a) for n, a in zip(names, decoded) if not isinstance(a, Exception)]
    source = PatchesSource([a for _, a in kept], [os.path.join(root, n) for n, _ in kept],
                           resolution, num_patches, seed, max_scale)
    source.description += f" in {spec}"
    return source
