"""DCGAN-style baseline (Radford et al., https://arxiv.org/abs/1511.06434; seed 002's first GAN)."""
from keras_pgen.models.gan import GAN, compile_gan, gan_arguments, num_replicas
from keras_pgen.networks import DCGANDiscriminator, DCGANGenerator, StyleGenerator


class DCGAN(GAN):
    """The plain GAN: one image in, one logit out; the template as it is.

    Reference: Radford et al., https://arxiv.org/abs/1511.06434.
    """


GENERATORS = ("dcgan", "style")


def make_generator(config, net):
    """The DCGAN generator, or with `config.generator="style"` a StyleGenerator with the same channels per scale."""
    kind = config.get("generator", "dcgan")
    if kind == "dcgan":
        return DCGANGenerator(config.latent_dim, **net)
    if kind == "style":
        # DCGAN's channels: base_filters at the output, doubled per halving, capped: fmap_base = base_filters * res / 2
        fmap_base = config.base_filters * config.resolution // 2
        return StyleGenerator(config.latent_dim, config.resolution, fmap_base=fmap_base, fmap_max=config.max_filters,
                              image_channels=config.channels)
    raise ValueError(f"unknown generator {kind!r}; choose from {list(GENERATORS)}")


def build_model(config):
    """DCGAN from a config of configs/gan.py (call inside the strategy scope)."""
    net = dict(resolution=config.resolution, base_filters=config.base_filters, max_filters=config.max_filters,
               image_channels=config.channels, norm=config.norm)
    model = DCGAN(make_generator(config, net), DCGANDiscriminator(**net), **gan_arguments(config))
    if config.norm == "batch" and model.batch_coupled and num_replicas() > 1:
        # Synchronized batch norm and the logits all_gather are collectives that TF may order
        # differently on each replica; the run would abort. Say so up front.
        raise ValueError(f"loss {config.loss!r} needs the global batch; with norm='batch' on "
                         f"{num_replicas()} replicas use a per-sample loss (ns, hinge, wgan_gp) or norm='none'")
    return compile_gan(model, config)
