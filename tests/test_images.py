"""Tests for keras_pgen.images: uint8 conversion, grids, upscaling and image files."""
import numpy as np
import pytest
from PIL import Image

from keras_pgen import images


def test_to_uint8_endpoints_midpoint_and_out_of_range():
    x = np.array([-1.0, 0.0, 1.0, -3.0, 2.5, 1.0 / 127.5 - 1.0], np.float32)
    np.testing.assert_array_equal(images.to_uint8(x), [0, 128, 255, 0, 255, 1])
    assert images.to_uint8(x).dtype == np.uint8


def test_to_uint8_passes_uint8_and_rejects_ints():
    x = np.array([0, 7, 255], np.uint8)
    assert images.to_uint8(x) is x
    with pytest.raises(TypeError, match="float images"):
        images.to_uint8(np.array([1, 2], np.int64))


def test_make_grid_2x2_with_padding():
    tiles = np.stack([np.full((2, 2, 1), v, np.uint8) for v in (10, 20, 30, 40)])
    p = 255
    expected = np.array(
        [
            [p, p, p, p, p, p, p],
            [p, 10, 10, p, 20, 20, p],
            [p, 10, 10, p, 20, 20, p],
            [p, p, p, p, p, p, p],
            [p, 30, 30, p, 40, 40, p],
            [p, 30, 30, p, 40, 40, p],
            [p, p, p, p, p, p, p],
        ],
        np.uint8,
    )[..., None]
    np.testing.assert_array_equal(images.make_grid(tiles, padding=1, pad_value=p), expected)


def test_make_grid_partial_last_row_float_and_rgb():
    tiles = np.ones((3, 4, 5, 3), np.float32)  # 1.0 -> 255
    grid = images.make_grid(tiles, ncols=2, padding=2)
    assert grid.shape == (2 * (4 + 2) + 2, 2 * (5 + 2) + 2, 3) and grid.dtype == np.uint8
    assert (grid[2:6, 2:7] == 255).all() and (grid[8:12, 2:7] == 255).all()
    assert (grid[8:12, 9:14] == 0).all()  # Empty fourth cell.
    assert grid.sum() == 3 * 4 * 5 * 3 * 255


def test_make_grid_grayscale_nhw_and_errors():
    assert images.make_grid(np.zeros((5, 3, 3), np.uint8), padding=0).shape == (6, 9, 1)
    with pytest.raises(ValueError, match="C in"):
        images.make_grid(np.zeros((2, 3, 3, 2), np.uint8))
    with pytest.raises(ValueError, match="at least one"):
        images.make_grid(np.zeros((0, 3, 3, 3), np.uint8))


def test_upscale_nearest():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    big = images.upscale_nearest(image, 10)
    assert big.shape == (12, 12, 1)
    np.testing.assert_array_equal(big[::3, ::3], image)
    np.testing.assert_array_equal(big[:3, :3], 0)
    assert images.upscale_nearest(np.zeros((2, 4, 4, 3)), 8).shape == (2, 8, 8, 3)
    assert images.upscale_nearest(image, 4) is image
    assert images.upscale_nearest(np.zeros((4, 5)), 8).shape == (8, 10)


def test_save_image_png_rgb_and_grayscale_jpeg(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    images.save_image(tmp_path / "sub" / "rgb.png", rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "sub" / "rgb.png")), rgb)

    gray = np.full((6, 7, 1), 0.0, np.float32)  # -> 128
    images.save_image(tmp_path / "gray.png", gray)
    loaded = Image.open(tmp_path / "gray.png")
    assert loaded.mode == "L" and (np.asarray(loaded) == 128).all()

    images.save_image(tmp_path / "rgb.JPG", rgb)
    assert Image.open(tmp_path / "rgb.JPG").format == "JPEG"
    with pytest.raises(ValueError, match="got 'x.bmp'"):
        images.save_image("x.bmp", rgb)


def test_save_gif_frames_and_duration(tmp_path):
    frames = [np.full((5, 5, 3), v, np.uint8) for v in (0, 100, 200)]
    images.save_gif(tmp_path / "a.gif", frames, duration_ms=40)
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 3 and gif.info["duration"] == 40 and gif.info["loop"] == 0
    with pytest.raises(ValueError, match="at least one frame"):
        images.save_gif(tmp_path / "b.gif", [])
