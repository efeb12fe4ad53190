"""PSNR, SSIM and the Laplacian sharpness figure against numpy hand computations."""
import math

import numpy as np
import pytest

from keras_pgen.metrics import image_quality


def test_psnr_per_image_mean():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0] += 5  # mse 25
    b[1, 0, 0, 0] = 48  # mse 48^2 / 48 = 48
    expected = (10 * math.log10(255 ** 2 / 25) + 10 * math.log10(255 ** 2 / 48)) / 2
    assert image_quality.psnr(a, b) == pytest.approx(expected, rel=1e-12)
    # identical images: the MSE floor keeps the mean finite
    assert image_quality.psnr(a, a) == pytest.approx(10 * math.log10(255 ** 2 / 1e-10))


def numpy_ssim_single_window(x, y, max_val=255.0):
    """SSIM of 11x11 images: the Gaussian window (sigma 1.5) covers the image once; mean over channels."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    values = []
    for c in range(x.shape[-1]):
        a, b = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        mx, my = (w * a).sum(), (w * b).sum()
        vx, vy = (w * a * a).sum() - mx ** 2, (w * b * b).sum() - my ** 2
        cov = (w * a * b).sum() - mx * my
        values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return np.mean(values)


def test_ssim_matches_the_formula():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 11, 11, 3)).astype(np.uint8)
    y = np.clip(x.astype(int) + rng.integers(-40, 41, x.shape), 0, 255).astype(np.uint8)
    expected = np.mean([numpy_ssim_single_window(a, b) for a, b in zip(x, y)])
    assert image_quality.ssim(x, y) == pytest.approx(expected, rel=1e-4)
    assert image_quality.ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    # images smaller than the 11-pixel window still work (the window shrinks)
    assert image_quality.ssim(x[:, :8, :8], x[:, :8, :8]) == pytest.approx(1.0, abs=1e-6)


def loop_laplacian_variance(image):
    y = image.astype(np.float64)
    y = y[..., 0] if y.shape[-1] == 1 else 0.299 * y[..., 0] + 0.587 * y[..., 1] + 0.114 * y[..., 2]
    h, w = y.shape
    values = [y[i - 1, j] + y[i + 1, j] + y[i, j - 1] + y[i, j + 1] - 4 * y[i, j]
              for i in range(1, h - 1) for j in range(1, w - 1)]
    return np.var(values)


def test_laplacian_variance_and_sharpness():
    rng = np.random.default_rng(1)
    sharp = rng.integers(0, 256, (2, 9, 7, 3)).astype(np.uint8)
    expected = [loop_laplacian_variance(im) for im in sharp]
    np.testing.assert_allclose(image_quality.laplacian_variance(sharp), expected, rtol=1e-12)
    grey = sharp[..., :1]
    np.testing.assert_allclose(image_quality.laplacian_variance(grey), [loop_laplacian_variance(im) for im in grey],
                               rtol=1e-12)
    # a 3x3 box blur of the image loses detail: sharpness well below 1; the image itself: exactly 1
    padded = np.pad(sharp.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    blurred = sum(padded[:, i:i + 9, j:j + 7] for i in range(3) for j in range(3)) / 9
    blurred = np.round(blurred).astype(np.uint8)
    ratio = np.mean([loop_laplacian_variance(im) for im in blurred]) / np.mean(expected)
    assert image_quality.sharpness(sharp, blurred) == pytest.approx(ratio, rel=1e-12)
    assert ratio < 0.2
    assert image_quality.sharpness(sharp, sharp) == pytest.approx(1.0)
    # a flat image has no Laplacian at all
    assert image_quality.laplacian_variance(np.full((1, 5, 5, 3), 77, np.uint8))[0] == pytest.approx(0.0, abs=1e-20)


def test_border_step_of_a_frame_by_hand():
    """An 8x8 black image with a one-pixel white frame: on each edge 6 of 8 pixels step by 1 -> 0.75."""
    framed = np.zeros((1, 8, 8, 3), np.uint8)
    framed[:, [0, -1]] = 255
    framed[:, :, [0, -1]] = 255
    assert image_quality.border_step(framed) == pytest.approx(0.75)
    # a horizontal ramp 0, 51, ..., 255: the left and right edges (12 of 24 edge pixels) step by 0.2, top and bottom by 0
    ramp = np.tile(np.arange(0, 256, 51, dtype=np.uint8)[None, None, :, None], (2, 6, 1, 1))
    assert image_quality.border_step(ramp) == pytest.approx(0.1)
    flat = np.full((3, 5, 5), 77, np.uint8)  # grey [N, H, W] images
    assert image_quality.border_step(flat) == 0.0
    report = image_quality.border_report(framed, ramp)
    assert report == pytest.approx({"border_step": 0.75, "border_step_real": 0.1, "border_step_ratio": 7.5})
