"""Process memory settings for serving large generators (no TensorFlow import)."""
import ctypes
import ctypes.util

# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

DEFAULT_MMAP_THRESHOLD = 128 * 1024


def return_large_buffers_to_os(threshold_bytes=DEFAULT_MMAP_THRESHOLD):
    """Makes glibc serve allocations of at least `threshold_bytes` with mmap, so freeing them unmaps them.

    glibc raises its mmap threshold each time a large mmapped buffer is freed (up to 32 MiB),
    after which buffers of that size come from the heap and stay resident when freed; a
    1024x1024 generator's megabyte-sized activations then pile up in the heap (about 90 MiB
    of the exported faces1024 ProGAN's peak). A fixed threshold keeps them out of it, at a
    price: every large buffer is mapped afresh and its pages faulted in, which made that
    generator ~2x slower on a 2-core CPU (README, "Measured"). The same as the environment
    variables `MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072` (for TF Serving,
    which is not a Python process). Call it early, before the model is loaded.

    Returns:
        bool: True if applied; False where the C library is not glibc (nothing is changed).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    threshold = int(threshold_bytes)
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
