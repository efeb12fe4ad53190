"""keras_pgen: train image generators on small data sets with Keras 3 and serve them."""

__version__ = "0.1.0"
