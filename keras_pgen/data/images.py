"""Image files: listing folders, globs and zips, decoding with PIL, resizing, storage."""

import concurrent.futures
import glob
import io
import os
import tempfile
import threading
import zipfile
import zlib

import numpy as np
from absl import logging
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
RESIZE_MODES = ("crop", "pad", "stretch")
_MAX_NAMED = 10


def is_image_name(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(spec):
    """Lists the images of a folder (recursively), a glob pattern, a zip file or one image.

    Args:
      spec: str, the path of a folder, image or `.zip` file, or a glob pattern (`**` allowed).

    Returns:
      `(root, names, open_fn)`: the folder, the pattern's fixed prefix or the zip file; the
      sorted image paths relative to it ("/"-separated, hidden files left out); a function
      mapping a name to what `PIL.Image.open` reads.

    Raises:
      FileNotFoundError: `spec` is neither a pattern nor an existing path.
      ValueError: no image was found, or a `.zip` file is not a readable zip (the error names it).
    """
    if any(c in spec for c in "*?["):
        root = _fixed_prefix(spec)
        names = [os.path.relpath(p, root) for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
    elif not os.path.exists(spec):
        raise FileNotFoundError(f"no such image file, folder or zip: {spec!r}")
    elif os.path.isdir(spec):
        root = spec
        names = [os.path.relpath(os.path.join(d, f), spec) for d, _, files in os.walk(spec) for f in files]
    elif spec.lower().endswith(".zip"):
        return _list_zip(spec)
    else:
        root, names = os.path.dirname(spec), [os.path.basename(spec)]
    names = _image_names(spec, names)
    return root, names, lambda name: os.path.join(root, name)


def _image_names(spec, names):
    """The sorted image names, leaving out hidden files and folders (".x", macOS "__MACOSX")."""
    names = sorted(n.replace(os.sep, "/") for n in names)
    hidden = lambda name: any(p.startswith(".") or p == "__MACOSX" for p in name.split("/"))  # noqa: E731
    names = [n for n in names if is_image_name(n) and not hidden(n)]
    if not names:
        raise ValueError(f"no images found in {spec!r} (searched for {', '.join(IMAGE_EXTENSIONS)}, any case)")
    return names


def _fixed_prefix(pattern):
    first = min(pattern.index(c) for c in "*?[" if c in pattern)
    return os.path.dirname(pattern[:first]) or "."


def _list_zip(path):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as error:  # not a zip, truncated, unreadable
        raise ValueError(f"cannot read the zip file {path!r}: {error}") from None
    lock = threading.Lock()

    def open_fn(name):
        with lock:
            try:
                return io.BytesIO(archive.read(name))
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:  # a damaged member
                raise ValueError(f"cannot read {name} from the zip file {path!r}: {error}") from None

    return path, _image_names(path, [i.filename for i in archive.infolist() if not i.is_dir()]), open_fn


def labels_from_names(names):
    """Labels from first-level sub-folder names, when at least 2 sub-folders hold images.

    Returns:
      `(labels int32 [n], class_names)`; all zeros and `[]` when unlabelled. Images at the
      top level of a labelled folder get the class ".".
    """
    firsts = [n.split("/")[0] if "/" in n else "." for n in names]
    class_names = sorted(set(firsts))
    if len(set(firsts) - {"."}) < 2:
        return np.zeros(len(names), np.int32), []
    lookup = {c: i for i, c in enumerate(class_names)}
    return np.array([lookup[f] for f in firsts], np.int32), class_names


def to_array(image, resolution, channels, resize_mode="crop"):
    """Converts a PIL image to uint8 `[resolution, resolution, channels]` (or full size).

    Args:
      image: PIL.Image, any mode (L, LA, RGB, RGBA, P, CMYK, I;16, I, F...).
      resolution: int or None; None keeps the size.
      channels: 1 (luminance) or 3 (RGB). Transparency is composited onto white.
      resize_mode: "crop" (centre-crop to square), "pad" (pad with black to square) or
        "stretch".
    """
    image = _to_mode(image, "L" if channels == 1 else "RGB")
    if resolution is not None:
        image = resize_square(image, resolution, resize_mode)
    array = np.asarray(image, np.uint8)
    return array.reshape(array.shape[0], array.shape[1], channels)


def from_array(array):
    """A PIL image from a uint8 array `[h, w]` or `[h, w, 1|3|4]`."""
    return Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array)


def _to_mode(image, mode):
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, np.float64)
        scale = 257.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 1.0
        image = Image.fromarray(np.clip(values / scale, 0, 255).astype(np.uint8), "L")
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return image if image.mode == mode else image.convert(mode)


def decode_file(source, resolution, channels, resize_mode="crop"):
    """Decodes an image file (path or file object) with PIL; see `to_array`."""
    with Image.open(source) as image:
        return to_array(image, resolution, channels, resize_mode)


def resize_square(image, resolution, resize_mode="crop"):
    """Makes a PIL image square (`resize_mode`) and resizes it to `resolution`."""
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize_mode {resize_mode!r}; choose from {RESIZE_MODES}")
    w, h = image.size
    side = min(w, h) if resize_mode == "crop" else max(w, h)
    if resize_mode == "crop" and w != h:
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
    elif resize_mode == "pad" and w != h:
        canvas = Image.new(image.mode, (side, side))
        canvas.paste(image, ((side - w) // 2, (side - h) // 2))
        image = canvas
    if image.size != (resolution, resolution):
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return image


def iter_converted(convert_fn, items, chunk_size=32):
    """Applies `convert_fn` to `items` (a list or array) in a thread pool, in chunks; yields the
    results (or the exception raised) in order."""

    def safe(item):
        try:
            return convert_fn(item)
        except Exception as e:  # noqa: BLE001 - any unreadable file is skipped and reported.
            return e

    chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        for results in pool.map(lambda chunk: [safe(item) for item in chunk], chunks):
            yield from results


def warn_skipped(names):
    """Logs one warning line naming (at most 10 of) the skipped images."""
    if names:
        shown = ", ".join(names[:_MAX_NAMED])
        more = f" and {len(names) - _MAX_NAMED} more" if len(names) > _MAX_NAMED else ""
        logging.warning("skipped %d unreadable image(s): %s%s", len(names), shown, more)


def allocate(count, shape, cache_dir=None, cache_max_bytes=2**31):
    """A uint8 array `[count, *shape]`: in memory, or a temporary `np.memmap` under `cache_dir`
    (default: the system temporary folder) when larger than `cache_max_bytes`."""
    shape = (count, *shape)
    if np.prod(shape, dtype=np.int64) <= cache_max_bytes:
        return np.empty(shape, np.uint8)
    folder = cache_dir or tempfile.gettempdir()
    os.makedirs(folder, exist_ok=True)
    logging.info("storing %s uint8 images in a memory-mapped file under %s", shape, folder)
    return np.memmap(tempfile.TemporaryFile(dir=folder), np.uint8, "w+", shape=shape)


def convert_all(convert_fn, items, names, shape, cache_dir=None, cache_max_bytes=2**31):
    """Converts all items in parallel into one uint8 array; skips (and reports) failures.

    Args:
      convert_fn: item -> uint8 array of `shape`.
      items: sequence of inputs; names: their names, for the warning.
      shape: the shape of one converted image.
      cache_dir, cache_max_bytes: see `allocate`.

    Returns:
      `(images, kept)`: the converted images and the indices of the items they came from.
    """
    out = allocate(len(items), shape, cache_dir, cache_max_bytes)
    kept, failed = [], []
    for i, array in enumerate(iter_converted(convert_fn, items)):
        if isinstance(array, Exception):
            failed.append((names[i], array))
        else:
            out[len(kept)] = array
            kept.append(i)
    check_failures(failed, len(items))
    return out[: len(kept)], np.array(kept, np.int64)


def check_failures(failed, total):
    """Warns about the `(name, exception)` pairs in `failed`; raises when all `total` failed."""
    warn_skipped([name for name, _ in failed])
    if failed and len(failed) == total:
        name, error = failed[0]
        raise ValueError(f"none of the {total} image(s) could be read; {name}: {type(error).__name__}: {error}")
