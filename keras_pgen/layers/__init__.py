"""Shared building blocks (pure Keras 3: no TensorFlow import)."""
from keras_pgen.layers.equalized import EqualizedConv2D, EqualizedDense
from keras_pgen.layers.normalization import MinibatchStdDev, PixelNormalization
from keras_pgen.layers.fade_in import FadeIn
from keras_pgen.layers.style import AdaIN, LearnedConstant, ModulatedConv2D, NoiseInjection, ProjectedNoise
from keras_pgen.layers.upscale import UpscaleConv2D
