"""keras_pgen: train image generators on small data sets with Keras 3 and serve them.

Notebook use, no flags needed:

    import keras_pgen
    config = keras_pgen.get_config("msg_gan", "default")
    config.data = "/kaggle/input/celeba/img_align_celeba"
    keras_pgen.train(config, "runs/msg_gan")
    generator = keras_pgen.load_generator("saved_models/msg_gan")
    images = generator.sample(16, seed=0)
"""

__version__ = "0.1.0"


def get_config(method, preset="default"):
    """The ConfigDict of configs/<method>.py for `preset`."""
    from keras_pgen import config

    return config.get_config(method, preset)


def train(config, workdir, strategy=None, verbose=1):
    """Trains or resumes `config` in `workdir` (see keras_pgen.training.train)."""
    from keras_pgen import training

    return training.train(config, workdir, strategy=strategy, verbose=verbose)


def load_generator(path):
    """Loads an exported generator (a version dir or a model dir: its highest version)."""
    from keras_pgen import export

    return export.load_generator(path)
