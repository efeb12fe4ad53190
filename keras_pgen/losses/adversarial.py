"""Adversarial losses as pure functions of discriminator logits (pure Keras 3).

Every function returns the mean over the batch it is given. Under a
distribution strategy the GAN template gathers the logits of all replicas
first, so the "average" in the relativistic losses is over the global batch,
and divides the result by the number of replicas (see models/gan.py).
"""
import functools

from keras import ops


def _float32(fn):
    """Casts the tensor arguments (or lists of them) to float32: loss math stays float32 under mixed precision."""
    def cast(x):
        if x is None or isinstance(x, (int, float)):
            return x
        if isinstance(x, (list, tuple)):
            return [ops.cast(t, "float32") for t in x]
        return ops.cast(x, "float32")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*[cast(a) for a in args], **{k: cast(v) for k, v in kwargs.items()})

    return wrapper


@_float32
def non_saturating_discriminator_loss(real_logits, fake_logits):
    """-log sigmoid(real) - log(1 - sigmoid(fake)).

    Reference: Goodfellow et al. 2014, https://arxiv.org/abs/1406.2661.
    """
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


@_float32
def non_saturating_generator_loss(fake_logits, real_logits=None):
    """-log sigmoid(fake): the non-saturating generator loss (Goodfellow et al. 2014)."""
    del real_logits
    return ops.mean(ops.softplus(-fake_logits))


@_float32
def hinge_discriminator_loss(real_logits, fake_logits):
    """relu(1 - real) + relu(1 + fake).

    Reference: Lim & Ye, Geometric GAN, https://arxiv.org/abs/1705.02894.
    """
    return ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))


@_float32
def hinge_generator_loss(fake_logits, real_logits=None):
    """-fake: the geometric-GAN generator loss (Lim & Ye 2017)."""
    del real_logits
    return -ops.mean(fake_logits)


@_float32
def wasserstein_discriminator_loss(real_logits, fake_logits):
    """fake - real: the critic loss of WGAN (Arjovsky et al., https://arxiv.org/abs/1701.07875)."""
    return ops.mean(fake_logits) - ops.mean(real_logits)


@_float32
def wasserstein_generator_loss(fake_logits, real_logits=None):
    """-fake: the WGAN generator loss."""
    del real_logits
    return -ops.mean(fake_logits)


def _relativistic_average_hinge(a_logits, b_logits):
    """relu(1 - (a - mean b)) + relu(1 + (b - mean a))."""
    return (ops.mean(ops.relu(1.0 - (a_logits - ops.mean(b_logits))))
            + ops.mean(ops.relu(1.0 + (b_logits - ops.mean(a_logits)))))


@_float32
def relativistic_average_hinge_discriminator_loss(real_logits, fake_logits):
    """Relativistic average hinge loss for D: reals should beat the average fake by 1.

    Reference: Jolicoeur-Martineau, https://arxiv.org/abs/1807.00734; the default
    loss of the public MSG-GAN code.
    """
    return _relativistic_average_hinge(real_logits, fake_logits)


@_float32
def relativistic_average_hinge_generator_loss(fake_logits, real_logits):
    """Relativistic average hinge loss for G: the roles of real and fake swapped."""
    return _relativistic_average_hinge(fake_logits, real_logits)


def _per_sample_sum_of_squares(gradients):
    """Sum of squared gradients per sample, over every tensor in `gradients` (a list for multi-scale D)."""
    if not isinstance(gradients, (list, tuple)):
        gradients = [gradients]
    total = 0.0
    for g in gradients:
        total = total + ops.sum(ops.reshape(ops.square(g), (ops.shape(g)[0], -1)), axis=1)
    return total


@_float32
def gradient_penalty(gradients, target=1.0):
    """mean((||grad||_2 - target)^2): WGAN-GP's penalty on D's input gradients at interpolates.

    Args:
        gradients: tensor or list of tensors, gradients of D's output w.r.t. its
            input(s), batch first. A list (multi-scale inputs) is one vector per sample.
        target: float, default 1.

    Reference: Gulrajani et al., https://arxiv.org/abs/1704.00028.
    """
    norms = ops.sqrt(_per_sample_sum_of_squares(gradients) + 1e-12)
    return ops.mean(ops.square(norms - target))


@_float32
def r1_penalty(gradients):
    """mean(||grad||^2) of D's output w.r.t. real inputs (multiply by gamma / 2).

    Reference: Mescheder et al., https://arxiv.org/abs/1801.04406.
    """
    return ops.mean(_per_sample_sum_of_squares(gradients))


@_float32
def drift_penalty(real_logits):
    """mean(real^2): ProGAN's drift term that keeps critic outputs near zero (weight 0.001)."""
    return ops.mean(ops.square(real_logits))


# name -> (discriminator loss, generator loss, batch-coupled: the generator loss needs real logits
# and the loss is not a mean of per-sample terms, so replicas must see the global batch)
ADVERSARIAL_LOSSES = {
    "ra_hinge": (relativistic_average_hinge_discriminator_loss, relativistic_average_hinge_generator_loss, True),
    "ns": (non_saturating_discriminator_loss, non_saturating_generator_loss, False),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss, False),
    "wgan": (wasserstein_discriminator_loss, wasserstein_generator_loss, False),
    "wgan_gp": (wasserstein_discriminator_loss, wasserstein_generator_loss, False),
}


def get_adversarial_loss(name):
    """Returns (d_loss_fn, g_loss_fn, batch_coupled) for a loss name."""
    if name not in ADVERSARIAL_LOSSES:
        raise ValueError(f"unknown adversarial loss {name!r}; choose from {sorted(ADVERSARIAL_LOSSES)}")
    return ADVERSARIAL_LOSSES[name]
