"""keras_pgen.data: training image sources and the tf.data input pipeline.

A `Source` is an indexable, deterministic set of square uint8 images (plain numpy);
`load_source(spec, resolution)` builds one from the built-in generated shapes, a folder,
glob or zip of images, a keras or TFDS data set, or patches of large images;
`make_train_dataset(source, batch_size)` turns it into an infinite, resumable tf.data
pipeline of batches.
"""

from keras_pgen.data.base import ArraySource, Source, dataset_info, looks_grey
from keras_pgen.data.images import IMAGE_EXTENSIONS, RESIZE_MODES
from keras_pgen.data.patches import PatchesSource
from keras_pgen.data.shapes import ShapesSource
from keras_pgen.data.sources import load_source



def make_train_dataset(*args, **kwargs):
    """The tf.data pipeline of the TensorFlow engine (`keras_pgen.data.pipeline`; imports TensorFlow)."""
    from keras_pgen.data.pipeline import make_train_dataset as make

    return make(*args, **kwargs)


__all__ = ["ArraySource", "IMAGE_EXTENSIONS", "PatchesSource", "RESIZE_MODES", "ShapesSource", "Source",
           "dataset_info", "load_source", "looks_grey", "make_train_dataset"]
