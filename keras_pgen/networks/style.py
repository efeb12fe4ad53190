"""StyleGAN-like generator (mapping network, learned constant, style-modulated convs, noise)."""
import keras

from keras_pgen.layers import (AdaIN, EqualizedConv2D, EqualizedDense, LearnedConstant, ModulatedConv2D,
                               NoiseInjection, PixelNormalization, ProjectedNoise)
from keras_pgen.networks import blocks
from keras_pgen.networks.base import ConfigurableModel

STYLES = ("modulated", "adain")
NOISES = ("projected", "none")


@keras.saving.register_keras_serializable(package="keras_pgen")
class StyleGenerator(ConfigurableModel):
    """StyleGAN-like generator: z -> mapping MLP -> w, which styles every conv from a learned 4x4 constant.

    The mapping network is pixel norm then `mapping_layers` equalized dense layers with
    LeakyReLU(0.2) (learning rate x `mapping_lr_multiplier`). The synthesis network starts
    from a learned 4x4 constant; at 4x4 one styled 3x3 conv, at every higher resolution a
    bilinear 2x upsample and two styled 3x3 convs. A styled conv is StyleGAN2's modulated
    and demodulated conv (`style="modulated"`) or StyleGAN's conv followed by AdaIN
    (`style="adain"`); each is followed by a noise input with learned per-channel strength and
    LeakyReLU(0.2). The image is StyleGAN2's "skip" output: a toRGB (1x1, modulated without
    demodulation) at every resolution, upsampled and summed. The output is linear (no tanh),
    as in StyleGAN; images are meant to lie in [-1, 1].

    Noise inputs (`noise="projected"`): each noise map is a frozen random projection of z
    (`layers.ProjectedNoise`), so the network takes z only and the same z always gives the
    same image (on N replicas, in the EMA copy and in the exported SavedModel), at the price
    of noise that is a function of z rather than independent of it. `noise="none"` drops them.
    No style mixing: every layer gets the same w.

    Args:
        latent_dim: int. Size of z.
        resolution: int. Output resolution, a power of two >= 4.
        w_dim: int, default latent_dim. Size of w.
        mapping_layers: int, default 8.
        mapping_lr_multiplier: float, default 0.01 (StyleGAN's).
        fmap_base: int, default 2048. Channels at resolution r:
            min(fmap_max, fmap_base / 2**(log2(r) - 1)).
        fmap_max: int, default 256.
        image_channels: int, default 3.
        style: str, default "modulated". "modulated" or "adain".
        noise: str, default "projected". "projected" or "none".

    Example:
    >>> g = StyleGenerator(latent_dim=32, resolution=16, mapping_layers=2, fmap_base=64, fmap_max=32)
    >>> g(keras.random.normal((2, 32))).shape  # (2, 16, 16, 3)

    Reference: Karras et al., StyleGAN, https://arxiv.org/abs/1812.04948; StyleGAN2,
    https://arxiv.org/abs/1912.04958.
    """

    def __init__(self, latent_dim, resolution, w_dim=None, mapping_layers=8, mapping_lr_multiplier=0.01,
                 fmap_base=2048, fmap_max=256, image_channels=3, style="modulated", noise="projected", **kwargs):
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; choose from {list(STYLES)}")
        if noise not in NOISES:
            raise ValueError(f"unknown noise {noise!r}; choose from {list(NOISES)}")
        res = blocks.resolutions(resolution)
        nf = lambda r: blocks.num_filters(r, fmap_base, fmap_max)
        w_dim = w_dim or latent_dim

        z = keras.Input((latent_dim,), name="z")
        w = PixelNormalization(name="z_norm")(z)
        for i in range(mapping_layers):
            w = blocks.lrelu(EqualizedDense(w_dim, lr_multiplier=mapping_lr_multiplier, name=f"mapping_{i}")(w))

        def styled_conv(x, filters, size, name):
            if style == "modulated":
                x = ModulatedConv2D(filters, 3, name=name)([x, w])
            else:
                x = EqualizedConv2D(filters, 3, name=name)(x)
            if noise == "projected":
                x = NoiseInjection(name=f"{name}_noise")([x, ProjectedNoise(size, name=f"{name}_noise_map")(z)])
            x = blocks.lrelu(x)
            return AdaIN(name=f"{name}_adain")([x, w]) if style == "adain" else x

        def to_rgb(x, name):
            if style == "modulated":
                return ModulatedConv2D(image_channels, 1, demodulate=False, gain=1.0, name=name)([x, w])
            return EqualizedConv2D(image_channels, 1, gain=1.0, name=name)(x)

        x = LearnedConstant((4, 4, nf(4)), name="const")(w)
        x = styled_conv(x, nf(4), 4, name="g4_conv")
        image = to_rgb(x, "to_rgb_4")
        for r in res[1:]:
            x = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
            x = styled_conv(x, nf(r), r, name=f"g{r}_conv0")
            x = styled_conv(x, nf(r), r, name=f"g{r}_conv1")
            image = keras.layers.UpSampling2D(2, interpolation="bilinear")(image)
            image = keras.layers.Add()([image, to_rgb(x, f"to_rgb_{r}")])
        super().__init__(inputs=z, outputs=image, **kwargs)
        self._store_args(latent_dim=latent_dim, resolution=resolution, w_dim=w_dim, mapping_layers=mapping_layers,
                         mapping_lr_multiplier=mapping_lr_multiplier, fmap_base=fmap_base, fmap_max=fmap_max,
                         image_channels=image_channels, style=style, noise=noise)
        self.latent_dim = latent_dim
        self.resolution = resolution
