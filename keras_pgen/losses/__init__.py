"""Losses as pure functions (pure Keras 3: no TensorFlow import)."""
from keras_pgen.losses.adversarial import *  # noqa: F401,F403
