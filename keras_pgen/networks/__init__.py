"""Generators, discriminators, encoders and decoders (pure Keras 3: no TensorFlow import)."""
from keras_pgen.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from keras_pgen.networks.msg_gan import MSGGANDiscriminator, MSGGANGenerator
from keras_pgen.networks.autoencoder import Decoder, Encoder
from keras_pgen.networks.style import StyleGenerator
from keras_pgen.networks.progan import ProGANDiscriminator, ProGANGenerator
