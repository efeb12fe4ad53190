"""Encoder and Decoder: shapes for flat and spatial codes, config round trip, features, bad arguments."""
import keras
import numpy as np
import pytest

from keras_pgen.networks import Decoder, Encoder


def test_variational_encoder_and_decoder_shapes():
    encoder = Encoder(16, 8, base_filters=4, max_filters=16)
    images = np.random.default_rng(0).uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    mean, log_variance = encoder(images)
    assert mean.shape == log_variance.shape == (3, 8) and encoder.code_shape == (8,)
    decoder = Decoder(16, 8, base_filters=4, max_filters=16)
    out = np.asarray(decoder(mean))
    assert out.shape == (3, 16, 16, 3) and np.all(np.abs(out) <= 1.0)
    # channels: base_filters at full resolution, doubled per halving, capped
    assert [f.shape[1:] for f in encoder.feature_extractor()(images)] == [(16, 16, 4), (8, 8, 8), (4, 4, 16)]


def test_spatial_code_and_deterministic_encoder():
    encoder = Encoder(32, 8, base_filters=4, variational=False, code_resolution=8, image_channels=1)
    code = encoder(np.zeros((2, 32, 32, 1), "float32"))
    assert not isinstance(code, (list, tuple)) and code.shape == (2, 8, 8, 8) and encoder.code_shape == (8, 8, 8)
    decoder = Decoder(32, 8, base_filters=4, code_resolution=8, image_channels=1, output_activation="linear",
                      upsample="bilinear")
    assert decoder(code).shape == (2, 32, 32, 1)


@pytest.mark.parametrize("cls,kwargs", [(Encoder, dict(convs_per_block=2, pixel_norm=True)),
                                        (Decoder, dict(upsample="bilinear", code_resolution=4))])
def test_get_config_round_trip(cls, kwargs):
    net = cls(16, 4, base_filters=4, max_filters=8, **kwargs)
    clone = cls.from_config(net.get_config())
    assert clone.get_config() == net.get_config()
    clone.set_weights(net.get_weights())
    x = np.random.default_rng(1).normal(size=(2, *net.inputs[0].shape[1:])).astype("float32")
    for a, b in zip(keras.tree.flatten(net(x)), keras.tree.flatten(clone(x))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_bad_arguments():
    with pytest.raises(ValueError, match="code_resolution"):
        Encoder(16, 4, code_resolution=32)
    with pytest.raises(ValueError, match="output_activation"):
        Decoder(16, 4, output_activation="sigmoid")
    with pytest.raises(ValueError, match="upsample"):
        Decoder(16, 4, upsample="cubic")
    with pytest.raises(ValueError, match="power of two"):
        Encoder(12, 4)
