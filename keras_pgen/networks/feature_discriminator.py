"""A discriminator that also returns its intermediate activations (VAE-GAN, DeePSiM)."""
import keras

from keras_pgen.layers import EqualizedDense, MinibatchStdDev
from keras_pgen.networks import blocks


@keras.saving.register_keras_serializable(package="keras_pgen")
class FeatureDiscriminator(keras.Model):
    """Convolutional discriminator whose every layer's activations serve as a perceptual metric.

    fromRGB, then one `blocks.discriminator_block` (two 3x3 convs, 2x2 average pooling) per
    halving down to 4x4, then a 3x3 conv, a 4x4 valid conv and a dense logit; equalized
    learning rate and LeakyReLU(0.2) throughout (the MSG-GAN / ProGAN blocks). `call`
    returns the logits [N, 1]; `features(images)` the activations of every layer (fromRGB,
    each block, both head convs), the list seed 001's loss compares; `features_and_logits`
    both from one pass.

    A subclassed model around a functional body (not a `ConfigurableModel`: Keras turns
    every subclass of a class used as a functional model into a functional class, and this
    one has a `call`); it stores its arguments and round-trips `get_config()` the same way.

    No batch norm and, by default, no minibatch-stddev layer: every activation of a sample
    depends on that sample alone, so the feature distance is a per-sample loss (replicas
    need no gathering) and reconstructions are compared with their own originals only.

    Args:
        resolution: int. Input resolution, a power of two >= 4.
        fmap_base: int, default 1024. Channels at resolution r: min(fmap_max, fmap_base / 2**(log2 r - 1)).
        fmap_max: int, default 256.
        image_channels: int, default 3.
        mbstd_group_size: int, default 0 (off). >0 adds ProGAN's minibatch stddev before
            the head (it couples the samples of a group).

    Example:
    >>> d = FeatureDiscriminator(resolution=16, fmap_base=64, fmap_max=32)
    >>> x = keras.ops.zeros((2, 16, 16, 3))
    >>> d(x).shape, [f.shape for f in d.features(x)]  # (2, 1), 5 maps: 16, 8, 4, 4, 1

    Reference: mauicv, vaegan (seed 001), https://github.com/mauicv/vaegan; layers of
    Karras et al., ProGAN, https://arxiv.org/abs/1710.10196.
    """

    def __init__(self, resolution, fmap_base=1024, fmap_max=256, image_channels=3, mbstd_group_size=0, **kwargs):
        super().__init__(**kwargs)
        nf = lambda r: blocks.num_filters(r, fmap_base, fmap_max)
        res = blocks.resolutions(resolution)
        image = keras.Input((resolution, resolution, image_channels), name="image")
        x = blocks.from_rgb(image, nf(resolution), name=f"from_rgb_{resolution}")
        features = [x]
        for r in res[:0:-1]:  # resolution .. 8
            x = blocks.discriminator_block(x, nf(r), nf(r // 2), name=f"d{r}")
            features.append(x)
        if mbstd_group_size > 0:
            x = MinibatchStdDev(mbstd_group_size)(x)
        x = blocks.conv_lrelu(x, nf(4), name="d4_conv")
        features.append(x)
        x = blocks.conv_lrelu(x, nf(4), kernel_size=4, padding="valid", name="d4_conv_valid")
        features.append(x)
        logits = EqualizedDense(1, gain=1.0, name="d4_logit")(keras.layers.Flatten()(x))
        self.body = keras.Model(image, features + [logits], name="body")
        self._init_args = dict(resolution=resolution, fmap_base=fmap_base, fmap_max=fmap_max,
                               image_channels=image_channels, mbstd_group_size=mbstd_group_size)
        self.resolution = resolution
        self.num_features = len(features)
        self.build((None, resolution, resolution, image_channels))

    def build(self, input_shape):
        self.built = True  # the functional body is built in __init__

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._init_args}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def features_and_logits(self, images, training=False):
        """(list of the activations of every layer, logits [N, 1]) from one pass."""
        outputs = self.body(images, training=training)
        return list(outputs[:-1]), outputs[-1]

    def features(self, images, training=False):
        """The activations of every layer, input side first: fromRGB, each block, both head convs."""
        return self.features_and_logits(images, training=training)[0]

    def call(self, images, training=False):
        return self.body(images, training=training)[-1]
