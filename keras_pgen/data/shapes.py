"""The built-in data set: coloured shapes rendered by numpy from (seed, index)."""

import numpy as np

from keras_pgen.data.base import Source

KINDS = ("circle", "square", "triangle", "ring", "ellipse", "star", "cross")
PALETTE = np.array(
    [[230, 40, 40], [250, 150, 30], [245, 225, 40], [60, 190, 70], [40, 200, 220],
     [50, 90, 230], [150, 60, 210], [235, 70, 180], [245, 245, 245], [25, 25, 25]],
    np.float32) / 255.0
_MAX_SHAPES = 3
_HEADER, _PER_SHAPE = 9, 7  # uniforms drawn per image: background + count, then per shape.


class ShapesSource(Source):
    """Coloured shapes on plain or gradient backgrounds, rendered on the fly.

    Image i is a pure function of `(seed, i)`: 1-3 anti-aliased shapes (circle, square,
    triangle, ring, ellipse, star, cross) in 10 colours at random positions, sizes and
    angles. The label is the kind of the main (largest, top-most) shape.

    Args:
      resolution: int, image side (4..1024).
      channels: int, 3 (RGB) or 1 (luminance). Default 3.
      num_images: int, the length of the source. Default 4096.
      seed: int >= 0, selects a different set of images. Default 0.
      cache_max_bytes: int: rendered images are kept in memory (rendered once) when all of
        them fit in this many bytes. Default 256 MiB.

    Example:
      >>> images, labels = ShapesSource(32).get(np.arange(8))
    """

    def __init__(self, resolution, channels=3, num_images=4096, seed=0, cache_max_bytes=2**28):
        super().__init__(resolution, channels, list(KINDS), f"generated shapes (seed {seed})")
        self.num_images = int(num_images)
        self.seed = int(seed)
        shape = (self.num_images, resolution, resolution, channels)
        self._cache = np.empty(shape, np.uint8) if np.prod(shape, dtype=np.int64) <= cache_max_bytes else None
        self._labels = np.full(self.num_images if self._cache is not None else 0, -1, np.int32)  # -1: not cached
        grid = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution
        self._x, self._y = grid[None, None, :], grid[None, :, None]

    def __len__(self):
        return self.num_images

    def get(self, indices):
        indices = self._check(indices)
        if self._cache is None:
            return self.render(indices)
        missing = np.unique(indices[self._labels[indices] < 0])
        if len(missing):
            self._cache[missing], self._labels[missing] = self.render(missing)
        return self._cache[indices], self._labels[indices]

    def render(self, indices):
        """Renders images `indices` without the cache; returns `(images, labels)` like `get`."""
        width = _HEADER + _MAX_SHAPES * _PER_SHAPE
        u = np.array([np.random.default_rng((self.seed, int(i))).random(width) for i in indices],
                     np.float32).reshape(len(indices), width)
        images = self._background(u[:, :_HEADER])  # channels first: [n, 3, R, R]
        count = 1 + (u[:, 8] * _MAX_SHAPES).astype(np.int64)
        for slot in reversed(range(_MAX_SHAPES)):  # the main shape (slot 0) is drawn last, on top
            params = u[:, _HEADER + slot * _PER_SHAPE:_HEADER + (slot + 1) * _PER_SHAPE]
            alpha = self._alpha(params, slot, active=slot < count)[:, None]
            colours = PALETTE[(params[:, 1] * len(PALETTE)).astype(np.int64), :, None, None]
            images += (colours - images) * alpha
        if self.channels == 1:
            images = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), images, (0, 1))[:, None]
        labels = (u[:, _HEADER] * len(KINDS)).astype(np.int32)
        return np.round(images * 255).astype(np.uint8).transpose(0, 2, 3, 1), labels

    def _background(self, u):
        """Plain (half the images) or linear-gradient backgrounds in muted colours, [n, 3, R, R]."""
        first, second = 0.1 + 0.6 * u[:, 1:4, None, None], 0.1 + 0.6 * u[:, 4:7, None, None]
        angle = 2 * np.pi * u[:, 7, None, None]
        ramp = np.clip((self._x - 0.5) * np.cos(angle) + (self._y - 0.5) * np.sin(angle) + 0.5, 0, 1)
        ramp *= u[:, 0, None, None] >= 0.5
        return first + (second - first) * ramp[:, None]

    def _alpha(self, u, slot, active):
        """The anti-aliased coverage [n, R, R] of the shapes described by uniforms `u` [n, 7]."""
        kinds = (u[:, 0] * len(KINDS)).astype(np.int64)
        size = 0.22 + 0.12 * u[:, 4] if slot == 0 else 0.08 + 0.10 * u[:, 4]
        centre = size[:, None] + (1 - 2 * size[:, None]) * u[:, 2:4]
        alpha = np.zeros((len(u), self.resolution, self.resolution), np.float32)
        for k, sdf in enumerate(_SDFS):
            rows = np.flatnonzero(active & (kinds == k))
            if not len(rows):
                continue
            x, y = self._x - centre[rows, 0, None, None], self._y - centre[rows, 1, None, None]
            angle = 2 * np.pi * u[rows, 5, None, None]
            x, y = x * np.cos(angle) + y * np.sin(angle), y * np.cos(angle) - x * np.sin(angle)
            distance = sdf(x, y, size[rows, None, None], 0.45 + 0.25 * u[rows, 6, None, None])
            alpha[rows] = np.clip(0.5 - distance * self.resolution, 0, 1)
        return alpha


# Signed distance functions (negative inside), in image-width units; r is the shape's radius.
# Triangle and star after https://iquilezles.org/articles/distfunctions2d/.
def _box(x, y, half_w, half_h):
    qx, qy = np.abs(x) - half_w, np.abs(y) - half_h
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)


def _circle(x, y, r, aspect):
    return np.hypot(x, y) - r


def _square(x, y, r, aspect):
    return _box(x, y, 0.8 * r, 0.8 * r)


def _triangle(x, y, r, aspect):
    k = np.sqrt(3.0)
    x, y = np.abs(x) - r, y + r / k
    fold = x + k * y > 0
    x, y = np.where(fold, (x - k * y) / 2, x), np.where(fold, (-k * x - y) / 2, y)
    x = x - np.clip(x, -2 * r, 0)
    return -np.hypot(x, y) * np.sign(y)


def _ring(x, y, r, aspect):
    return np.abs(np.hypot(x, y) - 0.75 * r) - 0.25 * r


def _ellipse(x, y, r, aspect):
    b = r * aspect
    k0, k1 = np.hypot(x / r, y / b), np.hypot(x / r**2, y / b**2)
    return k0 * (k0 - 1) / np.maximum(k1, 1e-6)


def _star(x, y, r, aspect, inner=0.45):
    c, s = 0.809016994375, -0.587785252292
    x = np.abs(x)
    for kx in (c, -c):
        d = 2 * np.maximum(kx * x + s * y, 0)
        x, y = x - d * kx, y - d * s
    x, y = np.abs(x), y - r
    bx, by = -inner * s, inner * c - 1
    h = np.clip((x * bx + y * by) / (bx * bx + by * by), 0, r)
    return np.hypot(x - bx * h, y - by * h) * np.sign(y * bx - x * by)


def _cross(x, y, r, aspect):
    return np.minimum(_box(x, y, r, 0.3 * r), _box(x, y, 0.3 * r, r))


_SDFS = (_circle, _square, _triangle, _ring, _ellipse, _star, _cross)
