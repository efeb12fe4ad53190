"""Feature extractors for KID, FID and the memorisation check: images -> [N, D] float64 features.

An extractor is any callable mapping a batch of images (uint8 [N, H, W, C], or float in
[-1, 1]) to a numpy array [N, D]; `extract_features` feeds it in batches. Built in:

- `InceptionFeatures`: the 2048-d average-pooled output of `keras.applications.InceptionV3`
  (no top), the feature space of FID and KID. Weights follow the VGG16 rules of
  `losses/perceptual.py`: "imagenet" (the Keras cache `$KERAS_HOME/models`, downloaded
  when online; offline without the file a clear error says how to supply it), a local
  weights file of `InceptionV3(include_top=False)`, or "none" (random weights, tests only:
  the numbers then mean nothing). Images are mapped to [-1, 1] (already Inception's input
  range, `keras.applications.inception_v3.preprocess_input`), grey repeated to RGB and
  resized (bilinear, antialiased) to `image_size` (299 standard; >= 75). Under the TensorFlow
  backend the forward pass is a `tf.function`; under the others Keras' `predict_on_batch`.
- `PixelFeatures`: the flattened pixels in [-1, 1] (cheap; a pixel-space memorisation check).
- "shapes": `shapes_judge.ShapesJudge`, the penultimate features of a small classifier of the
  built-in shapes (shipped weights, offline), which also gives kind probabilities.

Keras's ImageNet InceptionV3 is not the 2015 TF graph of the original FID code, so
absolute FID/KID values are comparable between keras_pgen runs, not with papers.
"""
import numpy as np

INCEPTION_NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_NOTOP_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
                       + INCEPTION_NOTOP_FILE)
FEATURE_CHOICES = "imagenet | a weights file path | none (random InceptionV3) | pixels | shapes"


def to_unit_range(images):
    """uint8 [0, 255] -> float32 [-1, 1]; float input is taken to be in [-1, 1] already."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 127.5 - 1.0
    return images.astype(np.float32)


class PixelFeatures:
    """Flattened pixels in [-1, 1] as features (a cheap extractor: tests, pixel-space nearest neighbours)."""

    name = "pixels"

    def __call__(self, images):
        images = to_unit_range(images)
        return images.reshape(len(images), -1).astype(np.float64)


class InceptionFeatures:
    """InceptionV3 pool features (2048-d) of images, for FID and KID.

    Args:
        weights: "imagenet" (default), a path to InceptionV3 no-top weights, or "none" (random).
        image_size: int, default 299. Input side the images are resized to (>= 75).

    Example:
    >>> extractor = InceptionFeatures(weights="none", image_size=75)
    >>> extractor(np.zeros((2, 32, 32, 3), np.uint8)).shape
    (2, 2048)

    Reference: Szegedy et al., https://arxiv.org/abs/1512.00567 (InceptionV3); Heusel et al.,
    https://arxiv.org/abs/1706.08500 (FID).
    """

    name = "inception"

    def __init__(self, weights="imagenet", image_size=299):
        import keras

        from keras_pgen.losses.perceptual import _float32_policy_scope, resolve_weights

        if int(image_size) < 75:
            raise ValueError(f"InceptionV3 needs images of at least 75x75, got image_size={image_size}")
        self.image_size = int(image_size)
        self.weights = weights
        path = resolve_weights(weights, INCEPTION_NOTOP_FILE, INCEPTION_NOTOP_URL, "eval_features")
        with _float32_policy_scope():
            self.model = keras.applications.InceptionV3(
                include_top=False, weights=path, pooling="avg", input_shape=(self.image_size, self.image_size, 3))
        self.model.trainable = False
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            self._forward = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        else:  # JAX: one jitted predict function (no TensorFlow on that path)
            self._forward = self.model.predict_on_batch

    def preprocess(self, images):
        """Images (uint8 or [-1, 1]) -> float32 [N, image_size, image_size, 3] in [-1, 1] (a Keras tensor).

        `keras.ops.image.resize` is `tf.image.resize` under TensorFlow, `jax.image.resize` under JAX.
        """
        from keras import ops

        images = to_unit_range(images)
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        images = ops.convert_to_tensor(images)
        if images.shape[1] != self.image_size or images.shape[2] != self.image_size:
            images = ops.image.resize(images, (self.image_size, self.image_size), "bilinear", antialias=True)
        return ops.clip(images, -1.0, 1.0)

    def __call__(self, images):
        from keras import ops

        return np.asarray(ops.convert_to_numpy(self._forward(self.preprocess(images))), np.float64)


def make_feature_extractor(features="imagenet", image_size=299):
    """An extractor from its name: "pixels", "shapes" (the built-in data's judge), or InceptionV3 weights.

    InceptionV3 weights are "imagenet", a path, or "none"; `image_size` is for InceptionV3 only.
    """
    if callable(features):
        return features
    if features == "pixels":
        return PixelFeatures()
    if features == "shapes":
        from keras_pgen.metrics import shapes_judge

        return shapes_judge.default_judge()
    return InceptionFeatures(weights=features, image_size=image_size)


def extract_features(extractor, images, batch_size=50):
    """Features [N, D] (float64) of `images` (array or a sequence of batches), `batch_size` at a time."""
    batches = ([images[i:i + batch_size] for i in range(0, len(images), batch_size)]
               if hasattr(images, "shape") else images)
    features = [np.asarray(extractor(batch), np.float64) for batch in batches if len(batch)]
    if not features:
        raise ValueError("no images to extract features from")
    return np.concatenate(features).reshape(sum(len(f) for f in features), -1)
