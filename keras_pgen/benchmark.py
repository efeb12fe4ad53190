"""Benchmarks behind bin/benchmark: each task measures one thing and returns a JSON-able dict.

    bin/benchmark --task=generate --method=progan --preset=faces1024
    bin/benchmark --task=train --method=msg_gan --preset=bench64 --torch_python=/tmp/torchref/bin/python
    bin/benchmark --task=pipeline --method=msg_gan --preset=bench64

`TASKS` maps a task name to a function taking keyword options and returning a dict;
`run_task(name, **options)` runs one and prints its result as one JSON line. To add a
task, write `def my_task(method, preset, **options) -> dict` and register it in `TASKS`.

generate: builds the method's model from its config with RANDOM weights (the speed and
memory of a generator do not depend on its weight values), grows it to its final shape
(the last stage of its schedule), exports it with the method's exporter to a temporary
directory, then times the exported SavedModel's `serving_default` (z -> uint8 images and
PNG bytes, what TF Serving runs) on the CPU. Each batch size is timed in a FRESH
subprocess, so the peak resident memory reported (VmHWM) belongs to loading and
serving that batch only, not to building the training model. `serving_python` runs that
subprocess with another interpreter, e.g. a virtual environment with only keras_pgen's own
dependencies, as a server would have (`import tensorflow` also imports every optional
package it finds: JAX, which the test extras install, alone adds ~100 MB; README, "Measured").
"""
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = """
import os, sys
sys.path.insert(0, {repo!r})
from keras_pgen import memory
mmap_threshold = {mmap} if {mmap} and memory.return_large_buffers_to_os({mmap}) else 0  # before TensorFlow loads
arenas = {arenas} if {arenas} and memory.limit_malloc_arenas({arenas}) else 0  # before TensorFlow's threads
from keras_pgen.benchmark import time_exported_generator  # imports only TensorFlow
import json
result = time_exported_generator({path!r}, {batch}, {repeats}, {threads}, {inter})
print("BENCHMARK_RESULT " + json.dumps({{**result, "malloc_mmap_threshold": mmap_threshold, "malloc_arenas": arenas}}))
"""


# Packages outside keras_pgen's dependencies that `import tensorflow` imports when they are
# installed (tf.lite imports JAX; Keras imports IPython, pandas, matplotlib, scikit-learn).
_OPTIONAL_PACKAGES = ("jax", "IPython", "pandas", "matplotlib", "sklearn", "scipy", "torch")


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


def time_exported_generator(path, batch_size, repeats=5, intra_op_threads=0, inter_op_threads=0):
    """Times `serving_default` of the exported generator at `path` in THIS process (a fresh one).

    Imports only TensorFlow (what a Python server needs), loads the SavedModel, makes one
    warm-up call (tracing, graph optimisation, allocations; excluded) and reports the
    median of `repeats` timed calls.

    Returns:
        dict: seconds_per_image, seconds_per_batch (median), runs; peak_rss_mb (VmHWM:
        everything resident, TensorFlow's libraries included; not ru_maxrss, which on Linux
        also counts the RSS of the parent process at fork time), rss_after_import_mb
        (TensorFlow imported, nothing loaded), peak_anon_mb (sampled RssAnon peak while
        loading and serving), intra_op_threads, inter_op_threads.

    `inter_op_threads` (default 0: TensorFlow's default, one per core) is how many graph
    ops may run at once. With several, independent parts of the graph (the first and last
    strips, the middle strips' loop, the fade-in's two paths) may run side by side and their
    activations are alive together; with 1, one op at a time (each convolution still uses
    every core through the intra-op threads). Measured on faces1024 when all 8 strips were
    written out (README): 10-90 MB less peak, and from as fast to 1.4x slower, run to run.
    TF Serving's flag is `--tensorflow_inter_op_parallelism`.
    """
    import time

    import numpy as np
    import tensorflow as tf

    if intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(intra_op_threads))
    if inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(int(inter_op_threads))
    rss_after_import = _memory_mb()[0]
    with _PeakAnonSampler() as sampler:
        serve = tf.saved_model.load(path).signatures["serving_default"]
        latent_dim = serve.structured_input_signature[1]["z"].shape[-1]
        z = tf.constant(np.random.RandomState(0).randn(batch_size, latent_dim).astype(np.float32))
        out = serve(z=z)
        runs = []
        for _ in range(repeats):
            out = None  # the previous response is sent and gone, as in a server
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
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),  # as set; 0: TF's default
            "image_shape": list(out["images"].shape[1:]), "python": sys.executable,
            "modules_imported": len(sys.modules),
            "optional_packages_imported": sorted(m for m in _OPTIONAL_PACKAGES if m in sys.modules)}


def _time_in_subprocess(path, batch_size, repeats, intra_op_threads, inter_op_threads, xla, mmap_threshold,
                        python="", malloc_arenas=0):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    if xla:  # XLA auto-clustering of the loaded graph on the CPU (the PNG encoder stays outside)
        env["TF_XLA_FLAGS"] = (env.get("TF_XLA_FLAGS", "") + " --tf_xla_auto_jit=2 --tf_xla_cpu_global_jit").strip()
    code = _CHILD.format(repo=REPO, path=path, batch=int(batch_size), repeats=int(repeats),
                         threads=int(intra_op_threads), mmap=int(mmap_threshold), inter=int(inter_op_threads),
                         arenas=int(malloc_arenas))
    proc = subprocess.run([python or sys.executable, "-c", code], capture_output=True, text=True, env=env)
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
                  mmap_threshold=0, overrides=(), inter_op_threads=0, serving_python="", malloc_arenas=0):
    """Seconds per image and peak resident memory of the exported generator on the CPU (see module doc).

    `mmap_threshold` (bytes; default 0: glibc's own moving threshold) is applied in the timing
    process with `memory.return_large_buffers_to_os`, as a server would set
    `MALLOC_MMAP_THRESHOLD_`: less peak memory, slower (README, "Measured"); the result records it.
    `malloc_arenas` (default 0: glibc's default) is applied with `memory.limit_malloc_arenas`,
    as `MALLOC_ARENA_MAX` would (recorded too).
    `serving_python` (default: this interpreter) times the export in another Python, which
    needs only TensorFlow and numpy; each timing records its interpreter and which of the
    optional packages that `import tensorflow` pulls in when installed it found.
    """
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
        timings = {f"batch_{b}": _time_in_subprocess(path, b, repeats, intra_op_threads, inter_op_threads, xla,
                                                     mmap_threshold, serving_python, malloc_arenas)
                   for b in batch_sizes}
        export_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"task": "generate", "method": method, "preset": preset, "resolution": config.resolution,
            "weights": "random", **params, "savedmodel_mb": round(export_mb, 1), "export_jit_compile": export_jit,
            "xla_auto_jit": bool(xla), **timings,
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(),
                        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}}


def _model_and_dataset(method, preset, overrides):
    from keras_pgen import config as config_lib
    from keras_pgen import data as data_lib
    from keras_pgen import registry

    config = config_lib.apply_overrides(config_lib.get_config(method, preset), list(overrides))
    source = data_lib.load_source(config.data, config.resolution, config.channels, resize_mode=config.resize_mode,
                                  seed=config.seed, num_images=config.num_images or None)
    model = registry.build_model(config)
    stage = model.stages(config.total_steps, config.batch_size)[0]  # ProGAN: its first phase; pgen: 2x reals
    model.start_stage(stage)
    dataset = data_lib.make_train_dataset(source, stage.batch_size, seed=config.seed, flip=config.flip,
                                          resolution=stage.resolution, noise_spec=model.noise_spec(),
                                          with_labels=model.uses_labels)
    return config, model, dataset


def train_task(method="msg_gan", preset="bench64", steps=10, warmup=3, overrides=(), torch_python="", backend=None,
               torch_device="cpu", torch_compile=False, bench_dir=""):
    """Training images/s: warm-up steps (tracing, XLA compilation) excluded, median of timed steps.

    With `torch_python` (a Python that has torch), the PyTorch peer ../shared/bench/torch_msg_gan.py
    (or `bench_dir`/torch_msg_gan.py) runs right after, on the same machine with the same steps
    and batch size, on `torch_device`, and the result carries its figures and the ratio
    keras_pgen / reference (meaningful for msg_gan/bench64 only: the peer is that architecture).

    `backend="jax"` (or KERAS_BACKEND=jax) times the JAX engine's own step instead (`_jax_train`):
    the trainer's jitted step with its input (host gather, device-side draws), `steps` steps
    dispatched back to back and synchronised once at the end, as the trainer runs between
    two log intervals.
    """
    import keras_pgen

    if keras_pgen.select_backend(backend) == "jax":
        result = _jax_train(method, preset, steps, warmup, overrides)
    else:
        result = _tf_train(method, preset, steps, warmup, overrides)
    if torch_python:
        reference = torch_reference(torch_python, steps=steps, warmup=warmup, batch=result["batch_size"],
                                    device=torch_device, compile=torch_compile, bench_dir=bench_dir)
        result["reference"] = reference
        result["ratio"] = result["images_per_s"] / reference["images_per_s"]
    return result


def _jax_train(method, preset, steps, warmup, overrides):
    import jax
    import keras

    from keras_pgen import config as config_lib
    from keras_pgen import data as data_lib
    from keras_pgen import registry
    from keras_pgen.engines import jax_trainer
    from keras_pgen.models.base import precision_policy

    config = config_lib.apply_overrides(config_lib.get_config(method, preset), list(overrides))
    source = data_lib.load_source(config.data, config.resolution, config.channels, resize_mode=config.resize_mode,
                                  seed=config.seed, num_images=config.num_images or None)
    source.get(np.arange(len(source)))  # the built-in shapes render on first use: not in the timing
    with precision_policy(config):
        model = registry.build_model(config)
    stage = model.stages(config.total_steps, config.batch_size)[0]
    model.start_stage(stage)
    steps_ = jax_trainer.StageSteps(model, config, source, stage.batch_size, stage.resolution, 0)

    def run(first, count):
        for i in range(first, first + count):
            logs = steps_.run(i)
        jax.block_until_ready((steps_.values, logs))
        return logs

    start = time.perf_counter()
    run(0, warmup)
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    logs = run(warmup, steps)
    elapsed = time.perf_counter() - start
    result = {"task": "train", "impl": "keras_pgen", "backend": "jax", "method": method, "preset": preset,
              "batch_size": stage.batch_size, "resolution": config.resolution,
              "dtype_policy": "mixed_" + config.mixed_precision_dtype if config.mixed_precision else "float32",
              "seconds_per_step": elapsed / steps, "images_per_s": steps * stage.batch_size / elapsed,
              "steps_timed": steps, "warmup": warmup, "warmup_s": round(warmup_s, 1),
              "devices": [str(d) for d in jax.local_devices()], "keras": keras.__version__, "jax": jax.__version__,
              "last_logs": {k: float(v) for k, v in logs.items()}, "machine": _machine()}
    for name in ("generator", "discriminator"):
        if getattr(model, name, None) is not None:
            result[f"{name[0]}_params"] = _count(getattr(model, name))
    return result


def _tf_train(method, preset, steps, warmup, overrides):
    config, model, dataset = _model_and_dataset(method, preset, overrides)
    model.make_train_function()
    train_function = model.train_function
    iterator = iter(dataset)
    for _ in range(warmup):
        _block(train_function(iterator))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        _block(train_function(iterator))
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    result = {"task": "train", "impl": "keras_pgen", "method": method, "preset": preset,
              "batch_size": config.batch_size, "resolution": config.resolution,
              "jit_compile": bool(config.jit_compile), "seconds_per_step": median,
              "images_per_s": config.batch_size / median, "steps_timed": steps, "warmup": warmup,
              "machine": _machine()}
    for name in ("generator", "discriminator"):
        if getattr(model, name, None) is not None:
            result[f"{name[0]}_params"] = _count(getattr(model, name))
    return result


def pipeline_task(method="msg_gan", preset="bench64", steps=50, warmup=5, overrides=()):
    """Input-pipeline images/s on its own (the batches the train step would consume)."""
    config, _, dataset = _model_and_dataset(method, preset, overrides)
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(iterator)
    _ = batch["images"].numpy()
    elapsed = time.perf_counter() - start
    return {"task": "pipeline", "method": method, "preset": preset, "batch_size": config.batch_size,
            "images_per_s": steps * config.batch_size / elapsed, "batches_timed": steps, "machine": _machine()}


def _block(logs):
    return {k: float(v) for k, v in logs.items()}


def torch_reference(python, steps=10, warmup=3, threads=0, batch=16, device="cpu", compile=False, bench_dir=""):
    """Runs ../shared/bench/torch_msg_gan.py (the PyTorch peer) with the bench64 architecture; its JSON line."""
    script = os.path.join(bench_dir or os.path.join(os.path.dirname(REPO), "shared", "bench"), "torch_msg_gan.py")
    cmd = [python, script, "--resolution", "64", "--latent", "256", "--channels", "4:256,8:256,16:256,32:128,64:64",
           "--batch", str(batch), "--steps", str(steps), "--warmup", str(warmup), "--threads", str(threads),
           "--device", device] + (["--compile"] if compile else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _machine():
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "load_average_1min": round(os.getloadavg()[0], 2)}


TASKS = {"generate": generate_task, "train": train_task, "pipeline": pipeline_task}


def run_task(name, **options):
    """Runs TASKS[name](**options), prints its result as one JSON line and returns it."""
    if name not in TASKS:
        raise ValueError(f"unknown benchmark task {name!r}; choose from {sorted(TASKS)}")
    result = TASKS[name](**options)
    print(json.dumps(result), flush=True)
    return result
