"""Exponential moving average of a network's weights (the EMA generator every generative method samples).

Shared by the GAN template (models/gan.py) and PGen (models/pgen.py).
"""
import keras


def ema_decay_at(step, ema_decay):
    """min(ema_decay, (1 + step) / (10 + step)): the warm-up of tf.train.ExponentialMovingAverage.

    Without it, a 0.999 EMA of a short run mostly shows the random initial weights.
    """
    step = keras.ops.cast(step, "float32")
    return keras.ops.minimum(ema_decay, (1.0 + step) / (10.0 + step))


def update_ema(ema_network, network, decay):
    """ema = decay * ema + (1 - decay) * weights; non-trainable weights (BN statistics, frozen buffers) are copied."""
    trainable = {id(v) for v in network.trainable_weights}
    for ema_w, w in zip(ema_network.weights, network.weights):
        if id(w) in trainable:
            ema_w.assign(w + decay * (ema_w - w))
        else:
            ema_w.assign(w)
