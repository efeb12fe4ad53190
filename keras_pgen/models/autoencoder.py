"""`Autoencoder`: the shared base of vae, vae_gan, deepsim and cond_decoder.

One training step is
    logs = before_update(data)                      # hook: e.g. a discriminator update
    with GradientTape:
        outputs = forward(data, training=True)      # decoder inputs -> "reconstructions"
        terms = loss_terms(data, outputs)           # name -> weighted per-sample [N] (or scalar) loss
        loss = sum(mean(term)); scaled = loss / num_replicas()
    ae_optimizer.apply(grads of autoencoder_variables())
    logs.update(after_update(data, outputs))       # hook: e.g. a discriminator update after the AE's
    step += 1
so a method adds a discriminator by overriding `loss_terms` (call super() and add e.g. an
"adversarial" term), `before_update`/`after_update`, `loss_names`, `compile`,
`checkpoint_items` and `optimizers`, without copying the loop.

Losses (per sample, then averaged over the replica's batch; see `reconstruction_terms`):
- pixel: `pixel_weight * mean over pixels of (x - x')**2` ("mse") or `|x - x'|` ("l1");
- perceptual: `perceptual_weight * feature_distance(C(x), C(x'))` through a comparator C
  (VGG16, a frozen random conv net, or a subclass's `comparator_features`);
- kl (VAEs): `kl_weight * min(1, step / kl_warmup_steps) * gaussian_kl(mean, log_variance)`
  (summed over the code). With the per-pixel mean MSE, kl_weight = 2 s**2 / (H W C) is the
  ELBO of a Gaussian decoder with variance s**2.

Distribution: every term is a per-sample loss averaged over this replica's samples, and the
sum is divided by the number of replicas inside the tape (the optimizer sums gradients over
replicas). The reparameterisation noise `eps` comes from the input pipeline (`noise_spec`),
never from keras.random inside the step.
"""
import keras
from keras import ops

from keras_pgen import engines
from keras_pgen.losses import perceptual
from keras_pgen.losses.kl import gaussian_kl
from keras_pgen.models import base
from keras_pgen.models.base import Method
from keras_pgen.networks.autoencoder import Decoder, Encoder

PIXEL_LOSSES = ("mse", "l1", "none")
COMPARATORS = ("vgg", "random_conv")


def pixel_distance(a, b, kind="mse"):
    """Per-sample pixel distance [N]: mean squared ("mse") or mean absolute ("l1") difference."""
    if kind == "mse":
        return perceptual.squared_l2_distance(a, b)
    if kind == "l1":
        return perceptual.l1_distance(a, b)
    raise ValueError(f"unknown pixel loss {kind!r}; choose from {list(PIXEL_LOSSES)}")


class Autoencoder(Method):
    """Shared autoencoder model: encoder (optional), decoder, reconstruction + KL losses, one optimizer.

    Args:
        encoder: `Encoder` (or any model images -> [mean, log_variance] with a `variational`
            attribute), or None for decoder-only methods (cond_decoder, feature inversion),
            which override `forward`.
        decoder: `Decoder` (code -> images in [-1, 1]).
        pixel_loss: str, default "mse". "mse", "l1" or "none".
        pixel_weight: float, default 1.
        perceptual_weight: float, default 0. Weight of the comparator's feature distance.
        comparator: callable images in [-1, 1] -> list of feature maps (e.g. a
            `VGGFeatureExtractor`), needed when perceptual_weight > 0 unless a subclass
            overrides `comparator_features` (frozen: not trained here).
        perceptual_distance: str, default "l2". "l2", "l1" or "gram" (`feature_distance`).
        perceptual_layer_weights: sequence of floats or None (default: the comparator's
            `layer_weights`, else 1 per layer).
        kl_weight: float, default 1e-3. Used when the encoder is variational.
        kl_warmup_steps: int, default 0. The KL weight grows linearly from 0 over this many
            steps (0: full weight from the start).

    Example:
    >>> model = VAE(Encoder(16, 8, base_filters=8), Decoder(16, 8, base_filters=8), kl_weight=1e-3)
    >>> model.compile(ae_optimizer=keras.optimizers.Adam(1e-3))

    Reference: Kingma & Welling, https://arxiv.org/abs/1312.6114; Dosovitskiy & Brox,
    https://arxiv.org/abs/1602.02644 (pixel + feature losses).
    """

    def __init__(self, encoder, decoder, pixel_loss="mse", pixel_weight=1.0, perceptual_weight=0.0,
                 comparator=None, perceptual_distance="l2", perceptual_layer_weights=None, kl_weight=1e-3,
                 kl_warmup_steps=0, **kwargs):
        if pixel_loss not in PIXEL_LOSSES:
            raise ValueError(f"unknown pixel_loss {pixel_loss!r}; choose from {list(PIXEL_LOSSES)}")
        if perceptual_distance not in perceptual.DISTANCES:
            raise ValueError(f"unknown perceptual_distance {perceptual_distance!r}; "
                             f"choose from {list(perceptual.DISTANCES)}")
        if (perceptual_weight > 0 and comparator is None
                and type(self).comparator_features is Autoencoder.comparator_features):
            raise ValueError("perceptual_weight > 0 needs a comparator (images -> list of feature maps)")
        code_shape = tuple(int(d) for d in decoder.inputs[0].shape[1:])
        variational = bool(encoder is not None and getattr(encoder, "variational", False))
        super().__init__(latent_dim=code_shape[0] if variational and len(code_shape) == 1 else None, **kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.code_shape = code_shape
        self.variational = variational
        self.pixel_loss = pixel_loss
        self.pixel_weight = float(pixel_weight) if pixel_loss != "none" else 0.0
        self.perceptual_weight = float(perceptual_weight)
        self.comparator = comparator if perceptual_weight > 0 else None
        self.perceptual_distance = perceptual_distance
        if perceptual_layer_weights is None and self.comparator is not None:
            perceptual_layer_weights = getattr(self.comparator, "layer_weights", None)
        self.perceptual_layer_weights = list(perceptual_layer_weights) if perceptual_layer_weights else None
        self.kl_weight = float(kl_weight) if variational else 0.0
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.track(self.loss_names())
        self.built = True  # sub-networks are built; a wrapper without a functional graph must say so

    # ---- hooks: what gets logged, what gets trained --------------------------------------------
    def loss_names(self):
        """Names of the tracked values: "loss", each active loss term, and what the update hooks log.

        A subclass adding terms or logs extends this and calls `self.track(self.loss_names())`
        again at the end of its `__init__`.
        """
        names = ["loss"]
        names += [n for n, w in (("pixel", self.pixel_weight), ("perceptual", self.perceptual_weight),
                                 ("kl", self.kl_weight)) if w > 0]
        return names

    def autoencoder_variables(self):
        """The variables the autoencoder optimizer trains (encoder, if any, and decoder)."""
        networks = [self.encoder, self.decoder] if self.encoder is not None else [self.decoder]
        return [v for n in networks for v in n.trainable_variables]

    def noise_spec(self):
        """The reparameterisation noise `eps` [code_shape] per sample (VAEs), drawn by the pipeline."""
        return {"eps": ("normal", self.code_shape)} if self.variational else {}

    # ---- hooks: the forward pass -----------------------------------------------------------------
    def encode(self, images, training=False):
        """(mean, log_variance) of the posterior; (code, None) for a deterministic encoder."""
        outputs = self.encoder(images, training=training)
        if self.variational:
            mean, log_variance = outputs
            return mean, log_variance
        return outputs, None

    @staticmethod
    def reparameterize(mean, log_variance, eps):
        """z = mean + exp(log_variance / 2) * eps, eps ~ N(0, I) given (Kingma & Welling)."""
        return mean + ops.exp(0.5 * log_variance) * eps

    def forward(self, data, training=False):
        """The decoder's inputs and outputs for a batch.

        Returns a dict with "reconstructions" (images in [-1, 1]), "z" (the decoder's input)
        and, for an encoder, "mean" and "log_variance" (None when deterministic). z is
        sampled with `data["eps"]` when the model is variational and eps is present (the
        training batches), else it is the posterior mean (previews, export).
        """
        mean, log_variance = self.encode(data["images"], training=training)
        if log_variance is not None:  # float32 sampling and KL under mixed precision
            mean, log_variance = ops.cast(mean, "float32"), ops.cast(log_variance, "float32")
        z = mean
        if self.variational and "eps" in data:
            z = self.reparameterize(mean, log_variance, data["eps"])
        return {"mean": mean, "log_variance": log_variance, "z": z,
                "reconstructions": self.decoder(z, training=training)}

    def targets(self, data):
        """What the reconstructions are compared with: the input images."""
        return data["images"]

    def comparator_features(self, images):
        """Feature maps the perceptual term compares (the comparator's; a subclass may use its D)."""
        return self.comparator(images)

    # ---- hooks: the loss -------------------------------------------------------------------------
    def kl_weight_at(self, step):
        """kl_weight * min(1, step / kl_warmup_steps) (kl_weight when there is no warm-up)."""
        if self.kl_warmup_steps <= 0:
            return ops.convert_to_tensor(self.kl_weight, "float32")
        ramp = ops.minimum(1.0, ops.cast(step, "float32") / float(self.kl_warmup_steps))
        return self.kl_weight * ramp

    def reconstruction_terms(self, targets, reconstructions):
        """Weighted per-sample reconstruction losses: {"pixel": [N], "perceptual": [N]} (active ones)."""
        terms = {}
        reconstructions = ops.cast(reconstructions, "float32")
        if self.pixel_weight > 0:
            terms["pixel"] = self.pixel_weight * pixel_distance(targets, reconstructions, self.pixel_loss)
        if self.perceptual_weight > 0:
            distance = perceptual.feature_distance(
                self.comparator_features(targets), self.comparator_features(reconstructions),
                self.perceptual_layer_weights, self.perceptual_distance)
            terms["perceptual"] = self.perceptual_weight * distance
        return terms

    def loss_terms(self, data, outputs):
        """All weighted loss terms of the autoencoder update: name -> per-sample [N] or a scalar.

        A scalar must already be this replica's mean (it is added as is). The default is the
        reconstruction terms plus "kl" for VAEs.
        """
        terms = self.reconstruction_terms(self.targets(data), outputs["reconstructions"])
        if self.kl_weight > 0:
            terms["kl"] = self.kl_weight_at(self.step) * gaussian_kl(outputs["mean"], outputs["log_variance"])
        return terms

    def before_update(self, data):
        """Runs before the autoencoder update (e.g. a discriminator step); returns values to log."""
        return {}

    def after_update(self, data, outputs):
        """Runs after the autoencoder update with that step's outputs; returns values to log."""
        return {}

    # ---- set-up ------------------------------------------------------------------------------
    def compile(self, ae_optimizer, **kwargs):
        """Builds the optimizer now, so checkpoints restore its slots (resumed Adam state)."""
        super().compile(optimizer=None, **kwargs)
        self.ae_optimizer = ae_optimizer
        ae_optimizer.build(self.autoencoder_variables())

    def checkpoint_items(self):
        """Everything a resumed run needs, for tf.train.Checkpoint (frozen comparators are rebuilt)."""
        items = {"decoder": self.decoder, "ae_optimizer": self.ae_optimizer, "step": self.step}
        if self.encoder is not None:
            items["encoder"] = self.encoder
        return items

    def optimizers(self):
        return {"ae": self.ae_optimizer}

    def call(self, images, training=False):
        """Reconstructions of `images` through the posterior mean."""
        return self.forward({"images": images}, training=training)["reconstructions"]

    def preview(self, batch):
        """"reconstructions": each tile is an input (left) next to its reconstruction (right);
        "samples" (VAEs): decodings of prior samples (the fixed preview latents when flat)."""
        outputs = self.forward({k: v for k, v in batch.items() if k != "eps"}, training=False)
        targets = ops.convert_to_tensor(self.targets(batch), "float32")
        previews = {"reconstructions": ops.concatenate(
            [targets, ops.cast(outputs["reconstructions"], "float32")], axis=2)}
        if self.variational:
            z = batch.get("z")
            if z is None or tuple(z.shape[1:]) != self.code_shape:
                z = keras.random.normal((int(targets.shape[0]), *self.code_shape), seed=7919)
            previews["samples"] = self.decoder(z, training=False)
        return previews

    def export_to(self, export_dir, name, metadata):
        """Exports encoder and decoder with the autoencoder signatures (`export.export_autoencoder`)."""
        if self.encoder is None:
            raise NotImplementedError(f"{type(self).__name__} has no encoder: override export_to")
        from keras_pgen import export as export_lib  # TensorFlow's SavedModel: imported only to export

        return export_lib.export_autoencoder(self.encoder, self.decoder, export_dir, name,
                                             variational=self.variational, method=metadata.get("method"),
                                             metadata=metadata)

    # ---- training ----------------------------------------------------------------------------
    def train_updates(self, data):
        logs = dict(self.before_update(data))

        def loss():
            outputs = self.forward(data, training=True)
            terms = {name: ops.mean(term) for name, term in self.loss_terms(data, outputs).items()}
            return sum(terms.values()), (terms, outputs)

        loss, (terms, outputs) = engines.minimize(self.ae_optimizer, self.autoencoder_variables(), loss)
        logs.update(self.after_update(data, outputs))
        self.step.assign_add(1)
        return {"loss": loss, **terms, **logs}


# ---- building from a config (configs/vae.py and the methods built on this base) ------------------
def network_arguments(config):
    """Keyword arguments shared by `Encoder` and `Decoder`, from an `autoencoder_config()`."""
    return dict(resolution=config.resolution, base_filters=config.base_filters, max_filters=config.max_filters,
                image_channels=config.channels, convs_per_block=config.convs_per_block,
                code_resolution=config.code_resolution or None, pixel_norm=config.pixel_norm)


def build_encoder(config, variational=None):
    """`Encoder` of the config (variational: default config.variational)."""
    variational = config.variational if variational is None else variational
    return Encoder(latent_dim=config.latent_dim, variational=variational, name="encoder", **network_arguments(config))


def build_decoder(config, latent_dim=None, code_resolution=None):
    """`Decoder` of the config (latent_dim: default config.latent_dim; code_resolution: the config's)."""
    args = network_arguments(config)
    if code_resolution is not None:
        args["code_resolution"] = code_resolution or None
    return Decoder(latent_dim=latent_dim or config.latent_dim, output_activation=config.output_activation,
                   upsample=config.upsample, name="decoder", **args)


def build_comparator(config):
    """The frozen perceptual comparator of the config, or None when perceptual_weight is 0.

    "vgg": `VGGFeatureExtractor(config.perceptual_layers, config.vgg_weights)` (with
    `config.perceptual_layer_weights`); "random_conv": the block features of a frozen,
    randomly initialised `Encoder` with `config.comparator_filters` channels at full
    resolution. Measured on Olivetti faces (notes): random VGG16 relu1_2 makes VAE
    reconstructions ~3x sharper than MSE; random_conv (LeakyReLU(0.2), nearly linear, so
    nearly an L2 in a linear transform of pixel space) only ~1.2x. Methods with other
    comparators (a discriminator's features) override `Autoencoder.comparator_features`.
    """
    if config.perceptual_weight <= 0:
        return None
    layer_weights = list(config.perceptual_layer_weights) or None
    if config.comparator == "vgg":
        return perceptual.VGGFeatureExtractor(list(config.perceptual_layers), weights=config.vgg_weights,
                                              layer_weights=layer_weights, input_channels=config.channels)
    if config.comparator == "random_conv":
        encoder = Encoder(config.resolution, 1, base_filters=config.comparator_filters,
                          max_filters=max(config.comparator_filters, config.max_filters),
                          image_channels=config.channels, variational=False, name="comparator")
        features = encoder.feature_extractor(name="random_conv_features")
        features.trainable = False
        features.layer_weights = layer_weights
        return features
    raise ValueError(f"unknown comparator {config.comparator!r}; choose from {list(COMPARATORS)}")


def autoencoder_arguments(config):
    """The base's keyword arguments (losses, comparator, KL) from an `autoencoder_config()`."""
    return dict(pixel_loss=config.pixel_loss, pixel_weight=config.pixel_weight,
                perceptual_weight=config.perceptual_weight, comparator=build_comparator(config),
                perceptual_distance=config.perceptual_distance,
                perceptual_layer_weights=list(config.perceptual_layer_weights) or None,
                kl_weight=config.kl_weight, kl_warmup_steps=config.kl_warmup_steps)


def compile_autoencoder(model, config):
    """Compiles an `Autoencoder` with the config's Adam; returns it."""
    model.compile(ae_optimizer=base.make_adam(config, config.lr), jit_compile=config.jit_compile)
    return model
