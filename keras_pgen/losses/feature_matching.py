"""Feature-matching losses of the adversarial autoencoders (VAE-GAN, DeePSiM), as pure functions.

- `discriminator_feature_distance`: seed 001's perceptual distance through a jointly trained
  discriminator: the squared differences of real and reconstructed images' activations,
  summed over every element of every discriminator layer, per sample.
- `discriminator_accuracy`: the fraction of real and fake images D classifies right.
- `discriminator_update_allowed`: DeePSiM's rule that pauses the discriminator while it is
  too strong (the ratio of its loss to the generator's adversarial loss, or its accuracy).

DeePSiM's three-part loss, lambda_pix * pixel + lambda_feat * feature + lambda_adv * adversarial,
is assembled from named terms by the models (models/autoencoder.py's `loss_terms` gives the
pixel, feature and KL terms, models/vae_gan.py adds the adversarial one), so that every term
is logged on its own. Pure Keras 3 (keras.ops only).

References: mauicv, "Perceptual loss for VAEs" and https://github.com/mauicv/vaegan (seed 001);
Dosovitskiy & Brox, Generating Images with Perceptual Similarity Metrics based on Deep
Networks, https://arxiv.org/abs/1602.02644 (DeePSiM, seed 004).
"""
from keras import ops

from keras_pgen.losses.perceptual import squared_l2_distance

PAUSE_RULES = ("none", "ratio", "accuracy")


def discriminator_feature_distance(real_features, fake_features, layer_weights=None, reduction="sum"):
    """Per-sample distance of two lists of discriminator activations: [N].

    sum over layers l of w_l * sum over the elements of layer l of (real_l - fake_l)^2,
    as in seed 001's `loss(critic, x, y)` (every layer's activations flattened per sample,
    squared differences summed).

    Args:
        real_features, fake_features: lists of tensors [N, ...] (one per layer, same shapes).
        layer_weights: optional sequence of floats, one per layer (default 1).
        reduction: "sum" (default, seed 001: grows with a layer's size) or "mean" (each
            layer's mean squared difference, so every layer counts alike).

    Returns:
        float32 tensor [N].

    Example:
    >>> d = discriminator_feature_distance(disc.features(x), disc.features(recon))  # [N]
    """
    if len(real_features) != len(fake_features):
        raise ValueError(f"{len(real_features)} vs {len(fake_features)} feature maps")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"unknown reduction {reduction!r}; choose from ['mean', 'sum']")
    weights = list(layer_weights) if layer_weights else [1.0] * len(real_features)
    if len(weights) != len(real_features):
        raise ValueError(f"{len(weights)} layer weights for {len(real_features)} feature maps")
    total = 0.0
    for w, a, b in zip(weights, real_features, fake_features):
        total = total + float(w) * squared_l2_distance(a, b, reduction=reduction)
    return total


def discriminator_accuracy(real_logits, fake_logits):
    """Fraction of the batch the discriminator classifies right (real > 0, fake < 0)."""
    real = ops.cast(ops.greater(real_logits, 0.0), "float32")
    fake = ops.cast(ops.less(fake_logits, 0.0), "float32")
    return 0.5 * (ops.mean(real) + ops.mean(fake))


def discriminator_update_allowed(rule, threshold, d_loss=None, g_adversarial_loss=None, accuracy=None):
    """Whether the discriminator may be updated this step (DeePSiM's pause of a too-strong D).

    - "none": always.
    - "ratio" (the paper's): update unless d_loss / g_adversarial_loss < threshold (0.1 in
      most of the paper's experiments). A strong D has a small loss while the generator's
      adversarial loss -log D(G(x)) is large. Needs positive losses (the "ns" GAN loss).
    - "accuracy": update unless D's accuracy on the batch > threshold (e.g. 0.95).

    The inputs must be the same on every replica (global-batch means): then every replica
    takes the same decision and 1 and N replicas train alike.

    Args:
        rule: str, one of `PAUSE_RULES`.
        threshold: float.
        d_loss, g_adversarial_loss: scalar tensors (rule "ratio").
        accuracy: scalar tensor in [0, 1] (rule "accuracy").

    Returns:
        bool scalar tensor.

    Reference: Dosovitskiy & Brox 2016, Sec. 3 (training details), https://arxiv.org/abs/1602.02644.
    """
    if rule == "none":
        return ops.convert_to_tensor(True)
    if rule == "ratio":
        d_loss = ops.cast(d_loss, "float32")
        g_adversarial_loss = ops.cast(g_adversarial_loss, "float32")
        # d / g >= t  <=>  d >= t * g for g > 0; written without a division so g = 0 is safe
        return ops.greater_equal(d_loss, float(threshold) * g_adversarial_loss)
    if rule == "accuracy":
        return ops.less_equal(ops.cast(accuracy, "float32"), float(threshold))
    raise ValueError(f"unknown discriminator pause rule {rule!r}; choose from {list(PAUSE_RULES)}")
