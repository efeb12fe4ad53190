"""Image grids, PNG/JPEG/GIF files and uint8 conversion for generated samples (numpy + PIL only)."""
import math
import os

import numpy as np
from PIL import Image

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def to_uint8(images):
    """Converts images in [-1, 1] to uint8 as `round((x + 1) * 127.5)` clipped to [0, 255].

    The exported serving signatures use the same formula (`keras_pgen.export`), so the
    two agree bit for bit on the same float32 input. Rounding is half to even, as in
    `tf.round`.

    Args:
        images: array-like of floats in [-1, 1] (any shape), or uint8 (returned as is).

    Returns:
        uint8 numpy array of the same shape.

    Raises:
        TypeError: `images` is neither floating point nor uint8.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"to_uint8 expects float images in [-1, 1] or uint8, got {images.dtype}")
    return np.clip(np.round((images + 1) * 127.5), 0, 255).astype(np.uint8)


def _as_nhwc_uint8(images):
    """uint8 [N, H, W, C] with C in (1, 3) from NHWC or NHW, uint8 or float in [-1, 1]."""
    images = to_uint8(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"expected images of shape [N, H, W] or [N, H, W, C] with C in (1, 3), "
            f"got {images.shape}"
        )
    return images


def make_grid(images, ncols=None, padding=2, pad_value=0):
    """Tiles N images into one near-square grid image.

    There are `padding` pixels of `pad_value` between tiles and around the border
    (the torchvision convention), so a grid of `rows x ncols` tiles of size H x W is
    `rows * (H + padding) + padding` by `ncols * (W + padding) + padding`. Cells after
    the last image are left at `pad_value`.

    Args:
        images: [N, H, W, C] (C = 1 or 3) or [N, H, W]; uint8, or float in [-1, 1].
        ncols: int, default `ceil(sqrt(N))`. Tiles per row.
        padding: int, default 2.
        pad_value: int in [0, 255], default 0 (black).

    Returns:
        uint8 numpy array [H', W', C].

    Raises:
        ValueError: empty input, bad shape or non-positive `ncols`.
    """
    images = _as_nhwc_uint8(images)
    n, h, w, c = images.shape
    if n == 0:
        raise ValueError("make_grid needs at least one image")
    if ncols is None:
        ncols = math.ceil(math.sqrt(n))
    if ncols < 1:
        raise ValueError(f"ncols must be positive, got {ncols}")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    grid = np.full(
        (nrows * (h + padding) + padding, ncols * (w + padding) + padding, c),
        pad_value,
        dtype=np.uint8,
    )
    for i, image in enumerate(images):
        top = padding + (i // ncols) * (h + padding)
        left = padding + (i % ncols) * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid


def upscale_nearest(image, min_size):
    """Repeats pixels by an integer factor so the shorter side is at least `min_size`.

    Args:
        image: [H, W], [H, W, C] or [N, H, W, C] array (upscaled along H and W).
        min_size: int. Target minimum size of the shorter side; images already that
            large are returned unchanged.

    Returns:
        The upscaled array, same dtype.
    """
    image = np.asarray(image)
    h_axis = max(image.ndim - 3, 0)
    factor = max(1, math.ceil(min_size / min(image.shape[h_axis : h_axis + 2])))
    if factor == 1:
        return image
    return image.repeat(factor, axis=h_axis).repeat(factor, axis=h_axis + 1)


def _to_pil(image):
    """PIL image from [H, W, C] (C = 1 -> mode L, 3 -> RGB) or [H, W]; uint8 or float."""
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(f"expected an image [H, W], [H, W, 1] or [H, W, 3], got {image.shape}")
    return Image.fromarray(image)


def _make_parent(path):
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)


def save_image(path, image):
    """Writes one image as PNG or JPEG, chosen by the file extension.

    Args:
        path: str or path-like ending in .png, .jpg or .jpeg; parent dirs are created.
        image: [H, W, C] (C = 1 is saved as grayscale "L") or [H, W]; uint8 or float in
            [-1, 1].

    Raises:
        ValueError: unsupported extension or image shape.
    """
    if not os.fspath(path).lower().endswith(_IMAGE_EXTENSIONS):
        raise ValueError(f"save_image writes {', '.join(_IMAGE_EXTENSIONS)} files, got {path!r}")
    pil_image = _to_pil(image)
    _make_parent(path)
    pil_image.save(path)


def save_gif(path, frames, duration_ms=60, loop=0):
    """Writes an animated GIF.

    Pillow merges consecutive identical frames (adding their durations), so a GIF of
    a static sequence has fewer frames than given but the same total duration.

    Args:
        path: str or path-like, normally ending in .gif; parent dirs are created.
        frames: sequence or array of images [H, W, C] (C = 1 or 3) or [H, W]; uint8 or
            float in [-1, 1].
        duration_ms: int, default 60. Display time of each frame.
        loop: int, default 0. Number of loops; 0 loops forever.

    Raises:
        ValueError: no frames or a bad frame shape.
    """
    images = [_to_pil(frame) for frame in frames]
    if not images:
        raise ValueError("save_gif needs at least one frame")
    _make_parent(path)
    images[0].save(
        path, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=loop
    )
