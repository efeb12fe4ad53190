"""`evaluate(model, data)`: what bin/evaluate reports for an exported model (one JSON line).

The export's `keras_pgen.json` "kind" decides (export contract, see README):

- "generator": KID (mean, std) and FID between `num_samples` generated images and
  `num_samples` real images (a random subset of the data when it has more), in the feature
  space of `features` (InceptionV3 "imagenet" | weights file | "none"; or "pixels"; or
  "shapes", the built-in data's judge, `metrics/shapes_judge.py`); plus
  the memorisation check: for every generated image its nearest real image in that feature
  space and the ratio d(sample, nearest real) / median d(real, nearest other real)
  (`metrics.memorisation_ratios`: near 0 = a copy, around 1 = as far from the data as the
  data's images are from each other). A PNG shows the `num_pairs` samples with the smallest
  ratios (the most suspicious first), each followed by its nearest real image. And the
  pairwise-diversity ratios: the mean distance between two of the first 64 samples over that
  between two of the first 64 real images, in pixels (`diversity_ratio_pixels`) and in the
  features (`diversity_ratio_features`); near 0 is one template, about 1 as varied as the data.
  And the frame check (`metrics.border_report`): `border_step`, the mean step between the
  samples' outermost pixels and their inward neighbours, `border_step_real`, the same for the
  real images, and `border_step_ratio` (about 1: borders like the data's; well above 1: a frame).
  With `workdir` (the GAN's training run: gan, msg_gan, progan) also `diversity_ratio_discriminator`,
  the same ratio in the penultimate features of the run's discriminator (restored from its newest
  checkpoint, TF or JAX engine), samples and real images both fed as the model feeds reals.
  With "shapes" also `kinds_covered` (kinds given to >= 5% of the samples), `class_histogram`,
  `mean_confidence` (mean top-1 probability; `real_mean_confidence` of the real images), and
  beside `fid` and `kid` their real-vs-real floors (`fid_real_floor`, `kid_real_floor`): the
  same numbers for `num_samples` further real images, disjoint from the first (when the data
  has fewer than 2 x `num_samples` images, its subset's two halves are compared, and
  `num_real` says how many the figures used).
- "autoencoder": the `reconstruct` signature (uint8 images -> uint8 images) on `num_samples`
  real images: PSNR, SSIM and sharpness (`metrics.image_quality`).
"""
import json
import os

import numpy as np

from keras_pgen import images as images_lib

KINDS = ("generator", "autoencoder")
DIVERSITY_SAMPLES = 64  # samples and real images in the pairwise-diversity ratio
DISCRIMINATOR_BATCH = 16  # images per discriminator call (`discriminator_features`)


def read_metadata(path):
    """(version directory, keras_pgen.json contents) of an export (a version or a model directory)."""
    from keras_pgen import export as export_lib

    path = export_lib.resolve_export_dir(path)
    metadata_path = os.path.join(path, export_lib.METADATA_FILE)
    metadata = {}
    if os.path.isfile(metadata_path):
        with open(metadata_path) as f:
            metadata = json.load(f)
    return path, metadata


def real_images(data, resolution, channels, num, seed=0, resize_mode="crop", num_floor=0):
    """Up to `num` uint8 images of the data set `data` (a random subset without replacement when larger).

    With `num_floor` > 0 returns (images, floor images): the floor set is up to `num_floor`
    further images, disjoint from the first set (drawn from the rest with the same generator;
    the first set is the one `num_floor=0` returns).
    """
    from keras_pgen import data as data_lib

    source = data_lib.load_source(data, resolution, channels, resize_mode=resize_mode, seed=seed)
    rng = np.random.default_rng(seed)
    indices = np.arange(len(source))
    if len(source) > num:
        indices = np.sort(rng.choice(len(source), num, replace=False))
    images = np.asarray(source.get(indices)[0], np.uint8)
    if not num_floor:
        return images
    rest = np.setdiff1d(np.arange(len(source)), indices)
    rest = np.sort(rng.choice(rest, min(num_floor, len(rest)), replace=False))
    floor = np.asarray(source.get(rest)[0], np.uint8) if len(rest) else images[:0]
    return images, floor


def pairs_grid(samples, nearest, pairs_per_row=4, min_size=64):
    """One image of [sample | nearest real] pairs, `pairs_per_row` pairs per row, upscaled to `min_size`."""
    tiles = np.stack([samples, nearest], axis=1).reshape(-1, *samples.shape[1:])
    tiles = images_lib.upscale_nearest(tiles, min_size)
    return images_lib.make_grid(tiles, ncols=2 * min(pairs_per_row, len(samples)))


def _batched(fn, inputs, batch_size):
    return np.concatenate([fn(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)])


def diversity_ratios(fake, real, fake_features=None, real_features=None, num=DIVERSITY_SAMPLES):
    """{"diversity_ratio_pixels"[, "diversity_ratio_features"]}: mean pairwise distance of the first `num`
    samples over that of the first `num` real images, in pixels ([-1, 1]) and in the given features
    (`metrics.diversity_ratio`: ~0 one template, ~1 as varied as the data)."""
    from keras_pgen import metrics

    num = min(num, len(fake), len(real))
    if num < 2:
        raise ValueError(f"the diversity ratio needs at least 2 samples and 2 real images, got {num}")
    pixels = metrics.PixelFeatures()
    results = {"diversity_ratio_pixels": metrics.diversity_ratio(pixels(fake[:num]), pixels(real[:num]))}
    if fake_features is not None:
        results["diversity_ratio_features"] = metrics.diversity_ratio(fake_features[:num], real_features[:num])
    return results


def model_discriminator_features(model, images):
    """float64 [N, F]: a GAN model's discriminator penultimate activations (`GAN.discriminator_features`) of
    uint8 images fed as it feeds reals, `model.real_inputs(images / 127.5 - 1)`, in inference mode,
    `DISCRIMINATOR_BATCH` images per call (the minibatch-stddev groups are consecutive within a batch).
    Keras only: either engine's model."""
    from keras import ops

    def batch(chunk):
        inputs = model.real_inputs(ops.convert_to_tensor(chunk.astype(np.float32) / 127.5 - 1.0))
        return ops.convert_to_numpy(ops.cast(model.discriminator_features(inputs), "float32")).astype(np.float64)

    return _batched(batch, np.asarray(images, np.uint8), DISCRIMINATOR_BATCH)


def discriminator_features(workdir, metadata):
    """`(features, step)` for the discriminator of the training run in `workdir` that made the export `metadata`.

    `features(uint8 images)` -> float64 [N, F]: the discriminator's penultimate activations (the input
    of its final logit Dense layer, flattened; `GAN.discriminator_features`) of images fed as the
    model feeds reals, `model.real_inputs(images / 127.5 - 1)` (MSG-GAN: the image pyramid; ProGAN:
    the stage, and fade-in, of the checkpoint's step), in inference mode, `DISCRIMINATOR_BATCH`
    images per call (the minibatch-stddev groups are consecutive within a batch). Generated samples
    go in exactly like real images: as the export's uint8 images. `step`: the checkpoint's step.

    Raises:
        FileNotFoundError: `workdir` has no config.json or no checkpoint.
        ValueError: the run's method has no GAN discriminator (not gan / msg_gan / progan), its
            method, resolution or channels differ from the export's, or its (JAX) checkpoint
            holds no discriminator.
    """
    from keras import ops

    from keras_pgen import training
    from keras_pgen.models.gan import GAN

    def check(model, config):
        if not isinstance(model, GAN):
            raise ValueError(f"--workdir: method {config.method!r} of {workdir} has no GAN discriminator "
                             "(runs of gan, msg_gan or progan have one)")
        if metadata.get("method") and metadata["method"] != config.method:
            raise ValueError(f"--workdir: {workdir} trained {config.method!r}, the export is of {metadata['method']!r}")
        if int(metadata.get("channels", config.channels)) != int(config.channels):
            raise ValueError(f"--workdir: {workdir} trained on {config.channels}-channel images, the export makes "
                             f"{metadata['channels']}-channel ones")

    model, _ = training.load_from_workdir(workdir, require=("discriminator",), check=check)
    resolution, step = model.discriminator_resolution(), int(ops.convert_to_numpy(model.step))
    exported = int(metadata.get("resolution") or resolution)
    if exported != resolution:
        raise ValueError(f"--workdir: {workdir}'s discriminator takes {resolution}x{resolution} images (step "
                         f"{step}), the export makes {exported}x{exported}")

    def features(images):
        return model_discriminator_features(model, images)

    return features, step


def evaluate_generator(path, real, extractor, num_samples, batch_size=50, seed=0, subset_size=1000,
                       num_subsets=100, num_pairs=16, pairs_path=None, floor=None, discriminator=None):
    """The generator part of `evaluate`: samples `num_samples` images of the export at `path` and compares them.

    `floor`: real images disjoint from `real`, for the shapes judge's real-vs-real floors
    (None: `real` is halved for them, see `shapes_judge.split_real`). `discriminator`: uint8
    images -> features (`discriminator_features`) for `diversity_ratio_discriminator`.
    """
    from keras_pgen import metrics
    from keras_pgen.metrics import evaluator, shapes_judge

    from keras_pgen import export as export_lib

    generator = export_lib.load_generator(path)
    z = np.random.default_rng(seed).standard_normal((num_samples, generator.latent_dim)).astype(np.float32)
    fake = _batched(generator.generate, z, batch_size)
    results = {}
    if evaluator.is_judge(extractor):
        if floor is None or len(floor) < len(real):  # the data has too few images: halve the real subset
            real, floor = shapes_judge.split_real(real, len(real))
        judged, fake_features, real_features = shapes_judge.verdict(extractor, fake, real, floor,
                                                                    subset_size=subset_size,
                                                                    num_subsets=num_subsets, seed=seed)
        results.update(judged, num_real_floor=len(floor))
    else:
        fake_features = metrics.extract_features(extractor, fake, batch_size)
        real_features = metrics.extract_features(extractor, real, batch_size)
        kid, kid_std = metrics.kid_from_features(fake_features, real_features, subset_size, num_subsets, seed)
        results.update(kid=kid, kid_std=kid_std, fid=metrics.fid_from_features(fake_features, real_features))
    nearest, _, ratios, real_median = metrics.memorisation_ratios(fake_features, real_features)
    results.update({"memorisation_ratio_min": float(ratios.min()), "memorisation_ratio_median": float(np.median(ratios)),
                    "memorisation_ratio_mean": float(ratios.mean()), "real_nn_distance_median": real_median})
    results.update(diversity_ratios(fake, real, fake_features, real_features))
    results.update(metrics.border_report(fake, real))
    if discriminator is not None:  # the same first samples and real images as the ratios above
        num = min(DIVERSITY_SAMPLES, len(fake), len(real))
        results["diversity_ratio_discriminator"] = metrics.diversity_ratio(discriminator(fake[:num]),
                                                                           discriminator(real[:num]))
    if pairs_path and num_pairs > 0:
        order = np.argsort(ratios, kind="stable")[:num_pairs]
        os.makedirs(os.path.dirname(os.path.abspath(pairs_path)), exist_ok=True)
        images_lib.save_image(pairs_path, pairs_grid(fake[order], real[nearest[order]]))
        results["pairs_png"] = pairs_path
    return results


def reconstruct_fn(path):
    """uint8 images -> uint8 reconstructions through the export's `reconstruct` (or serving_default) signature."""
    import tensorflow as tf

    from keras_pgen import export as export_lib

    loaded = tf.saved_model.load(path)
    name = "reconstruct" if "reconstruct" in loaded.signatures else export_lib.DEFAULT_SIGNATURE
    signature = loaded.signatures[name]
    (input_name,) = signature.structured_input_signature[1].keys()

    def reconstruct(images):
        outputs = signature(**{input_name: tf.constant(images, tf.uint8)})
        return outputs["images"].numpy()

    reconstruct.saved_model = loaded  # keeps the variables alive
    return reconstruct


def evaluate(model, data, num_samples=1000, features="imagenet", image_size=299, batch_size=50, seed=0,
             subset_size=1000, num_subsets=100, num_pairs=16, pairs_path="memorisation_pairs.png",
             resize_mode="crop", output=None, workdir=None):
    """Evaluates an exported model against a data set; returns the results dict (see the module docstring).

    Args:
        model: export version directory or model directory (highest version).
        data: data spec as in training (`data.load_source`: folder, glob, zip, "shapes", ...).
        num_samples: int, default 1000. Generated images, and real images at most.
        features: "imagenet" | InceptionV3 weights file | "none" | "pixels" | "shapes", or a
            callable images -> features (generators only).
        image_size: int, default 299. InceptionV3 input side.
        batch_size: int, default 50.
        seed: int, default 0. Latents, the real subset and KID's subsets.
        subset_size, num_subsets: KID subsets (default 1000, 100; shrunk to the set sizes).
        num_pairs: int, default 16. Pairs in the memorisation PNG (0: none).
        pairs_path: str or None, where the memorisation PNG goes.
        resize_mode: how data images are fitted to the export's resolution ("crop", "pad", "stretch").
        output: str or None. Also write the JSON line to this file.
        workdir: str or None. The training workdir of a GAN generator's export: adds
            `diversity_ratio_discriminator` (and `discriminator_step`), the diversity ratio in its
            discriminator's penultimate features (`discriminator_features`).

    Raises:
        FileNotFoundError: no export at `model`, no data, or `workdir` is no training workdir.
        ValueError: an export kind other than "generator" or "autoencoder"; a `workdir` that does not
            fit (see `discriminator_features`).
    """
    path, metadata = read_metadata(model)
    kind = metadata.get("kind", "generator")
    if kind not in KINDS:
        raise ValueError(f"bin/evaluate handles exports of kind {list(KINDS)}; {path} is {kind!r}")
    discriminator = None
    if workdir:
        if kind != "generator":
            raise ValueError(f"--workdir needs the export of a GAN generator; {path} is of kind {kind!r}")
        discriminator, discriminator_step = discriminator_features(workdir, metadata)
    resolution = int(metadata.get("resolution") or metadata.get("image_shape", [0])[0])
    channels = int(metadata.get("channels") or metadata.get("image_shape", [0, 0, 3])[-1])
    judged = kind == "generator" and features == "shapes"
    real = real_images(data, resolution, channels, num_samples, seed=seed, resize_mode=resize_mode,
                       num_floor=num_samples if judged else 0)
    real, floor = real if judged else (real, None)
    results = {"model": path, "kind": kind, "method": metadata.get("method"), "data": data,
               "num_real": len(real)}
    if kind == "generator":
        from keras_pgen import metrics

        extractor = metrics.make_feature_extractor(features, image_size)
        results["features"] = getattr(extractor, "name", str(features)) + (
            f"({features}, {image_size}px)" if isinstance(extractor, metrics.InceptionFeatures) else "")
        results["num_generated"] = int(num_samples)
        results.update(evaluate_generator(path, real, extractor, num_samples, batch_size, seed,
                                          subset_size, num_subsets, num_pairs, pairs_path, floor=floor,
                                          discriminator=discriminator))
        if discriminator is not None:
            results.update(workdir=workdir, discriminator_step=discriminator_step)
    else:
        from keras_pgen.metrics import image_quality

        reconstructions = _batched(reconstruct_fn(path), real, batch_size)
        results.update(image_quality.reconstruction_metrics(real, reconstructions))
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w") as f:
            f.write(json.dumps(results) + "\n")
    return results


def run_cli(flags_values):
    """bin/evaluate's body: evaluate, print one JSON line; returns the exit code."""
    from keras_pgen import cli
    from keras_pgen.losses.perceptual import VGGWeightsError

    f = flags_values
    pairs = f.pairs or (os.path.splitext(f.output)[0] + "_pairs.png" if f.output else "memorisation_pairs.png")
    try:
        results = evaluate(f.model, f.data, num_samples=f.num_samples, features=f.features,
                           image_size=f.image_size, batch_size=f.batch_size, seed=f.seed,
                           subset_size=f.subset_size, num_subsets=f.num_subsets, num_pairs=f.num_pairs,
                           pairs_path=pairs, resize_mode=f.resize_mode, output=f.output,
                           workdir=getattr(f, "workdir", None) or None)
    except VGGWeightsError as e:
        return cli.fail(f"{e} (bin/evaluate: pass the file with --features=/path/to/the/file.h5)")
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        return cli.fail(e)
    print(json.dumps(results), flush=True)
    return 0
