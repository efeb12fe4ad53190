"""`--method=deepsim` (seed 004; Dosovitskiy & Brox 2016): pixel + feature + adversarial losses.

The generator loss is DeePSiM's three-part sum

    pixel_weight * pixel(x, G(.))  +  perceptual_weight * ||C(x) - C(G(.))||^2  +  adversarial_weight * -log D(G(.))
    (lambda_pix)                      (lambda_feat; C: the comparator)              (lambda_adv)

(+ kl_weight * KL for the VAE) for three generators, chosen by `config.mode`:
- "autoencoder": a plain, deterministic autoencoder (the paper's 8x8x8 spatial code: set
  `code_resolution`);
- "vae": a VAE (the same loss replaces the VAE's reconstruction term, the KL term stays);
- "inversion": a decoder that reconstructs images from a FIXED network's features at one
  layer (the paper inverts AlexNet; here VGG16 at `inversion_layer`, e.g. relu3_3). The
  frozen network is the encoder: it is never trained, and it is exported with the decoder.

The comparator (`comparator`) is "vgg" (VGG16 layers `perceptual_layers`: in the paper the
comparator is the same fixed network as the one inverted), "discriminator" (the jointly
trained D's features), "encoder" (the model's own encoder) or "random_conv". The discriminator
is paused while it is too strong (`d_pause_rule`, see `losses.feature_matching`); whether it
was updated is logged as `d_updated` (its mean over a log interval: the fraction of steps).

All of it is `vae_gan.AdversarialAutoencoder` (the shared loop, discriminator step and pause);
this module adds the feature-inversion generator and the config wiring.
"""
import keras

from keras_pgen.losses.perceptual import VGGFeatureExtractor
from keras_pgen.models.autoencoder import build_decoder, build_encoder
from keras_pgen.models.vae_gan import (AdversarialAutoencoder, adversarial_arguments, build_discriminator,
                                       compile_adversarial)

MODES = ("autoencoder", "vae", "inversion")


class DeePSiM(AdversarialAutoencoder):
    """DeePSiM autoencoder or VAE: `AdversarialAutoencoder` with the paper's GAN loss and D pause.

    Defaults of `build_model`: adversarial_loss "ns" (the standard GAN loss of the paper),
    d_pause_rule "ratio" with threshold 0.1 (the paper stops updating D while
    L_discr / L_adv < 0.1), comparator "vgg".

    Reference: Dosovitskiy & Brox, Generating Images with Perceptual Similarity Metrics based
    on Deep Networks, https://arxiv.org/abs/1602.02644.
    """


class FeatureInversion(DeePSiM):
    """DeePSiM's inversion of a fixed network: features of a frozen network -> decoder -> image.

    Args:
        feature_network: keras.Model images in [-1, 1] -> one feature map [N, r, r, C],
            frozen (never trained; checkpointed all the same, so that a model restored from a
            workdir has the same network even with random weights).
        decoder: `Decoder` with a spatial code [r, r, C].
        discriminator: `FeatureDiscriminator`.
        **kwargs: `AdversarialAutoencoder` arguments.

    Example:
    >>> net = inversion_network(16, 3, "relu3_3", weights="none")          # [N, 4, 4, 256]
    >>> model = FeatureInversion(net, Decoder(16, 256, code_resolution=4), FeatureDiscriminator(16))

    Reference: Dosovitskiy & Brox 2016, Sec. 4.3 (inverting AlexNet), https://arxiv.org/abs/1602.02644.
    """

    def __init__(self, feature_network, decoder, discriminator, **kwargs):
        super().__init__(None, decoder, discriminator, **kwargs)
        self.feature_network = feature_network
        self.feature_network.trainable = False

    def forward(self, data, training=False):
        code = self.feature_network(data["images"], training=False)
        return {"mean": None, "log_variance": None, "z": code,
                "reconstructions": self.decoder(code, training=training)}

    def checkpoint_items(self):
        """The base's items plus the frozen network: random weights (vgg_weights none) are not rebuilt alike."""
        return {**super().checkpoint_items(), "feature_network": self.feature_network}

    def export_to(self, export_dir, name, metadata):
        """The autoencoder signatures with the frozen network as the (deterministic) encoder.

        serving_default/reconstruct: images -> images; encode: images -> {"mean": the
        feature map [N, r, r, C]}; decode: feature map "z" -> images. No `sample`.
        """
        from keras_pgen import export as export_lib  # TensorFlow's SavedModel: imported only to export

        return export_lib.export_autoencoder(
            self.feature_network, self.decoder, export_dir, name, variational=False,
            method=metadata.get("method"),
            metadata={**metadata, "mode": "inversion", "feature_network": self.feature_network.name})


def inversion_network(resolution, channels, layer, weights):
    """Frozen VGG16 cut at `layer` as a functional model images [-1, 1] -> that layer's activations."""
    images = keras.Input((resolution, resolution, channels), name="images")
    extractor = VGGFeatureExtractor([layer], weights=weights, input_channels=channels, name="vgg16")
    features = extractor(images)[0]
    model = keras.Model(images, features, name=f"vgg16_{layer}")
    model.trainable = False
    return model


def build_model(config):
    """DeePSiM (config.mode autoencoder | vae) or FeatureInversion (inversion) from configs/deepsim.py."""
    if config.mode not in MODES:
        raise ValueError(f"unknown deepsim mode {config.mode!r}; choose from {list(MODES)}")
    discriminator = build_discriminator(config)
    if config.mode == "inversion":
        network = inversion_network(config.resolution, config.channels, config.inversion_layer, config.vgg_weights)
        r, _, c = network.outputs[0].shape[1:]
        if r < 4:
            raise ValueError(f"inversion_layer {config.inversion_layer!r} is {r}x{r} at resolution "
                             f"{config.resolution}; the decoder needs >= 4x4: use an earlier layer or larger images")
        decoder = build_decoder(config, latent_dim=int(c), code_resolution=int(r))
        model = FeatureInversion(network, decoder, discriminator, **adversarial_arguments(config, None))
    else:
        encoder = build_encoder(config, variational=config.mode == "vae")
        model = DeePSiM(encoder, build_decoder(config), discriminator, **adversarial_arguments(config, encoder))
    return compile_adversarial(model, config)
