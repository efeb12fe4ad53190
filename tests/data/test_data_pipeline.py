"""Tests of make_train_dataset: determinism, resume, coverage, per-sample noise and flips."""

import itertools

import numpy as np
import pytest

from keras_pgen.data import ArraySource, load_source, make_train_dataset

NOISE = {"z": ("normal", (5,)), "u": ("uniform", (2, 3))}


def indexed_source(num_images, resolution=4):
    """Image i: red = i % 256, green = i // 256, blue = a ramp across the width (asymmetric)."""
    images = np.zeros((num_images, resolution, resolution, 3), np.uint8)
    images[..., 0] = (np.arange(num_images) % 256)[:, None, None]
    images[..., 1] = (np.arange(num_images) // 256)[:, None, None]
    images[..., 2] = np.arange(resolution) * 10
    return ArraySource(images, np.arange(num_images) % 3)


def take(dataset, count):
    return [{k: v.numpy() for k, v in batch.items()} for batch in itertools.islice(dataset, count)]


def image_ids(batch):
    pixels = np.round((batch["images"] + 1) * 127.5).astype(int)
    return pixels[:, 0, 0, 0] + 256 * pixels[:, 0, 0, 1]


def assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_resume_equals_uninterrupted_stream():
    source = indexed_source(37)
    kwargs = dict(seed=4, flip=True, noise_spec=NOISE, with_labels=True)
    full = take(make_train_dataset(source, 8, **kwargs), 12)
    resumed = take(make_train_dataset(source, 8, start_step=5, **kwargs), 7)
    assert_batches_equal(full[5:], resumed)


def test_same_seed_same_stream_other_seed_differs():
    source = indexed_source(37)
    first = take(make_train_dataset(source, 8, seed=1, noise_spec=NOISE), 5)
    assert_batches_equal(first, take(make_train_dataset(source, 8, seed=1, noise_spec=NOISE), 5))
    other = take(make_train_dataset(source, 8, seed=2, noise_spec=NOISE), 5)
    assert not np.array_equal(first[0]["images"], other[0]["images"])
    assert not np.array_equal(first[0]["z"], other[0]["z"])


def test_every_epoch_visits_every_image_once_in_a_new_order():
    num_images, batch_size = 37, 8
    batches = take(make_train_dataset(indexed_source(num_images), batch_size, seed=7), 14)
    ids = np.concatenate([image_ids(b) for b in batches])  # 112 samples: 3 full epochs
    epochs = [ids[e * num_images:(e + 1) * num_images] for e in range(3)]
    for epoch in epochs:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(num_images))
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[0], np.arange(num_images))


def test_noise_and_flips_are_per_sample_whatever_the_batch_size():
    source = indexed_source(40)
    kwargs = dict(seed=3, flip=True, noise_spec=NOISE)
    big = take(make_train_dataset(source, 8, **kwargs), 6)
    small = take(make_train_dataset(source, 4, **kwargs), 12)
    halves = [{k: np.concatenate([small[2 * i][k], small[2 * i + 1][k]]) for k in small[0]} for i in range(6)]
    assert_batches_equal(big, halves)
    assert big[0]["z"].shape == (8, 5) and big[0]["u"].shape == (8, 2, 3)
    assert big[0]["z"].dtype == np.float32 and big[0]["u"].dtype == np.float32


def test_noise_distributions():
    spec = {"z": ("normal", (64,)), "u": ("uniform", (64,))}
    batch = take(make_train_dataset(indexed_source(64), 64, noise_spec=spec), 1)[0]
    assert abs(batch["z"].mean()) < 0.05 and abs(batch["z"].std() - 1) < 0.05
    assert batch["u"].min() >= 0 and batch["u"].max() < 1 and abs(batch["u"].mean() - 0.5) < 0.02
    assert len({row.tobytes() for row in batch["z"]}) == 64


def test_flip_mirrors_about_half_of_the_stored_images():
    source = indexed_source(64, resolution=6)
    batches = take(make_train_dataset(source, 16, flip=True, with_labels=True), 4)
    flipped = 0
    for batch in batches:
        stored, labels = source.get(image_ids(batch))
        pixels = np.round((batch["images"] + 1) * 127.5).astype(np.uint8)
        np.testing.assert_array_equal(batch["labels"], labels)
        is_flipped = (pixels == stored[:, :, ::-1]).all(axis=(1, 2, 3))
        assert (is_flipped | (pixels == stored).all(axis=(1, 2, 3))).all()
        flipped += is_flipped.sum()
    assert 12 <= flipped <= 52


def test_batch_contents_and_value_range():
    source = indexed_source(20)
    batch = take(make_train_dataset(source, 5, prefetch=False), 1)[0]
    assert set(batch) == {"images"}
    stored, _ = source.get(image_ids(batch))
    np.testing.assert_allclose(batch["images"], stored.astype(np.float32) / 127.5 - 1, atol=1e-6)
    assert batch["images"].dtype == np.float32 and batch["images"].shape == (5, 4, 4, 3)
    labelled = take(make_train_dataset(source, 5, with_labels=True), 1)[0]
    assert labelled["labels"].dtype == np.int32 and labelled["labels"].shape == (5,)


def test_shapes_source_end_to_end():
    source = load_source("shapes", 16, channels=1, num_images=32)
    batch = take(make_train_dataset(source, 4, flip=True), 1)[0]
    assert batch["images"].shape == (4, 16, 16, 1)
    assert -1 <= batch["images"].min() < batch["images"].max() <= 1


def test_errors():
    with pytest.raises(ValueError, match=r"3 image.*batch size 8"):
        make_train_dataset(indexed_source(3), 8)
    with pytest.raises(ValueError, match="gamma"):
        make_train_dataset(indexed_source(8), 4, noise_spec={"z": ("gamma", (2,))})
    with pytest.raises(ValueError, match="images"):
        make_train_dataset(indexed_source(8), 4, noise_spec={"images": ("normal", (2,))})


def test_shards_concatenate_to_the_global_batch():
    """Each worker's input pipeline makes its rows of every global batch, noise and flips included."""
    source = ArraySource(np.random.default_rng(0).integers(0, 256, (20, 4, 4, 3), dtype=np.uint8))
    kw = dict(seed=3, start_step=2, flip=True, noise_spec={"z": ("normal", (5,))})
    whole = take(make_train_dataset(source, 8, **kw), 3)
    parts = [take(make_train_dataset(source, 8, shard=(i, 2), **kw), 3) for i in range(2)]
    for b, (p0, p1) in enumerate(zip(*parts)):
        for key in ("images", "z"):
            np.testing.assert_array_equal(np.concatenate([p0[key], p1[key]]), whole[b][key])
    with pytest.raises(ValueError, match="split evenly"):
        make_train_dataset(source, 8, shard=(0, 3))


def test_start_sample_and_resolution():
    source = ArraySource(np.random.default_rng(1).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8))
    a = take(make_train_dataset(source, 4, seed=1, start_step=3), 1)[0]
    b = take(make_train_dataset(source, 4, seed=1, start_sample=12, resolution=4), 1)[0]
    pooled = a["images"].reshape(4, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(b["images"], pooled, atol=1e-6)
    with pytest.raises(ValueError, match="power of two"):
        make_train_dataset(source, 4, resolution=3)
