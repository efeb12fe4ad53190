"""Tests of image folder / glob / zip sources, format conversions, resize modes and patches."""

import logging
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from keras_pgen.data import ArraySource, PatchesSource, load_source

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def save(path, image, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, **kwargs)
    return path


def solid(colour, size=(12, 10), mode="RGB"):
    return Image.new(mode, size, colour)


def skipped_warnings(caplog):
    return [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]


@pytest.fixture
def mixed_folder(tmp_path):
    """Every kind of image file the loader converts, plus a corrupt and a fake one."""
    folder = tmp_path / "mixed"
    save(str(folder / "rgb.png"), solid(RED))
    save(str(folder / "gray.png"), solid(100, mode="L"))
    rgba = Image.new("RGBA", (10, 10), (0, 0, 255, 0))  # fully transparent: white after compositing
    save(str(folder / "rgba.png"), rgba)
    save(str(folder / "palette.gif"), solid(GREEN).convert("P"))
    save(str(folder / "cmyk.jpg"), solid((0, 255, 255, 0), mode="CMYK"), quality=95)  # red in CMYK
    save(str(folder / "gray16.png"), Image.fromarray(np.full((10, 10), 32896, np.uint16)))
    save(str(folder / "deeper" / "upper.JPEG"), solid(BLUE), quality=95)
    (folder / "corrupt.jpg").write_bytes(open(folder / "deeper" / "upper.JPEG", "rb").read()[:40])
    (folder / "fake.png").write_text("this is not a png")
    (folder / "notes.txt").write_text("ignored")
    return folder


def by_name(source, folder):
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.name not in ("corrupt.jpg", "fake.png", "notes.txt"))
    return dict(zip(names, source.get(np.arange(len(source)))[0]))


def test_folder_converts_every_format_and_skips_bad_files_in_one_warning(mixed_folder, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="absl")  # an in-process absl flag parse sets it to WARNING
    source = load_source(str(mixed_folder), 8)
    assert len(source) == 7 and source.num_classes == 0
    images = by_name(source, mixed_folder)
    assert all(image.shape == (8, 8, 3) and image.dtype == np.uint8 for image in images.values())
    np.testing.assert_array_equal(images["rgb.png"][0, 0], RED)
    np.testing.assert_array_equal(images["gray.png"][0, 0], (100, 100, 100))
    np.testing.assert_array_equal(images["rgba.png"][0, 0], (255, 255, 255))
    np.testing.assert_array_equal(images["palette.gif"][0, 0], GREEN)
    np.testing.assert_allclose(images["cmyk.jpg"][4, 4], RED, atol=30)
    np.testing.assert_allclose(images["gray16.png"][0, 0], (128, 128, 128), atol=1)
    np.testing.assert_allclose(images["deeper/upper.JPEG"][4, 4], BLUE, atol=30)
    warnings = skipped_warnings(caplog)
    assert len(warnings) == 1
    assert "skipped 2 unreadable image(s)" in warnings[0]
    assert "corrupt.jpg" in warnings[0] and "fake.png" in warnings[0]
    assert any("7 images of 8x8x3" in r.getMessage() for r in caplog.records)


def test_grayscale_output_and_num_images(mixed_folder):
    source = load_source(str(mixed_folder), 6, channels=1, num_images=3)  # the first 3 files, 1 corrupt
    images, labels = source.get(np.arange(len(source)))
    assert images.shape == (2, 6, 6, 1) and (labels == 0).all()
    np.testing.assert_allclose(images[1, 3, 3], [29], atol=10)  # blue's luminance (0.114 * 255)


def test_many_bad_files_are_summarised(tmp_path, caplog):
    save(str(tmp_path / "good.png"), solid(RED))
    for i in range(12):
        (tmp_path / f"bad{i:02d}.png").write_bytes(b"junk")
    assert len(load_source(str(tmp_path), 4)) == 1
    (warning,) = skipped_warnings(caplog)
    assert "skipped 12 unreadable image(s)" in warning and "bad00.png" in warning and "and 2 more" in warning


def test_missing_empty_and_unreadable_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_source(str(tmp_path / "nowhere"), 8)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(ValueError, match=r"empty.*\.png"):
        load_source(str(tmp_path / "empty"), 8)
    with pytest.raises(ValueError, match=r"\*\.webp.*\.jpeg"):
        load_source(str(tmp_path / "*.webp"), 8)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"none of the 1 image.*x\.png.*UnidentifiedImageError"):
        load_source(str(tmp_path / "bad"), 8)


def test_subfolder_labels(tmp_path):
    for name, colour, count in (("dogs", RED, 2), ("cats", BLUE, 3)):
        for i in range(count):
            save(str(tmp_path / "pets" / name / f"{i}.png"), solid(colour))
    save(str(tmp_path / "one" / "only" / "a.png"), solid(RED))
    source = load_source(str(tmp_path / "pets"), 4)
    assert source.class_names == ["cats", "dogs"]
    images, labels = source.get(np.arange(5))
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(images[labels == 0][:, 0, 0], [BLUE] * 3)
    assert load_source(str(tmp_path / "one"), 4).num_classes == 0


def test_glob_patterns(tmp_path):
    save(str(tmp_path / "a.png"), solid(RED))
    save(str(tmp_path / "b.jpg"), solid(GREEN))
    save(str(tmp_path / "sub" / "c.png"), solid(BLUE))
    assert len(load_source(str(tmp_path / "*.png"), 4)) == 1
    assert len(load_source(str(tmp_path / "**" / "*.png"), 4)) == 2
    assert len(load_source(str(tmp_path / "**" / "*"), 4)) == 3


def test_zip_with_labels(tmp_path):
    path = tmp_path / "images.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, colour in (("b/x.png", RED), ("a/y.png", GREEN), ("a/z.bmp", BLUE)):
            image = tmp_path / "tmp.png"
            solid(colour).save(image, format=name.rsplit(".")[-1].replace("bmp", "BMP").replace("png", "PNG"))
            archive.write(image, name)
        archive.writestr("a/readme.txt", "not an image")
        archive.writestr("__MACOSX/a/._y.png", "macOS metadata, not an image")
    source = load_source(str(path), 4)
    assert source.class_names == ["a", "b"]
    images, labels = source.get(np.arange(3))
    np.testing.assert_array_equal(labels, [0, 0, 1])
    np.testing.assert_array_equal(images[:, 0, 0], [GREEN, BLUE, RED])


def three_bands(tmp_path, width=30, height=10):
    """Red, green and blue vertical bands of equal width."""
    array = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    array[:, :third], array[:, third:2 * third], array[:, 2 * third:] = RED, GREEN, BLUE
    return save(str(tmp_path / "bands.png"), Image.fromarray(array)), array


def test_resize_modes(tmp_path):
    path, array = three_bands(tmp_path)
    crop = load_source(path, 10).get([0])[0][0]
    np.testing.assert_array_equal(crop, np.broadcast_to(GREEN, (10, 10, 3)))  # the centre 10x10 square
    smaller = load_source(path, 5).get([0])[0][0]
    np.testing.assert_allclose(smaller, np.broadcast_to(GREEN, (5, 5, 3)), atol=1)
    pad = load_source(path, 30, resize_mode="pad").get([0])[0][0]
    np.testing.assert_array_equal(pad[10:20], array)
    assert (pad[:10] == 0).all() and (pad[20:] == 0).all()
    stretch = load_source(path, 15, resize_mode="stretch").get([0])[0][0]
    np.testing.assert_allclose(stretch[:, [0, 7, 14]], np.broadcast_to([RED, GREEN, BLUE], (15, 3, 3)), atol=3)
    with pytest.raises(ValueError, match="zoom"):
        load_source(path, 10, resize_mode="zoom")


def test_array_source_converts_shape_and_channels():
    array = np.zeros((4, 12, 20), np.uint8)
    array[:, :, 4:16] = 200  # a bright centre square in a wide grayscale image
    source = ArraySource(array, [0, 1, 2, 1], channels=3)
    assert source.resolution == 12 and source.class_names == ["0", "1", "2"]
    images, labels = source.get([3, 0])
    assert images.shape == (2, 12, 12, 3) and (images == 200).all()
    np.testing.assert_array_equal(labels, [1, 0])
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        ArraySource(array, [0, 1, 2])


def test_large_arrays_are_memory_mapped(tmp_path):
    path, _ = three_bands(tmp_path)
    cache = tmp_path / "cache"
    mapped = load_source(path, 10, cache_dir=str(cache), cache_max_bytes=10)
    assert isinstance(mapped.images, np.memmap) and cache.is_dir()
    np.testing.assert_array_equal(mapped.get([0])[0], load_source(path, 10).get([0])[0])


def gradient_image(width=100, height=80, blue=0):
    """Red = x, green = y: every position is identifiable."""
    array = np.zeros((height, width, 3), np.uint8)
    array[..., 0] = np.arange(width)[None, :]
    array[..., 1] = np.arange(height)[:, None]
    array[..., 2] = blue
    return array


def test_patches_are_crops_of_the_big_images(tmp_path):
    arrays = [gradient_image(), gradient_image(90, 70, blue=200)]
    for i, array in enumerate(arrays):
        save(str(tmp_path / "big" / f"{i}.png"), Image.fromarray(array))
    source = load_source(f"patches:{tmp_path / 'big'}", 16, num_images=50, seed=3)
    assert isinstance(source, PatchesSource) and len(source) == 50
    patches, labels = source.get(np.arange(50))
    assert patches.shape == (50, 16, 16, 3) and (labels == 0).all()
    for i, patch in enumerate(patches):
        image_index, top, left, side = source.crop_box(i)
        assert image_index == i % 2 and side == 16 and patch[0, 0, 0] == left and patch[0, 0, 1] == top
        np.testing.assert_array_equal(patch, arrays[i % 2][top:top + 16, left:left + 16])
    assert len({source.crop_box(i)[1:3] for i in range(50)}) > 40  # positions vary
    np.testing.assert_array_equal(patches, load_source(f"patches:{tmp_path / 'big'}", 16, seed=3).get(np.arange(50))[0])
    assert not np.array_equal(patches, load_source(f"patches:{tmp_path / 'big'}", 16, seed=4).get(np.arange(50))[0])


def test_scaled_patches_and_too_small_images(tmp_path):
    path = save(str(tmp_path / "big.png"), Image.fromarray(gradient_image()))
    source = load_source(f"patches:{path}", 16, patch_max_scale=2.0)
    sides = {source.crop_box(i)[3] for i in range(100)}
    assert min(sides) >= 16 and max(sides) <= 32 and len(sides) > 5
    patches, _ = source.get(np.arange(20))
    assert patches.shape == (20, 16, 16, 3)
    _, top, left, side = source.crop_box(0)
    assert abs(int(patches[0, 0, 0, 0]) - left) <= 2 and abs(int(patches[0, -1, -1, 1]) - (top + side - 1)) <= 2
    small = save(str(tmp_path / "small.png"), solid(RED, size=(40, 12)))
    with pytest.raises(ValueError, match=r"small\.png.*40x12"):
        load_source(f"patches:{small}", 16)


def test_looks_grey_checks_every_pixel_of_images_spread_over_the_set(tmp_path, caplog):
    from keras_pgen.data import looks_grey
    from keras_pgen.training import warn_if_grey

    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(0, 256, (1000, 8, 8, 1), dtype=np.uint8), 3, axis=-1)
    assert looks_grey(ArraySource(grey)) == (True, 256)
    assert looks_grey(ArraySource(grey[:10])) == (True, 10)
    coloured = grey.copy()
    coloured[999, 7, 7, 1] ^= 1  # one green value of the last image (always checked) differs
    assert looks_grey(ArraySource(coloured)) == (False, 256)
    assert looks_grey(ArraySource(grey[..., :1])) == (False, 0)  # one channel: nothing to warn about
    # grey files loaded as RGB (the default channels=3), as training loads them
    for i in range(3):
        save(str(tmp_path / "faces" / f"{i}.png"), solid(40 * i, mode="L"))
    caplog.set_level(logging.WARNING, logger="absl")
    assert warn_if_grey(load_source(str(tmp_path / "faces"), 8))
    assert any("the 3 images checked of" in r.getMessage() and "--config.channels=1" in r.getMessage()
               for r in caplog.records)
    assert not warn_if_grey(load_source(str(tmp_path / "faces"), 8, channels=1))
    assert not warn_if_grey(ArraySource(coloured))
