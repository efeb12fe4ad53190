"""`--method=vae`: a convolutional VAE with a pixel, perceptual or mixed reconstruction loss and a KL term.

With `variational=False` it is a plain autoencoder (no KL) with the same losses: the
blurry-baseline / sharp-perceptual comparison of seeds 001 and 004 without a discriminator.
"""
from keras_pgen.models.autoencoder import (Autoencoder, autoencoder_arguments, build_decoder, build_encoder,
                                           compile_autoencoder)


class VAE(Autoencoder):
    """Variational autoencoder: encoder -> (mean, log_variance) -> z = mean + sigma * eps -> decoder.

    The base `Autoencoder` as it is: reconstruction terms (pixel MSE / L1, perceptual through
    a comparator, or weighted sums) plus `kl_weight * KL`, with an optional linear KL warm-up.

    Example:
    >>> vae = VAE(Encoder(16, 8, base_filters=8), Decoder(16, 8, base_filters=8))
    >>> vae.compile(ae_optimizer=keras.optimizers.Adam(1e-3))

    Reference: Kingma & Welling, https://arxiv.org/abs/1312.6114; perceptual reconstruction
    loss: Hou et al., https://arxiv.org/abs/1610.00291, Dosovitskiy & Brox, https://arxiv.org/abs/1602.02644.
    """


def build_model(config):
    """VAE (or plain autoencoder, config.variational=False) from configs/vae.py (inside the strategy scope)."""
    model = VAE(build_encoder(config), build_decoder(config), **autoencoder_arguments(config))
    return compile_autoencoder(model, config)
