"""Tests for keras_pgen.networks: shapes at every scale, parameter counts, configs."""
import math

import keras
import numpy as np
import pytest
from keras import ops

import keras_pgen
from keras_pgen.networks import DCGANDiscriminator, DCGANGenerator, MSGGANDiscriminator, MSGGANGenerator
from keras_pgen.networks import blocks


def np_out(x):
    return ops.convert_to_numpy(x)


def rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def conv_params(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


# ---------------------------------------------------------------- blocks


def test_num_filters_progan_rule():
    got = [blocks.num_filters(2**i, 8192, 512) for i in range(2, 11)]  # 4 .. 1024
    assert got == [512, 512, 512, 512, 256, 128, 64, 32, 16]


def test_num_filters_bench64_channels():
    assert {r: blocks.num_filters(r, 2048, 256) for r in (4, 8, 16, 32, 64)} == {
        4: 256, 8: 256, 16: 256, 32: 128, 64: 64}
    # fmap_min floors the count: 2048 / 2**9 = 4 at 1024, floored to 8.
    assert blocks.num_filters(1024, 2048, 256, fmap_min=8) == 8
    assert blocks.num_filters(1024, 2048, 256) == 4


def test_resolutions():
    assert blocks.resolutions(4) == [4]
    assert blocks.resolutions(32) == [4, 8, 16, 32]
    assert blocks.resolutions(1024) == [4, 8, 16, 32, 64, 128, 256, 512, 1024]


@pytest.mark.parametrize("bad", [0, -8, 1, 2, 3, 6, 12, 48, 100])
def test_resolutions_rejects_non_powers_of_two(bad):
    with pytest.raises(ValueError, match="power of two"):
        blocks.resolutions(bad)


@pytest.mark.parametrize("make", [
    lambda: MSGGANGenerator(latent_dim=8, resolution=48, fmap_base=32, fmap_max=8),
    lambda: MSGGANDiscriminator(resolution=24, fmap_base=32, fmap_max=8),
    lambda: DCGANGenerator(latent_dim=8, resolution=12, base_filters=4),
    lambda: DCGANDiscriminator(resolution=2, base_filters=4),
])
def test_networks_reject_bad_resolution(make):
    with pytest.raises(ValueError, match="power of two"):
        make()


# ---------------------------------------------------------------- MSG-GAN


def small_msg_gan(resolution=32, image_channels=3, mbstd_group_size=4):
    # channels: 4: min(16, 64/2) = 16, 8: 16, 16: 8, 32: 4
    g = MSGGANGenerator(latent_dim=8, resolution=resolution, fmap_base=64, fmap_max=16,
                        image_channels=image_channels)
    d = MSGGANDiscriminator(resolution=resolution, fmap_base=64, fmap_max=16, image_channels=image_channels,
                            mbstd_group_size=mbstd_group_size)
    return g, d


@pytest.mark.parametrize("batch", [2, 4])
def test_msg_gan_shapes_at_every_scale(batch):
    g, d = small_msg_gan()
    images = g(rand((batch, 8)))
    assert [tuple(x.shape) for x in images] == [(batch, r, r, 3) for r in (4, 8, 16, 32)]
    assert all(np.all(np.isfinite(np_out(x))) for x in images)
    logits = d(images)
    assert tuple(logits.shape) == (batch, 1)
    assert np.all(np.isfinite(np_out(logits)))
    assert [tuple(t.shape) for t in d.inputs] == [(None, r, r, 3) for r in (4, 8, 16, 32)]


def test_msg_gan_single_channel():
    g, d = small_msg_gan(resolution=8, image_channels=1)
    images = g(rand((4, 8)))
    assert [tuple(x.shape) for x in images] == [(4, 4, 4, 1), (4, 8, 8, 1)]
    assert tuple(d(images).shape) == (4, 1)


def test_msg_gan_needs_two_scales():
    for network in (lambda: small_msg_gan(resolution=4, image_channels=1),):
        with pytest.raises(ValueError, match="at least two scales"):
            network()


def test_msg_gan_generator_is_deterministic_and_depends_on_z():
    g, _ = small_msg_gan(resolution=8)
    z = rand((2, 8))
    a, b = g(z), g(z)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np_out(x), np_out(y))
    c = g(z + 1.0)
    assert np.max(np.abs(np_out(c[-1]) - np_out(a[-1]))) > 1e-4


def test_bench64_parameter_counts_and_structure():
    ch = {4: 256, 8: 256, 16: 256, 32: 128, 64: 64}
    g = MSGGANGenerator(latent_dim=256, resolution=64, fmap_base=2048, fmap_max=256)
    d = MSGGANDiscriminator(resolution=64, fmap_base=2048, fmap_max=256, combine="from_rgb")
    # Generator by hand: dense 256 -> 4*4*256, conv 3x3 at 4, two convs per resolution, 1x1 toRGB at each.
    g_hand = 256 * 16 * 256 + 16 * 256 + conv_params(3, 256, 256) + conv_params(1, 256, 3)
    for lo, hi in ((4, 8), (8, 16), (16, 32), (32, 64)):
        g_hand += conv_params(3, ch[lo], ch[hi]) + conv_params(3, ch[hi], ch[hi]) + conv_params(1, ch[hi], 3)
    # Discriminator by hand: fromRGB at each, blocks (64 sees C64, lower see 2*C(r)), head with mbstd.
    d_hand = sum(conv_params(1, 3, c) for c in ch.values())
    for r in (64, 32, 16, 8):
        cin = ch[r] if r == 64 else 2 * ch[r]
        d_hand += conv_params(3, cin, ch[r]) + conv_params(3, ch[r], ch[r // 2])
    d_hand += conv_params(3, 2 * 256 + 1, 256) + conv_params(4, 256, 256) + 256 + 1
    assert (g_hand, d_hand) == (4_559_311, 6_476_097)
    assert g.count_params() == 4_559_311
    assert d.count_params() == 6_476_097
    # Gains of the benchmark architecture.
    assert g.get_layer("g4_dense").gain == pytest.approx(math.sqrt(2.0) / 4)
    assert g.get_layer("g4_conv").gain == pytest.approx(math.sqrt(2.0))
    assert d.get_layer("d4_logit").gain == pytest.approx(1.0)
    assert d.get_layer("d4_conv").gain == pytest.approx(math.sqrt(2.0))
    # toRGB: gain sqrt(2) like every other conv in the bench spec and the public MSG-GAN code
    assert all(g.get_layer(f"to_rgb_{r}").gain == pytest.approx(math.sqrt(2.0)) for r in (4, 8, 16, 32, 64))
    # Channels per resolution and the 2*C(r) (+1 mbstd) inputs.
    for r, c in ch.items():
        assert g.get_layer(f"to_rgb_{r}").kernel.shape == (1, 1, c, 3)
        assert d.get_layer(f"from_rgb_{r}").kernel.shape == (1, 1, 3, c)
    assert d.get_layer("d64_conv0").kernel.shape == (3, 3, 64, 64)
    assert d.get_layer("d32_conv0").kernel.shape == (3, 3, 256, 128)
    assert d.get_layer("d32_conv1").kernel.shape == (3, 3, 128, 256)
    assert d.get_layer("d4_conv").kernel.shape == (3, 3, 513, 256)
    assert d.get_layer("d4_conv_valid").kernel.shape == (4, 4, 256, 256)


def test_bench64_preset_builds_the_benchmark_architecture():
    from keras_pgen.models import msg_gan

    model = msg_gan.build_model(keras_pgen.get_config("msg_gan", "bench64"))
    assert model.discriminator.get_config()["combine"] == "from_rgb"
    assert model.generator.get_config()["fused_upscale"]  # the same network, computed with fewer multiply-adds
    assert (model.generator.count_params(), model.discriminator.count_params()) == (4_559_311, 6_476_097)


@pytest.mark.parametrize("padding", ["same", "reflect"])
def test_msg_gan_fused_upscale_generator_equals_upsample_then_conv(padding):
    """fused_upscale (UpscaleConv2D) and UpSampling2D + conv: same weights, outputs and gradients."""
    import tensorflow as tf

    keras.utils.set_random_seed(3)
    plain = MSGGANGenerator(latent_dim=8, resolution=16, fmap_base=64, fmap_max=16, fused_upscale=False,
                            padding=padding)
    fused = MSGGANGenerator(latent_dim=8, resolution=16, fmap_base=64, fmap_max=16, padding=padding)
    assert fused.get_config()["padding"] == padding
    assert fused.get_config()["fused_upscale"] and not plain.get_config()["fused_upscale"]
    assert any(isinstance(layer, keras.layers.UpSampling2D) for layer in plain.layers)
    assert not any(isinstance(layer, keras.layers.UpSampling2D) for layer in fused.layers)
    assert [w.shape for w in fused.weights] == [w.shape for w in plain.weights]
    fused.set_weights(plain.get_weights())
    for layer in fused.layers:  # random biases, so that they take part in the comparison
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.random.RandomState(len(layer.name)).randn(*layer.bias.shape))
    plain.set_weights(fused.get_weights())
    z = rand((3, 8), seed=5)
    weights = [np.random.RandomState(i).randn(*(3,) + (r, r, 3)).astype("float32") for i, r in enumerate((4, 8, 16))]

    def outputs_and_gradients(g):
        with tf.GradientTape() as tape:
            outs = g(z, training=True)
            loss = sum(tf.reduce_sum(o * w) for o, w in zip(outs, weights))
        return [np_out(o) for o in outs], [np.asarray(v) for v in tape.gradient(loss, g.trainable_variables)]

    (out_a, grad_a), (out_b, grad_b) = outputs_and_gradients(plain), outputs_and_gradients(fused)
    for a, b in zip(out_a + grad_a, out_b + grad_b):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(a).max())))


def test_msg_gan_simple_combine_concatenates_the_raw_images():
    """phi_simple: C(r) block features + the 3 image channels at every lower scale; counted by hand."""
    ch = {4: 16, 8: 16, 16: 8, 32: 4}  # fmap_base 64, fmap_max 16
    _, d = small_msg_gan(resolution=32)
    assert d.get_config()["combine"] == "simple"
    hand = conv_params(1, 3, ch[32])  # fromRGB at the top scale only
    for r in (32, 16, 8):
        cin = ch[r] if r == 32 else ch[r] + 3
        hand += conv_params(3, cin, ch[r]) + conv_params(3, ch[r], ch[r // 2])
    hand += conv_params(3, ch[4] + 3 + 1, ch[4]) + conv_params(4, ch[4], ch[4]) + ch[4] + 1
    assert d.count_params() == hand
    assert d.get_layer("d16_conv0").kernel.shape == (3, 3, ch[16] + 3, ch[16])
    assert not [layer.name for layer in d.layers if layer.name.startswith("from_rgb_") and layer.name != "from_rgb_32"]
    with pytest.raises(ValueError, match="unknown combine 'sum'"):
        MSGGANDiscriminator(resolution=8, fmap_base=64, fmap_max=16, combine="sum")


@pytest.mark.parametrize("combine", ["simple", "from_rgb"])
def test_msg_gan_discriminator_sees_every_scale_with_either_combine(combine):
    d = MSGGANDiscriminator(resolution=16, fmap_base=64, fmap_max=16, combine=combine)
    images = [rand((4, r, r, 3), seed=r) for r in (4, 8, 16)]
    base = np_out(d(images))
    for i in range(3):
        changed = list(images)
        changed[i] = images[i] + 1.0
        assert np.max(np.abs(np_out(d(changed)) - base)) > 1e-4, f"scale {i} ignored"


def test_msg_gan_discriminator_without_mbstd_has_one_channel_less():
    _, with_mbstd = small_msg_gan(resolution=8)
    _, without = small_msg_gan(resolution=8, mbstd_group_size=0)
    # head conv 3x3 sees 2*16 + 1 channels instead of 2*16: 3*3*1*16 weights fewer.
    assert with_mbstd.count_params() - without.count_params() == 9 * 16
    assert tuple(without([rand((3, 4, 4, 3)), rand((3, 8, 8, 3))]).shape) == (3, 1)


# ---------------------------------------------------------------- DCGAN


@pytest.mark.parametrize("resolution", [16, 32])
@pytest.mark.parametrize("norm", ["batch", "none"])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(resolution, norm, channels):
    g = DCGANGenerator(latent_dim=8, resolution=resolution, base_filters=4, max_filters=16,
                       image_channels=channels, norm=norm)
    d = DCGANDiscriminator(resolution=resolution, base_filters=4, max_filters=16, image_channels=channels,
                           norm=norm)
    images = np_out(g(rand((2, 8))))
    assert images.shape == (2, resolution, resolution, channels)
    assert np.all(np.abs(images) <= 1.0)  # tanh
    logits = np_out(d(images))
    assert logits.shape == (2, 1)
    assert np.all(np.isfinite(logits))
    # Training mode too (batch statistics for "batch").
    assert tuple(g(rand((2, 8)), training=True).shape) == (2, resolution, resolution, channels)
    assert tuple(d(images, training=True).shape) == (2, 1)


def test_dcgan_parameter_counts():
    # resolution 16: two upsamplings, filters 16 -> 8 -> 4 (base 4 doubled per lower resolution, cap 16).
    g = DCGANGenerator(latent_dim=8, resolution=16, base_filters=4, max_filters=16, norm="none")
    g_none = (8 * 256 + 256) + (4 * 4 * 16 * 8 + 8) + (4 * 4 * 8 * 4 + 4) + conv_params(3, 4, 3)
    assert g.count_params() == g_none == 4987
    g = DCGANGenerator(latent_dim=8, resolution=16, base_filters=4, max_filters=16, norm="batch")
    # no biases before batch norm; 4 numbers per channel for each batch norm
    g_batch = 8 * 256 + 4 * 16 + 4 * 4 * 16 * 8 + 4 * 8 + 4 * 4 * 8 * 4 + 4 * 4 + conv_params(3, 4, 3)
    assert g.count_params() == g_batch == 4831
    # discriminator 16 -> 8 -> 4: conv 3 -> 4 (bias), conv 4 -> 8, dense 4*4*8 -> 1
    d = DCGANDiscriminator(resolution=16, base_filters=4, max_filters=16, norm="none")
    assert d.count_params() == conv_params(4, 3, 4) + conv_params(4, 4, 8) + 128 + 1 == 845
    d = DCGANDiscriminator(resolution=16, base_filters=4, max_filters=16, norm="batch")
    assert d.count_params() == conv_params(4, 3, 4) + conv_params(4, 4, 8, bias=False) + 4 * 8 + 129 == 869


def test_dcgan_generator_unknown_norm():
    with pytest.raises(ValueError, match="'batch', 'none'"):
        DCGANGenerator(latent_dim=8, resolution=16, base_filters=4, norm="group")


def test_dcgan_discriminator_unknown_norm():
    with pytest.raises(ValueError, match="'batch', 'none'"):
        DCGANDiscriminator(resolution=16, base_filters=4, norm="group")


def test_dcgan_discriminator_unknown_norm_at_low_resolution():
    with pytest.raises(ValueError, match="'batch', 'none'"):
        DCGANDiscriminator(resolution=8, base_filters=4, norm="group")


# ---------------------------------------------------------------- configs


NETWORKS = {
    "msg_gan_g": (lambda: MSGGANGenerator(latent_dim=8, resolution=16, fmap_base=64, fmap_max=16,
                                          image_channels=1, name="gen"),
                  lambda: rand((4, 8), seed=1)),
    "msg_gan_d": (lambda: MSGGANDiscriminator(resolution=16, fmap_base=64, fmap_max=16, image_channels=1,
                                              mbstd_group_size=2, name="disc"),
                  lambda: [rand((4, r, r, 1), seed=r) for r in (4, 8, 16)]),
    "dcgan_g": (lambda: DCGANGenerator(latent_dim=8, resolution=16, base_filters=4, max_filters=16,
                                       image_channels=1, norm="batch"),
                lambda: rand((4, 8), seed=2)),
    "dcgan_d": (lambda: DCGANDiscriminator(resolution=16, base_filters=4, max_filters=8, image_channels=3,
                                           norm="none"),
                lambda: rand((4, 16, 16, 3), seed=3)),
}


@pytest.mark.parametrize("key", sorted(NETWORKS))
def test_network_config_round_trip(key):
    make, inputs = NETWORKS[key]
    net = make()
    x = inputs()
    config = net.get_config()
    clone = type(net).from_config(config)
    assert type(clone) is type(net)
    assert clone.name == net.name
    assert clone.get_config() == config
    assert clone.count_params() == net.count_params()
    # Fresh random weights differ; after set_weights the outputs are equal.
    def outputs(model):
        y = model(x)
        return [np_out(t) for t in (y if isinstance(y, (list, tuple)) else [y])]
    before = outputs(clone)
    clone.set_weights(net.get_weights())
    expected, got = outputs(net), outputs(clone)
    assert any(np.max(np.abs(a - b)) > 1e-6 for a, b in zip(before, expected))
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_network_configs_store_constructor_arguments():
    g = MSGGANGenerator(latent_dim=8, resolution=16, fmap_base=64, fmap_max=16, image_channels=1)
    config = g.get_config()
    assert {k: config[k] for k in ("latent_dim", "resolution", "fmap_base", "fmap_max", "image_channels")} == {
        "latent_dim": 8, "resolution": 16, "fmap_base": 64, "fmap_max": 16, "image_channels": 1}
    d = DCGANDiscriminator(resolution=16, base_filters=4, max_filters=8, image_channels=3, norm="none")
    config = d.get_config()
    assert {k: config[k] for k in ("resolution", "base_filters", "max_filters", "image_channels", "norm")} == {
        "resolution": 16, "base_filters": 4, "max_filters": 8, "image_channels": 3, "norm": "none"}
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(d))
    assert type(restored) is DCGANDiscriminator and restored.count_params() == d.count_params()


def test_msg_gan_latent_bias_adds_a_per_channel_bias_from_z():
    """latent_bias: with its dense layers at zero the generator is the plain one; otherwise each block's
    features shift by pixel_norm(z) @ (W / sqrt(latent_dim)) + b, the same at every pixel (numpy)."""
    keras.utils.set_random_seed(4)
    plain = MSGGANGenerator(latent_dim=8, resolution=16, fmap_base=64, fmap_max=16)
    biased = MSGGANGenerator(latent_dim=8, resolution=16, fmap_base=64, fmap_max=16, latent_bias=True)
    assert biased.get_config()["latent_bias"] and not plain.get_config()["latent_bias"]
    extra = [layer for layer in biased.layers if layer.name.endswith("_latent_bias")]
    assert [layer.name for layer in extra] == ["g4_latent_bias", "g8_latent_bias", "g16_latent_bias"]
    assert biased.count_params() - plain.count_params() == sum(8 * c + c for c in (16, 16, 8))  # 64 / 2**stage, <= 16
    for layer in plain.layers:  # the shared layers take the plain generator's weights
        if layer.weights:
            biased.get_layer(layer.name).set_weights(layer.get_weights())
    z = rand((3, 8), seed=6)
    for layer in extra:
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    for a, b in zip(plain(z), biased(z)):
        np.testing.assert_allclose(np_out(b), np_out(a), rtol=1e-5, atol=1e-6)

    # the 4x4 features: the stem's output plus the hand-computed bias
    for layer in extra:
        layer.set_weights([np.random.RandomState(len(layer.name) + i).randn(*w.shape).astype("float32")
                           for i, w in enumerate(layer.get_weights())])
    stem = keras.Model(biased.inputs, biased.get_layer("g4_conv").output)  # before the latent bias
    after = keras.Model(biased.inputs, [n for n in biased.layers if isinstance(n, keras.layers.Add)][0].output)
    kernel, bias = extra[0].get_weights()
    zn = np.asarray(z) / np.sqrt(np.mean(np.asarray(z) ** 2, axis=1, keepdims=True) + 1e-8)
    stem_out = np.asarray(keras.layers.LeakyReLU(negative_slope=0.2)(stem(z)))
    stem_out = stem_out / np.sqrt(np.mean(stem_out ** 2, axis=-1, keepdims=True) + 1e-8)
    expected = stem_out + (zn @ kernel / np.sqrt(8) + bias)[:, None, None, :]
    np.testing.assert_allclose(np_out(after(z)), expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(np_out(biased(z)[-1]), np_out(plain(z)[-1]), atol=1e-3)


def test_msg_gan_latent_bias_from_the_config():
    """`g_latent_bias` builds the option; a config.json from before the field (no key) builds the plain generator."""
    from keras_pgen.models import msg_gan

    config = keras_pgen.get_config("msg_gan", "tiny")
    assert not msg_gan.build_model(config).generator.get_config()["latent_bias"]
    config.g_latent_bias = True
    assert msg_gan.build_model(config).generator.get_config()["latent_bias"]
    del config["g_latent_bias"]
    assert not msg_gan.build_model(config).generator.get_config()["latent_bias"]
