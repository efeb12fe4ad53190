"""One keras.Model per method, with its train_step (TensorFlow-specific)."""
from keras_pgen.models.dcgan import DCGAN
from keras_pgen.models.gan import GAN
from keras_pgen.models.msg_gan import MSGGAN
from keras_pgen.models.progan import ProGAN
from keras_pgen.models.autoencoder import Autoencoder
from keras_pgen.models.cond_decoder import ConditionalDecoder
from keras_pgen.models.vae import VAE
from keras_pgen.models.pgen import PGen
