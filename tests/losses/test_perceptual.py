"""The VGG16 feature extractor: caffe preprocessing, distances vs numpy, weights files, offline errors."""
import os

import keras
import numpy as np
import pytest

from keras_pgen.losses import perceptual


@pytest.fixture(scope="module")
def vgg_none():
    return perceptual.VGGFeatureExtractor(["relu1_2", "relu2_2"], weights="none")


def test_preprocess_hand_computed_pixel():
    # One pixel, RGB = (-1, 0, 1) in [-1, 1] -> [0, 127.5, 255] -> BGR [255, 127.5, 0] - mean.
    x = np.array([-1.0, 0.0, 1.0], np.float32).reshape(1, 1, 1, 3)
    out = np.asarray(perceptual.vgg_preprocess(x)).reshape(3)
    np.testing.assert_allclose(out, [255 - 103.939, 127.5 - 116.779, 0 - 123.68], atol=1e-4)
    # and the same as Keras's own caffe preprocessing of the [0, 255] image
    imgs = np.random.default_rng(0).uniform(-1, 1, (2, 4, 4, 3)).astype(np.float32)
    ref = keras.applications.vgg16.preprocess_input((imgs + 1.0) * 127.5)
    np.testing.assert_allclose(np.asarray(perceptual.vgg_preprocess(imgs)), ref, atol=1e-4)


def test_grayscale_is_repeated_to_rgb():
    gray = np.random.default_rng(1).uniform(-1, 1, (2, 4, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(perceptual.vgg_preprocess(gray)),
                               np.asarray(perceptual.vgg_preprocess(np.repeat(gray, 3, -1))), atol=1e-5)


def test_layer_aliases():
    assert perceptual.vgg_layer_name("relu1_2") == "block1_conv2"
    assert perceptual.vgg_layer_name("relu4_3") == "block4_conv3"
    assert perceptual.vgg_layer_name("pool2") == "block2_pool"
    assert perceptual.vgg_layer_name("block3_conv1") == "block3_conv1"


def test_extractor_outputs_match_the_keras_layers(vgg_none):
    x = np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    feats = vgg_none(x)
    assert [tuple(f.shape) for f in feats] == [(2, 16, 16, 64), (2, 8, 8, 128)]
    # relu1_2 by hand from the extractor's own kernels: conv-relu, conv-relu on the caffe input
    net = vgg_none.network
    h = np.asarray(perceptual.vgg_preprocess(x))
    for name in ("block1_conv1", "block1_conv2"):
        kernel, bias = (np.asarray(w) for w in net.get_layer(name).weights)
        h = np.maximum(_conv3x3_same(h, kernel) + bias, 0)
    np.testing.assert_allclose(np.asarray(feats[0]), h, rtol=1e-4, atol=1e-3)
    assert not vgg_none.trainable_weights


def _conv3x3_same(x, kernel):
    n, hh, ww, _ = x.shape
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, hh, ww, kernel.shape[-1]), np.float64)
    for i in range(3):
        for j in range(3):
            out += np.einsum("nhwc,cd->nhwd", pad[:, i:i + hh, j:j + ww], kernel[i, j])
    return out


def test_distances_against_numpy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 3, 4, 5)).astype(np.float32), rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(perceptual.squared_l2_distance(a, b), ((a - b) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(perceptual.squared_l2_distance(a, b, reduction="sum"),
                               ((a - b) ** 2).sum(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(perceptual.l1_distance(a, b), np.abs(a - b).mean(axis=(1, 2, 3)), rtol=1e-5)
    fa, fb = a.reshape(2, 12, 5), b.reshape(2, 12, 5)
    ga, gb = np.einsum("nkc,nkd->ncd", fa, fa) / 12, np.einsum("nkc,nkd->ncd", fb, fb) / 12
    np.testing.assert_allclose(perceptual.gram_matrix(a), ga, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(perceptual.gram_distance(a, b), ((ga - gb) ** 2).mean(axis=(1, 2)), rtol=1e-5)
    c = rng.normal(size=(2, 2, 2, 3)).astype(np.float32)
    d = perceptual.feature_distance([a, c], [b, c * 2], layer_weights=[0.5, 2.0], distance="l1")
    np.testing.assert_allclose(d, 0.5 * np.abs(a - b).mean(axis=(1, 2, 3)) + 2.0 * np.abs(c).mean(axis=(1, 2, 3)),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="unknown feature distance"):
        perceptual.feature_distance([a], [b], distance="cosine")


def test_weights_file_round_trip(tmp_path, vgg_none):
    """A user's local weights file (e.g. a Kaggle input) loads through the `weights` path argument."""
    path = str(tmp_path / "vgg16_notop.weights.h5")
    keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3)).save_weights(path)
    loaded = perceptual.VGGFeatureExtractor(["relu1_2", "relu2_2"], weights=path)
    reference = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    reference.load_weights(path)
    x = np.random.default_rng(4).uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    expected = keras.Model(reference.input, reference.get_layer("block2_conv2").output)(
        keras.applications.vgg16.preprocess_input((x + 1) * 127.5))
    np.testing.assert_allclose(np.asarray(loaded(x)[1]), np.asarray(expected), rtol=1e-5, atol=1e-4)
    with pytest.raises(FileNotFoundError, match="vgg_weights"):
        perceptual.VGGFeatureExtractor(weights=str(tmp_path / "missing.h5"))


def test_offline_imagenet_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(perceptual.VGGWeightsError, match="--config.vgg_weights=/path/to/"):
        perceptual.VGGFeatureExtractor(weights="imagenet")
    # a file in the Keras cache is used without any download
    os.makedirs(tmp_path / "models")
    cached = tmp_path / "models" / perceptual.VGG_NOTOP_FILE
    keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3)).save_weights(
        str(tmp_path / "w.weights.h5"))
    os.rename(tmp_path / "w.weights.h5", cached)
    assert perceptual.resolve_weights("imagenet", perceptual.VGG_NOTOP_FILE, perceptual.VGG_NOTOP_URL,
                                      "vgg_weights") == str(cached)


def test_unknown_layer_and_config_round_trip(vgg_none):
    with pytest.raises(ValueError, match="unknown VGG16 layer"):
        perceptual.VGGFeatureExtractor(["relu9_9"], weights="none")
    config = vgg_none.get_config()
    assert config["layers"] == ["relu1_2", "relu2_2"] and config["weights"] == "none"
    assert perceptual.VGGFeatureExtractor.from_config(config).layer_names == ("relu1_2", "relu2_2")


def test_a_single_layer_is_a_list_of_one():
    """Keras returns a bare tensor for a one-output model; the extractor still returns [features]."""
    vgg = perceptual.VGGFeatureExtractor(["relu1_1"], weights="none")
    feats = vgg(np.zeros((3, 8, 8, 3), np.float32))
    assert len(feats) == 1 and tuple(feats[0].shape) == (3, 8, 8, 64)
