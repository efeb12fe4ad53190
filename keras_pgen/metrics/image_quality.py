"""Reconstruction quality for autoencoders: PSNR, SSIM and a sharpness figure (uint8 images).

- `psnr`: mean over images of 10 log10(255^2 / MSE), MSE over every pixel and channel of an
  image; identical images have MSE 0, floored at 1e-10 (148.1 dB) so the mean stays finite.
- `ssim`: mean of `tf.image.ssim` (Wang et al. 2004: 11x11 Gaussian window with sigma 1.5,
  K1 = 0.01, K2 = 0.03, max_val 255), the window shrunk to the image side for images
  smaller than 11 pixels.
- `laplacian_variance`: per image, the variance of the 4-neighbour Laplacian
  [[0, 1, 0], [1, -4, 1], [0, 1, 0]] of the luminance (0.299 R + 0.587 G + 0.114 B, in
  [0, 255]) over the interior pixels (no padding): the usual blur measure.
- `sharpness`: mean Laplacian variance of the reconstructions divided by that of the inputs;
  1 keeps the inputs' detail, blurry reconstructions (the MSE autoencoders of the seeds)
  score well below 1.
- `border_step`: the mean absolute step, in [0, 1] units, between each image's outermost rows and
  columns and the row or column next to them inside (all four edges, every channel). A drawn
  frame or a ring of bright pixels around generated images (what zero padding in a generator
  draws early in training) shows as a border step far above the real images'; `border_report`
  gives both and their ratio (bin/evaluate).
"""
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114])
MIN_MSE = 1e-10


def _float_images(images):
    images = np.asarray(images, np.float64)
    return images[..., None] if images.ndim == 3 else images


def psnr(reference, images):
    """Mean PSNR in dB of uint8-range `images` against `reference`, both [N, H, W, C]."""
    reference, images = _float_images(reference), _float_images(images)
    mse = np.mean((reference - images) ** 2, axis=(1, 2, 3))
    return float(np.mean(10.0 * np.log10(255.0 ** 2 / np.maximum(mse, MIN_MSE))))


def ssim(reference, images):
    """Mean SSIM (tf.image.ssim, max_val 255) of `images` against `reference`, [N, H, W, C] in [0, 255]."""
    import tensorflow as tf

    reference, images = _float_images(reference), _float_images(images)
    filter_size = min(11, reference.shape[1], reference.shape[2])
    values = tf.image.ssim(tf.constant(reference, tf.float32), tf.constant(images, tf.float32), max_val=255.0,
                           filter_size=filter_size)
    return float(np.mean(values.numpy()))


def luminance(images):
    """[N, H, W] in [0, 255]: grey images as they are, RGB as 0.299 R + 0.587 G + 0.114 B."""
    images = _float_images(images)
    return images[..., 0] if images.shape[-1] == 1 else images[..., :3] @ LUMA


def laplacian_variance(images):
    """Variance of the 4-neighbour Laplacian of each image's luminance (interior pixels): [N]."""
    y = luminance(images)
    laplacian = (y[:, :-2, 1:-1] + y[:, 2:, 1:-1] + y[:, 1:-1, :-2] + y[:, 1:-1, 2:] - 4.0 * y[:, 1:-1, 1:-1])
    return laplacian.reshape(len(y), -1).var(axis=1)


def sharpness(reference, images):
    """mean(laplacian_variance(images)) / mean(laplacian_variance(reference))."""
    return float(np.mean(laplacian_variance(images)) / max(np.mean(laplacian_variance(reference)), 1e-12))


def reconstruction_metrics(inputs, reconstructions):
    """{"psnr", "ssim", "sharpness"} of uint8 `reconstructions` against `inputs`."""
    return {"psnr": psnr(inputs, reconstructions), "ssim": ssim(inputs, reconstructions),
            "sharpness": sharpness(inputs, reconstructions)}


def border_step(images):
    """Mean |edge row or column - its inward neighbour| of uint8-range images [N, H, W(, C)], in [0, 1] units.

    Example: an 8x8 image of zeros with a one-pixel frame of 255 scores (8 - 2) / 8 = 0.75 (on each
    edge the two corner pixels match their neighbours, the six others step by 1).
    """
    x = _float_images(images) / 255.0
    steps = [x[:, 0] - x[:, 1], x[:, -1] - x[:, -2], x[:, :, 0] - x[:, :, 1], x[:, :, -1] - x[:, :, -2]]
    return float(np.mean(np.abs(np.concatenate([s.ravel() for s in steps]))))


def border_report(generated, real):
    """{"border_step", "border_step_real", "border_step_ratio"}: `border_step` of the samples, of the real
    images, and their ratio (about 1: borders like the data's; well above 1: a frame)."""
    fake, reference = border_step(generated), border_step(real)
    return {"border_step": fake, "border_step_real": reference, "border_step_ratio": fake / max(reference, 1e-12)}
