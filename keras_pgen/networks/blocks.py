"""Functional building blocks shared by the progressive-style networks (MSG-GAN, ProGAN).

Each function applies layers to a symbolic tensor and returns the result, so
that networks are written as short functional graphs. Pure Keras 3.
"""
import math

import keras

from keras_pgen.layers import EqualizedConv2D, EqualizedDense, MinibatchStdDev, PixelNormalization
from keras_pgen.layers import UpscaleConv2D


def num_filters(resolution, fmap_base, fmap_max, fmap_min=1):
    """Channels at `resolution`: ProGAN's min(fmap_max, fmap_base / 2**stage), stage = log2(res) - 1."""
    stage = int(math.log2(resolution)) - 1
    return int(max(fmap_min, min(fmap_max, fmap_base // 2**stage)))


def resolutions(final_resolution):
    """[4, 8, ..., final_resolution]; raises ValueError unless a power of two >= 4."""
    log2 = math.log2(final_resolution) if final_resolution > 0 else -1
    if final_resolution < 4 or log2 != int(log2):
        raise ValueError(f"resolution must be a power of two >= 4, got {final_resolution}")
    return [2**i for i in range(2, int(log2) + 1)]


def lrelu(x, name=None):
    return keras.layers.LeakyReLU(negative_slope=0.2, name=name)(x)


def conv_lrelu(x, filters, kernel_size=3, padding="same", pixel_norm=False, name=None):
    """Equalized conv, LeakyReLU(0.2) and optionally pixel norm."""
    x = EqualizedConv2D(filters, kernel_size, padding=padding, name=name)(x)
    x = lrelu(x)
    return PixelNormalization()(x) if pixel_norm else x


def to_rgb(x, channels, gain=1.0, name=None):
    """Linear 1x1 equalized conv to image channels (ProGAN: gain 1; the public MSG-GAN code: sqrt 2)."""
    return EqualizedConv2D(channels, 1, gain=gain, name=name)(x)


def from_rgb(x, filters, name=None):
    """1x1 equalized conv + LeakyReLU from image channels to features."""
    return lrelu(EqualizedConv2D(filters, 1, name=name)(x))


def generator_stem(z, filters, name="g4", padding="same"):
    """Pixel-normed z -> dense 4x4 -> conv3x3, each followed by LeakyReLU and pixel norm."""
    x = PixelNormalization(name="z_norm")(z)
    x = EqualizedDense(16 * filters, gain=math.sqrt(2.0) / 4, name=f"{name}_dense")(x)
    x = keras.layers.Reshape((4, 4, filters))(x)
    x = PixelNormalization()(lrelu(x))
    return conv_lrelu(x, filters, padding=padding, pixel_norm=True, name=f"{name}_conv")


def generator_block(x, filters, name, padding="same"):
    """Nearest 2x upsample, then two conv3x3 + LeakyReLU + pixel norm."""
    x = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
    x = conv_lrelu(x, filters, padding=padding, pixel_norm=True, name=f"{name}_conv0")
    return conv_lrelu(x, filters, padding=padding, pixel_norm=True, name=f"{name}_conv1")


def discriminator_block(x, filters, filters_out, name):
    """conv3x3 (-> filters), conv3x3 (-> filters_out), each + LeakyReLU, then 2x2 average pooling."""
    x = conv_lrelu(x, filters, name=f"{name}_conv0")
    x = conv_lrelu(x, filters_out, name=f"{name}_conv1")
    return keras.layers.AveragePooling2D(2)(x)


def discriminator_head(x, filters, mbstd_group_size=4, name="d4"):
    """Minibatch stddev, conv3x3, conv4x4 valid, dense to one logit (gain 1)."""
    if mbstd_group_size > 0:
        x = MinibatchStdDev(mbstd_group_size)(x)
    x = conv_lrelu(x, filters, name=f"{name}_conv")
    x = conv_lrelu(x, filters, kernel_size=4, padding="valid", name=f"{name}_conv_valid")
    x = keras.layers.Flatten()(x)
    return EqualizedDense(1, gain=1.0, name=f"{name}_logit")(x)


def latent_bias(x, latent, name):
    """x + a per-channel bias computed from `latent` (equalized dense, gain 1), the same at every pixel.

    Each block's constant bias gets a z-dependent counterpart, so that z's share of the features
    does not wash out with depth (README, Quality: the screening of the default preset).
    """
    bias = EqualizedDense(x.shape[-1], gain=1.0, name=f"{name}_latent_bias")(latent)
    return keras.layers.Add()([x, keras.layers.Reshape((1, 1, x.shape[-1]))(bias)])


def upscale_generator_block(x, filters, name, padding="same"):
    """`generator_block` with the upsampling fused into the first conv (`UpscaleConv2D`: same math, faster)."""
    x = PixelNormalization()(lrelu(UpscaleConv2D(filters, padding=padding, name=f"{name}_conv0")(x)))
    return conv_lrelu(x, filters, padding=padding, pixel_norm=True, name=f"{name}_conv1")
