"""Serving limits of the exported signatures: a request cap, bounded activations, every input a client can
send wrong (non-finite, misshapen, wrong dtype or image size, not a scalar), empty requests.

Every case goes through the loaded SavedModel signature (what TF Serving runs: InvalidArgumentError
raised inside the graph) and, for generators, through `LoadedGenerator` (ValueError before calling).
"""
import concurrent.futures
import functools
import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pgen import export
from keras_pgen.images import to_uint8
from keras_pgen.networks import Decoder, Encoder, MSGGANGenerator
from tests.conftest import run_bin

LATENT = 8
CAP = 3  # the override used by the small-cap exports
NUM_CLASSES = 5
DEFAULT_CAP_16 = 58254  # floor(256 MiB / (6 * 16 * 16 * 3))
TOO_MANY = rf"exceeds the limit of {CAP} images per request \(max_images_per_request"
NON_FINITE = "z has non-finite values"
WRONG_IMAGES = r"images must have shape \[N, 16, 16, 3\] \(16x16 images with 3 channels\), got shape"


def _tiny_generator():
    """Functional z [N, 8] -> 16x16x3 images in (-1, 1) (its layers' output sizes are known)."""
    keras.utils.set_random_seed(1)
    z = keras.Input((LATENT,))
    x = keras.layers.Reshape((4, 4, 8))(keras.layers.Dense(4 * 4 * 8)(z))
    x = keras.layers.UpSampling2D()(keras.layers.UpSampling2D()(x))
    return keras.Model(z, keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(x))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Exports shared by the tests (tiny networks, 16x16):
    - default / capped / chunked: a tiny MSG-GAN generator exported with the default cap and images per call
      (derived), with cap 3 and 2 images a call, and with an activation budget of 2.5 images (2 a call, derived);
    - vae (cap 3) and cond (a decoder of 5 class labels): exported with an activation budget below one image
      (1 a call, derived); spatial: an autoencoder with a code [4, 4, 8];
    - nan: a generator with a NaN weight (cap 3)."""
    base = str(tmp_path_factory.mktemp("saved_models"))
    generator = MSGGANGenerator(LATENT, resolution=16, fmap_base=32, fmap_max=16)
    paths = {"default": export.export_generator(generator, base, "default"),
             "capped": export.export_generator(generator, base, "capped", images_per_call=2,
                                               max_images_per_request=CAP)}
    per_image = _metadata(paths["default"])["activation_bytes_per_image"]
    encoder = Encoder(16, LATENT, base_filters=4, max_filters=8)
    decoder = Decoder(16, LATENT, base_filters=4, max_filters=8)
    cond_decoder = Decoder(16, NUM_CLASSES, base_filters=4, max_filters=8)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(export, "ACTIVATION_BUDGET_BYTES", int(2.5 * per_image))
        paths["chunked"] = export.export_generator(generator, base, "chunked")
        patch.setattr(export, "ACTIVATION_BUDGET_BYTES", 1)
        paths["vae"] = export.export_autoencoder(encoder, decoder, base, "vae", max_images_per_request=CAP)
        paths["cond"] = export.export_conditional_decoder(cond_decoder, base, "cond", num_classes=NUM_CLASSES)
    paths["spatial"] = export.export_autoencoder(
        Encoder(16, LATENT, base_filters=4, max_filters=8, variational=False, code_resolution=4),
        Decoder(16, LATENT, base_filters=4, max_filters=8, code_resolution=4), base, "spatial", variational=False)
    broken = _tiny_generator()
    broken.layers[-1].kernel.assign(np.full(broken.layers[-1].kernel.shape, np.nan, np.float32))
    paths["nan"] = export.export_generator(broken, base, "nan", images_per_call=1, max_images_per_request=CAP)
    return {**paths, "generator": generator, "encoder": encoder, "decoder": decoder, "cond_decoder": cond_decoder}


def _metadata(path):
    with open(os.path.join(path, export.METADATA_FILE)) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def _load(path):
    return tf.saved_model.load(path)  # once per export: loading costs more than most requests here


def _signatures(path):
    return _load(path).signatures


def _sample(signatures, n, seed=0):
    return signatures["sample"](num_images=tf.constant(n, tf.int32), seed=tf.constant(seed, tf.int32))


def test_default_cap_formula():
    assert export.image_bytes_estimate((16, 16, 3)) == 6 * 16 * 16 * 3
    caps = {shape: export.default_max_images_per_request(shape)
            for shape in [(16, 16, 3), (64, 64, 3), (1024, 1024, 3), (16, 16, 1), (1 << 14, 1 << 14, 3)]}
    assert caps == {(16, 16, 3): DEFAULT_CAP_16, (64, 64, 3): 3640, (1024, 1024, 3): 14, (16, 16, 1): 174762,
                    (1 << 14, 1 << 14, 3): 1}
    assert 14 * export.image_bytes_estimate((1024, 1024, 3)) <= export.REQUEST_BUDGET_BYTES


def test_metadata_records_cap_and_override(exports, tmp_path):
    assert _metadata(exports["default"])["max_images_per_request"] == DEFAULT_CAP_16
    assert _metadata(exports["capped"])["max_images_per_request"] == CAP
    assert _metadata(exports["vae"])["max_images_per_request"] == CAP
    assert export.load_generator(exports["capped"]).max_images_per_request == CAP
    generator = MSGGANGenerator(LATENT, resolution=8, fmap_base=16, fmap_max=8)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_images_per_request must be an integer >= 1"):
            export.export_generator(generator, tmp_path, "bad", max_images_per_request=bad)
    assert not os.path.exists(tmp_path / "bad") or os.listdir(tmp_path / "bad") == []


@pytest.mark.parametrize("name", ["default", "capped"])
def test_cap_enforced_in_graph_and_by_loaded_generator(exports, name):
    cap = _metadata(exports[name])["max_images_per_request"]
    message = rf"exceeds the limit of {cap} images per request \(max_images_per_request.*exporting again"
    signatures, loaded = _signatures(exports[name]), export.load_generator(exports[name])
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_images " + message):
        _sample(signatures, cap + 1)
    with pytest.raises(ValueError, match="num_images=.* " + message):
        loaded.sample(cap + 1)
    if cap == CAP:  # rows of z: the same cap (a default-cap batch of z would be 58255 rows)
        z = np.zeros((cap + 1, LATENT), np.float32)
        with pytest.raises(tf.errors.InvalidArgumentError, match="rows of z " + message):
            signatures["serving_default"](z=tf.constant(z))
        with pytest.raises(ValueError, match="rows of z=4 " + message):
            loaded.generate(z)
        assert _sample(signatures, cap)["images"].shape == (cap, 16, 16, 3)
        assert loaded.generate(z[:cap]).shape == (cap, 16, 16, 3)


def test_non_finite_z_rejected(exports):
    signatures, loaded = _signatures(exports["capped"]), export.load_generator(exports["capped"])
    for bad in (np.nan, np.inf, -np.inf):
        z = np.zeros((2, LATENT), np.float32)
        z[1, 3] = bad
        with pytest.raises(tf.errors.InvalidArgumentError, match=NON_FINITE):
            signatures["serving_default"](z=tf.constant(z))
        with pytest.raises(tf.errors.InvalidArgumentError, match=NON_FINITE):
            signatures["generate"](z=tf.constant(z))
        with pytest.raises(ValueError, match=NON_FINITE):
            loaded.generate(z)


def test_wrong_width_names_latent_dim(exports):
    signatures, loaded = _signatures(exports["default"]), export.load_generator(exports["default"])
    # The declared spec stays [None, 8] (clients and bin/benchmark read latent_dim from it); the loaded
    # signature passes other shapes on, and the in-graph check must stop them before the network.
    assert signatures["serving_default"].structured_input_signature[1]["z"].shape.as_list() == [None, LATENT]
    for z in (np.zeros((2, 3), np.float32), np.zeros((0, LATENT + 1), np.float32)):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"z must have shape \[N, 8\] \(latent size 8\)"):
            signatures["serving_default"](z=tf.constant(z))
        with pytest.raises(ValueError, match=r"z must have shape \[N, 8\]"):
            loaded.generate(z)


@pytest.mark.parametrize("name", ["default", "capped"])
def test_empty_requests_give_empty_outputs(exports, name):
    signatures, loaded = _signatures(exports[name]), export.load_generator(exports[name])
    for outputs in (signatures["serving_default"](z=tf.zeros([0, LATENT])), _sample(signatures, 0)):
        assert outputs["images"].shape == (0, 16, 16, 3) and outputs["images"].dtype == tf.uint8
        assert outputs["png_bytes"].shape == (0,) and outputs["png_bytes"].dtype == tf.string
    assert loaded.generate(np.zeros((0, LATENT), np.float32)).shape == (0, 16, 16, 3)
    assert loaded.png_bytes(np.zeros((0, LATENT), np.float32)) == []
    assert loaded.sample(0).shape == (0, 16, 16, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_images must be >= 0"):
        _sample(signatures, -1)
    with pytest.raises(ValueError, match="num_images must be >= 0, got -1"):
        loaded.sample(-1)


def test_autoencoder_limits(exports):
    signatures = _signatures(exports["vae"])
    decode = lambda z: signatures["decode"](z=tf.constant(z, tf.float32))  # noqa: E731
    assert decode(np.zeros((CAP, LATENT)))["images"].shape == (CAP, 16, 16, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="rows of z " + TOO_MANY):
        decode(np.zeros((CAP + 1, LATENT)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=NON_FINITE):
        decode(np.array([[0.0] * (LATENT - 1) + [np.nan]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"z must have shape \[N, 8\] \(code shape 8\)"):
        decode(np.zeros((1, LATENT + 2)))
    empty = decode(np.zeros((0, LATENT)))
    assert empty["images"].shape == (0, 16, 16, 3) and empty["png_bytes"].shape == (0,)
    assert _sample(signatures, 0)["images"].shape == (0, 16, 16, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_images " + TOO_MANY):
        _sample(signatures, CAP + 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_images must be >= 0"):
        _sample(signatures, -1)
    images = tf.zeros([CAP + 1, 16, 16, 3], tf.uint8)
    for name in ("reconstruct", "encode", "serving_default"):
        with pytest.raises(tf.errors.InvalidArgumentError, match="number of images " + TOO_MANY):
            signatures[name](images=images)
    assert signatures["reconstruct"](images=images[:0])["images"].shape == (0, 16, 16, 3)
    with pytest.raises(ValueError, match="not a generator export"):
        export.load_generator(exports["vae"])


def test_spatial_code_decode_limits(exports):
    signatures = _signatures(exports["spatial"])
    assert "sample" not in signatures and _metadata(exports["spatial"])["max_images_per_request"] == DEFAULT_CAP_16
    decode = lambda z: signatures["decode"](z=tf.constant(z, tf.float32))  # noqa: E731
    assert decode(np.zeros((2, 4, 4, LATENT)))["images"].shape == (2, 16, 16, 3)
    message = r"z must have shape \[N, 4, 4, 8\] \(code shape \[4, 4, 8\]\)"
    for z in (np.zeros((2, 4, 4, 3)), np.zeros((2, 8, 8, LATENT))):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            decode(z)
    z = np.zeros((1, 4, 4, LATENT))
    z[0, 1, 2, 3] = np.inf
    with pytest.raises(tf.errors.InvalidArgumentError, match=NON_FINITE):
        decode(z)
    assert decode(np.zeros((0, 4, 4, LATENT)))["images"].shape == (0, 16, 16, 3)


def _images(path, name, **inputs):
    return _signatures(path)[name](**{k: tf.constant(v) for k, v in inputs.items()})


# ---- activations: a batch runs images_per_call images at a time, derived from the network -------------------
def test_activation_bytes_per_image_counts_every_layer_output():
    """The estimate is at least the sum of the layers' per-image outputs (each is a tensor of the traced call),
    also when the network runs inside a nested tf.function (an XLA-compiled serving generator), and not wildly
    more: a handful of tensors per layer (matmul + bias, conv + bias + tanh, the two resizes)."""
    generator = _tiny_generator()
    layer_bytes = 4 * sum(int(np.prod(layer.output.shape[1:])) for layer in generator.layers[1:])
    assert layer_bytes == 4 * (128 + 128 + 512 + 2048 + 768)
    plain = export.activation_bytes_per_image(lambda z: generator(z, training=False), [LATENT])
    nested_fn = tf.function(lambda z: generator(z, training=False))
    nested = export.activation_bytes_per_image(lambda z: nested_fn(z), [LATENT])
    assert layer_bytes <= plain <= 5 * layer_bytes
    # the outer graph adds the call's own input and output (and its identity) at most
    assert plain <= nested <= plain + 4 * LATENT + 2 * 4 * 16 * 16 * 3


def test_default_images_per_call_fits_the_activation_budget(exports):
    """images_per_call is the most images whose activations fit the budget (at most the cap): one call at the
    request cap holds at most ACTIVATION_BUDGET_BYTES of activations."""
    budget = export.ACTIVATION_BUDGET_BYTES
    for name in ("default", "chunked", "vae", "cond"):
        metadata = _metadata(exports[name])
        per_call, per_image, cap = (metadata[k] for k in ("images_per_call", "activation_bytes_per_image",
                                                          "max_images_per_request"))
        assert per_call == export.default_images_per_call(per_image, cap, budget if name == "default" else
                                                          (int(2.5 * per_image) if name == "chunked" else 1))
        assert 1 <= per_call < cap
    metadata = _metadata(exports["default"])
    per_call, per_image = metadata["images_per_call"], metadata["activation_bytes_per_image"]
    assert per_call * per_image <= budget < (per_call + 1) * per_image
    assert _metadata(exports["chunked"])["images_per_call"] == 2
    assert _metadata(exports["chunked"])["activation_bytes_per_image"] == per_image  # the same network, traced again
    assert _metadata(exports["vae"])["images_per_call"] == _metadata(exports["cond"])["images_per_call"] == 1
    assert _metadata(exports["capped"])["images_per_call"] == 2 and "activation_bytes_per_image" not in \
        _metadata(exports["capped"])  # given, not derived
    assert export.default_images_per_call(10, 3, budget_bytes=10**6) == 3  # never more than the cap
    assert export.default_images_per_call(10**9, 3, budget_bytes=10**6) == 1  # at least one


def _near(images, expected):
    """uint8 images equal but for a rare 1-level rounding flip (float results differ by ~1e-5 between batch sizes:
    TensorFlow's CPU kernels, for the Keras generator itself as for the export)."""
    difference = np.abs(images.astype(int) - np.asarray(expected).astype(int))
    return difference.max() <= 1 and np.mean(difference > 0) < 1e-3


def test_derived_images_per_call_serves_the_same_images(exports):
    """7 rows made 2 at a time (2, 2, 2, 1): exactly the images of the one-call export asked for those 4 slices
    (the same calls), and the one-call batch's and the Keras generator's up to rounding (batch-size dependence of
    the CPU kernels; the export also folds the equalized-LR scales into the weights)."""
    z = np.random.default_rng(3).standard_normal((7, LATENT)).astype(np.float32)
    sample_z = tf.random.stateless_normal([7, LATENT], seed=[5, 0]).numpy()
    chunked, whole = _signatures(exports["chunked"]), _signatures(exports["default"])
    for served, latents in ((chunked["serving_default"](z=tf.constant(z)), z), (_sample(chunked, 7, seed=5), sample_z)):
        images = served["images"].numpy()
        assert images.shape == (7, 16, 16, 3) and images.std() > 0
        same_calls = [whole["serving_default"](z=tf.constant(latents[i:i + 2]))["images"] for i in range(0, 7, 2)]
        np.testing.assert_array_equal(images, np.concatenate(same_calls))
        np.testing.assert_array_equal(np.stack([tf.io.decode_png(png).numpy() for png in served["png_bytes"]]),
                                      images)
        assert _near(images, whole["serving_default"](z=tf.constant(latents))["images"])
        assert _near(images, to_uint8(exports["generator"](latents, training=False)[-1].numpy()))


def test_autoencoder_one_image_a_call_serves_the_same_outputs(exports):
    """The VAE export runs 1 image a call: encode, decode, reconstruct and sample of 3 are exactly those of 3
    one-image requests (the same calls), and the Keras networks' up to rounding."""
    encoder, decoder, path = exports["encoder"], exports["decoder"], exports["vae"]
    images = np.random.default_rng(4).integers(0, 256, (CAP, 16, 16, 3), dtype=np.uint8)
    z = np.random.default_rng(5).standard_normal((CAP, LATENT)).astype(np.float32)
    for name, inputs in (("encode", {"images": images}), ("reconstruct", {"images": images}), ("decode", {"z": z})):
        batch = _images(path, name, **inputs)
        one_by_one = [_images(path, name, **{k: v[i:i + 1] for k, v in inputs.items()}) for i in range(CAP)]
        for key, value in batch.items():
            assert value.shape[0] == CAP
            np.testing.assert_array_equal(value.numpy(), np.concatenate([o[key].numpy() for o in one_by_one]))
    mean, log_variance = encoder(images.astype(np.float32) / 127.5 - 1.0, training=False)
    encoded = _images(path, "encode", images=images)
    np.testing.assert_allclose(encoded["mean"].numpy(), mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(encoded["log_variance"].numpy(), log_variance, rtol=1e-4, atol=1e-4)
    assert _near(_images(path, "reconstruct", images=images)["images"].numpy(),
                 to_uint8(decoder(mean, training=False).numpy()))
    assert _near(_images(path, "decode", z=z)["images"].numpy(), to_uint8(decoder(z, training=False).numpy()))
    prior = tf.random.stateless_normal([CAP, LATENT], seed=[2, 0])
    assert _near(_sample(_signatures(path), CAP, seed=2)["images"].numpy(),
                 to_uint8(decoder(prior, training=False).numpy()))


# ---- hostile inputs: each a one-line InvalidArgumentError naming the problem and what was expected ----------
def test_z_of_a_rank_whose_leading_dims_fit_names_the_shape(exports):
    """[1, 8, 1] fits [N, 8] in its first two dims: it used to reach the network ("The second input must be a
    scalar"); the check now reads the shape the request sent."""
    message = r"z must have shape \[N, 8\] \(latent size 8\), got shape\] \[1 8 1\]"
    for name in ("default", "chunked"):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            _images(exports[name], "serving_default", z=np.zeros((1, LATENT, 1), np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"z must have shape \[N, 8\] \(code shape 8\)"):
        _images(exports["vae"], "decode", z=np.zeros((2, LATENT, 3), np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"z must have shape \[N, 4, 4, 8\]"):
        _images(exports["spatial"], "decode", z=np.zeros((1, 4, 4, LATENT, 1), np.float32))


def test_sample_count_and_seed_must_be_scalars(exports):
    """A vector num_images or seed used to fail inside the random op ("In[0] should be a scalar")."""
    for path in (exports["capped"], exports["vae"]):
        signature = _signatures(path)["sample"]
        for inputs, name in (({"num_images": [2], "seed": 0}, "num_images"),
                             ({"num_images": 2, "seed": [0, 1]}, "seed")):
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match=rf"{name} (must have shape \[\] \(a scalar\)|.* not compatible with expected "
                                     r"shape \[\])"):
                signature(**{k: tf.constant(v, tf.int32) for k, v in inputs.items()})


@pytest.mark.parametrize("name", ["vae", "spatial"])
def test_encoder_inputs_of_another_image_shape_are_refused(exports, name):
    """Images of another size, channel count or rank: a named error before the encoder (the spatial autoencoder's
    convolutional encoder used to encode 32x32 images into a code of the wrong shape without a word)."""
    signatures = _signatures(exports[name])
    bad = {"32x32": [1, 32, 32, 3], "8x8": [1, 8, 8, 3], "16x24": [1, 16, 24, 3], "1 channel": [1, 16, 16, 1],
           "4 channels": [1, 16, 16, 4], "no batch axis": [16, 16, 3]}
    for shape in bad.values():
        sent = " ".join(map(str, shape[:3])) + ("..." if len(shape) > 3 else "")
        for signature in ("encode", "reconstruct", "serving_default"):
            with pytest.raises(tf.errors.InvalidArgumentError, match=WRONG_IMAGES + re.escape(f"] [{sent}]")):
                signatures[signature](images=tf.zeros(shape, tf.uint8))
    assert signatures["encode"](images=tf.zeros([0, 16, 16, 3], tf.uint8))["mean"].shape[0] == 0


def test_conditional_decoder_requests(exports):
    """labels: a vector of class indices in [0, 5), at most the cap; zero labels give empty outputs; 1 image a
    call gives the images of one-label requests and, up to rounding, the Keras decoder's."""
    decode = lambda labels: _images(exports["cond"], "serving_default", labels=np.asarray(labels, np.int32))  # noqa
    labels = [4, 0, 2, 2]
    images = decode(labels)["images"].numpy()
    np.testing.assert_array_equal(images, np.concatenate([decode([label])["images"] for label in labels]))
    np.testing.assert_array_equal(images[2], images[3])
    assert _near(images, to_uint8(exports["cond_decoder"](tf.one_hot(labels, NUM_CLASSES), training=False).numpy()))
    empty = decode(np.zeros([0], np.int32))
    assert empty["images"].shape == (0, 16, 16, 3) and empty["png_bytes"].shape == (0,)
    shape_message = r"labels must have shape \[N\] \(one class index per image\), got shape\] "
    for bad, message in ((3, shape_message + r"\[\]"), ([[1], [2]], shape_message + r"\[2 1\]"),
                         ([1, -1], "labels must be >= 0"), ([NUM_CLASSES], f"labels must be < {NUM_CLASSES}")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            decode(bad)
    too_many = rf"the number of labels exceeds the limit of {DEFAULT_CAP_16} images per request"
    with pytest.raises(tf.errors.InvalidArgumentError, match=too_many):
        decode(np.zeros([DEFAULT_CAP_16 + 1], np.int32))


def test_non_finite_network_output_is_an_error(exports):
    """A generator that makes NaN (here a NaN weight) used to serve black images with valid PNGs."""
    signatures = _signatures(exports["nan"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="the network produced non-finite values"):
        signatures["serving_default"](z=tf.zeros([2, LATENT]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="the network produced non-finite values"):
        _sample(signatures, 1)
    assert signatures["serving_default"](z=tf.zeros([0, LATENT]))["images"].shape == (0, 16, 16, 3)


# ---- the Python API and bin/generate --------------------------------------------------------------------------
def test_loaded_generator_refuses_arguments_it_cannot_serve_exactly(exports):
    """num_images 2.5 or "3" used to be TensorFlow TypeErrors, True one image, seed 2**40 silently another seed;
    strings in z a numpy TypeError, complex z its real part, float64 z that overflows float32 an in-graph error."""
    loaded = export.load_generator(exports["capped"])
    for bad in (2.5, "3", True, None, np.array([2])):
        with pytest.raises(ValueError, match=r"^num_images must be an integer, got "):
            loaded.sample(bad)
    for bad in (2**31, -2**31 - 1, 1.5):
        with pytest.raises(ValueError, match=r"^seed must be an integer"):
            loaded.sample(1, seed=bad)
    np.testing.assert_array_equal(loaded.sample(np.int64(2), seed=np.int32(-2**31)), loaded.sample(2, seed=-2**31))
    for bad in (np.full((1, LATENT), "a"), np.zeros((1, LATENT), complex)):
        with pytest.raises(ValueError, match=r"^z must hold real numbers, got dtype"):
            loaded.generate(bad)
    with pytest.raises(ValueError, match=r"^z must be an array of shape \[N, 8\]"):
        loaded.generate([[0.0] * LATENT, [0.0]])
    with pytest.raises(ValueError, match=NON_FINITE + r".* as float32"):
        loaded.generate(np.full((1, LATENT), 1e300))
    np.testing.assert_array_equal(loaded.generate(np.ones((2, LATENT), int)), loaded.generate(np.ones((2, LATENT))))


def test_broken_model_directories_are_one_line_errors(exports, tmp_path):
    """A keras_pgen.json that is not an object or has a bad cap used to be an AttributeError or an unnamed int()
    error; a file given as the model said it did not exist."""
    import shutil

    for name, text, message in (("list", "[1]", "must hold a JSON object, got list"),
                                ("cap", '{"max_images_per_request": "x"}',
                                 "max_images_per_request in .*keras_pgen.json must be an integer >= 1, got 'x'")):
        version = tmp_path / name / "1"
        shutil.copytree(exports["capped"], version)
        (version / export.METADATA_FILE).write_text(text)
        with pytest.raises(ValueError, match=message):
            export.load_generator(tmp_path / name)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="no exported SavedModel at .*is not a directory"):
        export.load_generator(tmp_path / "file")


def test_grids_and_walks_stay_bounded(exports, tmp_path):
    """A walk with a negative seed used to fail in numpy; frames or min_size that would take more than 1 GiB of
    images, and seeds beyond int32, are refused before anything is generated."""
    loaded = export.load_generator(exports["capped"])
    frames = export.generate_walk(loaded, tmp_path / "walk.gif", frames=3, num=1, seed=-3, min_size=16)
    z = export.latent_walk(LATENT, 3, 4, [2**32 - 3, 0])
    # the same images up to the CPU kernels' rounding at another batch size: one level, in a few pixels at most
    difference = np.abs(np.stack(frames).astype(int) - loaded.generate(z).astype(int))
    assert difference.max() <= 1 and np.mean(difference > 0) < 1e-3, (difference.max(), np.mean(difference > 0))
    with pytest.raises(ValueError, match=r"frames=100000000 x num=1 .* more than the 1024 MiB"):
        export.generate_walk(loaded, tmp_path / "big.gif", frames=10**8)
    with pytest.raises(ValueError, match=r"a grid of num=2 with min_size=100000: .* more than the 1024 MiB"):
        export.generate_grid(loaded, 2, tmp_path / "big.png", min_size=100_000)
    with pytest.raises(ValueError, match="seed must be an integer in"):
        export.generate_walk(loaded, tmp_path / "seed.gif", frames=2, seed=2**31)
    with pytest.raises(ValueError, match="seed must be an integer in"):
        export.generate_grid(loaded, 1, tmp_path / "seed.png", seed=2**31)
    assert sorted(os.listdir(tmp_path)) == ["walk.gif"]


def test_bin_generate_errors_are_one_line(exports, tmp_path):
    corrupt = tmp_path / "corrupt" / "1"
    corrupt.mkdir(parents=True)
    (corrupt / "saved_model.pb").write_bytes(b"not a SavedModel")
    out = f"--out={tmp_path / 'grid.png'}"
    cases = {  # flags -> (exit code, error text)
        (f"--model={exports['capped']}", "--num=0"): (2, "--num must be >= 1, got 0"),
        (f"--model={exports['capped']}", "--interpolate", "--num=-1"): (2, "--num must be >= 1, got -1"),
        (f"--model={exports['capped']}", f"--num={CAP + 1}"): (2, f"--num={CAP + 1} exceeds .* limit of {CAP}"),
        (f"--model={tmp_path / 'missing'}", "--num=1"): (1, "no exported SavedModel at .*does not exist"),
        (f"--model={corrupt.parent}", "--num=1"): (1, "cannot load the SavedModel at .*corrupt"),
        (f"--model={exports['capped']}", "--num=1", f"--seed={2**40}"): (2, "--seed must be an integer in"),
    }
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        runs = {flags: pool.submit(run_bin, "generate", *flags, out, timeout=120) for flags in cases}
    for flags, (code, text) in cases.items():
        proc = runs[flags].result()
        errors = [line for line in proc.stderr.splitlines() if line.startswith("bin/generate: error: ")]
        assert proc.returncode == code and len(errors) == 1, (flags, proc.returncode, proc.stderr)
        assert errors[0] == proc.stderr.strip().splitlines()[-1] and "Traceback" not in proc.stderr
        assert re.search(text, errors[0]), (text, errors[0])
    assert not (tmp_path / "grid.png").exists()
