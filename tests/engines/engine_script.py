"""The subprocess side of tests/engines/: one backend per process, as Keras requires.

    KERAS_BACKEND=tensorflow python3 tests/engines/engine_script.py tf-steps OUT CASE...
    KERAS_BACKEND=jax        python3 tests/engines/engine_script.py jax-steps OUT CASE...
    KERAS_BACKEND=jax        python3 tests/engines/engine_script.py jax-runs ROOT
    KERAS_BACKEND=jax        python3 tests/engines/engine_script.py blocked-train Z_OUT BIN_TRAIN_ARGS...
    KERAS_BACKEND=jax        python3 tests/engines/engine_script.py jax-eval ROOT

A CASE is a method (its tiny preset) or one of MIXED_PRECISION's names (the tiny preset under a
mixed precision policy, optionally with the loss-scale state set before the compared step).

tf-steps: for each case's tiny model, one warm-up step (so that Adam's moments and the EMA
    are not at their initial values), then OUT/<case>/ckpt-0.npz (state before the compared
    step), extras.npz (frozen variables no checkpoint holds: the random VGG16 comparators),
    batch.npz (the tf.data batch) and ckpt-1.npz and logs.npz after ONE step of Keras' train
    function (`fit(run_eagerly=True)`'s: `train_step` under the strategy, without tracing).
jax-steps: for each case, the same model built under JAX, restored from the TF ckpt-0 and
    extras, ONE jitted `jax_engine.stateless_step` on the same batch, written back and saved as
    OUT/<case>/jax/ckpt-1.npz and jax-logs.npz.
jax-runs: `keras_pgen.train(backend="jax")` runs in ROOT/<name>: msg_gan for 6 steps on one
    device (resume_full), for 2 then 6 (resume_split), for 4 on every device (msg_gan_auto; the
    test forces two host devices); vae for 3 steps on one (vae_default) and every device
    (vae_auto). Prints one JSON line "RESULT {...}" with what the runs saw.
blocked-train: `import tensorflow` raises; runs bin/train with the given arguments through
    runpy, then writes the EMA generator's output for fixed latents (from the workdir's latest
    checkpoint) to Z_OUT. Prints "RESULT {...}".
jax-eval: `import tensorflow` raises; bin/train's body (`cli.run_training`) trains msg_gan tiny
    in ROOT/msg_gan for 4 steps with eval_every=2 (the shapes judge, 16 samples), and vae tiny
    with eval_every=2 in ROOT/vae (no generator: it must fail). Then new `GeneratorEvaluator`s
    (`evaluator_from_config` of the run's config.json) judge the untrained model (built as the
    engine builds it) and ckpt-2 / ckpt-4 restored into it, with "shapes" (and "pixels" at step 4). Prints
    "RESULT {...}" with the exit codes and those reports.
"""
import contextlib
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

METHODS = ("gan", "msg_gan", "progan", "vae", "vae_gan", "deepsim", "cond_decoder", "pgen")
PROGAN_STEP = 7  # mid fade-in of 16x16 in the tiny schedule (steps 6..8): alpha 0.5


def tiny_config(method):
    """The method's tiny preset, offline (random VGG16 weights), no export, no XLA under TensorFlow."""
    import keras_pgen

    config = keras_pgen.get_config(method, "tiny")
    config.jit_compile = False
    config.export = False
    if "vgg_weights" in config:
        config.vgg_weights = "none"  # the tiny presets that use VGG16 already do; never download
    return config


def loss_scale(scale=None, last_count=False):
    """A set-up of a LossScaleOptimizer: its dynamic scale, and/or its count of finite steps one short of growth."""

    def set_up(optimizer):
        if scale is not None:
            optimizer.dynamic_scale.assign(scale)
        if last_count:
            optimizer.step_counter.assign(optimizer.dynamic_growth_steps - 1)

    return set_up


# case -> (method, mixed_precision_dtype, {optimizer name: set-up of its loss-scale state}). Under
# float16 every scale starts at INITIAL_SCALE (Keras' 2**15 overflows the tiny models' float16
# gradients in their first steps, which would skip the warm-up step); the set-ups run after the
# warm-up step, so the compared step starts from them in both engines: last_count, the step is the
# dynamic_growth_steps-th finite one in a row (the scale doubles); scale=2**100, the float16
# gradients overflow (the update is skipped, the scale halves). Adam's epsilon is 1e-3, as in
# jax-runs: with 1e-8 its per-element g / sqrt(v) turns the rounding noise of a near-zero float16
# gradient into an update of +-lr (tests/engines/test_engine_step_equivalence.py).
INITIAL_SCALE = 2.0 ** 8
MIXED_PRECISION = {
    "msg_gan-bfloat16": ("msg_gan", "bfloat16", {}),
    "msg_gan-float16": ("msg_gan", "float16", {}),
    "progan-float16": ("progan", "float16", {"d": loss_scale(last_count=True)}),
    "progan-float16-overflow": ("progan", "float16", {"g": loss_scale(scale=2.0 ** 100)}),
}
MIXED_ADAM_EPSILON = 1e-3


def case_config(case):
    """`(method, config)` of a case: a method's tiny_config, or a MIXED_PRECISION case's."""
    if case not in MIXED_PRECISION:
        return case, tiny_config(case)
    method, dtype, _ = MIXED_PRECISION[case]
    config = tiny_config(method)
    config.update(mixed_precision=True, mixed_precision_dtype=dtype, adam_epsilon=MIXED_ADAM_EPSILON)
    return method, config


def build_model(config):
    """The case's model, built under its precision policy (checked: some layers compute in its dtype)."""
    from keras_pgen import registry
    from keras_pgen.models.base import precision_policy

    with precision_policy(config):
        model = registry.build_model(config)
    dtype = config.mixed_precision_dtype if config.get("mixed_precision") else "float32"
    assert dtype in {layer.compute_dtype for layer in model._flatten_layers() if layer.weights}, dtype
    return model


def checkpointed_ids(model):
    from keras_pgen import checkpoints

    return {id(v) for item in model.checkpoint_items().values() for v in checkpoints.item_variables(item)}


def frozen_variables(model):
    """Variables of the model that no checkpoint holds (frozen comparators, metric state), in a fixed order."""
    saved = checkpointed_ids(model)
    seen, out = set(), []
    for v in model.variables:
        if id(v) not in saved and id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def progan_stage(model, config, step):
    stages = model.stages(config.total_steps, config.batch_size)
    return [s for s in stages if s.start_step <= step < s.end_step][0]


# ---- tf-steps ---------------------------------------------------------------------------------
def tf_steps(out, cases):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_pgen import checkpoints
    from keras_pgen import data as data_lib

    assert keras.backend.backend() == "tensorflow"
    for case in cases:
        directory = os.path.join(out, case)
        os.makedirs(directory, exist_ok=True)
        method, config = case_config(case)
        keras.utils.set_random_seed(config.seed)
        model = build_model(config)
        stage = model.stages(config.total_steps, config.batch_size)[0]
        start = 0
        if method == "progan":
            start = PROGAN_STEP - 1
            stage = progan_stage(model, config, start)
            assert stage.start_step == start and stage.resolution == 16, stage
            model.start_stage(stage)
            model.step.assign(start)
            assert model.phase.fading
        source = data_lib.load_source(config.data, config.resolution, config.channels, seed=config.seed,
                                      num_images=config.num_images)
        dataset = data_lib.make_train_dataset(source, stage.batch_size, seed=config.seed, noise_spec=model.noise_spec(),
                                              flip=config.flip, with_labels=model.uses_labels,
                                              resolution=stage.resolution, prefetch=False)
        batches = iter(dataset)
        warm_up, batch = next(batches), next(batches)
        for optimizer in model.optimizers().values():
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                optimizer.dynamic_scale.assign(INITIAL_SCALE)
        model.run_eagerly = True  # fit(run_eagerly=True)'s step: the same ops, no tracing (seconds per method)
        model.make_train_function()
        model.train_function(iter(tf.data.Dataset.from_tensors(warm_up)))  # Adam moments and EMA away from their init
        for tracker in model.metrics:
            tracker.reset_state()
        if method == "progan":
            assert int(model.step.numpy()) == PROGAN_STEP and 0 < model.alpha_at(PROGAN_STEP) < 1
        for name, set_up in MIXED_PRECISION.get(case, (None, None, {}))[2].items():
            set_up(model.optimizers()[name])
        checkpoints.save(model, directory, 0)
        extras = frozen_variables(model)
        np.savez(os.path.join(directory, "extras.npz"),
                 **{f"{i}": np.asarray(v.numpy()) for i, v in enumerate(extras)},
                 __paths__=np.array(json.dumps([[v.path, list(v.shape)] for v in extras])))
        np.savez(os.path.join(directory, "batch.npz"), **{k: v.numpy() for k, v in batch.items()})
        model.train_function(iter(tf.data.Dataset.from_tensors(batch)))
        checkpoints.save(model, directory, 1)
        np.savez(os.path.join(directory, "logs.npz"),
                 **{name: np.asarray(t.result().numpy()) for name, t in model.trackers.items()})
        print(f"TF {case}: {len(extras)} frozen variables", flush=True)


# ---- jax-steps --------------------------------------------------------------------------------
@contextlib.contextmanager
def placeholder_initial_values():
    """Builds models under JAX without a random draw per variable (JAX compiles one per shape: seconds each).

    Every variable gets a constant instead; jax-steps then restores every value from TensorFlow's
    state (a variable the restore missed would keep the constant and differ from TensorFlow's).
    """
    import numpy as np
    from keras.src.backend.jax import random as jax_random

    def constant(shape, *args, dtype=None, **kwargs):
        return np.full(shape, 0.01, dtype or "float32")

    names = ("normal", "uniform", "truncated_normal")
    saved = {name: getattr(jax_random, name) for name in names}
    for name in names:
        setattr(jax_random, name, constant)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(jax_random, name, fn)


def jax_steps(out, cases):
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np

    from keras_pgen import checkpoints
    from keras_pgen.engines import jax_engine

    assert keras.backend.backend() == "jax"
    for case in cases:
        directory = os.path.join(out, case)
        method, config = case_config(case)
        with placeholder_initial_values():
            model = build_model(config)
        _, items, arrays = checkpoints.read(checkpoints.path(directory, 0))
        model.prepare(int(arrays["step/0"]))  # what jax_trainer._restore does (with the file's step)
        checkpoints.restore(model, items, arrays)
        with np.load(os.path.join(directory, "extras.npz")) as f:
            paths = json.loads(str(f["__paths__"]))
            extras = frozen_variables(model)
            assert [list(s) for _, s in paths] == [list(v.shape) for v in extras], case
            for i, v in enumerate(extras):
                v.assign(f[f"{i}"])
        if method == "progan":
            assert model.phase.fading and model.phase.resolution == 16
        with np.load(os.path.join(directory, "batch.npz")) as f:
            batch = {k: jnp.asarray(f[k]) for k in f.files}
        variables = jax_engine.state_variables(model)
        step_fn = jax.jit(jax_engine.stateless_step(model, variables))
        values, logs = step_fn(jax_engine.read_state(variables), batch)
        jax_engine.write_back(variables, values)
        checkpoints.save(model, os.path.join(directory, "jax"), 1)
        np.savez(os.path.join(directory, "jax-logs.npz"),
                 **{k: np.asarray(jax.device_get(v), np.float64) for k, v in logs.items()})
        print(f"JAX {case}: done", flush=True)


# ---- jax-runs -----------------------------------------------------------------------------------
def jax_runs(root):
    import jax
    import keras

    import keras_pgen
    from keras_pgen.engines import jax_trainer

    assert keras.backend.backend() == "jax"
    result = {"local_devices": len(jax.local_devices()), "runs": {}}

    # what each run's jitted step was given: devices of the batch and of the state
    stage_init = jax_trainer.StageSteps.__init__

    def recording_init(self, *args, **kwargs):
        stage_init(self, *args, **kwargs)
        step_fn = self.step

        def run(values, raw):
            record = result["runs"][current]
            sharding = raw["images"].sharding if isinstance(raw["images"], jax.Array) else None
            record["batch_devices"].append(len(sharding.device_set) if sharding is not None else 1)
            record["batch_spec"] = [str(a) for a in getattr(sharding, "spec", ())]
            record["state_devices"] = len(values[0].sharding.device_set) if isinstance(values[0], jax.Array) else 1
            record["state_spec"] = [str(a) for a in getattr(getattr(values[0], "sharding", None), "spec", ())]
            new_values, logs = step_fn(values, raw)
            record["output_devices"] = len(new_values[0].sharding.device_set)
            return new_values, logs

        self.step = run

    jax_trainer.StageSteps.__init__ = recording_init

    def train(config, name, total_steps, strategy):
        nonlocal current
        current = name
        result["runs"].setdefault(name, {"batch_devices": []})
        config.update(total_steps=total_steps, strategy=strategy)
        return keras_pgen.train(config, os.path.join(root, name), backend="jax", verbose=0)["step"]

    current = None
    # msg_gan: adam_epsilon 1e-3, as tests/models/test_gan_training.py's replica test: a relativistic
    # loss is blind to a shift of all logits, so some gradients are zero in exact arithmetic and
    # float noise (~1e-9, summed in another order on 2 devices) there; with beta_1 = 0, Adam's first
    # step g / (|g| + eps) turns that noise into +-lr when eps is 1e-8.
    gan = tiny_config("msg_gan")
    gan.update(checkpoint_every=2, log_every=2, sample_every=100, adam_epsilon=1e-3)
    # resume: 6 steps in one run == 2 steps, then a second `train` (a new model restored from ckpt-2) to 6
    result["full"] = train(gan, "resume_full", 6, "default")
    result["first"] = train(gan, "resume_split", 2, "default")
    result["resumed"] = train(gan, "resume_split", 6, "default")
    # every device: 4 steps, compared with resume_full's ckpt-4 (one device)
    result["msg_gan_auto"] = train(gan, "msg_gan_auto", 4, "auto")
    vae = tiny_config("vae")
    vae.update(checkpoint_every=3, log_every=3, sample_every=100)
    result["vae_default"] = train(vae, "vae_default", 3, "default")
    result["vae_auto"] = train(vae, "vae_auto", 3, "auto")
    jax_trainer.StageSteps.__init__ = stage_init
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    print("RESULT " + json.dumps(result), flush=True)


# ---- blocked-train ------------------------------------------------------------------------------
def blocked_train(z_out, train_args):
    import runpy

    sys.modules["tensorflow"] = None  # `import tensorflow` raises ImportError from here on
    sys.argv = [os.path.join(REPO, "bin", "train"), *train_args]
    code = 0
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as stop:
        code = stop.code or 0
    if code:
        sys.exit(code)

    import keras
    import ml_collections
    import numpy as np

    from keras_pgen import checkpoints, registry

    workdir = [a.split("=", 1)[1] for a in train_args if a.startswith("--workdir=")][0]
    with open(os.path.join(workdir, "config.json")) as f:
        config = ml_collections.ConfigDict(json.load(f))
    model = registry.build_model(config)
    file, step, items, arrays = checkpoints.latest(os.path.join(workdir, "checkpoints"))
    model.prepare(step)
    checkpoints.restore(model, items, arrays)
    z = np.random.default_rng(123).standard_normal((5, model.latent_dim)).astype(np.float32)
    images = model.export_generator()(z, training=False)
    if isinstance(images, (list, tuple)):
        images = images[-1]  # the export serves the last (full-resolution) output
    np.savez(z_out, z=z, images=keras.ops.convert_to_numpy(images), step=step)
    loaded = sorted(m for m, module in sys.modules.items()
                    if (m == "tensorflow" or m.startswith("tensorflow.")) and module is not None)
    print("RESULT " + json.dumps({"backend": keras.backend.backend(), "tensorflow_modules": loaded,
                                  "checkpoint": file, "step": step}), flush=True)


# ---- jax-eval -----------------------------------------------------------------------------------
EVAL_OVERRIDES = ("eval_every=2", "eval_num_samples=16", "eval_features=shapes", "export=False", "sample_every=100")


def jax_eval(root):
    sys.modules["tensorflow"] = None  # `import tensorflow` raises ImportError from here on
    import ml_collections

    from keras_pgen import checkpoints, cli, registry
    from keras_pgen import data as data_lib
    from keras_pgen.engines import jax_trainer
    from keras_pgen.metrics import evaluator as evaluator_lib

    result = {"msg_gan": cli.run_training("msg_gan", "tiny", os.path.join(root, "msg_gan"), list(EVAL_OVERRIDES),
                                          backend="jax"),
              "vae": cli.run_training("vae", "tiny", os.path.join(root, "vae"),
                                      ["eval_every=2", "eval_features=pixels", "export=False"], backend="jax")}
    workdir = os.path.join(root, "msg_gan")
    with open(os.path.join(workdir, "config.json")) as f:
        config = ml_collections.ConfigDict(json.load(f))
    source = data_lib.load_source(config.data, config.resolution, config.channels, resize_mode=config.resize_mode,
                                  seed=config.seed, num_images=config.num_images or None)

    def evaluate(model, features):
        changed = ml_collections.ConfigDict(config.to_dict())
        changed.eval_features = features
        return evaluator_lib.evaluator_from_config(changed, source).evaluate(model)

    jax_trainer.set_random_seed(config.seed)  # the untrained model, as the engine builds it
    model = registry.build_model(config)
    model.prepare(0)
    reports = {"0": {"shapes": evaluate(model, "shapes")}}
    for step in (2, 4):
        _, items, arrays = checkpoints.read(checkpoints.path(os.path.join(workdir, "checkpoints"), step))
        checkpoints.restore(model, items, arrays)
        # pixels (768-d features: seconds of eigendecompositions per evaluation on a busy CPU) at the last step only
        names = ("shapes", "pixels") if step == 4 else ("shapes",)
        reports[str(step)] = {features: evaluate(model, features) for features in names}
    result["reports"] = reports
    result["tensorflow_modules"] = sorted(m for m, module in sys.modules.items()
                                          if (m == "tensorflow" or m.startswith("tensorflow.")) and module is not None)
    print("RESULT " + json.dumps(result), flush=True)


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "tf-steps":
        tf_steps(args[0], args[1:] or METHODS)
    elif command == "jax-steps":
        jax_steps(args[0], args[1:] or METHODS)
    elif command == "jax-runs":
        jax_runs(args[0])
    elif command == "blocked-train":
        blocked_train(args[0], args[1:])
    elif command == "jax-eval":
        jax_eval(args[0])
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv)
