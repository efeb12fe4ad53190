"""Helpers of the engine tests: run tests/engines/engine_script.py under one backend, compare checkpoints.

Keras runs one backend per process and this pytest process runs TensorFlow, so every JAX
side runs in a subprocess. JAX compiles slowly on a CPU (each eager initializer of a new
shape is an XLA compilation), so the subprocesses share a persistent compilation cache (a
fixed folder per user under the temp dir, ~5 MB: across the subprocesses, xdist workers and
later sessions; a fresh machine pays the compilations once, ~2 CPU-minutes more) that caches
every compilation (no JAX_COMPILATION_CACHE_MAX_SIZE: without the `filelock` package, JAX 0.10
then writes nothing), and compile with LLVM's optimisation off
(`--xla_backend_optimization_level=0`: the same HLO, 3-5x faster to compile on this CPU;
these steps are tiny, so their run time does not matter).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "engine_script.py")
JAX_CACHE = os.path.join(tempfile.gettempdir(), f"keras_pgen_test_jax_cache_{os.getuid()}")
FAST_XLA = "--xla_backend_optimization_level=0"


def backend_env(backend, devices=None):
    """The environment of a subprocess that runs Keras on `backend` (JAX: the shared compilation cache)."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join(p for p in [REPO, os.environ.get("PYTHONPATH")] if p)}
    if backend == "jax":
        env.update(JAX_COMPILATION_CACHE_DIR=JAX_CACHE, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", JAX_PLATFORMS="cpu")
        flags = [FAST_XLA] + ([f"--xla_force_host_platform_device_count={devices}"] if devices else [])
        env["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", "")] + flags).strip()
    return env


def run_script(backend, *args, devices=None, timeout=400, cwd=None):
    """Runs engine_script.py `args` under `backend`; fails the test with its output when it fails."""
    result = subprocess.run([sys.executable, SCRIPT, *map(str, args)], env=backend_env(backend, devices),
                            capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO)
    assert result.returncode == 0, (f"engine_script.py {args[0]} ({backend}) failed with {result.returncode}:\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def result_line(output):
    """The JSON of the script's `RESULT {...}` line."""
    import json

    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, output[-3000:]
    return json.loads(lines[0][len("RESULT "):])


def read_checkpoint(file):
    from keras_pgen import checkpoints

    return checkpoints.read(str(file))


def assert_same_checkpoint(a, b, rtol, atol=0.0):
    """Every array of checkpoint `a` (items, arrays) equals `b`'s: |a - b| <= atol + rtol * max|a| per array.

    Relative to each array's own largest magnitude, so Adam's second moments (~grad**2, often
    1e-10) are compared at their own scale; integer arrays (step and iteration counters) exactly.
    Returns {key: the error relative to that bound} for reporting.
    """
    (items_a, arrays_a), (items_b, arrays_b) = a, b
    assert sorted(items_a) == sorted(items_b)
    for name in items_a:
        assert [s for _, s in items_a[name]] == [s for _, s in items_b[name]], name
    assert arrays_a.keys() == arrays_b.keys()
    ratios = {}
    for key in arrays_a:
        x, y = arrays_a[key], arrays_b[key]
        assert x.shape == y.shape, key
        if x.dtype.kind in "iub":
            np.testing.assert_array_equal(x.astype(np.int64), y.astype(np.int64), err_msg=key)
            continue
        x, y = x.astype(np.float64), y.astype(np.float64)
        bound = atol + rtol * float(np.max(np.abs(x), initial=0.0))
        error = float(np.max(np.abs(x - y), initial=0.0))
        name = items_a[key.split("/")[0]][int(key.split("/")[1])][0]
        assert error <= bound, f"{key} ({name}): max |a - b| = {error:.3g} > {bound:.3g}"
        ratios[key] = error / bound if bound else 0.0
    return ratios


def largest_change(before, after):
    """max |after - before| over the float arrays of two checkpoints (arrays dicts)."""
    return max(float(np.max(np.abs(after[k].astype(np.float64) - before[k].astype(np.float64)), initial=0.0))
               for k in before if before[k].dtype.kind == "f")
