"""DCGAN-style generator and discriminator (Radford et al., https://arxiv.org/abs/1511.06434)."""
import keras

from keras_pgen.networks.blocks import resolutions
from keras_pgen.networks.base import ConfigurableModel


NORMS = ("batch", "none")


def _check_norm(norm):
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose from {list(NORMS)}")


def _norm(x, norm, name):
    if norm == "none":
        return x
    # synchronized (TensorFlow only): moving statistics stay equal across replicas (DESIGN.md).
    sync = keras.backend.backend() == "tensorflow"
    return keras.layers.BatchNormalization(synchronized=sync, momentum=0.9, name=name)(x)


@keras.saving.register_keras_serializable(package="keras_pgen")
class DCGANGenerator(ConfigurableModel):
    """DCGAN generator: dense to 4x4, stride-2 transposed convs, tanh output.

    Args:
        latent_dim: int. Size of z.
        resolution: int. Output resolution, a power of two >= 4.
        base_filters: int, default 64. Filters at the last upsampling block;
            doubled at every lower resolution, capped at `max_filters`.
        max_filters: int, default 512.
        image_channels: int, default 3.
        norm: str, default "batch". "batch" (synchronized batch norm) or "none".

    Example:
    >>> g = DCGANGenerator(latent_dim=16, resolution=16, base_filters=8)
    >>> g(keras.random.normal((2, 16))).shape  # (2, 16, 16, 3)

    Reference: Radford et al., https://arxiv.org/abs/1511.06434.
    """

    def __init__(self, latent_dim, resolution, base_filters=64, max_filters=512, image_channels=3,
                 norm="batch", **kwargs):
        _check_norm(norm)
        n_up = len(resolutions(resolution)) - 1
        filters = lambda i: min(max_filters, base_filters * 2 ** (n_up - i))  # i-th upsampling input
        z = keras.Input((latent_dim,), name="z")
        x = keras.layers.Dense(16 * filters(0), use_bias=norm == "none", name="dense")(z)
        x = keras.layers.Reshape((4, 4, filters(0)))(x)
        x = keras.layers.ReLU()(_norm(x, norm, "dense_norm"))
        for i in range(n_up):
            x = keras.layers.Conv2DTranspose(filters(i + 1), 4, strides=2, padding="same",
                                             use_bias=norm == "none", name=f"up{i}")(x)
            x = keras.layers.ReLU()(_norm(x, norm, f"up{i}_norm"))
        image = keras.layers.Conv2D(image_channels, 3, padding="same", activation="tanh", name="to_rgb")(x)
        super().__init__(inputs=z, outputs=image, **kwargs)
        self._store_args(latent_dim=latent_dim, resolution=resolution, base_filters=base_filters,
                         max_filters=max_filters, image_channels=image_channels, norm=norm)
        self.latent_dim = latent_dim
        self.resolution = resolution


@keras.saving.register_keras_serializable(package="keras_pgen")
class DCGANDiscriminator(ConfigurableModel):
    """DCGAN discriminator: stride-2 convs with LeakyReLU(0.2) down to 4x4, then one logit.

    Args:
        resolution: int. Input resolution, a power of two >= 4.
        base_filters: int, default 64. Filters of the first conv, doubled per
            halving, capped at `max_filters`.
        max_filters: int, default 512.
        image_channels: int, default 3.
        norm: str, default "batch". Applied after every conv but the first.

    Example:
    >>> d = DCGANDiscriminator(resolution=16, base_filters=8)
    >>> d(keras.ops.zeros((2, 16, 16, 3))).shape  # (2, 1)

    Reference: Radford et al., https://arxiv.org/abs/1511.06434.
    """

    def __init__(self, resolution, base_filters=64, max_filters=512, image_channels=3, norm="batch", **kwargs):
        _check_norm(norm)
        n_down = len(resolutions(resolution)) - 1
        image = keras.Input((resolution, resolution, image_channels), name="image")
        x = image
        for i in range(n_down):
            x = keras.layers.Conv2D(min(max_filters, base_filters * 2**i), 4, strides=2, padding="same",
                                    use_bias=i == 0 or norm == "none", name=f"down{i}")(x)
            x = _norm(x, norm, f"down{i}_norm") if i > 0 else x
            x = keras.layers.LeakyReLU(negative_slope=0.2)(x)
        logits = keras.layers.Dense(1, name="logit")(keras.layers.Flatten()(x))
        super().__init__(inputs=image, outputs=logits, **kwargs)
        self._store_args(resolution=resolution, base_filters=base_filters, max_filters=max_filters,
                         image_channels=image_channels, norm=norm)
        self.resolution = resolution
