"""Convolutional VAE with a pixel (MSE / L1), perceptual (VGG16 features) or mixed reconstruction loss.

    bin/train --method=vae                          # 32x32 built-in shapes, MSE + KL, 1000 steps: ~7 CPU-minutes
                                                    #   (200 steps measured: 81 s CPU, 162 s wall on a shared 2-core box)
    bin/train --method=vae --preset=tiny            # 16x16, a few seconds (tests)
    bin/train --method=vae --preset=perceptual      # 32x32, VGG16 relu1_2..relu3_3 + small MSE + KL (needs the
                                                    #   ImageNet VGG16 file: --config.vgg_weights=/path/to/..._notop.h5)
    bin/train --method=vae --preset=faces64 --data=/path/to/faces --config.vgg_weights=/path/to/vgg16_notop.h5   # GPU
    bin/train --method=vae --config.variational=false   # a plain autoencoder with the same losses

Presets: default, tiny, perceptual, faces64. Loss fields: pixel_loss, pixel_weight,
perceptual_weight, comparator (vgg | random_conv), vgg_weights, perceptual_layers,
perceptual_layer_weights, perceptual_distance (l2 | l1 | gram), kl_weight, kl_warmup_steps.
"""
from keras_pgen.config import autoencoder_config

PRESETS = ("default", "tiny", "perceptual", "faces64")


def get_config(preset="default"):
    c = autoencoder_config()
    c.resolution = 32
    c.latent_dim = 64
    c.base_filters = 32
    c.max_filters = 128
    c.batch_size = 32
    c.total_steps = 1000
    c.kl_weight = 1e-3
    c.kl_warmup_steps = 200
    if preset == "default":
        pass
    elif preset == "tiny":
        c.update(resolution=16, latent_dim=8, base_filters=8, max_filters=32, batch_size=8, total_steps=4,
                 log_every=2, sample_every=2, checkpoint_every=2, num_samples=4, num_images=64, kl_warmup_steps=2)
    elif preset == "perceptual":
        # feature loss carries the reconstruction; a small pixel term keeps colours (DeePSiM's practice)
        c.update(perceptual_weight=1.0, pixel_weight=0.1, comparator="vgg", vgg_weights="imagenet",
                 perceptual_layers=("relu1_2", "relu2_2", "relu3_3"), perceptual_layer_weights=(0.5, 1.0, 1.0))
    elif preset == "faces64":
        c.update(resolution=64, latent_dim=128, base_filters=32, max_filters=256, convs_per_block=2,
                 batch_size=64, total_steps=30_000, perceptual_weight=1.0, pixel_weight=0.1, comparator="vgg",
                 perceptual_layers=("relu1_2", "relu2_2", "relu3_3"), perceptual_layer_weights=(0.5, 1.0, 1.0),
                 log_every=100, sample_every=1000, checkpoint_every=1000, num_samples=36)
    else:
        raise ValueError(f"unknown preset {preset!r} for vae; choose from {list(PRESETS)}")
    return c
