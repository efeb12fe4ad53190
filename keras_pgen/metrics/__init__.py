"""keras_pgen.metrics: KID / FID with a pluggable feature extractor, reconstruction quality, a training callback.

Features: `make_feature_extractor("imagenet" | path | "none" | "pixels")` -> callable
images -> [N, D]; any callable works. Distances: `fid_from_features`, `kid_from_features`,
`memorisation_ratios`. Autoencoders: `psnr`, `ssim`, `sharpness`. Training:
`GeneratorMetrics` (the `eval_every` config field). `bin/evaluate` is `keras_pgen.evaluate`.
"""
from keras_pgen.metrics.callback import GeneratorMetrics, evaluation_callbacks, generator_samples
from keras_pgen.metrics.distances import (feature_statistics, fid_from_features, frechet_distance,
                                          kid_from_features, memorisation_ratios, mmd2_unbiased,
                                          pairwise_distances, polynomial_kernel)
from keras_pgen.metrics.features import (InceptionFeatures, PixelFeatures, extract_features,
                                         make_feature_extractor)
from keras_pgen.metrics.image_quality import laplacian_variance, psnr, reconstruction_metrics, sharpness, ssim

__all__ = ["GeneratorMetrics", "InceptionFeatures", "PixelFeatures", "evaluation_callbacks", "extract_features",
           "feature_statistics", "fid_from_features", "frechet_distance", "generator_samples", "kid_from_features",
           "laplacian_variance", "make_feature_extractor", "memorisation_ratios", "mmd2_unbiased",
           "pairwise_distances", "polynomial_kernel", "psnr", "reconstruction_metrics", "sharpness", "ssim"]
