"""One keras.Model per method, with its train_step (TensorFlow-specific)."""
from keras_pgen.models.dcgan import DCGAN
from keras_pgen.models.gan import GAN
from keras_pgen.models.msg_gan import MSGGAN
