"""MSG-GAN (multi-scale gradients GAN, arXiv 1903.06048; seed 002).

    bin/train --method=msg_gan                      # 32x32 built-in shapes, ~5 min on 2 idle CPU cores
    bin/train --method=msg_gan --preset=tiny        # 16x16, a few seconds (tests)
    bin/train --method=msg_gan --preset=faces128 --data=/kaggle/input/celeba/img_align_celeba   # GPU, hours
    bin/train --method=msg_gan --preset=bench64     # the benchmark architecture of ../shared/bench

Presets: default, tiny, bench64, faces64, faces128.
"""
from keras_pgen.config import gan_config

PRESETS = ("default", "tiny", "bench64", "faces64", "faces128")

# What a run begun before these fields existed used (its config.json lacks them): the networks its
# checkpoints restore into (`keras_pgen.config.field`; named in the error of a resume that does not fit).
BEFORE_FIELDS = {"combine": "from_rgb", "fused_upscale": False, "g_padding": "same", "g_latent_bias": False}


def get_config(preset="default"):
    c = gan_config()
    c.resolution = 32
    c.latent_dim = 128
    c.fmap_base = 512  # channels: min(fmap_max, fmap_base / 2**(log2(res) - 1))
    c.fmap_max = 128
    c.mbstd_group_size = 4
    c.combine = "simple"  # how D takes each lower-resolution image: simple (concatenated) | from_rgb (1x1 conv first)
    # G: upsample + first conv of each block as one UpscaleConv2D (same function, fewer multiply-adds)
    c.fused_upscale = True
    c.g_padding = "same"  # G's 3x3 convs: same (zeros) | reflect (border pixels computed like the others)
    c.g_latent_bias = False  # True: a z-dependent per-channel bias after every G block (not in the paper)
    c.loss = "ra_hinge"
    c.batch_size = 32
    c.g_lr = 0.001  # 0.003 (the paper's) collapsed on the 32x32 default within 500 steps; 0.001 did not
    c.d_lr = 0.001
    c.total_steps = 500
    c.sample_every = 100
    c.checkpoint_every = 100
    # XLA: bench64's train step measured 1.2-1.3x faster with it on a 2-core CPU (README, Measured);
    # the tiny preset (tests) leaves it off: compiling costs more than its few steps take.
    c.jit_compile = True
    if preset == "default":
        # the shapes judge (keras_pgen/metrics/shapes_judge.py) on 500 samples every 100 steps, from step 0:
        # TensorBoard's eval/ curves say whether the run learns (~3-4 s each).
        # reflect: no frame, and 2.3x the discriminator-feature diversity on 1,000 anime faces at 1,200 steps
        # (3 seeds each; README, Measured)
        c.update(eval_every=100, eval_features="auto", eval_num_samples=500, g_padding="reflect")
    elif preset == "tiny":
        c.update(jit_compile=False, resolution=16, latent_dim=16, fmap_base=64, fmap_max=32, batch_size=8, total_steps=4,
                 log_every=2, sample_every=2, checkpoint_every=2, num_samples=4, num_images=64)
    elif preset == "bench64":
        c.update(resolution=64, latent_dim=256, fmap_base=2048, fmap_max=256, batch_size=16, g_lr=0.003, d_lr=0.003,
                 combine="from_rgb")  # exactly ../shared/bench/README.md's architecture
    elif preset == "faces64":
        c.update(resolution=64, latent_dim=256, fmap_base=2048, fmap_max=256, batch_size=32, total_steps=50_000,
                 g_lr=0.003, d_lr=0.003,
                 log_every=100, sample_every=1000, checkpoint_every=1000, num_samples=36)
    elif preset == "faces128":
        c.update(resolution=128, latent_dim=512, fmap_base=4096, fmap_max=512, batch_size=32, total_steps=100_000,
                 g_lr=0.003, d_lr=0.003,
                 log_every=100, sample_every=1000, checkpoint_every=1000, num_samples=36)
    else:
        raise ValueError(f"unknown preset {preset!r} for msg_gan; choose from {list(PRESETS)}")
    return c
