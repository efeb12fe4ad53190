"""The shared GAN training template: two optimizers, an EMA generator, loss trackers.

Methods (DCGAN, MSG-GAN, ProGAN, ...) subclass `GAN` and override small hooks
(`real_inputs`, `noise_spec`) instead of copying the loop.

Distribution (tf.distribute.MirroredStrategy): `train_step` runs once per
replica on 1/N of the global batch and the optimizers SUM gradients over
replicas. The template therefore
- for batch-coupled losses (relativistic averages) gathers the discriminator
  logits of all replicas (`all_gather`, which is differentiable) so the loss
  sees the global batch as on one device; every adversarial loss (a global
  or a local mean) is then divided by the number of replicas;
- divides per-sample penalties (gradient penalty, R1, drift), which are
  means over the replica's own samples, by the number of replicas;
- takes every random draw (latents, interpolation weights, augmentation
  parameters) from the input pipeline, keyed on the global sample index, so
  replicas draw different latents and 1 vs N replicas see the same global batch.

Small-data augmentation (`augment="diffaugment"` or `"ada"`): the
differentiable DiffAugment ops (layers/diffaugment.py) are applied to real AND
generated images wherever the discriminator sees them: the reals once (both
updates share D's forward pass on them), the G update's fakes and the D update's
fakes, each with fresh draws (`augment(images, data, key)`); penalties (GP, R1)
are taken on the augmented images D saw. A multi-scale pyramid (MSG-GAN)
gets the same draws at every scale, so each scale shows the same colour change,
translation and cutout relative to its size, as an augmented image's pyramid
would: independent draws per scale would break the cross-scale consistency that
MSG-GAN's discriminator checks, for reals and fakes alike. With "ada", each op
is applied per sample with probability p, adjusted every `ada_interval` steps
from r = mean(sign(D(augmented reals))) over the global batches since the last
adjustment: p += sign(r - ada_target) * images / (ada_kimg * 1000), clipped
to [0, 1] (StyleGAN2-ADA's rule). p lives in a non-trainable variable that is
checkpointed, logged (`ada_p`, `ada_rt`) and shown in TensorBoard.
"""
import keras
from keras import ops

from keras_pgen import engines
from keras_pgen import losses
from keras_pgen.layers import diffaugment
from keras_pgen.models.base import Method, gather_replicas, make_adam, num_replicas  # noqa: F401
from keras_pgen.models import ema
from keras_pgen.networks.base import penultimate_model


def clone_network(network):
    """A new network of the same class and config with the same weights."""
    clone = network.__class__.from_config(network.get_config())
    clone.set_weights(network.get_weights())
    return clone


AUGMENT_MODES = ("none", "diffaugment", "ada")


class GAN(Method):
    """Shared GAN template with a custom `train_step`.

    One step is one generator update on a fresh fake batch (latents `z_g`)
    followed by one discriminator update on another (`z_d`, from the updated
    generator), both against D's weights at the start of the step, so they share
    one forward pass of D on the real batch (`train_step`); then the EMA
    generator update. Subclasses override the hooks:
    `real_inputs(images)` (what D sees of a real batch) and `noise_spec()`
    (the per-sample random inputs the pipeline draws).

    Args:
        generator: keras.Model mapping z [N, latent_dim] to D's input.
        discriminator: keras.Model mapping images to logits [N, 1].
        latent_dim: int.
        loss: str, default "ra_hinge". One of `losses.ADVERSARIAL_LOSSES`.
        gp_weight: float, default 10. Gradient-penalty weight, used with "wgan_gp".
        r1_gamma: float, default 0. R1 penalty weight (gamma / 2 * E||grad||^2).
        drift_weight: float, default 0. ProGAN's drift term (0.001 there).
        ema_decay: float, default 0.999. EMA of the generator's weights, warmed up
            as min(ema_decay, (1 + step) / (10 + step)); the EMA generator is what
            gets sampled and exported.
        augment: str, default "none". One of `AUGMENT_MODES`: "diffaugment" applies
            `augment_policy` to everything D sees; "ada" applies each op with an
            adaptive probability p (see the module docstring).
        augment_policy: str, default "color,translation,cutout" (see `diffaugment.parse_policy`).
        ada_target: float, default 0.6. Target of mean(sign(D(real))) for "ada".
        ada_interval: int, default 4. Steps between adjustments of p.
        ada_kimg: float, default 100. Thousands of (global batch) images over which p
            can move by 1 (StyleGAN2-ADA uses 500 on large data sets).

    Example:
    >>> gan = MSGGAN(MSGGANGenerator(32, 16), MSGGANDiscriminator(16), latent_dim=32)
    >>> gan.compile(g_optimizer=keras.optimizers.Adam(3e-3), d_optimizer=keras.optimizers.Adam(3e-3))
    """

    export_images_per_call = 0  # images per generator call in the export: 0 = derived from the activation budget (`export.export_generator`)

    def __init__(self, generator, discriminator, latent_dim, loss="ra_hinge", gp_weight=10.0, r1_gamma=0.0,
                 drift_weight=0.0, ema_decay=0.999, augment="none", augment_policy=diffaugment.DEFAULT_POLICY,
                 ada_target=0.6, ada_interval=4, ada_kimg=100.0, **kwargs):
        super().__init__(latent_dim=latent_dim, **kwargs)
        self.d_loss_fn, self.g_loss_fn, self.batch_coupled = losses.get_adversarial_loss(loss)
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = clone_network(generator)
        self.ema_generator.trainable = False
        self.loss_name = loss
        self.gp_weight = gp_weight if loss == "wgan_gp" else 0.0
        self.r1_gamma = r1_gamma
        self.drift_weight = drift_weight
        self.ema_decay = ema_decay
        self.track(["d_loss", "g_loss"] + [n for n, w in (("gp", self.gp_weight), ("r1", r1_gamma),
                                                           ("drift", drift_weight)) if w > 0])
        self._init_augment(augment, augment_policy, ada_target, ada_interval, ada_kimg)
        self.built = True  # sub-networks are built; a wrapper without call() must say so (DESIGN.md)

    # ---- hooks -------------------------------------------------------------------------------
    def real_inputs(self, images):
        """What the discriminator sees of a real batch of images in [-1, 1]."""
        return images

    def noise_spec(self):
        """Per-sample random inputs drawn by the input pipeline: name -> (distribution, shape)."""
        spec = {"z_d": ("normal", (self.latent_dim,)), "z_g": ("normal", (self.latent_dim,))}
        if self.gp_weight > 0:
            spec["gp_eps"] = ("uniform", (1, 1, 1))
        spec.update(self.augment_noise_spec())
        return spec

    # ---- augmentation (DiffAugment / ADA) ------------------------------------------------------
    def _init_augment(self, augment, policy, ada_target, ada_interval, ada_kimg):
        if augment not in AUGMENT_MODES:
            raise ValueError(f"unknown augment {augment!r}; choose from {list(AUGMENT_MODES)}")
        if augment != "none" and not diffaugment.parse_policy(policy):  # also fails early on unknown names
            raise ValueError(f"augment={augment!r} needs a non-empty augment_policy")
        if augment == "ada" and (int(ada_interval) < 1 or float(ada_kimg) <= 0):
            raise ValueError(f"need ada_interval >= 1 and ada_kimg > 0, got {ada_interval} and {ada_kimg}")
        self.augment_mode = augment
        self.augment_policy = policy
        self.ada_target = float(ada_target)
        self.ada_interval = int(ada_interval)
        self.ada_kimg = float(ada_kimg)
        if augment == "ada":
            weight = lambda name: self.add_weight(name=name, shape=(), dtype="float32", initializer="zeros",
                                                  trainable=False, aggregation="only_first_replica")
            self.ada_p = weight("ada_p")  # the augmentation probability
            self.ada_sign_sum = weight("ada_sign_sum")  # sum of sign(D(real)) since the last adjustment
            self.ada_count = weight("ada_count")  # number of those reals
            self.trackers.update({n: keras.metrics.Mean(name=n) for n in ("ada_p", "ada_rt")})

    def augment_keys(self):
        """Where D sees images: one set of draws each (the reals once: both updates share D(reals))."""
        return ("d_real", "d_fake", "g_fake")

    def augment_noise_spec(self):
        """The per-sample augmentation draws: `aug_<key>` uniform [num_draws] for each `augment_keys()`."""
        if self.augment_mode == "none":
            return {}
        size = diffaugment.num_draws(self.augment_policy, gated=self.augment_mode == "ada")
        return {f"aug_{key}": ("uniform", (size,)) for key in self.augment_keys()}

    def augment(self, images, data, key):
        """`images` (a tensor or a multi-scale list) as D sees them: augmented with the draws `data["aug_<key>"]`."""
        if self.augment_mode == "none":
            return images
        probability = keras.ops.convert_to_tensor(self.ada_p) if self.augment_mode == "ada" else None
        return diffaugment.diff_augment(images, data[f"aug_{key}"], self.augment_policy, probability)

    def update_ada(self, real_logits):
        """Accumulates sign(D(real)) over the global batch; every `ada_interval` steps moves p. Returns logs."""
        if self.augment_mode != "ada":
            return {}
        ops = keras.ops
        signs = ops.sign(ops.cast(gather_replicas(real_logits), "float32"))
        sign_sum = self.ada_sign_sum + ops.sum(signs)
        count = self.ada_count + ops.cast(ops.size(signs), "float32")
        due = ops.equal((self.step + 1) % self.ada_interval, 0)
        adjust = ops.sign(sign_sum / count - self.ada_target) * count / (self.ada_kimg * 1000.0)
        p = ops.where(due, ops.clip(self.ada_p + adjust, 0.0, 1.0), self.ada_p)
        self.ada_p.assign(p)
        self.ada_sign_sum.assign(ops.where(due, 0.0, sign_sum))
        self.ada_count.assign(ops.where(due, 0.0, count))
        return {"ada_p": p, "ada_rt": ops.mean(signs)}

    # ---- set-up ------------------------------------------------------------------------------
    def compile(self, g_optimizer, d_optimizer, **kwargs):
        """Builds both optimizers now, so checkpoints restore their slots (resumed Adam state)."""
        super().compile(optimizer=None, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    def checkpoint_items(self):
        """Everything a resumed run needs, for tf.train.Checkpoint."""
        items = {"generator": self.generator, "discriminator": self.discriminator,
                 "ema_generator": self.ema_generator, "g_optimizer": self.g_optimizer,
                 "d_optimizer": self.d_optimizer, "step": self.step}
        if self.augment_mode == "ada":
            items.update(ada_p=self.ada_p, ada_sign_sum=self.ada_sign_sum, ada_count=self.ada_count)
        return items

    def scalars(self):
        """The ADA probability (TensorBoard `augment/ada_p`) when augment="ada"."""
        scalars = dict(super().scalars())
        if self.augment_mode == "ada":
            scalars["augment/ada_p"] = float(keras.ops.convert_to_numpy(self.ada_p))
        return scalars

    def optimizers(self):
        return {"g": self.g_optimizer, "d": self.d_optimizer}

    def export_generator(self):
        """The network export.py serves (the EMA generator; its last output if it returns a list)."""
        return self.ema_generator

    def discriminator_features(self, inputs, training=False):
        """The discriminator's penultimate activations, flattened: [N, features].

        What its final (logit) Dense layer sees, for `inputs` as D takes them (`real_inputs(images)`:
        MSG-GAN's pyramid, ProGAN's current stage). Networks with a `penultimate(inputs, training=)`
        method (ProGAN's) give it; a functional D gives the input of its last layer
        (`networks.base.penultimate_model`, sharing D's weights).
        """
        penultimate = getattr(self.discriminator, "penultimate", None)
        features = (penultimate(inputs, training=training) if penultimate is not None
                    else penultimate_model(self.discriminator)(inputs, training=training))
        return ops.reshape(features, (ops.shape(features)[0], -1))

    def discriminator_resolution(self):
        """The side of the images D takes now (ProGAN: its current stage's)."""
        return int(getattr(self.discriminator, "stage_resolution", self.discriminator.resolution))

    def call(self, z, training=False):
        """Images from the EMA generator, all scales (what sample grids show)."""
        return self.ema_generator(z, training=training)

    def preview(self, batch):
        """The EMA generator's samples of the fixed preview latents, one grid per output scale."""
        outputs = self(batch["z"], training=False)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        return {f"{o.shape[1]}x{o.shape[2]}": o for o in outputs}

    def export_to(self, export_dir, name, metadata):
        """Exports `export_generator()` with the generator signatures (serving_default, sample)."""
        from keras_pgen import export as export_lib  # TensorFlow's SavedModel: imported only to export

        return export_lib.export_generator(self.export_generator(), export_dir, name, latent_dim=self.latent_dim,
                                           images_per_call=self.export_images_per_call,
                                           method=metadata.get("method"), metadata=metadata)

    # ---- training ----------------------------------------------------------------------------
    def _map_inputs(self, fn, real, fake):
        if isinstance(real, (list, tuple)):
            return [fn(r, f) for r, f in zip(real, fake)]
        return fn(real, fake)

    def _input_gradients(self, inputs):
        return engines.input_gradients(lambda x: self.discriminator(x, training=True), inputs)

    def discriminator_penalties(self, real, fake, real_logits, data):
        """Penalty terms, each a mean over this replica's samples (weighted, for the loss)."""
        terms = {}
        if self.gp_weight > 0:
            eps = data["gp_eps"]  # float32; under mixed precision the fakes (and fading-in reals) are float16
            mixed = self._map_inputs(lambda r, f: eps * ops.cast(r, eps.dtype) + (1.0 - eps) * ops.cast(f, eps.dtype),
                                     real, fake)
            terms["gp"] = self.gp_weight * losses.gradient_penalty(self._input_gradients(mixed))
        if self.r1_gamma > 0:
            terms["r1"] = 0.5 * self.r1_gamma * losses.r1_penalty(self._input_gradients(real))
        if self.drift_weight > 0:
            terms["drift"] = self.drift_weight * losses.drift_penalty(real_logits)
        return terms

    def _global(self, logits):
        """Batch-coupled losses see every replica's logits; per-sample means need only the local ones.

        Either way the loss divided by the number of replicas, summed over
        replicas, has the single-device gradient.
        """
        return gather_replicas(logits) if self.batch_coupled else logits

    def train_updates(self, data):
        """One generator update, then one discriminator update; both see D's weights of the step's start.

        1. G update on fresh fakes G(z_g) against the reals (augmented with the `d_real` draws):
           the G loss takes D(reals) as constants.
        2. D update on fresh fakes from the updated G, G(z_d), and the same reals. D(reals) is
           written in both losses; D does not change in between, so under XLA (`jit_compile`, and
           always under JAX) both are one computation, one forward pass on the reals per step.

        Over a run the updates alternate G, D, G, D, ... as with D first; each G update is measured
        against reals that D has not just been fitted to (README, design notes).
        """
        real = self.augment(self.real_inputs(data["images"]), data, "d_real")

        def g_loss():
            fake = self.augment(self.generator(data["z_g"], training=True), data, "g_fake")
            fake_logits = self._global(self.discriminator(fake, training=True))
            reference = (self._global(ops.stop_gradient(self.discriminator(real, training=True)))
                         if self.batch_coupled else None)
            return self.g_loss_fn(fake_logits, reference), {}

        g_loss, _ = engines.minimize(self.g_optimizer, self.generator.trainable_variables, g_loss)

        def d_loss():
            real_logits = self.discriminator(real, training=True)
            generated = self.generator(data["z_d"], training=True)
            generated = [ops.stop_gradient(g) for g in generated] if isinstance(generated, (list, tuple)) \
                else ops.stop_gradient(generated)
            fake = self.augment(generated, data, "d_fake")
            fake_logits = self.discriminator(fake, training=True)
            loss = self.d_loss_fn(self._global(real_logits), self._global(fake_logits))
            penalties = self.discriminator_penalties(real, fake, real_logits, data)
            return loss + sum(penalties.values()), {"d_loss": loss, "real_logits": real_logits, **penalties}

        _, aux = engines.minimize(self.d_optimizer, self.discriminator.trainable_variables, d_loss)
        real_logits = aux.pop("real_logits")
        ada_logs = self.update_ada(real_logits)

        self.update_ema()
        self.step.assign_add(1)
        return {"g_loss": g_loss, **aux, **ada_logs}

    def ema_decay_at(self, step):
        """min(ema_decay, (1 + step) / (10 + step)): the warm-up of tf.train.ExponentialMovingAverage.

        Without it, a 0.999 EMA of a short run mostly shows the random initial weights.
        """
        return ema.ema_decay_at(step, self.ema_decay)

    def update_ema(self):
        """ema = decay * ema + (1 - decay) * weights; non-trainable weights (BN statistics) are copied."""
        ema.update_ema(self.ema_generator, self.generator, self.ema_decay_at(self.step))


def gan_arguments(config):
    """The template's keyword arguments from a GAN config (configs/*.py)."""
    return dict(latent_dim=config.latent_dim, loss=config.loss, gp_weight=config.gp_weight,
                r1_gamma=config.r1_gamma, drift_weight=config.drift_weight, ema_decay=config.ema_decay,
                **augment_arguments(config))


def augment_arguments(config):
    """The augmentation keyword arguments of `GAN` (defaults for configs written before they existed)."""
    return dict(augment=config.get("augment", "none"),
                augment_policy=config.get("augment_policy", diffaugment.DEFAULT_POLICY),
                ada_target=config.get("ada_target", 0.6), ada_interval=config.get("ada_interval", 4),
                ada_kimg=config.get("ada_kimg", 100.0))


def compile_gan(model, config):
    """Compiles `model` with Adam for G and D as the config says; returns it."""
    model.compile(g_optimizer=make_adam(config, config.g_lr), d_optimizer=make_adam(config, config.d_lr),
                  jit_compile=config.jit_compile)
    return model
