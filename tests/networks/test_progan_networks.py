"""ProGAN networks: shapes and parameter counts at every stage, fade-in blends, stage switching, configs."""
import keras
import numpy as np
import pytest
from keras import ops

from keras_pgen.layers import EqualizedConv2D, FadeIn, UpscaleConv2D
from keras_pgen.networks import ProGANDiscriminator, ProGANGenerator, blocks

TINY = dict(resolution=16, fmap_base=64, fmap_max=32)  # channels 32, 16, 8 at 4, 8, 16


def np_out(x):
    return np.asarray(ops.convert_to_numpy(x), np.float64)


def rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def conv(k, cin, cout):
    return k * k * cin * cout + cout


def generator_params(latent, res, nf, channels=3):
    """Per-piece parameter counts of the paper's generator (table 2), by hand."""
    counts = {"stem": latent * 16 * nf(4) + 16 * nf(4) + conv(3, nf(4), nf(4))}
    for r in blocks.resolutions(res)[1:]:
        counts[f"block_{r}"] = conv(3, nf(r // 2), nf(r)) + conv(3, nf(r), nf(r))
    for r in blocks.resolutions(res):
        counts[f"to_rgb_{r}"] = conv(1, nf(r), channels)
    return counts


def discriminator_params(res, nf, channels=3):
    counts = {f"from_rgb_{r}": conv(1, channels, nf(r)) for r in blocks.resolutions(res)}
    for r in blocks.resolutions(res)[1:]:
        counts[f"block_{r}"] = conv(3, nf(r), nf(r)) + conv(3, nf(r), nf(r // 2))
    counts["head"] = conv(3, nf(4) + 1, nf(4)) + conv(4, nf(4), nf(4)) + nf(4) + 1  # mbstd adds a channel
    return counts


def nf_of(fmap_base, fmap_max):
    return lambda r: blocks.num_filters(r, fmap_base, fmap_max)


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return ProGANGenerator(latent_dim=16, **TINY), ProGANDiscriminator(**TINY)


def stage_param_count(network):
    return sum(int(np.prod(w.shape)) for w in network.trainable_weights)


@pytest.mark.parametrize("resolution,fading,g_pieces,d_pieces", [
    (4, False, ["stem", "to_rgb_4"], ["from_rgb_4", "head"]),
    (8, True, ["stem", "block_8", "to_rgb_8", "to_rgb_4"], ["from_rgb_8", "block_8", "from_rgb_4", "head"]),
    (8, False, ["stem", "block_8", "to_rgb_8"], ["from_rgb_8", "block_8", "head"]),
    (16, True, ["stem", "block_8", "block_16", "to_rgb_16", "to_rgb_8"],
     ["from_rgb_16", "block_16", "block_8", "from_rgb_8", "head"]),
    (16, False, ["stem", "block_8", "block_16", "to_rgb_16"], ["from_rgb_16", "block_16", "block_8", "head"]),
])
def test_every_stage_shapes_and_trainable_parameter_counts(tiny, resolution, fading, g_pieces, d_pieces):
    g, d = tiny
    g_counts = generator_params(16, 16, nf_of(64, 32))
    d_counts = discriminator_params(16, nf_of(64, 32))
    g.set_stage(resolution, fading)
    d.set_stage(resolution, fading)
    images = g(rand((4, 16)))
    assert images.shape == (4, resolution, resolution, 3)
    assert d(images).shape == (4, 1)
    # only the stage's pieces train (the rest are frozen, their Adam slots untouched)
    assert stage_param_count(g) == sum(g_counts[p] for p in g_pieces)
    assert stage_param_count(d) == sum(d_counts[p] for p in d_pieces)
    # every variable exists at every stage: hand counts plus the alpha variable
    assert g.count_params() == sum(g_counts.values()) + 1
    assert d.count_params() == sum(d_counts.values()) + 1


def test_tiny_counts_by_hand():
    """The formula above, spelled out for the tiny networks (latent 16; channels 32, 16, 8)."""
    g = generator_params(16, 16, nf_of(64, 32))
    assert g == {"stem": 16 * 512 + 512 + 9 * 32 * 32 + 32, "block_8": 4624 + 2320, "block_16": 1160 + 584,
                 "to_rgb_4": 99, "to_rgb_8": 51, "to_rgb_16": 27}
    d = discriminator_params(16, nf_of(64, 32))
    assert d["head"] == 9 * 33 * 32 + 32 + 16 * 32 * 32 + 32 + 33


def test_faces1024_has_the_papers_23_million_parameters_per_network():
    keras.utils.set_random_seed(0)
    kwargs = dict(resolution=1024, fmap_base=8192, fmap_max=512)
    g = ProGANGenerator(latent_dim=512, **kwargs)
    d = ProGANDiscriminator(**kwargs)
    g_params = sum(generator_params(512, 1024, nf_of(8192, 512)).values())
    d_params = sum(discriminator_params(1024, nf_of(8192, 512)).values())
    assert g.count_params() - 1 == g_params == 23_086_795
    assert d.count_params() - 1 == d_params == 23_087_249
    print(f"faces1024 parameters: generator {g_params:,}, discriminator {d_params:,}")


def test_generator_fade_in_is_the_blend_of_the_two_paths(tiny):
    g, _ = tiny
    z = rand((3, 16), seed=1)
    low = np_out(g(z, resolution=8))  # the previous resolution's output
    high = np_out(g(z, resolution=16))
    up = low.repeat(2, axis=1).repeat(2, axis=2)  # nearest-neighbour upsampling
    for alpha in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(np_out(g(z, resolution=16, alpha=alpha)), (1 - alpha) * up + alpha * high,
                                   rtol=1e-5, atol=1e-5)
    # the stage and the alpha variable give the same result as the explicit arguments
    g.set_stage(16, fading=True)
    g.alpha.assign(0.3)
    np.testing.assert_allclose(np_out(g(z)), np_out(g(z, resolution=16, alpha=0.3)), rtol=1e-6, atol=1e-6)
    g.alpha.assign(1.0)


def test_discriminator_fade_in_blends_features_of_both_paths(tiny):
    _, d = tiny
    x = rand((4, 16, 16, 3), seed=2)
    pooled = x.reshape(4, 8, 2, 8, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(np_out(d(x, resolution=16, alpha=0.0)), np_out(d(pooled, resolution=8)),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np_out(d(x, resolution=16, alpha=1.0)), np_out(d(x, resolution=16)),
                               rtol=1e-5, atol=1e-5)
    # alpha = 0.4 by hand from the pieces: features blended before the 8x8 block
    old = np_out(d.from_rgb_8(pooled))
    new = np_out(d.block_16(d.from_rgb_16(x)))
    blended = (0.6 * old + 0.4 * new).astype(np.float32)
    expected = np_out(d.head(d.block_8(blended)))
    np.testing.assert_allclose(np_out(d(x, resolution=16, alpha=0.4)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", ["same", "reflect"])
def test_upscale_conv_equals_nearest_upsampling_then_conv(padding):
    """UpscaleConv2D (four 2x2 phase convolutions) == UpSampling2D(nearest) + EqualizedConv2D(3), either padding."""
    x = rand((2, 5, 5, 3))
    fused = UpscaleConv2D(4, padding=padding)
    y = np_out(fused(x))
    reference = EqualizedConv2D(4, 3, padding=padding)
    reference.build((None, 10, 10, 3))
    reference.set_weights([w + 0.1 for w in fused.get_weights()])  # a non-zero bias too
    fused.set_weights(reference.get_weights())
    expected = np_out(reference(x.repeat(2, axis=1).repeat(2, axis=2)))
    np.testing.assert_allclose(np_out(fused(x)), expected, rtol=1e-5, atol=1e-5)
    assert y.shape == (2, 10, 10, 4) and fused.compute_output_shape((None, 5, 5, 3)) == (None, 10, 10, 4)
    assert UpscaleConv2D.from_config(fused.get_config()).get_config() == fused.get_config()


def test_fade_in_layer():
    old, new = rand((2, 3)), rand((2, 3), seed=1)
    np.testing.assert_allclose(np_out(FadeIn()([old, new], alpha=0.25)), 0.75 * old + 0.25 * new, rtol=1e-6)


def test_bad_stage_and_config_round_trip(tiny):
    g, d = tiny
    with pytest.raises(ValueError, match=r"one of \[4, 8, 16\], got 32"):
        g.set_stage(32)
    with pytest.raises(ValueError, match="power of two"):
        ProGANGenerator(latent_dim=4, resolution=12)
    g.set_stage(16)
    assert g.set_stage(8) is True and g.set_stage(8) is False  # reports whether the sub-graph changed
    clone = ProGANGenerator.from_config(g.get_config())
    assert clone.get_config() == g.get_config() and len(clone.weights) == len(g.weights)
    assert ProGANDiscriminator.from_config(d.get_config()).get_config() == d.get_config()


@pytest.mark.parametrize("fading", [False, True])
@pytest.mark.parametrize("strips,min_rows", [(2, 16), (4, 4), (8, 2), (16, 1), (64, 1)])
def test_generator_in_strips_equals_the_whole_image(strips, min_rows, fading):
    """Strips of 64 / strips rows, tiling every block whose strips have >= min_rows rows: the same image.

    In float64 the two are equal to rounding (float32 convolutions of other sizes sum in
    another order, which pixel norm can amplify to ~3e-5 where a pixel's features are small).
    """
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")  # the sub-models' inputs
    keras.config.set_dtype_policy("float64")  # the layers' variables and computations
    try:
        g = ProGANGenerator(latent_dim=8, resolution=64, fmap_base=64, fmap_max=16)
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
    assert g.stem.weights[0].dtype == "float64"
    if fading:
        g.set_stage(64, fading=True)
        g.alpha.assign(0.3)
    z = rand((2, 8)).astype(np.float64)
    whole = np_out(g(z))
    assert whole.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(np_out(g(z, strips=strips, strip_min_rows=min_rows)), whole, rtol=0, atol=1e-12)


def test_strip_base_is_the_highest_resolution_computed_whole():
    from keras_pgen.networks.progan import _strip_base

    res = [4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert _strip_base(res, 1024, 8, 64) == 256  # 512 and 1024 are tiled: 64 and 128 rows per strip
    assert _strip_base(res, 1024, 1, 64) == 1024 and _strip_base(res, 256, 8, 64) == 256  # nothing to tile
    assert _strip_base(res, 64, 64, 1) == 32 and _strip_base(res, 64, 4, 1) == 4  # the dense 4x4 stem is never tiled
    with pytest.raises(ValueError, match="strips must divide the resolution 64, got 3"):
        _strip_base(res, 64, 3, 1)


def test_strips_share_one_loop_body_whatever_their_number():
    """The graph holds the tiled blocks three times (first strip, the loop body of the middle ones,
    last strip) whether the image is made in 8 or in 16 strips; both give the whole image."""
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    g = ProGANGenerator(latent_dim=8, resolution=128, fmap_base=64, fmap_max=8)
    z = rand((1, 8))

    def convolutions(strips, min_rows):  # Conv2D nodes of the traced graph and the functions it calls (the loop body)
        fn = tf.function(lambda z: g(z, strips=strips, strip_min_rows=min_rows), autograph=False)
        graph_def = fn.get_concrete_function(tf.TensorSpec([None, 8])).graph.as_graph_def()
        nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
        return sum(n.op == "Conv2D" for n in nodes), np_out(fn(z))

    whole = np_out(g(z))
    # only the 128x128 block is tiled (strips of 16 or 8 rows): the 4x4 stem's conv, two convs per
    # block up to 64x64 (computed whole), and 3 copies of the 128x128 block's two convs and toRGB
    (convs_8, image_8), (convs_16, image_16) = convolutions(8, 16), convolutions(16, 8)
    assert convs_8 == convs_16 == 1 + 2 * 4 + 3 * 3, (convs_8, convs_16)
    np.testing.assert_allclose(image_8, whole, atol=2e-4)
    np.testing.assert_allclose(image_16, whole, atol=2e-4)
