"""Feature extractors: InceptionV3 pool features (random weights, a weights file, the offline error), pixels."""
import keras
import numpy as np
import pytest

from keras_pgen.losses.perceptual import VGGWeightsError
from keras_pgen.metrics import features


@pytest.fixture(scope="module")
def inception():
    extractor = features.InceptionFeatures(weights="none", image_size=75)
    yield extractor
    # InceptionV3's ~300 layers otherwise stay in Keras's global state and slow every later test's
    # garbage collection (an eager test after this module ran ~10x slower)
    del extractor
    keras.utils.clear_session(free_memory=True)


def test_inception_features_and_preprocessing(inception):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    out = inception(images)
    assert out.shape == (3, 2048) and out.dtype == np.float64 and np.isfinite(out).all()
    # uint8 and [-1, 1] floats are the same input; [-1, 1] is already InceptionV3's range
    np.testing.assert_allclose(inception(images.astype(np.float32) / 127.5 - 1.0), out, rtol=1e-5, atol=1e-9)
    pre = inception.preprocess(np.full((1, 75, 75, 3), 255, np.uint8)).numpy()
    np.testing.assert_array_equal(pre, np.ones((1, 75, 75, 3)))
    np.testing.assert_allclose(pre, keras.applications.inception_v3.preprocess_input(np.full((1, 75, 75, 3), 255.0)))
    # grey images are repeated to RGB; small images are resized to image_size
    grey = images[..., :1]
    np.testing.assert_allclose(inception(grey), inception(np.repeat(grey, 3, axis=-1)), rtol=1e-6, atol=1e-9)
    assert inception.preprocess(images).shape == (3, 75, 75, 3)
    # features depend on the image
    assert not np.allclose(out[0], out[1])


def test_weights_file_is_loaded_by_path(inception, tmp_path):
    path = str(tmp_path / "inception_notop.weights.h5")
    inception.model.save_weights(path)
    loaded = features.make_feature_extractor(path, image_size=75)
    images = np.random.default_rng(1).integers(0, 256, (2, 20, 20, 3)).astype(np.uint8)
    np.testing.assert_allclose(loaded(images), inception(images), rtol=1e-6, atol=1e-9)
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        features.make_feature_extractor(str(tmp_path / "missing.h5"))


def test_offline_imagenet_without_a_cached_file_says_how_to_supply_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(VGGWeightsError) as error:
        features.InceptionFeatures(weights="imagenet")
    message = str(error.value)
    assert features.INCEPTION_NOTOP_URL in message and "eval_features" in message
    assert str(tmp_path / "models" / features.INCEPTION_NOTOP_FILE) in message


def test_bad_sizes_and_pixel_features():
    with pytest.raises(ValueError, match="at least 75x75"):
        features.InceptionFeatures(weights="none", image_size=32)
    images = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)
    out = features.make_feature_extractor("pixels")(images)
    np.testing.assert_allclose(out, images.reshape(2, -1) / 127.5 - 1.0, rtol=1e-6)
    batched = features.extract_features(features.PixelFeatures(), np.repeat(images, 3, axis=0), batch_size=4)
    np.testing.assert_allclose(batched, np.repeat(out, 3, axis=0), rtol=1e-6)
