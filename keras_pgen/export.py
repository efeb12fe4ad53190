"""SavedModel export with named serving signatures into versioned directories.

Every export goes to a fresh `<export_base>/<name>/<integer version>/`, the layout that
TF Serving watches: it is written into a hidden temporary directory next to the versions
and renamed into place, so a server never sees a half-written version and an existing
version is never overwritten.

Example:
>>> version_dir = export_generator(generator, "saved_models", "msg_gan", method="msg_gan")
>>> images = load_generator("saved_models/msg_gan").sample(16, seed=0)  # uint8 NHWC
"""
import errno
import json
import math
import os
import re
import shutil
import uuid

import keras
import numpy as np
import tensorflow as tf

from keras_pgen import images as images_lib
from keras_pgen.layers.equalized import folded_scales

METADATA_FILE = "keras_pgen.json"
DEFAULT_SIGNATURE = "serving_default"


def _to_uint8(images):
    """TF twin of `keras_pgen.images.to_uint8`: round((x + 1) * 127.5) clipped to [0, 255]."""
    images = tf.cast(images, tf.float32)
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


# zlib level of the served PNGs: 1 (fastest) encodes a 1024x1024 image ~7x faster than the
# default 6 (0.1 s against 0.7 s on a 2-core CPU) for files ~15% larger.
PNG_COMPRESSION = 1


NON_FINITE_OUTPUT = "the network produced non-finite values (NaN or Inf)"


def _image_outputs(images):
    """{"images": uint8 NHWC, "png_bytes": one encoded PNG per image} from float images in [-1, 1].

    Non-finite values (a network with NaN weights, or a finite z so large that it overflows)
    are an InvalidArgumentError, not black or grey images.
    """
    check = tf.debugging.assert_equal(tf.reduce_all(tf.math.is_finite(tf.cast(images, tf.float32))), True,
                                      message=NON_FINITE_OUTPUT)
    with tf.control_dependencies([check]):
        images = _to_uint8(images)
    encode = lambda image: tf.io.encode_png(image, compression=PNG_COMPRESSION)  # noqa: E731
    return {"images": images, "png_bytes": tf.map_fn(encode, images, fn_output_signature=tf.string)}


# Request limits. A request's outputs are held in memory at once, so one request for too many
# images (`sample(num_images=100000)` peaked at 3.55 GB for a 16x16 model) could take a server down.
# Every batch signature therefore refuses more than `max_images_per_request` images with an
# InvalidArgumentError raised inside the graph (what TF Serving returns to the client).
REQUEST_BUDGET_BYTES = 256 * 2**20  # output images of one request
# The network's activations: a batch runs `images_per_call` images at a time, chosen so that one
# call's activations (every tensor of the traced call, see `activation_bytes_per_image`) fit this.
# Outputs and one call's activations together: a request at the cap stays well within 1 GB.
ACTIVATION_BUDGET_BYTES = 256 * 2**20
MAX_IMAGES_KEY = "max_images_per_request"  # its entry in keras_pgen.json


def image_bytes_estimate(image_shape):
    """Bytes one image of `image_shape` (H, W, C) takes in a request's outputs: 6 * H * W * C.

    float32 generator output (4 bytes a value) + uint8 image (1) + PNG (at most ~1: the encoder
    stores incompressible data nearly raw).
    """
    height, width, channels = (int(d) for d in image_shape)
    return 6 * height * width * channels


def default_max_images_per_request(image_shape, budget_bytes=REQUEST_BUDGET_BYTES):
    """max(1, floor(budget_bytes / image_bytes_estimate(image_shape))): the default request cap.

    With the 256 MiB budget: 58254 images at 16x16x3, 3640 at 64x64x3, 14 at 1024x1024x3 (252 MiB
    of outputs). The network's activations are bounded apart from this: every export runs a batch
    `images_per_call` images at a time, by default as many as `ACTIVATION_BUDGET_BYTES` allows
    (`default_images_per_call`), so a request at the cap stays within about 1 GB.
    """
    return max(1, budget_bytes // image_bytes_estimate(image_shape))


def _max_images(max_images_per_request, image_shape):
    """The cap to export: `max_images_per_request` (int >= 1) or, when None, the default for `image_shape`."""
    if max_images_per_request is None:
        return default_max_images_per_request(image_shape)
    if isinstance(max_images_per_request, bool) or int(max_images_per_request) != max_images_per_request \
            or max_images_per_request < 1:
        raise ValueError(f"max_images_per_request must be an integer >= 1, got {max_images_per_request!r}")
    return int(max_images_per_request)


def _too_many_message(what, max_images):
    # No apostrophes: TF's Assert quotes them as \' in the error text.
    return (f"{what} exceeds the limit of {max_images} images per request ({MAX_IMAGES_KEY} in "
            f"{METADATA_FILE}): split the request, or raise the limit by exporting again with "
            f"{MAX_IMAGES_KEY}=<n>")


def _request_shape(x):
    """tf.shape(x) of the tensor a request sent, as int64.

    A signature declared `[None, 8]` still receives whatever shape a request sends (loaded
    signatures and TF Serving do not check it), but grappler folds `tf.shape`/`tf.rank` of the
    declared rank into constants: read through a PlaceholderWithDefault of unknown shape, the
    rank is the request's.
    """
    return tf.shape(tf.raw_ops.PlaceholderWithDefault(input=x, shape=tf.TensorShape(None)), out_type=tf.int64)


def _shape_text(shape):
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"


def _checked_shape(x, name, expected, what=None):
    """`x` after an in-graph check that its shape is `expected` (None: any size), else InvalidArgumentError.

    The error names the expected shape and the one sent: "z must have shape [N, 8] (latent size 8),
    got shape [2 9]". The result has the static shape `expected`.
    """
    shape = _request_shape(x)
    rank = len(expected)
    padded = tf.concat([shape, tf.ones([rank], tf.int64)], axis=0)[:rank]
    fixed = [i for i, d in enumerate(expected) if d is not None]
    ok = tf.equal(tf.size(shape), rank)
    if fixed:
        ok = tf.logical_and(ok, tf.reduce_all(tf.equal(tf.gather(padded, fixed),
                                                       tf.constant([expected[i] for i in fixed], tf.int64))))
    message = f"{name} must have shape {_shape_text(expected)}" + (f" ({what})" if what else "") + ", got shape"
    with tf.control_dependencies([tf.debugging.Assert(ok, [message, shape])]):
        # EnsureShape also checks at run time: whatever reads the result sees a checked shape.
        return tf.ensure_shape(tf.identity(x), expected)


def _checked_count(count, max_images, name):
    """A requested image count after in-graph checks: a scalar, 0 <= count <= max_images."""
    count = _checked_shape(count, name, [], "a scalar")
    checks = [
        tf.debugging.assert_non_negative(count, message=f"{name} must be >= 0"),
        tf.debugging.assert_less_equal(count, tf.constant(max_images, count.dtype),
                                       message=_too_many_message(name, max_images)),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(count)


def _checked_rows(x, name, row_shape, max_images, what=None, finite=False, count_name=None):
    """`x` after in-graph checks (InvalidArgumentError) of its shape `[N, *row_shape]`, N <= max_images
    and, with `finite`, its values ("z has non-finite values"). `count_name` names N in the error
    (default "the number of rows of <name>").

    The shape check runs before anything else reads `x`: the network would otherwise fail deep
    inside ("Matrix size-incompatible", "Input to reshape is a tensor with 2048 values").
    """
    x = _checked_shape(x, name, [None, *row_shape], what)
    too_many = _too_many_message(count_name or f"the number of rows of {name}", max_images)
    checks = [tf.debugging.assert_less_equal(tf.shape(x, out_type=tf.int64)[0], tf.constant(max_images, tf.int64),
                                             message=too_many)]
    if finite:
        checks.append(tf.debugging.assert_equal(tf.reduce_all(tf.math.is_finite(x)), True,
                                                message=f"{name} has non-finite values (NaN or Inf)"))
    with tf.control_dependencies(checks):
        return tf.identity(x)


def _check_latents(z, trailing_shape, max_images, what="latent size"):
    """`z` [N, *trailing_shape] after the in-graph checks of `_checked_rows` (shape, rows, finite values)."""
    described = trailing_shape[0] if len(trailing_shape) == 1 else list(trailing_shape)
    return _checked_rows(z, "z", list(trailing_shape), max_images, f"{what} {described}", finite=True)


def _image_specs(image_shape):
    """Per-row specs of the image outputs: uint8 `image_shape` and one PNG string."""
    return {"images": tf.TensorSpec(image_shape, tf.uint8), "png_bytes": tf.TensorSpec([], tf.string)}


def _unless_empty(fn, x, output_specs):
    """`fn(x)` when x has rows, else empty outputs ([0, *row shape] per `output_specs`) without running it."""
    def empty():
        return {key: tf.zeros([0, *spec.shape], spec.dtype) for key, spec in output_specs.items()}

    return tf.cond(tf.shape(x)[0] > 0, lambda: fn(x), empty)


def _in_calls(fn, x, images_per_call, output_specs):
    """`fn(x)` computed `images_per_call` rows at a time, one call after the other; the same outputs.

    A `tf.while_loop` (parallel_iterations=1) slices x (the last call takes the rest: no padding)
    and collects each call's outputs (dict of `output_specs` keys, rows first) in TensorArrays:
    the activations alive are one call's, the outputs kept are `fn`'s (uint8 images, PNGs).
    """
    n = tf.shape(x)[0]
    k = tf.constant(images_per_call, tf.int32)
    calls = (n + k - 1) // k
    arrays = {key: tf.TensorArray(spec.dtype, size=calls, infer_shape=False, element_shape=[None, *spec.shape])
              for key, spec in output_specs.items()}

    def body(i, arrays):
        chunk = x[i * k:tf.minimum((i + 1) * k, n)]
        if images_per_call == 1:
            chunk = tf.ensure_shape(chunk, [1, *x.shape[1:]])  # a static batch of one (XLA-compiled generators)
        outputs = fn(chunk)
        return i + 1, {key: arrays[key].write(i, outputs[key]) for key in arrays}

    _, arrays = tf.while_loop(lambda i, _: i < calls, body, (tf.constant(0), arrays), parallel_iterations=1)
    return {key: array.concat() for key, array in arrays.items()}


def _batched(fn, x, images_per_call, max_images, output_specs):
    """`fn` on a checked batch `x`: empty outputs for zero rows, else `images_per_call` rows a call
    (one call when `images_per_call` >= max_images)."""
    if images_per_call >= max_images:
        return _unless_empty(fn, x, output_specs)
    return _unless_empty(lambda rows: _in_calls(fn, rows, images_per_call, output_specs), x, output_specs)


def _function_graphs(op):
    """FuncGraphs of the functions an op calls (nested tf.functions, while/cond bodies), where found."""
    names = []
    for value in op.node_def.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        names.extend(f.name for f in value.list.func)
    graphs = []
    for name in names:
        graph = op.graph
        while graph is not None:
            function = getattr(graph, "_functions", {}).get(name)
            if function is not None and getattr(function, "graph", None) is not None:
                graphs.append(function.graph)
                break
            graph = getattr(graph, "outer_graph", None)
    return graphs


def _tensor_bytes(graph, depth=0):
    """Bytes of every numeric tensor of a traced graph with a static shape, called functions included."""
    total = 0
    for op in graph.get_operations():
        for tensor in op.outputs:
            dtype = tensor.dtype
            if dtype in (tf.resource, tf.variant, tf.string) or not tensor.shape.is_fully_defined():
                continue
            total += tensor.shape.num_elements() * dtype.size
        if depth < 8:
            total += sum(_tensor_bytes(g, depth + 1) for g in _function_graphs(op))
    return total


def activation_bytes_per_image(fn, row_shape, dtype="float32"):
    """Bytes one more image adds to a call of `fn`: an upper bound on its activations per image.

    `fn` is traced for batches of 1 and 2 rows of `row_shape`; the result is the difference of the
    total size of every tensor in the two graphs (every op's output, including those of the
    functions it calls: nested tf.functions, loop bodies). That counts each activation as if all
    stayed alive at once, which TensorFlow's executor does not do (it frees a tensor after its last
    use): it overestimates the peak, never underestimates it. Weights and per-call constants cancel.

    Args:
        fn: function of a batch tensor (e.g. `lambda z: generator(z, training=False)`).
        row_shape: shape of one row of the batch (e.g. `[latent_dim]`).
        dtype: dtype of the batch, default "float32".

    Returns:
        int >= 1.
    """
    totals = [_tensor_bytes(tf.function(fn, autograph=False).get_concrete_function(
        tf.TensorSpec([batch, *row_shape], dtype)).graph) for batch in (1, 2)]
    return max(1, totals[1] - totals[0])


def default_images_per_call(bytes_per_image, max_images, budget_bytes=None):
    """max(1, min(max_images, floor(budget_bytes / bytes_per_image))): images a call may run.

    `budget_bytes` defaults to `ACTIVATION_BUDGET_BYTES` (256 MiB): 8 images a call for the faces64
    MSG-GAN (29 MiB of tensors per image), thousands for the tiny test networks.
    """
    budget_bytes = ACTIVATION_BUDGET_BYTES if budget_bytes is None else budget_bytes
    return max(1, min(int(max_images), int(budget_bytes) // max(1, int(bytes_per_image))))


def _images_per_call(images_per_call, max_images, fn, row_shape, dtype="float32"):
    """(images a call runs, activation bytes per image or None): `images_per_call` when >= 1, else
    derived from `fn`'s activations (`default_images_per_call`)."""
    if isinstance(images_per_call, bool) or not isinstance(images_per_call, (int, np.integer)) or images_per_call < 0:
        raise ValueError(f"images_per_call must be an integer >= 0, got {images_per_call!r}")
    if images_per_call:
        return int(images_per_call), None
    per_image = activation_bytes_per_image(fn, row_shape, dtype)
    return default_images_per_call(per_image, max_images), per_image


def _integer_versions(model_dir):
    """Sorted integer version numbers of the subdirectories of `model_dir` (others ignored)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(entry)
        for entry in os.listdir(model_dir)
        if re.fullmatch(r"[0-9]+", entry) and os.path.isdir(os.path.join(model_dir, entry))
    )


def _publish(tmp_dir, model_dir):
    """Renames `tmp_dir` to the next free integer version in `model_dir` and returns it."""
    version = max(_integer_versions(model_dir), default=0) + 1
    while True:
        target = os.path.join(model_dir, str(version))
        if not os.path.lexists(target):
            try:
                os.rename(tmp_dir, target)
                return target
            except OSError as error:  # Another writer took this number meanwhile.
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        version += 1


def export_endpoints(export_base, name, endpoints, tracked_objects=(), default=None, metadata=None):
    """Writes a SavedModel with named signatures to a new version `export_base/name/<N>/`.

    The shared writer behind every export (generators here; encoders, decoders and
    autoencoders can add their own endpoints the same way). Each endpoint becomes a
    signature whose inputs are named by its `tf.TensorSpec` names and whose outputs
    are the keys of the dict it returns; the `default` endpoint is also exposed as
    `serving_default`, the signature TF Serving uses when a request names none.
    `keras_pgen.json` (the `metadata` plus the signature names) is written next to
    `saved_model.pb`. N is one more than the largest existing integer version (1 when
    there is none); other directories are ignored and existing versions never touched.

    Args:
        export_base: str. Root export directory, e.g. "saved_models".
        name: str. Model name: the versions live in `export_base/name/`.
        endpoints: dict of endpoint name -> (fn, input_signature). `fn` maps tensors to
            a dict of named tensors; `input_signature` is a list of named
            `tf.TensorSpec`, one per argument of `fn`. ExportArchive traces `fn` with
            autograph off: use `tf.cond`/`tf.map_fn`, not Python `if`/`for` on tensors.
        tracked_objects: sequence of built Keras models/layers (or TF trackables) whose
            variables the endpoints use.
        default: str, default the first endpoint. Endpoint served as `serving_default`
            (ignored when an endpoint is itself named "serving_default").
        metadata: dict, optional. JSON-serializable facts about the model.

    Returns:
        str: the new version directory.

    Raises:
        ValueError: no endpoints, or `default` is not one of them.
    """
    if not endpoints:
        raise ValueError("export_endpoints needs at least one endpoint")
    default = default or next(iter(endpoints))
    if default not in endpoints:
        raise ValueError(f"default endpoint {default!r} is not one of {sorted(endpoints)}")
    archive = keras.export.ExportArchive()
    for obj in tracked_objects:
        # Keras models and layers are not tracked: the endpoints' traced functions capture their
        # variables themselves, and tracking the Keras wrappers too would store every weight twice
        # (keras-team/keras#23553: 2x the SavedModel size and 2x the variable memory when served).
        if not isinstance(obj, keras.layers.Layer):
            archive.track(obj)
    # ExportArchive exposes the first endpoint added as serving_default.
    for endpoint in [default] + [e for e in endpoints if e != default]:
        fn, input_signature = endpoints[endpoint]
        archive.add_endpoint(endpoint, fn, input_signature=input_signature)
    signatures = sorted(set(endpoints) | {DEFAULT_SIGNATURE})

    model_dir = os.path.join(os.fspath(export_base), name)
    os.makedirs(model_dir, exist_ok=True)
    # Same directory as the versions: the rename is atomic, and TF Serving ignores
    # non-integer names while the export is being written.
    tmp_dir = os.path.join(model_dir, f".tmp-{uuid.uuid4().hex}")
    try:
        archive.write_out(tmp_dir, verbose=False)
        with open(os.path.join(tmp_dir, METADATA_FILE), "w") as f:
            json.dump({**(metadata or {}), "signatures": signatures}, f, indent=2)
        return _publish(tmp_dir, model_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _infer_latent_dim(generator):
    latent_dim = getattr(generator, "latent_dim", None)
    if latent_dim is None and getattr(generator, "inputs", None):
        latent_dim = generator.inputs[0].shape[-1]
    if latent_dim is None:
        raise ValueError(
            f"cannot infer the latent size of {generator.name!r} (no `latent_dim` attribute "
            "and no functional inputs): pass latent_dim="
        )
    return int(latent_dim)


def export_generator(
    generator,
    export_base,
    name,
    *,
    latent_dim=None,
    output_index=-1,
    z_dtype="float32",
    images_per_call=0,
    max_images_per_request=None,
    method=None,
    metadata=None,
):
    """Exports a generator z -> images as a versioned SavedModel for TF Serving.

    Signatures (all return `{"images": uint8 [N, H, W, C], "png_bytes": string [N]}`,
    one encoded PNG per image; the `_bytes` suffix makes TF Serving's REST API send
    them base64-encoded):
      - `serving_default` (also `generate`): input `z` [None, latent_dim]. A loaded signature (and
        TF Serving) passes a `z` of another shape on to the graph: the checks below reject it
        before the generator runs (not "Matrix size-incompatible" from deep in the network).
      - `sample`: int32 scalars `num_images` and `seed`; z is
        `tf.random.stateless_normal([num_images, latent_dim], seed=[seed, 0])`.
    Each request is checked inside the graph (InvalidArgumentError, what TF Serving returns): at
    most `max_images_per_request` images, `num_images` and `seed` scalars, `num_images` >= 0, `z`
    of shape [N, latent_dim] with finite values ("z has non-finite values"); images the network
    makes non-finite are an error too. Zero rows or `num_images=0` give empty outputs.
    A batch runs `images_per_call` images at a time (by default as many as fit
    `ACTIVATION_BUDGET_BYTES`), each call's images turned into uint8 and PNGs before the next.
    The generator runs with `training=False`, its equalized layers' run-time scales folded
    into the saved weights (`layers.equalized.folded_scales`; the in-memory generator is left
    as it was). `keras_pgen.json` records latent_dim, resolution (height), image_shape, channels,
    images_per_call (and activation_bytes_per_image when derived), max_images_per_request, method
    and `metadata`.

    Args:
        generator: built Keras model mapping z [N, latent_dim] to images NHWC in
            [-1, 1], or to a list of them (multi-scale generators).
        export_base: str. Root export directory, e.g. "saved_models".
        name: str. Model name; the export goes to `export_base/name/<next version>/`.
        latent_dim: int, default inferred from `generator.latent_dim` or its input.
        output_index: int, default -1 (the highest resolution). Output used when the
            generator returns a list.
        z_dtype: str, default "float32". dtype of the `z` input.
        images_per_call: int, default 0. Images one generator call makes: a batch is generated
            that many at a time (a `tf.while_loop`, one call after the other), each call's images
            turned into uint8 and PNGs before the next, so a request's activations are one
            call's. 0: as many as `ACTIVATION_BUDGET_BYTES` (256 MiB) allows, from the traced
            call's tensors (`activation_bytes_per_image`, `default_images_per_call`; 8 for the
            faces64 MSG-GAN). A value >= `max_images_per_request` runs every batch in one call.
            The same images either way.
        max_images_per_request: int >= 1, default `default_max_images_per_request(image_shape)`
            (max(1, floor(256 MiB / (6 * H * W * C))): 58254 at 16x16x3, 3640 at 64x64x3, 14 at
            1024x1024x3). The most images one request may ask for.
        method: str, optional. Training method recorded in the metadata.
        metadata: dict, optional. Extra JSON-serializable entries for the metadata.

    Returns:
        str: the new version directory.

    Raises:
        ValueError: latent size not inferable, bad `output_index`, `images_per_call` not an
            integer >= 0, `max_images_per_request` < 1 or non-image output.
    """
    latent_dim = int(latent_dim or _infer_latent_dim(generator))
    with folded_scales(generator):  # the graph reads pre-scaled weights: no per-call kernel copies
        return _export_generator(generator, export_base, name, latent_dim, output_index, z_dtype,
                                 images_per_call, max_images_per_request, method, metadata)


def _export_generator(generator, export_base, name, latent_dim, output_index, z_dtype, images_per_call,
                      max_images_per_request, method, metadata):
    def images_of(z):
        outputs = generator(z, training=False)
        if isinstance(outputs, (list, tuple)):
            if not -len(outputs) <= output_index < len(outputs):
                raise ValueError(
                    f"output_index={output_index} but {generator.name!r} has {len(outputs)} outputs"
                )
            outputs = outputs[output_index]
        return outputs

    image_shape = tuple(images_of(tf.zeros([1, latent_dim], z_dtype)).shape[1:])
    if len(image_shape) != 3 or image_shape[-1] not in (1, 3, 4):
        raise ValueError(f"generator output must be NHWC with C in (1, 3, 4), got {image_shape}")
    max_images = _max_images(max_images_per_request, image_shape)
    specs = _image_specs(image_shape)

    def one_call(z):
        return _image_outputs(images_of(z))

    images_per_call, per_image = _images_per_call(images_per_call, max_images, one_call, [latent_dim], z_dtype)

    def generate(z):
        return _batched(one_call, _check_latents(z, [latent_dim], max_images), images_per_call, max_images, specs)

    def sample(num_images, seed):
        num_images = _checked_count(num_images, max_images, "num_images")
        seed = _checked_shape(seed, "seed", [], "a scalar")
        z = tf.random.stateless_normal(tf.stack([num_images, latent_dim]), seed=tf.stack([seed, 0]), dtype=z_dtype)
        return _batched(one_call, z, images_per_call, max_images, specs)

    int32_scalar = lambda arg: tf.TensorSpec([], tf.int32, name=arg)  # noqa: E731
    return export_endpoints(
        export_base,
        name,
        {
            "generate": (generate, [tf.TensorSpec([None, latent_dim], z_dtype, name="z")]),
            "sample": (sample, [int32_scalar("num_images"), int32_scalar("seed")]),
        },
        tracked_objects=[generator],
        default="generate",
        metadata={
            "latent_dim": latent_dim,
            "resolution": image_shape[0],
            "image_shape": list(image_shape),
            "channels": image_shape[-1],
            "method": method,
            **(metadata or {}),
            # what the graph does, whatever `metadata` says
            "images_per_call": images_per_call,
            **({"activation_bytes_per_image": per_image} if per_image else {}),
            MAX_IMAGES_KEY: max_images,
        },
    )


def _from_uint8(images):
    """uint8 images -> float32 in [-1, 1]: x / 127.5 - 1 (the training pipeline's mapping)."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def export_autoencoder(
    encoder,
    decoder,
    export_base,
    name,
    *,
    variational=True,
    images_per_call=0,
    max_images_per_request=None,
    method=None,
    metadata=None,
):
    """Exports an encoder/decoder pair as a versioned SavedModel with the autoencoder signatures.

    Signatures (images are uint8 `[N, H, W, C]`, mapped to [-1, 1] as `x / 127.5 - 1` like the
    training pipeline; the networks run with `training=False`):
      - `serving_default` (also `reconstruct`): `images` -> `{"images", "png_bytes"}`, the
        decoding of the posterior mean (no sampling: deterministic).
      - `encode`: `images` -> `{"mean", "log_variance"}` float32 `[N, *code_shape]` (VAEs);
        a deterministic encoder gives `{"mean"}` only (its code).
      - `decode`: `z` float32 `[N, *code_shape]` -> `{"images", "png_bytes"}` (a `z` of another
        shape gets a clear error naming code_shape).
      - `sample` (VAEs only): int32 scalars `num_images`, `seed`; decodes
        `tf.random.stateless_normal([num_images, *code_shape], seed=[seed, 0])` (the prior).
    Every request is checked inside the graph (InvalidArgumentError, as `export_generator`'s):
    `images` must have shape [N, H, W, C] of the export ("images must have shape [N, 16, 16, 3]
    (16x16 images with 3 channels), got shape ..."), `z` [N, *code_shape] with finite values
    ("z has non-finite values"), `num_images` and `seed` scalars, `num_images` >= 0, at most
    `max_images_per_request` images (or rows of `z`); images the decoder makes non-finite are an
    error too. Zero rows of `images` or `z`, or `num_images=0`, give empty outputs. A batch runs
    `images_per_call` images at a time (see `export_generator`; the default is derived from the
    encoder's and decoder's activations together, a reconstruction's).
    `keras_pgen.json` records kind "autoencoder", method, resolution, channels, image_shape,
    code_shape, latent_dim (the code's last axis), variational, images_per_call (and
    activation_bytes_per_image when derived), max_images_per_request and `metadata`.

    Args:
        encoder: built Keras model, images [N, H, W, C] in [-1, 1] -> `[mean, log_variance]`
            (variational) or the code (deterministic).
        decoder: built Keras model, code -> images in [-1, 1].
        export_base: str. Root export directory, e.g. "saved_models".
        name: str. Model name; the export goes to `export_base/name/<next version>/`.
        variational: bool, default True. Whether `encoder` returns `[mean, log_variance]`.
        images_per_call: int >= 0, default 0 (derived). Images one call of the networks takes.
        max_images_per_request: int >= 1, default `default_max_images_per_request(image_shape)`
            (see `export_generator`). The most images one request may send or ask for.
        method: str, optional. Training method recorded in the metadata.
        metadata: dict, optional. Extra JSON-serializable entries for the metadata.

    Returns:
        str: the new version directory.

    Example:
    >>> path = export_autoencoder(model.encoder, model.decoder, "saved_models", "vae", method="vae")
    >>> tf.saved_model.load(path).signatures["encode"](images=uint8_batch)["mean"]
    """
    image_shape = tuple(int(d) for d in encoder.inputs[0].shape[1:])
    code_shape = tuple(int(d) for d in decoder.inputs[0].shape[1:])
    max_images = _max_images(max_images_per_request, image_shape)
    height, width, channels = image_shape
    image_specs = _image_specs(image_shape)

    def checked_images(images):
        return _checked_rows(images, "images", list(image_shape), max_images,
                             f"{height}x{width} images with {channels} channels", count_name="the number of images")

    def encode_call(images):
        outputs = encoder(_from_uint8(images), training=False)
        if variational:
            mean, log_variance = outputs
            return {"mean": tf.cast(mean, tf.float32), "log_variance": tf.cast(log_variance, tf.float32)}
        return {"mean": tf.cast(outputs, tf.float32)}

    def decode_call(z):
        return _image_outputs(decoder(z, training=False))

    def reconstruct_call(images):
        return decode_call(encode_call(images)["mean"])

    images_per_call, per_image = _images_per_call(images_per_call, max_images, reconstruct_call, image_shape, "uint8")
    code_specs = {key: tf.TensorSpec(code_shape, tf.float32) for key in (["mean", "log_variance"] if variational
                                                                         else ["mean"])}

    def encode(images):
        return _batched(encode_call, checked_images(images), images_per_call, max_images, code_specs)

    def decode(z):
        return _batched(decode_call, _check_latents(z, code_shape, max_images, "code shape"), images_per_call,
                        max_images, image_specs)

    def reconstruct(images):
        return _batched(reconstruct_call, checked_images(images), images_per_call, max_images, image_specs)

    def sample(num_images, seed):
        num_images = _checked_count(num_images, max_images, "num_images")
        seed = _checked_shape(seed, "seed", [], "a scalar")
        shape = tf.concat([tf.reshape(num_images, [1]), tf.constant(code_shape, tf.int32)], axis=0)
        return _batched(decode_call, tf.random.stateless_normal(shape, seed=tf.stack([seed, 0])), images_per_call,
                        max_images, image_specs)

    images_spec = [tf.TensorSpec([None, *image_shape], tf.uint8, name="images")]
    int32_scalar = lambda arg: tf.TensorSpec([], tf.int32, name=arg)  # noqa: E731
    endpoints = {
        "reconstruct": (reconstruct, images_spec),
        "encode": (encode, images_spec),
        "decode": (decode, [tf.TensorSpec([None, *code_shape], tf.float32, name="z")]),
    }
    if variational:
        endpoints["sample"] = (sample, [int32_scalar("num_images"), int32_scalar("seed")])
    return export_endpoints(
        export_base,
        name,
        endpoints,
        tracked_objects=[encoder, decoder],
        default="reconstruct",
        metadata={
            "kind": "autoencoder",
            "method": method,
            "resolution": image_shape[0],
            "channels": image_shape[-1],
            "image_shape": list(image_shape),
            "code_shape": list(code_shape),
            "latent_dim": code_shape[-1],
            "variational": bool(variational),
            **(metadata or {}),
            # what the graph does, whatever `metadata` says
            "images_per_call": images_per_call,
            **({"activation_bytes_per_image": per_image} if per_image else {}),
            MAX_IMAGES_KEY: max_images,
        },
    )


def export_conditional_decoder(decoder, export_base, name, *, num_classes, images_per_call=0,
                               max_images_per_request=None, method=None, metadata=None):
    """Exports a decoder of one-hot class labels as a versioned SavedModel.

    Signature `serving_default` (also `decode_labels`): `labels` int32 `[N]` ->
    `{"images": uint8 [N, H, W, C], "png_bytes": string [N]}`; the labels are one-hot encoded
    inside and must lie in [0, num_classes), at most `max_images_per_request` of them, in a
    vector (InvalidArgumentError otherwise). Zero labels give empty outputs. A batch runs
    `images_per_call` labels at a time (see `export_generator`). `keras_pgen.json` records kind
    "conditional_decoder", method, resolution, channels, image_shape, num_classes,
    images_per_call (and activation_bytes_per_image when derived), max_images_per_request.

    Args:
        decoder: built Keras model, one-hot labels [N, num_classes] -> images in [-1, 1].
        export_base, name: see `export_endpoints`.
        num_classes: int.
        images_per_call: int >= 0, default 0 (derived from the decoder's activations; see
            `export_generator`).
        max_images_per_request: int >= 1, default from the image size (see `export_generator`).
        method: str, optional.
        metadata: dict, optional.

    Returns:
        str: the new version directory.
    """
    num_classes = int(num_classes)
    image_shape = tuple(int(d) for d in decoder.outputs[0].shape[1:])
    max_images = _max_images(max_images_per_request, image_shape)

    specs = _image_specs(image_shape)

    def one_call(labels):
        return _image_outputs(decoder(tf.one_hot(labels, num_classes, dtype=tf.float32), training=False))

    images_per_call, per_image = _images_per_call(images_per_call, max_images, one_call, [], "int32")

    def decode_labels(labels):
        labels = _checked_rows(labels, "labels", [], max_images, "one class index per image",
                               count_name="the number of labels")
        checks = [tf.debugging.assert_non_negative(labels, message="labels must be >= 0"),
                  tf.debugging.assert_less(labels, num_classes, message=f"labels must be < {num_classes}")]
        with tf.control_dependencies(checks):
            labels = tf.identity(labels)
        return _batched(one_call, labels, images_per_call, max_images, specs)

    return export_endpoints(
        export_base,
        name,
        {"decode_labels": (decode_labels, [tf.TensorSpec([None], tf.int32, name="labels")])},
        tracked_objects=[decoder],
        metadata={
            "kind": "conditional_decoder",
            "method": method,
            "resolution": image_shape[0],
            "channels": image_shape[-1],
            "image_shape": list(image_shape),
            "num_classes": num_classes,
            **(metadata or {}),
            # what the graph does, whatever `metadata` says
            "images_per_call": images_per_call,
            **({"activation_bytes_per_image": per_image} if per_image else {}),
            MAX_IMAGES_KEY: max_images,
        },
    )


def resolve_export_dir(path):
    """Returns the SavedModel version directory for `path`.

    Args:
        path: a version directory (`saved_models/msg_gan/3`) or a model directory
            (`saved_models/msg_gan`, resolved to its highest integer version).

    Raises:
        FileNotFoundError: neither form holds a `saved_model.pb`; lists what was tried.
    """
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    for version in reversed(_integer_versions(path)):
        version_dir = os.path.join(path, str(version))
        if os.path.isfile(os.path.join(version_dir, "saved_model.pb")):
            return version_dir
    raise FileNotFoundError(
        f"no exported SavedModel at {path!r}: looked for {os.path.join(path, 'saved_model.pb')} "
        f"and {os.path.join(path, '<integer version>', 'saved_model.pb')}"
        + ("" if os.path.isdir(path) else f" ({path!r} is not a directory)" if os.path.exists(path)
           else f" ({path!r} does not exist)")
    )


INT32_RANGE = (-2**31, 2**31 - 1)


def _as_int(value, name, low=None, high=None):
    """`value` as a Python int, else ValueError naming `name`: an integer (not a bool, not 2.5, not "3")
    in [low, high] where given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value}")
    return value


class LoadedGenerator:
    """An exported generator, called through its SavedModel signatures.

    What it returns is exactly what TF Serving serves from the same directory.

    Args:
        path: a version directory or a model directory (highest version is used).

    Attributes:
        path: str, the version directory loaded.
        latent_dim: int.
        resolution: int, image height.
        image_shape: (H, W, C) of the images.
        max_images_per_request: int, or None for exports made before the cap existed.
        metadata: dict read from `keras_pgen.json` ({} when absent).
        signatures: the loaded signatures by name.

    Raises:
        FileNotFoundError: no SavedModel at `path` (see `resolve_export_dir`).
        ValueError: the SavedModel or its `keras_pgen.json` cannot be read, or it is not a
            generator export (no `serving_default` taking `z`).
    """

    def __init__(self, path):
        self.path = resolve_export_dir(path)
        metadata_path = os.path.join(self.path, METADATA_FILE)
        self.metadata = {}
        if os.path.isfile(metadata_path):
            try:
                with open(metadata_path) as f:
                    self.metadata = json.load(f)
            except ValueError as error:
                raise ValueError(f"{metadata_path} is not valid JSON: {error}") from error
            if not isinstance(self.metadata, dict):
                raise ValueError(f"{metadata_path} must hold a JSON object, got {type(self.metadata).__name__}")
        try:
            self._saved_model = tf.saved_model.load(self.path)  # Keeps the variables alive.
        except Exception as error:  # a truncated or corrupt saved_model.pb or variables
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ValueError(f"cannot load the SavedModel at {self.path}: {first_line}") from error
        self.signatures = self._saved_model.signatures
        serve = self._signature(DEFAULT_SIGNATURE)
        self._z_spec = serve.structured_input_signature[1].get("z")
        if self._z_spec is None:
            raise ValueError(f"{self.path} is not a generator export: its {DEFAULT_SIGNATURE} signature takes "
                             f"{sorted(serve.structured_input_signature[1])}, not z (kind "
                             f"{self.metadata.get('kind', 'unknown')!r})")
        self.latent_dim = int(self.metadata.get("latent_dim") or self._z_spec.shape[-1])
        image_spec = serve.structured_outputs["images"]
        self.image_shape = tuple(self.metadata.get("image_shape") or image_spec.shape[1:])
        self.resolution = self.metadata.get("resolution") or image_spec.shape[1]
        cap = self.metadata.get(MAX_IMAGES_KEY)
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError(f"{MAX_IMAGES_KEY} in {metadata_path} must be an integer >= 1, got {cap!r}")
        self.max_images_per_request = cap

    def check_num_images(self, num_images, what="num_images"):
        """Raises ValueError unless `num_images` is an integer, 0 <= it <= `max_images_per_request` (when known)."""
        num_images = _as_int(num_images, what)
        if num_images < 0:
            raise ValueError(f"{what} must be >= 0, got {num_images}")
        cap = self.max_images_per_request
        if cap is not None and num_images > cap:
            raise ValueError(f"{what}={num_images} exceeds the limit of {cap} images per request "
                             f"({MAX_IMAGES_KEY} in {os.path.join(self.path, METADATA_FILE)}): split it into "
                             f"batches, or raise the limit by exporting again with {MAX_IMAGES_KEY}=<n>")

    def _signature(self, name):
        if name not in self.signatures:
            raise KeyError(f"{self.path} has no signature {name!r}: {sorted(self.signatures)}")
        return self.signatures[name]

    def _serve(self, z):
        try:
            z = np.asarray(z)
        except ValueError as error:  # ragged lists
            raise ValueError(f"z must be an array of shape [N, {self.latent_dim}]: {error}") from None
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape [N, {self.latent_dim}], got {z.shape}")
        if z.dtype.kind not in "iuf":
            raise ValueError(f"z must hold real numbers, got dtype {z.dtype}")
        self.check_num_images(len(z), "the number of rows of z")
        with np.errstate(over="ignore"):  # float64 1e300 is Inf in float32: checked after the cast
            z = z.astype(self._z_spec.dtype.as_numpy_dtype)
        if not np.all(np.isfinite(z)):
            raise ValueError(f"z has non-finite values (NaN or Inf) as {self._z_spec.dtype.name}")
        return self._signature(DEFAULT_SIGNATURE)(z=tf.constant(z))

    def generate(self, z):
        """Returns uint8 images [N, H, W, C] for latents `z` [N, latent_dim]."""
        return self._serve(z)["images"].numpy()

    def png_bytes(self, z):
        """Returns a list of N encoded PNGs for latents `z` [N, latent_dim]."""
        return list(self._serve(z)["png_bytes"].numpy())

    def sample(self, num_images, seed=0):
        """Returns uint8 images [num_images, H, W, C] from the `sample` signature.

        Raises:
            ValueError: `num_images` not an integer, < 0 or above `max_images_per_request`; `seed`
                not an integer in the int32 range.
        """
        self.check_num_images(num_images)
        seed = _as_int(seed, "seed", *INT32_RANGE)
        outputs = self._signature("sample")(
            num_images=tf.constant(int(num_images), tf.int32), seed=tf.constant(seed, tf.int32)
        )
        return outputs["images"].numpy()


def load_generator(path):
    """Loads an exported generator; see `LoadedGenerator`.

    Args:
        path: a version directory or a model directory (highest version is used), or a
            `LoadedGenerator` (returned as it is).

    Returns:
        LoadedGenerator.
    """
    return path if isinstance(path, LoadedGenerator) else LoadedGenerator(path)


def _slerp(a, b, t):
    """Spherical interpolation from `a` (t=0) to `b` (t=1); linear for (anti)parallel vectors."""
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return (1.0 - t) * a + t * b
    return (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def latent_walk(latent_dim, frames, num_points=4, seed=0):
    """A looping latent path for interpolation videos.

    Draws `num_points` latents `np.random.default_rng(seed).standard_normal((num_points,
    latent_dim))` and walks through them with spherical interpolation (slerp), back to
    the first, at equal steps: row 0 is the first point and the row after the last
    would be the first point again, so the animation loops seamlessly.

    Args:
        latent_dim: int.
        frames: int >= 1. Number of rows.
        num_points: int >= 2, default 4. Latents visited.
        seed: int or sequence of ints, default 0. Seed for `np.random.default_rng`.

    Returns:
        float32 numpy array [frames, latent_dim].

    Raises:
        ValueError: `frames` < 1 or `num_points` < 2.
    """
    if frames < 1 or num_points < 2:
        raise ValueError(f"need frames >= 1 and num_points >= 2, got {frames} and {num_points}")
    points = np.random.default_rng(seed).standard_normal((num_points, latent_dim))
    positions = np.arange(frames) * num_points / frames
    segments = np.floor(positions).astype(int)
    path = [
        _slerp(points[i], points[(i + 1) % num_points], t)
        for i, t in zip(segments, positions - segments)
    ]
    return np.stack(path).astype(np.float32)


# A grid or a latent walk holds its images (upscaled to `min_size`) in memory, then writes one file.
FILE_BUDGET_BYTES = 2**30


def _check_file_size(count, image_shape, min_size, what):
    """ValueError when `count` images of `image_shape`, upscaled as `_tile` does, exceed FILE_BUDGET_BYTES."""
    height, width, channels = (int(d) for d in image_shape)
    factor = max(1, math.ceil(min_size / min(height, width)))
    size = count * height * factor * width * factor * channels
    if size > FILE_BUDGET_BYTES:
        raise ValueError(f"{what}: {count} images of {height * factor}x{width * factor}x{channels} would take "
                         f"{size / 2**20:.0f} MiB, more than the {FILE_BUDGET_BYTES // 2**20} MiB one file may "
                         f"hold in memory; ask for fewer images or a smaller min_size")


def _tile(images, min_size, ncols=None):
    """One image for a batch of one, else a grid; tiles upscaled to at least `min_size`."""
    images = images_lib.upscale_nearest(images, min_size)
    return images[0] if len(images) == 1 else images_lib.make_grid(images, ncols=ncols)


def generate_grid(model_path, num, out, seed=0, ncols=None, min_size=64):
    """Writes a grid of `num` samples from the `sample` signature of an exported generator.

    Args:
        model_path: version or model directory, or a `LoadedGenerator` (see `load_generator`).
        num: int >= 1, at most the export's `max_images_per_request`. Number of samples.
        out: str. Output image file (.png, .jpg or .jpeg).
        seed: int, default 0. Seed of the `sample` signature.
        ncols: int, default near-square. Tiles per row.
        min_size: int, default 64. Smaller samples are upscaled (nearest) to this size.

    Returns:
        The grid, uint8 numpy array [H, W, C].

    Raises:
        ValueError: `num` < 1 or above the export's `max_images_per_request`, `seed` outside the
            int32 range, or a grid larger than `FILE_BUDGET_BYTES` (1 GiB) in memory.
    """
    num = _as_int(num, "num")
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    generator = load_generator(model_path)
    generator.check_num_images(num, "num")
    _check_file_size(num, generator.image_shape, min_size, f"a grid of num={num} with min_size={min_size}")
    grid = _tile(generator.sample(num, seed), min_size, ncols)
    images_lib.save_image(out, grid)
    return grid


def generate_walk(
    model_path, out, frames=60, num=1, seed=0, num_points=4, min_size=64, duration_ms=60
):
    """Writes a looping latent-walk GIF (see `latent_walk`) from an exported generator.

    Args:
        model_path: version or model directory, or a `LoadedGenerator` (see `load_generator`).
        out: str. Output GIF file.
        frames: int, default 60. Frames in the loop.
        num: int, default 1. Parallel walks (at most the export's `max_images_per_request`); more
            than one is shown as a grid per frame.
        seed: int32, default 0. Walk i uses seed `[seed % 2**32, i]` (`[seed, i]` for seed >= 0).
        num_points: int, default 4. Latents visited by each walk.
        min_size: int, default 64. Smaller samples are upscaled (nearest) to this size.
        duration_ms: int, default 60. Display time of each frame.

    Returns:
        list of the frames, uint8 numpy arrays [H, W, C].

    Raises:
        ValueError: `num` < 1 or above the export's `max_images_per_request`, `frames` < 1,
            `seed` outside the int32 range, or frames larger than `FILE_BUDGET_BYTES` (1 GiB) in
            memory.
    """
    num, frames = _as_int(num, "num"), _as_int(frames, "frames")
    seed = _as_int(seed, "seed", *INT32_RANGE)
    if num < 1 or frames < 1:
        raise ValueError(f"need num >= 1 and frames >= 1, got num={num} and frames={frames}")
    generator = load_generator(model_path)
    generator.check_num_images(num, "num")
    _check_file_size(frames * num, generator.image_shape, min_size,
                     f"a walk of frames={frames} x num={num} with min_size={min_size}")
    # np.random.default_rng takes no negative seeds: int32 seeds map one-to-one onto [0, 2**32)
    walks = [latent_walk(generator.latent_dim, frames, num_points, [seed % 2**32, i]) for i in range(num)]
    walks = np.stack(walks, axis=1)  # [frames, num, latent_dim]
    gif_frames = [_tile(generator.generate(z), min_size) for z in walks]
    images_lib.save_gif(out, gif_frames, duration_ms=duration_ms)
    return gif_frames
