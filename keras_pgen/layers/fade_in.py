"""ProGAN's fade-in: the linear blend of an old and a new path while a block is grown in."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_pgen")
class FadeIn(keras.layers.Layer):
    """Blends two tensors of the same shape: `old + alpha * (new - old)`.

    alpha = 0 gives the old path (the previous resolution), alpha = 1 the new block;
    ProGAN raises alpha linearly from 0 to 1 over a transition phase.

    Args: none besides the base Layer's. Called as `FadeIn()([old, new], alpha)` with
        `alpha` a float or a scalar tensor/variable.

    Example:
    >>> FadeIn()([keras.ops.zeros((1, 4)), keras.ops.ones((1, 4))], 0.25)  # all 0.25

    Reference: Karras et al., https://arxiv.org/abs/1710.10196 (section 3, figure 2).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True  # no weights: built from the start (a strategy's symbolic build checks every layer)

    def call(self, inputs, alpha):
        old, new = inputs
        alpha = ops.cast(alpha, old.dtype)
        return old + alpha * (new - old)

    def compute_output_shape(self, input_shape):
        return input_shape[0]
