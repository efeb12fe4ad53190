"""Shared building blocks (pure Keras 3: no TensorFlow import)."""
from keras_pgen.layers.equalized import EqualizedConv2D, EqualizedDense
from keras_pgen.layers.normalization import MinibatchStdDev, PixelNormalization
