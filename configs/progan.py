"""ProGAN: progressive growing of GANs (Karras et al. 2017, arXiv 1710.10196; seed 003).

    bin/train --method=progan                       # 4 -> 32 on built-in shapes, 1500 steps: ~15-20 min on 2 CPU cores
                                                    # (estimated: ~1 s/step at 32x32 measured; not run end to end)
    bin/train --method=progan --preset=tiny         # 4 -> 8 -> 16 in 10 steps, ~45 s on 2 CPU cores (5 retraces; tests)
    bin/train --method=progan --preset=faces256 --data=/path/to/celeba   # GPU (not run here)
    bin/train --method=progan --preset=faces1024 --data=/path/to/celeba-hq-1024   # the paper: 4 days on 8 V100s
    bin/benchmark --task=generate --method=progan --preset=faces1024   # time the exported 1024x1024 generator

Schedule: 4x4 trains for `stabilize_images` real images; every higher resolution gets
`transition_images` (fade-in, alpha 0 -> 1) then `stabilize_images`; the final resolution
trains until `total_steps`. `batch_sizes`, `g_lrs`, `d_lrs` are per resolution from 4x4 up
(the last value repeats; empty: `batch_size`, `g_lr`, `d_lr`).

Presets: default, tiny, faces256, faces1024.
"""
from keras_pgen.config import gan_config

PRESETS = ("default", "tiny", "faces256", "faces1024")


def get_config(preset="default"):
    c = gan_config()
    c.resolution = 32
    c.latent_dim = 128
    c.fmap_base = 1024  # channels: min(fmap_max, fmap_base / 2**(log2(res) - 1))
    c.fmap_max = 128
    c.mbstd_group_size = 4
    c.loss = "wgan_gp"  # the paper's WGAN-GP with the drift term
    c.gp_weight = 10.0
    c.drift_weight = 0.001
    c.ema_decay = 0.999
    c.g_lr = 0.001
    c.d_lr = 0.001
    c.beta_1 = 0.0
    c.beta_2 = 0.99
    c.transition_images = 4_000
    c.stabilize_images = 4_000
    c.batch_size = 16
    c.batch_sizes = (32, 32, 16, 16)  # 4, 8, 16, 32
    c.g_lrs = ()
    c.d_lrs = ()
    c.total_steps = 1_500
    # The exported generator: its blocks whose strips have >= 64 rows run strip by strip (the same
    # image with ~1/8 of the activation memory); a plain graph (XLA: as fast in strips, +190 MB).
    c.export_strips = 8
    c.export_jit_compile = False
    if preset == "default":
        pass
    elif preset == "tiny":
        c.update(resolution=16, latent_dim=16, fmap_base=64, fmap_max=32, batch_size=8, batch_sizes=(),
                 transition_images=16, stabilize_images=16, total_steps=10, log_every=2, sample_every=2,
                 checkpoint_every=2, num_samples=4, num_images=64)
    elif preset == "faces256":
        c.update(resolution=256, latent_dim=512, fmap_base=8192, fmap_max=512, batch_sizes=(16, 16, 16, 16, 16, 16, 14),
                 transition_images=600_000, stabilize_images=600_000, total_steps=600_000,
                 log_every=100, sample_every=2000, checkpoint_every=2000, num_samples=36)
    elif preset == "faces1024":
        # the paper's CelebA-HQ sizes (table 2, section A.1): 23.1 M parameters per network
        c.update(resolution=1024, latent_dim=512, fmap_base=8192, fmap_max=512,
                 batch_sizes=(16, 16, 16, 16, 16, 16, 14, 6, 3), transition_images=600_000,
                 stabilize_images=600_000, total_steps=1_500_000,
                 log_every=100, sample_every=5000, checkpoint_every=5000, num_samples=16)
    else:
        raise ValueError(f"unknown preset {preset!r} for progan; choose from {list(PRESETS)}")
    return c
