"""Base classes of the networks: they remember their constructor arguments for get_config()."""
import keras


class ConfigMixin:
    """get_config()/from_config() from the constructor arguments stored with `_store_args`."""

    def _store_args(self, **args):
        self._init_args = args

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._init_args}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class ConfigurableModel(ConfigMixin, keras.Model):
    """A functional network (built with `super().__init__(inputs, outputs)`).

    Keras turns every ancestor of a functional subclass into `Functional` when the first
    one is built, so networks with their own `call()` must not derive from this class:
    they use `SubclassedModel`.
    """


class SubclassedModel(ConfigMixin, keras.Model):
    """A network with its own `call()` (ProGAN's growing networks), with the same get_config()."""


def penultimate_model(network):
    """`keras.Model(network.input, <the input of its last layer>)`: what a functional network's final
    layer (a discriminator's logit Dense) sees, sharing the network's weights.

    Raises:
        ValueError: `network` is not functional with one output made by its last layer.
    """
    layers = getattr(network, "layers", None)
    outputs = getattr(network, "outputs", None)
    if not layers or not outputs or len(outputs) != 1 or layers[-1].output is not outputs[0]:
        raise ValueError(f"{network.name} is not a functional network with one output made by its last layer")
    return keras.Model(network.input, layers[-1].input, name=f"{network.name}_penultimate")
