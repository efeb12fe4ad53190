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


BACKENDS = ("tensorflow", "jax")


def select_backend(backend=None):
    """The training engine's backend: `backend`, else $KERAS_BACKEND, else "tensorflow".

    Keras reads KERAS_BACKEND once, when it is first imported: this sets it when Keras is not
    imported yet, and otherwise checks that Keras runs the backend asked for.

    Raises:
        ValueError: an unknown backend, or Keras already imported with another one.
    """
    import os
    import sys

    backend = backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {list(BACKENDS)}")
    if "keras" in sys.modules:
        running = sys.modules["keras"].backend.backend()
        if running != backend:
            raise ValueError(f"Keras was imported with the {running!r} backend; to train with {backend!r}, set "
                             f"KERAS_BACKEND={backend} before importing keras or keras_pgen's models "
                             "(a new process or notebook kernel)")
    else:
        os.environ["KERAS_BACKEND"] = backend
    return backend


def train(config, workdir, strategy=None, verbose=1, backend=None):
    """Trains or resumes `config` in `workdir`.

    backend: "tensorflow" (`keras_pgen.training.train`, the default) or "jax"
    (`keras_pgen.engines.jax_trainer.train`, for GPUs; needs no TensorFlow); default
    $KERAS_BACKEND. `strategy` (a tf.distribute strategy) is TensorFlow's; under JAX,
    `config.strategy` chooses one or all local devices.

    Raises:
        ValueError: a config field with an impossible value (`keras_pgen.config.validate`,
            checked before anything is loaded or built), an empty `workdir`, an unknown backend.
    """
    from keras_pgen import config as config_lib

    config_lib.validate(config)
    if not workdir:
        raise ValueError(f"workdir must be a non-empty path, got {workdir!r}")
    if select_backend(backend) == "jax":
        from keras_pgen.engines import jax_trainer

        return jax_trainer.train(config, workdir, verbose=verbose)
    from keras_pgen import training

    return training.train(config, workdir, strategy=strategy, verbose=verbose)


def load_generator(path):
    """Loads an exported generator (a version dir or a model dir: its highest version)."""
    from keras_pgen import export

    return export.load_generator(path)
