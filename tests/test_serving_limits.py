"""Serving limits of the exported signatures: a request cap, non-finite and misshapen z, empty requests.

Every case goes through the loaded SavedModel signature (what TF Serving runs: InvalidArgumentError
raised inside the graph) and, for generators, through `LoadedGenerator` (ValueError before calling).
"""
import concurrent.futures
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_pgen import export
from keras_pgen.networks import Decoder, Encoder, MSGGANGenerator
from tests.conftest import run_bin

LATENT = 8
CAP = 3  # the override used by the small-cap exports
DEFAULT_CAP_16 = 58254  # floor(256 MiB / (6 * 16 * 16 * 3))
TOO_MANY = rf"exceeds the limit of {CAP} images per request \(max_images_per_request"
NON_FINITE = "z has non-finite values"


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A tiny 16x16 MSG-GAN generator exported with the default cap and with cap 3 (2 images a call),
    a tiny VAE with cap 3 and a tiny deterministic autoencoder with a spatial code [4, 4, 8]."""
    base = str(tmp_path_factory.mktemp("saved_models"))
    generator = MSGGANGenerator(LATENT, resolution=16, fmap_base=32, fmap_max=16)
    encoder = Encoder(16, LATENT, base_filters=4, max_filters=8)
    decoder = Decoder(16, LATENT, base_filters=4, max_filters=8)
    return {
        "default": export.export_generator(generator, base, "default"),
        "capped": export.export_generator(generator, base, "capped", images_per_call=2, max_images_per_request=CAP),
        "vae": export.export_autoencoder(encoder, decoder, base, "vae", max_images_per_request=CAP),
        "spatial": export.export_autoencoder(
            Encoder(16, LATENT, base_filters=4, max_filters=8, variational=False, code_resolution=4),
            Decoder(16, LATENT, base_filters=4, max_filters=8, code_resolution=4), base, "spatial", variational=False),
    }


def _metadata(path):
    with open(os.path.join(path, export.METADATA_FILE)) as f:
        return json.load(f)


def _signatures(path):
    return tf.saved_model.load(path).signatures


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
