"""Tests of keras / TFDS data sets (offline) and of the optional real data in ../shared/data."""

import os
import sys
import types

import keras
import numpy as np
import pytest

from keras_pgen.data import ArraySource, load_source, make_train_dataset

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "olivetti_faces")


def failed_download(*args, **kwargs):
    raise Exception("URL fetch failure on https://storage.googleapis.com/mnist.npz: None -- "
                    "[Errno -3] Temporary failure in name resolution")


@pytest.mark.parametrize("name, hint", [("mnist", "mnist.npz"), ("cifar10", "cifar-10")])
def test_keras_dataset_offline_gives_a_clear_error(name, hint, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(getattr(keras.datasets, name), "load_data", failed_download)
    with pytest.raises(RuntimeError, match="could not load or download") as error:
        load_source(name, 32)
    message = str(error.value)
    assert hint in message and str(tmp_path) in message and "--data=FOLDER" in message


def test_mnist_from_a_cached_file_in_keras_home(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), rng.integers(0, 10, 20).astype(np.uint8)
    (tmp_path / "datasets").mkdir()
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", failed_download)  # must not be needed
    exact = load_source("mnist", 28, channels=1)
    np.testing.assert_array_equal(exact.get(np.arange(20))[0][..., 0], x)
    np.testing.assert_array_equal(exact.get(np.arange(20))[1], y)
    rgb = load_source("mnist", 32, num_images=10)
    images, labels = rgb.get(np.arange(10))
    assert len(rgb) == 10 and images.shape == (10, 32, 32, 3) and rgb.num_classes == 10
    assert (images[..., 0] == images[..., 2]).all()


def test_tfds_without_the_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install tensorflow-datasets"):
        load_source("tfds:mnist", 32)


def test_tfds_examples_of_any_size_are_converted(monkeypatch):
    calls = []

    def load(name, split, with_info):
        calls.append((name, split))
        examples = [{"image": np.full((10 + i, 14, 1), 50 * i, np.uint8), "label": i % 2} for i in range(4)]
        return examples, types.SimpleNamespace(features={"label": types.SimpleNamespace(names=["a", "b"])})

    fake = types.ModuleType("tensorflow_datasets")
    fake.load, fake.as_numpy = load, iter
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    source = load_source("tfds:toy:test[:4]", 8, num_images=3)
    assert calls == [("toy", "test[:4]")] and source.class_names == ["a", "b"]
    images, labels = source.get(np.arange(3))
    assert images.shape == (3, 8, 8, 3) and list(images[:, 4, 4, 0]) == [0, 50, 100]
    np.testing.assert_array_equal(labels, [0, 1, 0])


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data/olivetti_faces is absent")
def test_olivetti_faces_array_and_montage_patches():
    faces = np.load(os.path.join(SHARED, "olivetti_400x57x47_uint8.npy"))
    subjects = np.load(os.path.join(SHARED, "olivetti_labels_40x10.npy")).reshape(-1)
    source = ArraySource(faces, subjects, resolution=32, channels=3, description="olivetti")
    assert len(source) == 400 and source.num_classes == 40
    batch = next(iter(make_train_dataset(source, 16, flip=True, with_labels=True)))
    assert batch["images"].shape == (16, 32, 32, 3) and batch["labels"].numpy().max() < 40
    patches = load_source("patches:" + os.path.join(SHARED, "olivettifaces.gif"), 32, channels=1, num_images=8)
    images, _ = patches.get(np.arange(8))
    assert images.shape == (8, 32, 32, 1) and images.std() > 10
