"""Base class of the functional networks."""
import keras


class ConfigurableModel(keras.Model):
    """A functional model that remembers its constructor arguments for get_config()."""

    def _store_args(self, **args):
        self._init_args = args

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._init_args}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
