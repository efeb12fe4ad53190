"""TensorBoard event files without TensorFlow (numpy, PIL and the `tensorboard` package only).

The JAX engine runs on machines that have JAX and the `tensorboard` pip package but no
TensorFlow, so it cannot use `tf.summary`. `EventWriter` writes the same records that TF2's
`tf.summary.scalar` / `tf.summary.image` write (a float32 scalar tensor with plugin
"scalars"; a string tensor [width, height, PNG bytes] with plugin "images"), so TensorBoard
and the readers in the tests see no difference.

It frames records with `tensorboard`'s `RecordWriter` on a plain Python file rather than its
`EventFileWriter`: the latter opens files through `tensorboard.compat.tf`, which imports the
real TensorFlow whenever it is installed. Nothing here ever imports TensorFlow.
"""
import io
import itertools
import os
import socket
import time

import numpy as np
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

_file_counter = itertools.count()


def _metadata(plugin_name, data_class):
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin_name), data_class=data_class)


def _shape(*dims):
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


class EventWriter:
    """Writes TensorBoard scalars and images to `logdir` without TensorFlow."""

    def __init__(self, logdir):
        os.makedirs(logdir, exist_ok=True)
        name = "events.out.tfevents.%010d.%s.%d.%d" % (time.time(), socket.gethostname(), os.getpid(),
                                                      next(_file_counter))
        self.path = os.path.join(logdir, name)
        self._writer = RecordWriter(open(self.path, "wb"))
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event):
        self._writer.write(event.SerializeToString())

    def _value(self, tag, tensor, metadata, step):
        value = summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=metadata)
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step),
                                    summary=summary_pb2.Summary(value=[value])))

    def scalar(self, tag, value, step):
        """Writes `value` (a float) as a float32 scalar tensor, as `tf.summary.scalar` does."""
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_shape(),
                                        float_val=[float(value)])
        self._value(tag, tensor, _metadata("scalars", summary_pb2.DATA_CLASS_SCALAR), step)

    def image(self, tag, image, step):
        """Writes a uint8 [H, W, C] (C = 1 or 3) image, PNG-encoded, as `tf.summary.image` does."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
            raise ValueError(f"expected a uint8 [H, W, 1 or 3] image, got {image.dtype} {image.shape}")
        height, width, channels = image.shape
        png = io.BytesIO()
        Image.fromarray(image[..., 0] if channels == 1 else image).save(png, format="PNG")
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_shape(3),
                                        string_val=[str(width).encode(), str(height).encode(), png.getvalue()])
        self._value(tag, tensor, _metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE), step)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()
