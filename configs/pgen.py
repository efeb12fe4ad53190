"""Perceptual generation (seed 000): a StyleGAN-like generator trained on few images with VGG16 losses only.

    bin/train --method=pgen --preset=tiny           # 16x16, random VGG16, a few seconds (tests)
    bin/train --method=pgen                         # 32x32 built-in shapes (80 images); needs VGG16 ImageNet
                                                    # weights (--config.vgg_weights=/path/to/..._notop.h5 offline)
    bin/train --method=pgen --preset=faces64 --data=/path/to/80/faces   # the seed's set-up, GPU

Presets: default, tiny, faces64. No discriminator: the loss is
diversity_weight * diversity + matching_weight * matching (keras_pgen/losses/diversity.py).
"""
from keras_pgen.config import base_config

PRESETS = ("default", "tiny", "faces64")


def get_config(preset="default"):
    c = base_config()
    c.resolution = 32
    c.num_images = 80  # the seed trains on 80 images (built-in shapes: 80 of them)
    c.batch_size = 8  # generated images per step; the step sees real_multiple * batch_size real ones
    # generator (networks/style.py)
    c.latent_dim = 128
    c.w_dim = 0  # 0: latent_dim
    c.mapping_layers = 4
    c.mapping_lr_multiplier = 0.01
    c.fmap_base = 2048
    c.fmap_max = 256
    c.style = "modulated"  # modulated (StyleGAN2 demodulation) | adain (StyleGAN)
    c.noise = "projected"  # projected (fixed random projection of z, see layers/style.py) | none
    # losses
    c.vgg_weights = "imagenet"  # imagenet | path to vgg16 ..._notop.h5 | none (random features)
    c.vgg_layers = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    c.vgg_layer_weights = (0.5, 1.0, 1.0, 1.0)  # relu1_2 singled out in the seed; () = all 1
    c.top_k = 5
    c.real_multiple = 2
    c.diversity_weight = 1.0
    c.matching_weight = 1.0
    c.diversity_distance = "l1"  # l1 | l2 (localised features) | gram (style, the seed's texture variant)
    c.matching_distance = "l1"  # the seed's mean absolute difference
    # optimisation
    c.lr = 1e-3
    c.beta_1 = 0.0
    c.beta_2 = 0.99
    c.adam_epsilon = 1e-8
    c.ema_decay = 0.999
    c.total_steps = 2000
    if preset == "default":
        pass
    elif preset == "tiny":
        c.update(resolution=16, num_images=64, batch_size=4, latent_dim=16, mapping_layers=2, fmap_base=64,
                 fmap_max=16, vgg_weights="none", vgg_layers=("relu1_2", "relu2_2"), vgg_layer_weights=(0.5, 1.0),
                 total_steps=4, log_every=2, sample_every=2, checkpoint_every=2, num_samples=4)
    elif preset == "faces64":
        c.update(resolution=64, latent_dim=256, fmap_base=4096, fmap_max=256, total_steps=20_000,
                 log_every=100, sample_every=1000, checkpoint_every=1000, num_samples=36)
    else:
        raise ValueError(f"unknown preset {preset!r} for pgen; choose from {list(PRESETS)}")
    return c
