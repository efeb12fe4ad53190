"""Tests of the built-in generated shapes data set."""

import time

import numpy as np
import pytest

from keras_pgen.data import ShapesSource, load_source
from keras_pgen.data.shapes import KINDS


def test_deterministic_and_independent_of_batching_and_cache():
    indices = np.array([5, 0, 17, 5])
    images, labels = ShapesSource(16).get(indices)
    again, again_labels = ShapesSource(16, cache_max_bytes=0).get(indices[::-1])
    np.testing.assert_array_equal(images, again[::-1])
    np.testing.assert_array_equal(labels, again_labels[::-1])
    one_by_one = np.concatenate([ShapesSource(16).get([i])[0] for i in indices])
    np.testing.assert_array_equal(images, one_by_one)


def test_images_are_distinct_and_depend_on_seed():
    images, _ = ShapesSource(16).get(np.arange(32))
    flat = images.reshape(32, -1)
    assert len({row.tobytes() for row in flat}) == 32
    other, _ = ShapesSource(16, seed=1).get(np.arange(32))
    assert (other != images).any(axis=(1, 2, 3)).all()


@pytest.mark.parametrize("resolution", [4, 16, 128])
def test_shapes_labels_and_values(resolution):
    source = ShapesSource(resolution, num_images=64)
    images, labels = source.get(np.arange(64))
    assert images.shape == (64, resolution, resolution, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < len(KINDS)
    assert source.num_classes == len(KINDS) and source.class_names == list(KINDS)
    if resolution >= 16:
        spread = images.reshape(64, -1).max(axis=1).astype(int) - images.reshape(64, -1).min(axis=1)
        assert (spread > 40).all()  # every image shows a shape on its background
        assert len(set(labels.tolist())) == len(KINDS)


def test_soft_edges_have_intermediate_values():
    images, _ = ShapesSource(64, channels=1).get(np.arange(4))
    assert images.shape == (4, 64, 64, 1)
    # anti-aliasing: far more distinct grey levels than a hard-edged 1-3 shape image would have
    assert all(len(np.unique(image)) > 20 for image in images)


def test_load_source_shapes_default_length_and_index_errors():
    assert len(load_source("shapes", 8)) == 4096
    source = load_source("shapes", 8, channels=1, num_images=10, seed=3)
    assert len(source) == 10 and source.channels == 1 and source.resolution == 8
    with pytest.raises(IndexError, match="10"):
        source.get([10])


def test_render_speed():
    source = ShapesSource(64, cache_max_bytes=0)
    source.get(np.arange(64))
    start = time.perf_counter()
    source.get(np.arange(64, 128))
    assert time.perf_counter() - start < 0.5  # ~20-40 ms on 2 cores; generous for loaded CI
