"""Perceptual generation (`--method=pgen`, seed 000): a style generator trained without a discriminator.

Each step draws `real_multiple` x `batch_size` real images and `batch_size` latents; the
generated batch and the real batch go through a frozen VGG16 and the generator minimises
`diversity_weight * diversity + matching_weight * matching` (losses/diversity.py):
- diversity: the generated batch's matrix of pairwise feature distances should equal that
  of the first `batch_size` real images (a collapsed batch has a zero matrix);
- matching: each generated image is pulled towards a real partner chosen greedily among its
  `top_k` nearest real images, unused by earlier generated images, else at random.

Distribution: both terms compare samples across the batch, so every replica gathers the
generated and real features of all replicas (`gather_replicas`, differentiable), computes
the global losses (the same on every replica) and divides them by the number of replicas:
the summed gradient is the single-device one. The latents and the uniform draws of the
matching's random fill come from the input pipeline (per global sample index), so 1 and N
replicas take the same steps.
"""
import keras
from keras import ops

from keras_pgen import engines
from keras_pgen.losses import diversity as diversity_lib
from keras_pgen.losses.perceptual import VGGFeatureExtractor
from keras_pgen.models import ema
from keras_pgen.models.base import Method, Stage, gather_replicas, make_adam, num_replicas
from keras_pgen.models.gan import clone_network
from keras_pgen.networks import StyleGenerator

# XLA's GPU compiler (jaxlib 0.11.2, H100) aborts on the pgen step's Triton GEMM fusion
# ("triton_tiling_propagation.cc:698 Check failed"); without Triton GEMMs (cuBLAS) it compiles
# and trains. The JAX engine adds these to XLA_FLAGS before JAX starts (jax_trainer.set_xla_flags).
XLA_GPU_FLAGS = ("--xla_gpu_enable_triton_gemm=false",)


class PGen(Method):
    """Non-adversarial perceptual generator: diversity + top-k matching losses on VGG16 features.

    The input pipeline's batch (see `stages`) holds `real_multiple * batch_size` samples:
    every sample's image is a real image, and the latents of samples 0, m, 2m, ... (m =
    `real_multiple`) are the generated batch's, so the global order is the same on any
    number of replicas.

    Args:
        generator: keras.Model z [N, latent_dim] -> images [N, H, W, C] in [-1, 1].
        feature_extractor: callable images -> list of feature maps (a `VGGFeatureExtractor`).
        latent_dim: int.
        top_k: int, default 5. Candidates of the matching.
        real_multiple: int, default 2. Real images per generated image in a step.
        diversity_weight: float, default 1.
        matching_weight: float, default 1.
        diversity_distance: str, default "l1". "l1"/"l2" (localised features) or "gram" (style).
        matching_distance: str, default "l1" (the seed's mean absolute difference).
        layer_weights: optional per-layer weights of the feature distances (default: the
            extractor's `layer_weights`, else 1).
        ema_decay: float, default 0.999. EMA of the generator's weights (warmed up as in the
            GAN template, models/ema.py); the EMA generator is sampled and exported.

    Example:
    >>> model = PGen(StyleGenerator(16, 16, mapping_layers=2, fmap_base=64, fmap_max=16),
    ...              VGGFeatureExtractor(["relu1_2"], weights="none"), latent_dim=16)
    >>> model.compile(keras.optimizers.Adam(1e-3))

    Reference: seed 000, "Perceptual Generation" (advadnoun); Sinha et al., Top-k Training of
    GANs, https://arxiv.org/abs/2002.06224.
    """

    def __init__(self, generator, feature_extractor, latent_dim, top_k=5, real_multiple=2, diversity_weight=1.0,
                 matching_weight=1.0, diversity_distance="l1", matching_distance="l1", layer_weights=None,
                 ema_decay=0.999, **kwargs):
        super().__init__(latent_dim=latent_dim, **kwargs)
        if int(real_multiple) < 1:
            raise ValueError(f"real_multiple must be >= 1, got {real_multiple}")
        self.generator = generator
        self.ema_generator = clone_network(generator)
        self.ema_generator.trainable = False
        self.feature_extractor = feature_extractor
        self.top_k = int(top_k)
        self.real_multiple = int(real_multiple)
        self.diversity_weight = float(diversity_weight)
        self.matching_weight = float(matching_weight)
        self.diversity_distance = diversity_distance
        self.matching_distance = matching_distance
        if layer_weights is None:
            layer_weights = getattr(feature_extractor, "layer_weights", None)
        self.layer_weights = [float(w) for w in layer_weights] if layer_weights else None
        self.ema_decay = ema_decay
        self.track(["loss", "diversity", "matching", "top_k_matched"])
        self.built = True  # sub-networks are built; a wrapper without call() must say so (DESIGN.md)

    # ---- hooks -------------------------------------------------------------------------------
    def noise_spec(self):
        """Per pipeline sample: a latent (used by every `real_multiple`-th sample) and the fill's uniform."""
        return {"z": ("normal", (self.latent_dim,)), "match_u": ("uniform", ())}

    def stages(self, total_steps, batch_size):
        """One stage whose pipeline batch is the real batch: `real_multiple * batch_size` images."""
        return [Stage(0, total_steps, batch_size * self.real_multiple, None)]

    def compile(self, optimizer, **kwargs):
        """Builds the optimizer now, so checkpoints restore its slots (resumed Adam state)."""
        super().compile(optimizer=None, **kwargs)
        self.g_optimizer = optimizer
        optimizer.build(self.generator.trainable_variables)

    def checkpoint_items(self):
        """The generator, its EMA, the optimizer and the step (the frozen VGG16 is rebuilt from the config)."""
        return {"generator": self.generator, "ema_generator": self.ema_generator, "g_optimizer": self.g_optimizer,
                "step": self.step}

    def optimizers(self):
        return {"g": self.g_optimizer}

    def call(self, z, training=False):
        """Images from the EMA generator."""
        return self.ema_generator(z, training=training)

    def preview(self, batch):
        return {"samples": self(batch["z"], training=False)}

    def export_to(self, export_dir, name, metadata):
        """Exports the EMA generator with the generator signatures (serving_default, sample)."""
        from keras_pgen import export as export_lib  # TensorFlow's SavedModel: imported only to export

        return export_lib.export_generator(self.ema_generator, export_dir, name, latent_dim=self.latent_dim,
                                           method=metadata.get("method"), metadata={"kind": "generator", **metadata})

    # ---- training ----------------------------------------------------------------------------
    def _features(self, images):
        return [gather_replicas(f) for f in self.feature_extractor(images)]

    def losses_from_features(self, fake_features, real_features, uniforms):
        """(total, terms) of the global batch: weighted diversity + matching, and the logged values."""
        g = ops.shape(fake_features[0])[0]
        diversity = diversity_lib.perceptual_diversity_loss(
            fake_features, [f[:g] for f in real_features], self.layer_weights, self.diversity_distance)
        matching, _, matched = diversity_lib.perceptual_matching_loss(
            fake_features, real_features, uniforms, self.top_k, self.layer_weights, self.matching_distance)
        total = self.diversity_weight * diversity + self.matching_weight * matching
        return total, {"loss": total, "diversity": diversity, "matching": matching,
                       "top_k_matched": ops.mean(ops.cast(matched, "float32"))}

    def train_updates(self, data):
        z = data["z"][::self.real_multiple]
        uniforms = gather_replicas(data["match_u"])
        real_features = [ops.stop_gradient(f) for f in self._features(data["images"])]

        def loss():
            fake = self.generator(z, training=True)
            return self.losses_from_features(self._features(fake), real_features, uniforms)

        _, terms = engines.minimize(self.g_optimizer, self.generator.trainable_variables, loss)
        ema.update_ema(self.ema_generator, self.generator, ema.ema_decay_at(self.step, self.ema_decay))
        self.step.assign_add(1)
        return terms


def build_model(config):
    """PGen from a config of configs/pgen.py (call inside the strategy scope)."""
    replicas = num_replicas()
    if config.batch_size % replicas:
        raise ValueError(f"batch_size {config.batch_size} (generated images per step) must be a multiple of the "
                         f"{replicas} replicas")
    generator = StyleGenerator(config.latent_dim, config.resolution, w_dim=config.w_dim or None,
                               mapping_layers=config.mapping_layers, mapping_lr_multiplier=config.mapping_lr_multiplier,
                               fmap_base=config.fmap_base, fmap_max=config.fmap_max, image_channels=config.channels,
                               style=config.style, noise=config.noise)
    extractor = VGGFeatureExtractor(layers=tuple(config.vgg_layers), weights=config.vgg_weights,
                                    layer_weights=tuple(config.vgg_layer_weights) or None,
                                    input_channels=config.channels)
    model = PGen(generator, extractor, latent_dim=config.latent_dim, top_k=config.top_k,
                 real_multiple=config.real_multiple, diversity_weight=config.diversity_weight,
                 matching_weight=config.matching_weight, diversity_distance=config.diversity_distance,
                 matching_distance=config.matching_distance, ema_decay=config.ema_decay)
    model.compile(make_adam(config, config.lr), jit_compile=config.jit_compile)
    return model
