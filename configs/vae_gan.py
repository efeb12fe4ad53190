"""VAE-GAN (seed 001, mauicv/vaegan): a VAE whose reconstruction loss is a jointly trained discriminator's features.

    bin/train --method=vae_gan                      # 32x32 built-in shapes, hinge D, 1000 steps; ~2.5 s/step on a
                                                    #   busy 2-core CPU (measured), i.e. about 40 min there; a GPU for more
    bin/train --method=vae_gan --preset=tiny        # 16x16, a few seconds (tests)
    bin/train --method=vae_gan --preset=wgan        # the same with a WGAN-GP critic (seed 001's second variant)
    bin/train --method=vae_gan --preset=faces64 --data=/path/to/faces   # GPU, about an hour

Presets: default, tiny, wgan, faces64. Fields on top of the vae ones (configs/vae.py):
adversarial_loss (hinge | wgan_gp | ns), gp_weight, adversarial_weight (the optional
adversarial term of the VAE loss), comparator (discriminator | vgg | random_conv | encoder),
perceptual_weight (weight of the feature distance), feature_reduction (sum: seed 001's code |
mean), perceptual_layer_weights (one per D layer: fromRGB, each block, the two head convs),
d_fmap_base, d_fmap_max, d_lr, d_pause_rule (none | ratio | accuracy), d_pause_threshold.
"""
from keras_pgen.config import autoencoder_config

PRESETS = ("default", "tiny", "wgan", "faces64")


def adversarial_autoencoder_fields(c):
    """Adds the discriminator / comparator fields shared with configs/deepsim.py to `c`."""
    c.adversarial_loss = "hinge"  # hinge (geometric GAN) | wgan_gp | ns
    c.gp_weight = 10.0
    c.adversarial_weight = 0.0  # weight of the generator's adversarial loss in the autoencoder loss
    c.comparator = "discriminator"  # discriminator | vgg | random_conv | encoder
    c.feature_reduction = "sum"  # discriminator comparator: sum (seed 001) | mean over each layer
    c.d_fmap_base = 512  # discriminator channels: min(d_fmap_max, d_fmap_base / 2**(log2(res) - 1))
    c.d_fmap_max = 128
    c.d_lr = 2e-4
    c.d_pause_rule = "none"  # none | ratio (d_loss / g_adv_loss < threshold: pause; needs ns) | accuracy
    c.d_pause_threshold = 0.1
    return c


def get_config(preset="default"):
    c = adversarial_autoencoder_fields(autoencoder_config())
    c.resolution = 32
    c.latent_dim = 64
    c.base_filters = 32
    c.max_filters = 128
    c.batch_size = 32
    c.total_steps = 1000
    c.lr = 2e-4
    c.beta_1 = 0.5
    c.pixel_weight = 0.0  # optional pixel term; the discriminator's features carry the reconstruction
    c.perceptual_weight = 1.0
    # the summed feature distance is a sum over ~10^4 activations, like a summed pixel log-likelihood,
    # so the KL (summed over the code) gets weight 1: the ELBO's balance
    c.kl_weight = 1.0
    c.kl_warmup_steps = 200
    if preset == "default":
        pass
    elif preset == "tiny":
        c.update(resolution=16, latent_dim=8, base_filters=8, max_filters=32, d_fmap_base=64, d_fmap_max=16,
                 batch_size=8, total_steps=4, log_every=2, sample_every=2, checkpoint_every=2, num_samples=4,
                 num_images=64, kl_warmup_steps=2, adversarial_weight=0.1, pixel_weight=0.5)
    elif preset == "wgan":
        c.update(adversarial_loss="wgan_gp", beta_1=0.0, beta_2=0.9)
    elif preset == "faces64":
        c.update(resolution=64, latent_dim=128, base_filters=32, max_filters=256, convs_per_block=2,
                 d_fmap_base=2048, d_fmap_max=256, batch_size=64, total_steps=30_000,
                 log_every=100, sample_every=1000, checkpoint_every=1000, num_samples=36)
    else:
        raise ValueError(f"unknown preset {preset!r} for vae_gan; choose from {list(PRESETS)}")
    return c
