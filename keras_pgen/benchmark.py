"""Benchmarks behind bin/benchmark: each task measures one thing and returns a JSON-able dict.

    bin/benchmark --task=generate --method=progan --preset=faces1024

`TASKS` maps a task name to a function taking keyword options and returning a dict;
`run_task(name, **options)` runs one and prints its result as one JSON line. To add a
task, write `def my_task(method, preset, **options) -> dict` and register it in `TASKS`.

generate: builds the method's model from its config with RANDOM weights (the speed and
memory of a generator do not depend on its weight values), grows it to its final shape
(the last stage of its schedule), exports it with the method's exporter to a temporary
directory, then times the exported SavedModel's `serving_default` (z -> uint8 images and
PNG bytes, what TF Serving runs) on the CPU. Each batch size is timed in a FRESH
subprocess, so the peak resident memory reported (VmHWM) belongs to loading and
serving that batch only, not to building the training model.
"""
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = """
import os, sys
sys.path.insert(0, {repo!r})
from keras_pgen.benchmark import time_exported_generator  # imports only TensorFlow
import json
print("BENCHMARK_RESULT " + json.dumps(time_exported_generator({path!r}, {batch}, {repeats}, {threads})))
"""


def _memory_mb():
    """(VmRSS, RssAnon, VmHWM) of this process in MiB: resident pages, those not backed by files, peak resident.

    Importing TensorFlow alone makes ~700 MiB resident, mostly its shared libraries'
    pages (RssFile, shared between processes); RssAnon is the memory the model and its
    activations really allocate.
    """
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024.0
    return tuple(values.get(k, float("nan")) for k in ("VmRSS", "RssAnon", "VmHWM"))


class _PeakAnonSampler:
    """Samples RssAnon every few milliseconds in a thread and keeps the maximum."""

    def __init__(self, interval=0.002):
        import threading

        self.interval, self.peak = interval, _memory_mb()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _memory_mb()[1])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def time_exported_generator(path, batch_size, repeats=5, intra_op_threads=0):
    """Times `serving_default` of the exported generator at `path` in THIS process (a fresh one).

    Imports only TensorFlow (what a Python server needs), loads the SavedModel, makes one
    warm-up call (tracing, graph optimisation, allocations; excluded) and reports the
    median of `repeats` timed calls.

    Returns:
        dict: seconds_per_image, seconds_per_batch (median), runs; peak_rss_mb (VmHWM:
        everything resident, TensorFlow's libraries included; not ru_maxrss, which on Linux
        also counts the RSS of the parent process at fork time), rss_after_import_mb
        (TensorFlow imported, nothing loaded), peak_anon_mb (sampled RssAnon peak while
        loading and serving), intra_op_threads.
    """
    import time

    import numpy as np
    import tensorflow as tf

    if intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(intra_op_threads))
    rss_after_import = _memory_mb()[0]
    with _PeakAnonSampler() as sampler:
        serve = tf.saved_model.load(path).signatures["serving_default"]
        latent_dim = serve.structured_input_signature[1]["z"].shape[-1]
        z = tf.constant(np.random.RandomState(0).randn(batch_size, latent_dim).astype(np.float32))
        out = serve(z=z)
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = serve(z=z)
            _ = out["images"].numpy(), out["png_bytes"].numpy()
            runs.append(time.perf_counter() - start)
    median = float(np.median(runs))
    return {"batch_size": batch_size, "seconds_per_image": round(median / batch_size, 4),
            "seconds_per_batch": round(median, 4), "runs": [round(r, 4) for r in runs],
            "peak_rss_mb": round(_memory_mb()[2], 1),
            "rss_after_import_mb": round(rss_after_import, 1), "peak_anon_mb": round(sampler.peak, 1),
            "intra_op_threads": int(intra_op_threads) or tf.config.threading.get_intra_op_parallelism_threads(),
            "image_shape": list(out["images"].shape[1:])}


def _time_in_subprocess(path, batch_size, repeats, intra_op_threads, xla):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    if xla:  # XLA auto-clustering of the loaded graph on the CPU (the PNG encoder stays outside)
        env["TF_XLA_FLAGS"] = (env.get("TF_XLA_FLAGS", "") + " --tf_xla_auto_jit=2 --tf_xla_cpu_global_jit").strip()
    code = _CHILD.format(repo=REPO, path=path, batch=int(batch_size), repeats=int(repeats),
                         threads=int(intra_op_threads))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCHMARK_RESULT "):
            return json.loads(line[len("BENCHMARK_RESULT "):])
    raise RuntimeError(f"timing subprocess failed (exit {proc.returncode}): {proc.stderr[-2000:]}")


def _count(network):
    return int(sum(int(w.numpy().size) for w in network.trainable_weights + network.non_trainable_weights)) \
        if network is not None else None


def build_final_model(method, preset, overrides=()):
    """The method's model for `preset` (random weights), grown to the last stage of its schedule."""
    import keras_pgen
    from keras_pgen import config as config_lib
    from keras_pgen import registry

    config = keras_pgen.get_config(method, preset)
    config_lib.apply_overrides(config, list(overrides))
    model = registry.build_model(config)
    stages = model.stages(config.total_steps, config.batch_size)
    model.prepare(stages[-1].start_step)  # ProGAN: the final resolution, alpha 1; a no-op for the others
    return config, model


def generate_task(method="progan", preset="default", batch_sizes=(1, 8), repeats=5, intra_op_threads=0, xla=False,
                  overrides=()):
    """Seconds per image and peak resident memory of the exported generator on the CPU (see module doc)."""
    config, model = build_final_model(method, preset, overrides)
    generator = model.export_generator()
    discriminator = getattr(model, "discriminator", None)
    params = {"generator_params": _count(generator), "discriminator_params": _count(discriminator)}
    print(f"{method}/{preset}: generator {params['generator_params']:,} parameters"
          + (f", discriminator {params['discriminator_params']:,}" if discriminator is not None else ""),
          file=sys.stderr, flush=True)
    tmp = tempfile.mkdtemp(prefix="keras_pgen_benchmark_")
    try:
        path = model.export_to(tmp, method, {"method": method, "step": 0, "weights": "random"})
        del model, generator, discriminator
        with open(os.path.join(path, "keras_pgen.json")) as f:
            export_jit = json.load(f).get("jit_compile", False)
        load_before = os.getloadavg()[0]
        timings = {f"batch_{b}": _time_in_subprocess(path, b, repeats, intra_op_threads, xla) for b in batch_sizes}
        export_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"task": "generate", "method": method, "preset": preset, "resolution": config.resolution,
            "weights": "random", **params, "savedmodel_mb": round(export_mb, 1), "export_jit_compile": export_jit,
            "xla_auto_jit": bool(xla), **timings,
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(),
                        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}}


TASKS = {"generate": generate_task}


def run_task(name, **options):
    """Runs TASKS[name](**options), prints its result as one JSON line and returns it."""
    if name not in TASKS:
        raise ValueError(f"unknown benchmark task {name!r}; choose from {sorted(TASKS)}")
    result = TASKS[name](**options)
    print(json.dumps(result), flush=True)
    return result
