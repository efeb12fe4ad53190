"""Convolutional encoder and decoder for autoencoders, VAEs, VAE-GAN, DeePSiM and conditional decoders.

Both are functional `ConfigurableModel`s built from the shared blocks (`networks/blocks.py`:
equalized-LR convolutions with LeakyReLU(0.2), optional pixel norm) and round-trip through
`get_config()`. Pure Keras 3.

Channels: `base_filters` at the full image resolution, doubled at every halving, capped at
`max_filters` (`autoencoder_filters`).

The code (latent) is either flat, `[N, latent_dim]` (default, `code_resolution=None`), or
spatial, `[N, r, r, latent_dim]` (`code_resolution=r`, e.g. DeePSiM's 8x8x8 code, or the
decoder of a feature-inversion model fed with a fixed network's feature maps).

API used by the models (kept stable):
- `Encoder(...)(images)` -> `[mean, log_variance]` when `variational=True`, else the code
  tensor itself (a plain, deterministic autoencoder).
- `Encoder.code_shape`: the code's shape without the batch axis, e.g. `(latent_dim,)`.
- `Encoder.feature_extractor()`: a model images -> list of the activations after every
  resolution block (highest resolution first), usable as a perceptual comparator.
- `Decoder(...)(code)` -> images `[N, R, R, C]`, in [-1, 1] with `output_activation="tanh"`.
- `Decoder.code_shape`: the shape of its input without the batch axis.
"""
import math

import keras

from keras_pgen.layers import EqualizedConv2D, EqualizedDense
from keras_pgen.networks import blocks
from keras_pgen.networks.base import ConfigurableModel

OUTPUT_ACTIVATIONS = ("tanh", "linear")
UPSAMPLE_MODES = ("nearest", "bilinear")


def autoencoder_filters(resolution, image_resolution, base_filters, max_filters):
    """Channels at `resolution`: base_filters * (image_resolution / resolution), capped at max_filters."""
    return int(min(max_filters, base_filters * image_resolution // resolution))


def _code_resolutions(resolution, code_resolution):
    """[code_res, 2 code_res, ..., resolution] (code_res 4 for flat codes); ValueError when invalid."""
    res = blocks.resolutions(resolution)
    if code_resolution is None:
        return res
    if code_resolution not in res:
        raise ValueError(f"code_resolution must be a power of two in [4, {resolution}], got {code_resolution}")
    return res[res.index(code_resolution):]


@keras.saving.register_keras_serializable(package="keras_pgen")
class Encoder(ConfigurableModel):
    """Convolutional encoder: images in [-1, 1] -> (mean, log_variance), or a deterministic code.

    fromRGB (1x1 conv), then at each resolution from the image's down to the code's:
    `convs_per_block` conv3x3 + LeakyReLU and a 2x2 average pooling. A flat code ends with
    conv3x3 at 4x4, flatten and dense layers; a spatial code with 1x1 convs.

    Args:
        resolution: int. Input resolution, a power of two >= 4.
        latent_dim: int. Code size (flat), or code channels (spatial).
        base_filters: int, default 32. Channels at the input resolution (doubled per halving).
        max_filters: int, default 256.
        image_channels: int, default 3.
        variational: bool, default True. Output `[mean, log_variance]` (a VAE's posterior);
            False outputs the code alone (a plain autoencoder).
        convs_per_block: int, default 1. Convolutions at each resolution.
        code_resolution: int or None, default None. None: flat code `[N, latent_dim]`; r: a
            spatial code `[N, r, r, latent_dim]` (r a power of two in [4, resolution]).
        pixel_norm: bool, default False. Pixel norm after every convolution.

    Example:
    >>> encoder = Encoder(resolution=16, latent_dim=8, base_filters=8)
    >>> mean, log_variance = encoder(keras.ops.zeros((2, 16, 16, 3)))   # [2, 8] each
    >>> ae_encoder = Encoder(16, 8, variational=False, code_resolution=4)
    >>> code = ae_encoder(keras.ops.zeros((2, 16, 16, 3)))               # [2, 4, 4, 8]

    Reference: Kingma & Welling, Auto-Encoding Variational Bayes, https://arxiv.org/abs/1312.6114.
    """

    def __init__(self, resolution, latent_dim, base_filters=32, max_filters=256, image_channels=3,
                 variational=True, convs_per_block=1, code_resolution=None, pixel_norm=False, **kwargs):
        res = _code_resolutions(resolution, code_resolution)
        nf = lambda r: autoencoder_filters(r, resolution, base_filters, max_filters)  # noqa: E731
        images = keras.Input((resolution, resolution, image_channels), name="images")
        x = blocks.from_rgb(images, nf(resolution), name="from_rgb")
        features = []
        for r in reversed(res[1:]):
            for i in range(convs_per_block):
                x = blocks.conv_lrelu(x, nf(r), pixel_norm=pixel_norm, name=f"enc{r}_conv{i}")
            features.append(x)
            x = keras.layers.AveragePooling2D(2, name=f"enc{r}_down")(x)
        r = res[0]
        x = blocks.conv_lrelu(x, nf(r), pixel_norm=pixel_norm, name=f"enc{r}_conv")
        features.append(x)
        if code_resolution is None:
            x = keras.layers.Flatten(name="flatten")(x)
            head = lambda name: EqualizedDense(latent_dim, gain=1.0, name=name)(x)  # noqa: E731
        else:
            head = lambda name: EqualizedConv2D(latent_dim, 1, gain=1.0, name=name)(x)  # noqa: E731
        outputs = [head("mean"), head("log_variance")] if variational else head("code")
        super().__init__(inputs=images, outputs=outputs, **kwargs)
        self._store_args(resolution=resolution, latent_dim=latent_dim, base_filters=base_filters,
                         max_filters=max_filters, image_channels=image_channels, variational=variational,
                         convs_per_block=convs_per_block, code_resolution=code_resolution, pixel_norm=pixel_norm)
        self.resolution = resolution
        self.latent_dim = latent_dim
        self.variational = variational
        self.code_resolution = code_resolution
        self.code_shape = (latent_dim,) if code_resolution is None else (code_resolution, code_resolution, latent_dim)
        self._feature_tensors = features

    def feature_extractor(self, name=None):
        """A model sharing this encoder's layers: images -> activations after each resolution block.

        Highest resolution first; the last entry is the lowest-resolution block before the code.
        Training the encoder changes these features (they are the same variables).
        """
        return keras.Model(self.inputs[0], list(self._feature_tensors), name=name or f"{self.name}_features")


@keras.saving.register_keras_serializable(package="keras_pgen")
class Decoder(ConfigurableModel):
    """Convolutional decoder: code -> images in [-1, 1] (tanh) or unbounded (linear).

    A flat code goes through a dense layer to 4x4 (then conv3x3); a spatial code
    `[r, r, latent_dim]` through a conv3x3 at r. Then at each doubling: 2x upsampling
    (nearest, or bilinear as DeePSiM's "up-convolutions") and `convs_per_block` conv3x3 +
    LeakyReLU (+ pixel norm); a linear 1x1 toRGB and the output activation.

    Args:
        resolution: int. Output resolution, a power of two >= 4.
        latent_dim: int. Code size (flat) or code channels (spatial). A conditional decoder
            takes one-hot labels: latent_dim = number of classes.
        base_filters: int, default 32. Channels at the output resolution (doubled per halving).
        max_filters: int, default 256.
        image_channels: int, default 3.
        output_activation: str, default "tanh". "tanh" or "linear".
        upsample: str, default "nearest". "nearest" or "bilinear".
        convs_per_block: int, default 1.
        code_resolution: int or None, default None. See `Encoder`.
        pixel_norm: bool, default False. Pixel norm after every hidden convolution.

    Example:
    >>> decoder = Decoder(resolution=16, latent_dim=8, base_filters=8)
    >>> images = decoder(keras.random.normal((2, 8)))   # [2, 16, 16, 3] in [-1, 1]

    Reference: Dosovitskiy & Brox, DeePSiM, https://arxiv.org/abs/1602.02644 (upsampling + conv).
    """

    def __init__(self, resolution, latent_dim, base_filters=32, max_filters=256, image_channels=3,
                 output_activation="tanh", upsample="nearest", convs_per_block=1, code_resolution=None,
                 pixel_norm=False, **kwargs):
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output_activation {output_activation!r}; choose from {list(OUTPUT_ACTIVATIONS)}")
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"unknown upsample {upsample!r}; choose from {list(UPSAMPLE_MODES)}")
        res = _code_resolutions(resolution, code_resolution)
        nf = lambda r: autoencoder_filters(r, resolution, base_filters, max_filters)  # noqa: E731
        r = res[0]
        if code_resolution is None:
            code = keras.Input((latent_dim,), name="z")
            x = EqualizedDense(16 * nf(4), gain=math.sqrt(2.0) / 4, name="dense")(code)
            x = blocks.lrelu(keras.layers.Reshape((4, 4, nf(4)))(x))
        else:
            code = keras.Input((r, r, latent_dim), name="z")
            x = code
        x = blocks.conv_lrelu(x, nf(r), pixel_norm=pixel_norm, name=f"dec{r}_conv")
        for r in res[1:]:
            x = keras.layers.UpSampling2D(2, interpolation=upsample, name=f"dec{r}_up")(x)
            for i in range(convs_per_block):
                x = blocks.conv_lrelu(x, nf(r), pixel_norm=pixel_norm, name=f"dec{r}_conv{i}")
        x = blocks.to_rgb(x, image_channels, name="to_rgb")
        if output_activation == "tanh":
            x = keras.layers.Activation("tanh", name="tanh")(x)
        super().__init__(inputs=code, outputs=x, **kwargs)
        self._store_args(resolution=resolution, latent_dim=latent_dim, base_filters=base_filters,
                         max_filters=max_filters, image_channels=image_channels,
                         output_activation=output_activation, upsample=upsample, convs_per_block=convs_per_block,
                         code_resolution=code_resolution, pixel_norm=pixel_norm)
        self.resolution = resolution
        self.latent_dim = latent_dim
        self.code_resolution = code_resolution
        self.code_shape = (latent_dim,) if code_resolution is None else (code_resolution, code_resolution, latent_dim)
