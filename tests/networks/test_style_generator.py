"""StyleGenerator: shapes, config round trip, per-sample determinism, noise and style options."""
import keras
import numpy as np
import pytest
from keras import ops

from keras_pgen.layers import AdaIN, ModulatedConv2D, NoiseInjection, ProjectedNoise
from keras_pgen.networks import StyleGenerator


def np_out(x):
    return np.asarray(ops.convert_to_numpy(x))


def rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def small(**kwargs):
    args = dict(latent_dim=8, resolution=16, mapping_layers=2, fmap_base=64, fmap_max=8)
    args.update(kwargs)
    return StyleGenerator(**args)


def layers_of(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


@pytest.mark.parametrize("style", ["modulated", "adain"])
@pytest.mark.parametrize("resolution", [4, 8, 16])
def test_shapes_and_layers(style, resolution):
    g = small(resolution=resolution, style=style, image_channels=1)
    y = np_out(g(rand((3, 8))))
    assert y.shape == (3, resolution, resolution, 1) and np.all(np.isfinite(y))
    scales = int(np.log2(resolution)) - 1
    styled_convs = 1 + 2 * (scales - 1)  # one at 4x4, two per higher resolution
    assert len(layers_of(g, NoiseInjection)) == len(layers_of(g, ProjectedNoise)) == styled_convs
    if style == "modulated":
        assert len(layers_of(g, ModulatedConv2D)) == styled_convs + scales  # styled convs + one toRGB per scale
        assert not layers_of(g, AdaIN)
    else:
        assert len(layers_of(g, AdaIN)) == styled_convs and not layers_of(g, ModulatedConv2D)
    mapping = [layer for layer in g.layers if layer.name.startswith("mapping_")]
    assert len(mapping) == 2 and all(layer.lr_multiplier == 0.01 for layer in mapping)


def test_config_round_trip_and_clone_gives_the_same_images():
    g = small(style="adain", noise="projected", w_dim=6)
    z = rand((2, 8), 1)
    clone = StyleGenerator.from_config(g.get_config())
    clone.set_weights(g.get_weights())
    assert clone.get_config() == g.get_config()
    np.testing.assert_allclose(np_out(clone(z)), np_out(g(z)), rtol=1e-6, atol=1e-6)


def test_images_are_a_per_sample_function_of_z():
    """Same z, same image, whatever else is in the batch (what 1 vs N replicas and export rely on)."""
    g = small()
    for layer in layers_of(g, NoiseInjection):  # make the noise visible
        layer.strength.assign(np.ones(layer.strength.shape, np.float32))
    z = rand((4, 8), 2)
    full = np_out(g(z))
    np.testing.assert_allclose(np_out(g(z[2:3])), full[2:3], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np_out(g(z)), full)
    assert not np.allclose(full[0], full[1])


def test_noise_enters_the_image_and_none_drops_it():
    g = small()
    z = rand((2, 8), 3)
    before = np_out(g(z))
    layers_of(g, NoiseInjection)[-1].strength.assign(np.ones(8, np.float32))
    assert np.max(np.abs(np_out(g(z)) - before)) > 1e-3
    plain = small(noise="none")
    assert not layers_of(plain, NoiseInjection)
    # the frozen projections are the only non-trainable weights
    assert {id(w) for w in g.non_trainable_weights} == {id(layer.projection) for layer in layers_of(g, ProjectedNoise)}
    assert plain.non_trainable_weights == []


def test_gradients_reach_every_trainable_weight():
    import tensorflow as tf

    g = small()
    for layer in layers_of(g, NoiseInjection):
        layer.strength.assign(np.full(layer.strength.shape, 0.1, np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(g(rand((2, 8), 4), training=True) - 0.3))
    grads = tape.gradient(loss, g.trainable_weights)
    missing = [w.path for w, grad in zip(g.trainable_weights, grads) if grad is None or not np.any(np.asarray(grad))]
    assert not missing


@pytest.mark.parametrize("kwargs,match", [
    (dict(style="nope"), "unknown style 'nope'"),
    (dict(noise="random"), "unknown noise 'random'"),
    (dict(resolution=12), "power of two"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small(**kwargs)


def test_serialization_by_name():
    g = small()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(g))
    assert isinstance(restored, StyleGenerator) and restored.get_config() == g.get_config()
