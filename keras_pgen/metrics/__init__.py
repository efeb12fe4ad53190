"""keras_pgen.metrics: KID / FID with a pluggable feature extractor, reconstruction quality, a training callback.

Features: `make_feature_extractor("imagenet" | path | "none" | "pixels" | "shapes")` -> callable
images -> [N, D]; any callable works. `ShapesJudge` / `judge` (shapes_judge.py): a classifier
of the built-in shapes, shipped with its weights: kinds covered, confidence, FID / KID in its
features beside their real-vs-real floors. Distances: `fid_from_features`, `kid_from_features`,
`memorisation_ratios`, `diversity_ratio`. Autoencoders: `psnr`, `ssim`, `sharpness`. Frames around samples: `border_step`, `border_report`. Training
(the `eval_every` config field): `GeneratorEvaluator` (evaluator.py, either engine) and its Keras
callback `GeneratorMetrics` (TensorFlow's `fit()`). `bin/evaluate` is `keras_pgen.evaluate`.

Names are imported from their modules on first use, so `keras_pgen.metrics.shapes_judge`, `distances`,
`features` and `evaluator` import neither TensorFlow nor the callback (the JAX engine; InceptionV3
imports TensorFlow only under the TensorFlow backend).
"""
import importlib

_MODULES = {
    "callback": ("GeneratorMetrics", "evaluation_callbacks"),
    "evaluator": ("GeneratorEvaluator", "evaluator_from_config", "generator_samples"),
    "distances": ("diversity_ratio", "feature_statistics", "fid_from_features", "frechet_distance",
                  "kid_from_features", "mean_pairwise_distance", "memorisation_ratios", "mmd2_unbiased",
                  "pairwise_distances", "polynomial_kernel"),
    "features": ("InceptionFeatures", "PixelFeatures", "extract_features", "make_feature_extractor"),
    "image_quality": ("border_report", "border_step", "laplacian_variance", "psnr", "reconstruction_metrics", "sharpness", "ssim"),
    "shapes_judge": ("ShapesJudge", "judge", "kind_report"),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE) | set(_MODULES))
