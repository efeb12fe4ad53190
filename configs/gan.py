"""DCGAN-style baseline (Radford et al. 2015; the "plain GAN" of seed 002).

    bin/train --method=gan                          # 32x32 built-in shapes, a few minutes on 2 CPU cores
    bin/train --method=gan --preset=tiny            # 16x16, a few seconds (tests)
    bin/train --method=gan --preset=faces64 --data=/path/to/faces   # GPU

Presets: default, tiny, faces64.
"""
from keras_pgen.config import gan_config

PRESETS = ("default", "tiny", "faces64")


def get_config(preset="default"):
    c = gan_config()
    c.resolution = 32
    c.latent_dim = 100
    c.base_filters = 32
    c.max_filters = 256
    c.norm = "batch"  # batch (synchronized) | none
    c.generator = "dcgan"  # dcgan | style (networks/style.py, channels from base_filters/max_filters; norm is D's only)
    c.loss = "ns"
    c.g_lr = 2e-4
    c.d_lr = 2e-4
    c.beta_1 = 0.5
    c.beta_2 = 0.999
    c.ema_decay = 0.999
    c.batch_size = 64
    c.total_steps = 1000
    # XLA: bench64's train step measured 1.2-1.3x faster with it on a 2-core CPU (README, Measured);
    # the tiny preset (tests) leaves it off: compiling costs more than its few steps take.
    c.jit_compile = True
    if preset == "default":
        pass
    elif preset == "tiny":
        c.update(jit_compile=False, resolution=16, latent_dim=16, base_filters=8, max_filters=32, batch_size=8, total_steps=4,
                 log_every=2, sample_every=2, checkpoint_every=2, num_samples=4, num_images=64)
    elif preset == "faces64":
        c.update(resolution=64, base_filters=64, max_filters=512, batch_size=64, total_steps=30_000,
                 log_every=100, sample_every=1000, checkpoint_every=1000, num_samples=36)
    else:
        raise ValueError(f"unknown preset {preset!r} for gan; choose from {list(PRESETS)}")
    return c
