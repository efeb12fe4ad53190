"""`--method=cond_decoder`: seed 002's "naive approach", a decoder from a class label to an image.

Trained with a pixel (or perceptual) loss against every image of the class, it can only
output one image per label, and under the MSE that is the class's average: the blurred
"eerie mask" that seed 002 shows, the baseline the generative methods beat.
"""
from keras import ops

from keras_pgen import engines
from keras_pgen.models.autoencoder import Autoencoder, autoencoder_arguments, build_decoder, compile_autoencoder


class ConditionalDecoder(Autoencoder):
    """Decoder of one-hot class labels, trained to reproduce the images of each label.

    Batches carry integer "labels" (`uses_labels`); the decoder sees `one_hot(labels)`.
    Labels outside [0, num_classes) stop training with an InvalidArgumentError naming
    `num_classes` (set --config.num_classes to the data set's class count).

    Args:
        decoder: `Decoder` with latent_dim == num_classes.
        num_classes: int.
        **kwargs: the reconstruction-loss arguments of `Autoencoder` (no KL: no encoder).

    Example:
    >>> model = ConditionalDecoder(Decoder(16, 7, base_filters=8), num_classes=7)
    >>> model.compile(ae_optimizer=keras.optimizers.Adam(1e-3))

    Reference: seed 002 ("Naive Approach"); a reversed classifier.
    """

    uses_labels = True

    def __init__(self, decoder, num_classes, **kwargs):
        kwargs["kl_weight"] = 0.0
        super().__init__(None, decoder, **kwargs)
        self.num_classes = int(num_classes)
        if self.code_shape != (self.num_classes,):
            raise ValueError(f"the decoder takes {self.code_shape}, not one-hot labels of {self.num_classes} classes")

    def one_hot(self, labels):
        labels = engines.check_range(labels, self.num_classes,
                                     f"labels must be in [0, num_classes={self.num_classes}); set "
                                     "--config.num_classes to the data's class count")
        return ops.one_hot(labels, self.num_classes, dtype="float32")

    def check_source(self, source):
        if source.num_classes > self.num_classes:
            raise ValueError(f"the data has {source.num_classes} classes but num_classes={self.num_classes}: set "
                             f"--config.num_classes={source.num_classes}")

    def forward(self, data, training=False):
        z = self.one_hot(data["labels"])
        return {"z": z, "mean": None, "log_variance": None, "reconstructions": self.decoder(z, training=training)}

    def call(self, labels, training=False):
        """Images for integer `labels` [N]."""
        return self.forward({"labels": labels}, training=training)["reconstructions"]

    def preview(self, batch):
        """"reconstructions": a real image (left) next to the decoding of its label (right);
        "classes": the decoding of every class in order."""
        previews = super().preview(batch)
        previews["classes"] = self(ops.arange(self.num_classes, dtype="int32"))
        return previews

    def export_to(self, export_dir, name, metadata):
        """serving_default: labels int32 [N] -> images, png_bytes (`export.export_conditional_decoder`)."""
        from keras_pgen import export as export_lib  # TensorFlow's SavedModel: imported only to export

        return export_lib.export_conditional_decoder(self.decoder, export_dir, name, num_classes=self.num_classes,
                                                     method=metadata.get("method"), metadata=metadata)


def build_model(config):
    """ConditionalDecoder from configs/cond_decoder.py (call inside the strategy scope)."""
    decoder = build_decoder(config, latent_dim=config.num_classes, code_resolution=0)
    arguments = autoencoder_arguments(config)
    arguments.pop("kl_weight")
    arguments.pop("kl_warmup_steps")
    return compile_autoencoder(ConditionalDecoder(decoder, config.num_classes, **arguments), config)
