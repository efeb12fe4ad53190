"""MSG-GAN: multi-scale gradients GAN (Karnewar & Wang, https://arxiv.org/abs/1903.06048)."""
import keras

from keras_pgen import config as config_lib
from keras_pgen.models.gan import GAN, compile_gan, gan_arguments
from keras_pgen.networks import MSGGANDiscriminator, MSGGANGenerator


def image_pyramid(images, num_scales):
    """[images downsampled by 2**(num_scales-1), ..., images]: 2x2 average pooling, lowest first."""
    pyramid = [images]
    for _ in range(num_scales - 1):
        pyramid.append(keras.ops.average_pool(pyramid[-1], 2, strides=2, padding="valid"))
    return pyramid[::-1]


class MSGGAN(GAN):
    """MSG-GAN: the generator outputs every scale and the discriminator sees every scale.

    Real images enter the discriminator as an average-pooled pyramid of the
    batch. Sampling and export use the highest-resolution output of the EMA
    generator. Args are those of `GAN`.

    Reference: Karnewar & Wang, https://arxiv.org/abs/1903.06048.
    """

    def real_inputs(self, images):
        return image_pyramid(images, len(self.generator.outputs))


def build_model(config):
    """MSGGAN from a config of configs/msg_gan.py (call inside the strategy scope)."""
    net = dict(resolution=config.resolution, fmap_base=config.fmap_base, fmap_max=config.fmap_max,
               image_channels=config.channels)
    # config_lib.field: a config.json written before `combine` / `fused_upscale` / `g_padding` /
    # `g_latent_bias` existed
    # (export_from_workdir) gets the networks that run's checkpoints restore into
    model = MSGGAN(MSGGANGenerator(config.latent_dim, fused_upscale=config_lib.field(config, "fused_upscale"),
                                   padding=config_lib.field(config, "g_padding"),
                                   latent_bias=config_lib.field(config, "g_latent_bias"), **net),
                   MSGGANDiscriminator(mbstd_group_size=config.mbstd_group_size,
                                       combine=config_lib.field(config, "combine"), **net),
                   **gan_arguments(config))
    return compile_gan(model, config)
