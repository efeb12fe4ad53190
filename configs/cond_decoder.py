"""Seed 002's "naive approach": a decoder from a class label to an image (the averaged-image baseline).

    bin/train --method=cond_decoder                 # 32x32 built-in shapes (7 classes), 500 steps: ~3 CPU-minutes
                                                    #   (100 steps measured: 35 s CPU, 49 s wall, 2-core box)
    bin/train --method=cond_decoder --preset=tiny   # 16x16, a few seconds (tests)
    bin/train --method=cond_decoder --data=/path/to/folder_with_class_subfolders --config.num_classes=2
    bin/train --method=cond_decoder --config.perceptual_weight=1 --config.vgg_weights=/path/to/vgg16_notop.h5

Labels come from the data: the built-in shapes' kind, class sub-folders, Keras data sets.
num_classes must cover them (training stops with an error naming it otherwise).
Presets: default, tiny.
"""
from keras_pgen.config import autoencoder_config

PRESETS = ("default", "tiny")


def get_config(preset="default"):
    c = autoencoder_config()
    c.num_classes = 7  # the built-in shapes' kinds
    c.variational = False
    c.kl_weight = 0.0
    c.resolution = 32
    c.base_filters = 32
    c.max_filters = 128
    c.batch_size = 32
    c.total_steps = 500
    if preset == "default":
        pass
    elif preset == "tiny":
        c.update(resolution=16, base_filters=8, max_filters=32, batch_size=8, total_steps=4,
                 log_every=2, sample_every=2, checkpoint_every=2, num_samples=4, num_images=64)
    else:
        raise ValueError(f"unknown preset {preset!r} for cond_decoder; choose from {list(PRESETS)}")
    return c
