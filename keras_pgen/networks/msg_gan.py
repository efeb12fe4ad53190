"""MSG-GAN generator and discriminator (Karnewar & Wang, https://arxiv.org/abs/1903.06048)."""
import math

import keras

from keras_pgen.layers import PixelNormalization
from keras_pgen.networks import blocks
from keras_pgen.networks.base import ConfigurableModel


COMBINES = ("simple", "from_rgb")


def _scales(resolution):
    res = blocks.resolutions(resolution)
    if len(res) < 2:
        raise ValueError(f"MSG-GAN needs at least two scales (resolution >= 8), got {resolution}")
    return res


@keras.saving.register_keras_serializable(package="keras_pgen")
class MSGGANGenerator(ConfigurableModel):
    """MSG-GAN generator: an RGB image at every resolution from 4x4 up.

    Args:
        latent_dim: int. Size of z.
        resolution: int. Final resolution, a power of two >= 8 (at least two scales).
        fmap_base: int, default 2048. Channels follow
            min(fmap_max, fmap_base / 2**(log2(res) - 1)).
        fmap_max: int, default 256.
        image_channels: int, default 3.
        fused_upscale: bool, default True. Each block's nearest 2x upsampling and first 3x3 conv
            run as one `UpscaleConv2D` (the same function and weights, 4/9 of that conv's
            multiply-adds, no 4x larger intermediate); False builds `UpSampling2D` + conv, the
            layer list of generators built before this option (their checkpoints restore only
            into that one).
        padding: str, default "same". The 3x3 convolutions' padding: "same" (zeros) or
            "reflect" (the features mirrored at the image's edges, so border pixels are computed
            from image-like values like every other pixel; see `EqualizedConv2D`).
        latent_bias: bool, default False. After the stem and after every block, add a
            per-channel bias computed from the pixel-normed z (`blocks.latent_bias`): z reaches
            every scale directly, not only through the stem. Not in the paper; False builds
            its generator.

    Returns a list of images, lowest resolution first.

    Example:
    >>> g = MSGGANGenerator(latent_dim=32, resolution=16, fmap_base=64, fmap_max=32)
    >>> [x.shape for x in g(keras.random.normal((2, 32)))]  # 4, 8, 16

    Reference: Karnewar & Wang, MSG-GAN, https://arxiv.org/abs/1903.06048.
    """

    def __init__(self, latent_dim, resolution, fmap_base=2048, fmap_max=256, image_channels=3, fused_upscale=True,
                 padding="same", latent_bias=False, **kwargs):
        nf = lambda r: blocks.num_filters(r, fmap_base, fmap_max)
        block = blocks.upscale_generator_block if fused_upscale else blocks.generator_block
        res = _scales(resolution)
        z = keras.Input((latent_dim,), name="z")
        latent = PixelNormalization(name="latent_bias_norm")(z) if latent_bias else None
        biased = (lambda x, name: blocks.latent_bias(x, latent, name)) if latent_bias else (lambda x, name: x)
        x = biased(blocks.generator_stem(z, nf(4), padding=padding), "g4")
        outputs = [blocks.to_rgb(x, image_channels, gain=math.sqrt(2.0), name="to_rgb_4")]
        for r in res[1:]:
            x = biased(block(x, nf(r), name=f"g{r}", padding=padding), f"g{r}")
            outputs.append(blocks.to_rgb(x, image_channels, gain=math.sqrt(2.0), name=f"to_rgb_{r}"))
        super().__init__(inputs=z, outputs=outputs, **kwargs)
        self._store_args(latent_dim=latent_dim, resolution=resolution, fmap_base=fmap_base,
                         fmap_max=fmap_max, image_channels=image_channels, fused_upscale=fused_upscale,
                         padding=padding, latent_bias=latent_bias)
        self.latent_dim = latent_dim
        self.resolution = resolution


@keras.saving.register_keras_serializable(package="keras_pgen")
class MSGGANDiscriminator(ConfigurableModel):
    """MSG-GAN discriminator: sees the image at every scale.

    The highest-resolution image goes through fromRGB and the first block; at
    every lower resolution the previous block's output is combined with that
    scale's image. The 4x4 head adds the minibatch standard deviation and
    outputs one logit.

    The combine function (the paper's phi):
    - "simple" (default, the paper's phi_simple): the raw image is concatenated to the
      block's features (C(r) + image_channels channels);
    - "from_rgb": the image goes through its own 1x1 fromRGB conv + LeakyReLU to C(r)
      channels first (2 * C(r) channels; the `bench64` architecture of ../shared/bench).
      With equalized learning rate the low-resolution images then carry half of each
      block's input from the first step: on 80 faces (README, "Report") the discriminator
      separated reals from fakes within ~20 steps on the 4x4 and 8x8 images alone and the
      generator collapsed to one template; "simple" kept the samples diverse.

    Args:
        resolution: int. Final resolution, a power of two >= 8 (at least two scales).
        fmap_base: int, default 2048.
        fmap_max: int, default 256.
        image_channels: int, default 3.
        mbstd_group_size: int, default 4 (0 disables it).
        combine: str, default "simple". One of `COMBINES`.

    Takes a list of images, lowest resolution first (what the generator returns).

    Example:
    >>> d = MSGGANDiscriminator(resolution=16, fmap_base=64, fmap_max=32)
    >>> d([keras.ops.zeros((4, r, r, 3)) for r in (4, 8, 16)]).shape  # (4, 1)

    Reference: Karnewar & Wang, MSG-GAN, https://arxiv.org/abs/1903.06048.
    """

    def __init__(self, resolution, fmap_base=2048, fmap_max=256, image_channels=3, mbstd_group_size=4,
                 combine="simple", **kwargs):
        if combine not in COMBINES:
            raise ValueError(f"unknown combine {combine!r}; choose from {list(COMBINES)}")
        nf = lambda r: blocks.num_filters(r, fmap_base, fmap_max)
        res = _scales(resolution)
        images = [keras.Input((r, r, image_channels), name=f"image_{r}") for r in res]
        x = blocks.from_rgb(images[-1], nf(resolution), name=f"from_rgb_{resolution}")
        for r, image in zip(res[::-1], images[::-1]):  # high -> 4
            if r < resolution:
                scale = image if combine == "simple" else blocks.from_rgb(image, nf(r), name=f"from_rgb_{r}")
                x = keras.layers.Concatenate()([x, scale])
            if r > 4:
                x = blocks.discriminator_block(x, nf(r), nf(r // 2), name=f"d{r}")
        logits = blocks.discriminator_head(x, nf(4), mbstd_group_size)
        super().__init__(inputs=images, outputs=logits, **kwargs)
        self._store_args(resolution=resolution, fmap_base=fmap_base, fmap_max=fmap_max,
                         image_channels=image_channels, mbstd_group_size=mbstd_group_size, combine=combine)
        self.resolution = resolution
