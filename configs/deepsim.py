"""DeePSiM (seed 004; Dosovitskiy & Brox 2016): pixel + feature + adversarial loss for an autoencoder, a VAE,
or a decoder inverting a fixed network's features.

    bin/train --method=deepsim --config.vgg_weights=/path/to/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
                                                    # 32x32 shapes autoencoder (8x8x8 code), 1000 steps: tens of
                                                    #   minutes on a 2-core CPU (VGG16 forward passes), minutes on a GPU
    bin/train --method=deepsim --preset=tiny        # 16x16, random VGG weights, a few seconds (tests)
    bin/train --method=deepsim --config.mode=vae    # the VAE of the paper's Sec. 4.2
    bin/train --method=deepsim --preset=inversion   # decoder from VGG16 relu3_3 features (Sec. 4.3)
    bin/train --method=deepsim --preset=faces64 --data=/path/to/faces --config.vgg_weights=...   # GPU

Presets: default, tiny, inversion, faces64. The loss is
pixel_weight * pixel + perceptual_weight * feature distance + adversarial_weight * GAN loss
(lambda_pix, lambda_feat, lambda_adv of the paper) (+ kl_weight * KL for mode=vae).
Fields on top of configs/vae_gan.py's: mode (autoencoder | vae | inversion), inversion_layer.
The comparator defaults to VGG16 (the paper's comparator is the same fixed network it inverts).
"""
import importlib.util
import os

from keras_pgen.config import autoencoder_config

PRESETS = ("default", "tiny", "inversion", "faces64")


def _vae_gan_fields():
    """configs/vae_gan.py's shared discriminator fields (loaded by path: configs is not always a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vae_gan.py")
    spec = importlib.util.spec_from_file_location("keras_pgen_configs_vae_gan_fields", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.adversarial_autoencoder_fields


def get_config(preset="default"):
    c = _vae_gan_fields()(autoencoder_config())
    c.mode = "autoencoder"  # autoencoder | vae | inversion
    c.inversion_layer = "relu3_3"  # VGG16 layer whose features the inversion decoder reconstructs from
    c.resolution = 32
    c.latent_dim = 8
    c.code_resolution = 8  # the paper's 8x8x8 autoencoder code
    c.base_filters = 32
    c.max_filters = 128
    c.upsample = "bilinear"  # the paper's up-convolution: linear upsampling + conv
    c.batch_size = 32
    c.total_steps = 1000
    c.lr = 2e-4  # the paper's Adam: 0.0002, betas 0.9 / 0.999
    c.d_lr = 2e-4
    c.pixel_loss = "mse"
    c.pixel_weight = 1.0  # lambda_pix: stabilises the adversarial training (paper)
    c.perceptual_weight = 0.01  # lambda_feat on the mean squared VGG activations (large: ~10^2-10^4)
    c.adversarial_weight = 0.01  # lambda_adv
    c.adversarial_loss = "ns"
    c.comparator = "vgg"
    c.vgg_weights = "imagenet"
    c.perceptual_layers = ("relu3_3",)
    c.d_pause_rule = "ratio"  # the paper: stop updating D while L_discr / L_adv < 0.1
    c.d_pause_threshold = 0.1
    c.kl_weight = 1e-3
    if preset == "default":
        pass
    elif preset == "tiny":
        c.update(resolution=16, latent_dim=4, code_resolution=4, base_filters=8, max_filters=32, d_fmap_base=64,
                 d_fmap_max=16, batch_size=8, total_steps=4, log_every=2, sample_every=2, checkpoint_every=2,
                 num_samples=4, num_images=64, vgg_weights="none", perceptual_layers=("relu1_2", "relu2_2"))
    elif preset == "inversion":
        c.update(mode="inversion", inversion_layer="relu3_3", perceptual_layers=("relu3_3",))
    elif preset == "faces64":
        c.update(resolution=64, latent_dim=8, code_resolution=8, base_filters=32, max_filters=256,
                 convs_per_block=2, d_fmap_base=2048, d_fmap_max=256, batch_size=64, total_steps=100_000,
                 log_every=100, sample_every=1000, checkpoint_every=1000, num_samples=36)
    else:
        raise ValueError(f"unknown preset {preset!r} for deepsim; choose from {list(PRESETS)}")
    return c
