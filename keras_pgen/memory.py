"""Process memory settings for serving large generators (no TensorFlow import)."""
import ctypes
import ctypes.util

# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

DEFAULT_MMAP_THRESHOLD = 128 * 1024


def _mallopt(*settings):
    """Applies glibc `mallopt(option, value)` for each (option, value); False if any fails or not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all([bool(mallopt(option, int(value))) for option, value in settings])


def limit_malloc_arenas(arenas=1):
    """Makes glibc's malloc use at most `arenas` heaps for all threads (`MALLOC_ARENA_MAX`).

    glibc gives threads their own heaps (arenas, up to 8 per core); each keeps the memory
    its thread freed for that thread's next allocations. TensorFlow's inter- and intra-op
    threads each allocate activations, so the freed space is spread over several heaps and
    the resident peak is higher than one heap's. With one, the 1024x1024 ProGAN export
    peaked 30-40 MB lower at the same speed (README, "Measured"). The same as the
    environment variable `MALLOC_ARENA_MAX=1` (for TF Serving). Call it before TensorFlow
    starts its threads.

    Returns:
        bool: True if applied; False where the C library is not glibc (nothing is changed).
    """
    return _mallopt((_M_ARENA_MAX, arenas))


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
    return _mallopt((_M_MMAP_THRESHOLD, threshold_bytes), (_M_TRIM_THRESHOLD, threshold_bytes))
