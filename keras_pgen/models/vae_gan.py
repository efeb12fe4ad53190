"""`--method=vae_gan` (seed 001, mauicv/vaegan): a VAE and a discriminator trained alongside.

`AdversarialAutoencoder` is also the base of DeePSiM (models/deepsim.py): an `Autoencoder`
(models/autoencoder.py: encoder, decoder, pixel / perceptual / KL terms, one optimizer)
plus a discriminator with its own optimizer. One step, in seed 001's order:

    recon = autoencoder(x)                                  # eps from the input pipeline
    update D to tell x from recon                           # hinge, WGAN-GP or the GAN loss
        (DeePSiM: skipped while D is too strong, see `discriminator_update_allowed`)
    with the updated D, update the autoencoder on
        pixel_weight * pixel(x, recon)                      # optional
      + perceptual_weight * distance(C(x), C(recon))        # C: the comparator
      + adversarial_weight * generator_loss(D(recon))       # optional
      + kl_weight * KL                                      # VAEs

Comparators (`comparator`):
- "discriminator" (seed 001): the jointly trained D's activations at every layer, compared
  with `losses.feature_matching.discriminator_feature_distance` (squared differences summed
  over every element of every layer, per sample, as seed 001's code; `feature_reduction`
  "mean" averages each layer instead);
- "vgg" / "random_conv": the frozen comparators of the autoencoder base (VGG16 layers);
- "encoder": the model's own encoder's block activations (they are trained with it: the
  gradient of the perceptual term reaches the encoder through both images' features).

Distribution: the D loss, gradient penalty and adversarial term are means of per-sample
terms over this replica's batch, divided by the number of replicas inside the tapes (the
losses with a batch-coupled form, ra_hinge, are refused). The pause decision uses global-batch
means (all-reduced), so every replica and a 1-replica run take the same decision.
"""
from keras import ops

from keras_pgen import engines
from keras_pgen import losses
from keras_pgen.losses import feature_matching
from keras_pgen.models.autoencoder import Autoencoder, autoencoder_arguments, build_decoder, build_encoder
from keras_pgen.models.base import make_adam
from keras_pgen.networks.feature_discriminator import FeatureDiscriminator

ADVERSARIAL_LOSSES = ("hinge", "wgan_gp", "ns")
COMPARATORS = ("discriminator", "vgg", "random_conv", "encoder")


class AdversarialAutoencoder(Autoencoder):
    """Autoencoder + discriminator: the shared model of VAE-GAN and DeePSiM.

    Args:
        encoder: `Encoder` (variational for a VAE), or None (decoder-only subclasses).
        decoder: `Decoder`.
        discriminator: `FeatureDiscriminator` (logits by `call`, activations by `features`).
        adversarial_loss: str, default "hinge". "hinge" (geometric GAN), "wgan_gp" (WGAN
            with gradient penalty) or "ns" (the standard GAN loss, DeePSiM's).
        adversarial_weight: float, default 0. Weight of the generator's adversarial loss
            in the autoencoder update (D is trained whenever it exists: it is the
            comparator of seed 001 even when this is 0).
        gp_weight: float, default 10. Gradient penalty on D at real/reconstruction
            interpolates ("wgan_gp" only).
        comparator_kind: str, default "discriminator". See the module docstring. For
            "vgg" / "random_conv" / "encoder" pass the network as `comparator`.
        perceptual_weight: float, default 1. Weight of the comparator's feature distance
            (DeePSiM's lambda_feat).
        feature_reduction: str, default "sum". The discriminator comparator's per-layer
            reduction ("sum": seed 001; "mean").
        d_pause_rule: str, default "none". "none", "ratio" (DeePSiM: skip D's update while
            d_loss / g_adversarial_loss < d_pause_threshold; needs "ns") or "accuracy"
            (skip while D's accuracy on the batch > d_pause_threshold).
        d_pause_threshold: float, default 0.1.
        **kwargs: the `Autoencoder` arguments (pixel_loss, pixel_weight, comparator,
            perceptual_distance, perceptual_layer_weights, kl_weight, kl_warmup_steps).

    Example:
    >>> model = VAEGAN(Encoder(16, 8), Decoder(16, 8), FeatureDiscriminator(16), adversarial_loss="hinge")
    >>> model.compile(ae_optimizer=keras.optimizers.Adam(1e-4), d_optimizer=keras.optimizers.Adam(1e-4))

    Reference: mauicv, https://github.com/mauicv/vaegan (seed 001); Larsen et al., VAE-GAN,
    https://arxiv.org/abs/1512.09300; Dosovitskiy & Brox, https://arxiv.org/abs/1602.02644.
    """

    def __init__(self, encoder, decoder, discriminator, adversarial_loss="hinge", adversarial_weight=0.0,
                 gp_weight=10.0, comparator_kind="discriminator", perceptual_weight=1.0,
                 feature_reduction="sum", d_pause_rule="none", d_pause_threshold=0.1, **kwargs):
        if adversarial_loss not in ADVERSARIAL_LOSSES:
            raise ValueError(f"unknown adversarial_loss {adversarial_loss!r}; choose from {list(ADVERSARIAL_LOSSES)}")
        if comparator_kind not in COMPARATORS:
            raise ValueError(f"unknown comparator {comparator_kind!r}; choose from {list(COMPARATORS)}")
        if d_pause_rule not in feature_matching.PAUSE_RULES:
            raise ValueError(f"unknown d_pause_rule {d_pause_rule!r}; choose from {list(feature_matching.PAUSE_RULES)}")
        if d_pause_rule == "ratio" and adversarial_loss != "ns":
            raise ValueError("d_pause_rule='ratio' compares positive losses: use adversarial_loss='ns' "
                             "(or d_pause_rule='accuracy')")
        if feature_reduction not in ("sum", "mean"):
            raise ValueError(f"unknown feature_reduction {feature_reduction!r}; choose from ['mean', 'sum']")
        self.d_loss_fn, self.g_loss_fn, _ = losses.get_adversarial_loss(adversarial_loss)
        self.adversarial_loss = adversarial_loss
        self.adversarial_weight = float(adversarial_weight)
        self.gp_weight = float(gp_weight) if adversarial_loss == "wgan_gp" else 0.0
        self.comparator_kind = comparator_kind
        self.feature_weight = float(perceptual_weight) if comparator_kind == "discriminator" else 0.0
        self.feature_reduction = feature_reduction
        self.d_pause_rule = d_pause_rule
        self.d_pause_threshold = float(d_pause_threshold)
        # the base handles the frozen / encoder comparators; the discriminator's distance is added here
        base_weight = 0.0 if comparator_kind == "discriminator" else perceptual_weight
        self.feature_layer_weights = kwargs.get("perceptual_layer_weights") if comparator_kind == "discriminator" \
            else None
        super().__init__(encoder, decoder, perceptual_weight=base_weight, **kwargs)
        self.discriminator = discriminator

    # ---- hooks of the base ---------------------------------------------------------------------
    def loss_names(self):
        names = super().loss_names()
        if self.feature_weight > 0:
            names.append("perceptual")
        if self.adversarial_weight > 0:
            names.append("adversarial")
        names += ["d_loss", "d_updated"] + (["gp"] if self.gp_weight > 0 else [])
        return names

    def noise_spec(self):
        spec = dict(super().noise_spec())
        if self.gp_weight > 0:
            spec["gp_eps"] = ("uniform", (1, 1, 1))
        return spec

    def reconstruction_terms(self, targets, reconstructions):
        """The base's pixel / perceptual terms, plus seed 001's distance through D's every layer."""
        terms = super().reconstruction_terms(targets, reconstructions)
        if self.feature_weight > 0:
            distance = feature_matching.discriminator_feature_distance(
                self.discriminator.features(targets, training=True),
                self.discriminator.features(reconstructions, training=True),
                self.feature_layer_weights, self.feature_reduction)
            terms["perceptual"] = self.feature_weight * distance
        return terms

    def loss_terms(self, data, outputs):
        terms = super().loss_terms(data, outputs)
        if self.adversarial_weight > 0:
            fake_logits = self.discriminator(outputs["reconstructions"], training=True)
            terms["adversarial"] = self.adversarial_weight * self.g_loss_fn(fake_logits)
        return terms

    def before_update(self, data):
        """The discriminator's update on this batch's reconstructions (seed 001: D first, then the VAE)."""
        return self.discriminator_step(data)

    # ---- the discriminator ---------------------------------------------------------------------
    def discriminator_penalty(self, real, fake, data):
        """gp_weight * WGAN-GP penalty at eps * real + (1 - eps) * fake (eps per sample from the pipeline)."""
        eps = data["gp_eps"]
        mixed = eps * real + (1.0 - eps) * fake
        gradients = engines.input_gradients(lambda x: self.discriminator(x, training=True), mixed)
        return self.gp_weight * losses.gradient_penalty(gradients)

    def discriminator_step(self, data):
        """One D update on real images vs. reconstructions, unless the pause rule holds it back.

        Returns {"d_loss", "d_updated" (1.0 or 0.0), "gp"} for the logs.
        """
        real = ops.convert_to_tensor(self.targets(data), "float32")
        fake = ops.stop_gradient(ops.cast(self.forward(data, training=True)["reconstructions"], "float32"))

        def loss():
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = self.d_loss_fn(real_logits, fake_logits)
            penalty = self.discriminator_penalty(real, fake, data) if self.gp_weight > 0 else 0.0
            return d_loss + penalty, {"d_loss": d_loss, "gp": penalty, "real_logits": real_logits,
                                      "fake_logits": fake_logits}

        def allowed(_, aux):
            if self.d_pause_rule == "none":
                return ops.convert_to_tensor(True)
            mean = engines.global_mean
            return feature_matching.discriminator_update_allowed(
                self.d_pause_rule, self.d_pause_threshold, d_loss=mean(aux["d_loss"]),
                g_adversarial_loss=mean(self.g_loss_fn(aux["fake_logits"])),
                accuracy=mean(feature_matching.discriminator_accuracy(aux["real_logits"], aux["fake_logits"])))

        _, aux = engines.minimize(self.d_optimizer, self.discriminator.trainable_variables, loss,
                                  apply_if=None if self.d_pause_rule == "none" else allowed)
        logs = {"d_loss": aux["d_loss"], "d_updated": ops.cast(allowed(None, aux), "float32")}
        if self.gp_weight > 0:
            logs["gp"] = aux["gp"]
        return logs

    # ---- set-up ------------------------------------------------------------------------------
    def compile(self, ae_optimizer, d_optimizer, **kwargs):
        """Builds both optimizers now, so checkpoints restore their slots (resumed Adam state)."""
        super().compile(ae_optimizer, **kwargs)
        self.d_optimizer = d_optimizer
        d_optimizer.build(self.discriminator.trainable_variables)

    def checkpoint_items(self):
        return {**super().checkpoint_items(), "discriminator": self.discriminator, "d_optimizer": self.d_optimizer}

    def optimizers(self):
        return {**super().optimizers(), "d": self.d_optimizer}


class VAEGAN(AdversarialAutoencoder):
    """VAE whose reconstruction loss is a jointly trained discriminator's feature distance (seed 001).

    `AdversarialAutoencoder` with seed 001's defaults: geometric-GAN hinge (or WGAN-GP)
    discriminator, the comparator is that discriminator at every layer, KL on the encoder's
    posterior; the adversarial and pixel terms are optional (weights 0 by default).

    Reference: mauicv, "Perceptual loss for VAEs", https://github.com/mauicv/vaegan (seed 001);
    Lim & Ye, Geometric GAN, https://arxiv.org/abs/1705.02894; Gulrajani et al., WGAN-GP,
    https://arxiv.org/abs/1704.00028.
    """


# ---- building from a config ------------------------------------------------------------------------
def build_discriminator(config):
    """`FeatureDiscriminator` of the config (d_fmap_base, d_fmap_max)."""
    return FeatureDiscriminator(config.resolution, fmap_base=config.d_fmap_base, fmap_max=config.d_fmap_max,
                                image_channels=config.channels, name="discriminator")


def adversarial_arguments(config, encoder):
    """`AdversarialAutoencoder` keyword arguments (comparator included) from a vae_gan / deepsim config."""
    frozen = config.comparator in ("vgg", "random_conv")
    base_config = config.copy_and_resolve_references()
    if not frozen:
        base_config.perceptual_weight = 0.0  # the base builds no comparator; ours is below
    args = autoencoder_arguments(base_config)
    args.update(perceptual_weight=config.perceptual_weight, comparator_kind=config.comparator,
                adversarial_loss=config.adversarial_loss, adversarial_weight=config.adversarial_weight,
                gp_weight=config.gp_weight, feature_reduction=config.feature_reduction,
                d_pause_rule=config.d_pause_rule, d_pause_threshold=config.d_pause_threshold)
    if config.comparator == "encoder" and config.perceptual_weight > 0:
        if encoder is None:
            raise ValueError("comparator='encoder' needs a trained encoder (not in feature inversion)")
        comparator = encoder.feature_extractor(name="encoder_features")
        comparator.layer_weights = list(config.perceptual_layer_weights) or None
        args["comparator"] = comparator
    return args


def compile_adversarial(model, config):
    """Compiles with Adam for the autoencoder (config.lr) and D (config.d_lr); returns the model."""
    model.compile(ae_optimizer=make_adam(config, config.lr), d_optimizer=make_adam(config, config.d_lr),
                  jit_compile=config.jit_compile)
    return model


def build_model(config):
    """VAEGAN from configs/vae_gan.py (call inside the strategy scope)."""
    encoder = build_encoder(config)
    model = VAEGAN(encoder, build_decoder(config), build_discriminator(config), **adversarial_arguments(config, encoder))
    return compile_adversarial(model, config)
