"""`eval_every` under the JAX engine: the evaluation TensorFlow's callback runs, without TensorFlow.

One JAX subprocess where `import tensorflow` fails (engine_script.py jax-eval) trains msg_gan
tiny for 4 steps with eval_every=2 (the shapes judge on 16 samples) through bin/train's body,
tries vae tiny with eval_every=2 (no generator), and judges the untrained model and ckpt-2 /
ckpt-4 with new evaluators ("shapes"; "pixels" at step 4). This (TensorFlow) process then checks:

- the run's TensorBoard `eval/` scalars at steps 0, 2 and 4 equal the new evaluators'
  numbers for the same weights (the untrained model, the restored checkpoints), and the log
  has the callback's one line per evaluation;
- the evaluator under TensorFlow, on the same checkpoints, gives the JAX numbers: the same
  kinds histogram, FID / KID to 1e-4 (the generators' float outputs differ by float
  rounding, which can move a pixel by one uint8 level; measured on the 2-core CPU: "pixels"
  bit for bit, the judge's numbers within 4e-7);
- vae fails before its first step with TensorFlow's one-line error, having written nothing.
"""
import os

import pytest

from keras_pgen.data.shapes import KINDS
from tests.conftest import tensorboard_scalars
from tests.engines.conftest import result_line, run_script

NAMES = ("kid", "kid_std", "fid", "fid_real_floor", "kid_real_floor", "kid_real_floor_std", "kinds_covered",
         "mean_confidence", *(f"kinds/{kind}" for kind in KINDS))


@pytest.fixture(scope="module")
def jax_eval(tmp_path_factory):
    root = tmp_path_factory.mktemp("jax_eval")
    run = run_script("jax", "jax-eval", root)
    return root, run, result_line(run.stdout)


def expected_scalars(report):
    """{"eval/<name>": value} that a report should have been logged as (the histogram as fractions)."""
    values = {f"eval/{k}": v for k, v in report.items() if k != "class_histogram"}
    total = sum(report["class_histogram"].values())
    values.update({f"eval/kinds/{kind}": n / total for kind, n in report["class_histogram"].items()})
    return values


def test_run_logs_eval_scalars_of_the_weights_at_steps_0_2_4(jax_eval):
    root, run, result = jax_eval
    assert result["msg_gan"] == 0 and result["tensorflow_modules"] == []
    assert "trained msg_gan to step 4" in run.stdout
    assert "under the TensorFlow engine only" not in run.stderr  # the old warning is gone
    values = tensorboard_scalars(root / "msg_gan", "eval/")
    assert set(values) == {(f"eval/{n}", s) for n in NAMES for s in (0, 2, 4)}
    for step in (0, 2, 4):
        expected = expected_scalars(result["reports"][str(step)]["shapes"])
        assert set(expected) == {f"eval/{n}" for n in NAMES}
        for tag, value in expected.items():  # TensorBoard holds float32
            assert values[(tag, step)] == pytest.approx(value, rel=1e-6, abs=1e-7), (tag, step)
        lines = [line for line in run.stderr.splitlines() if f"step {step}: shapes judge: " in line]
        assert len(lines) == 1, run.stderr[-3000:]
    assert values[("eval/fid", 0)] != values[("eval/fid", 2)] != values[("eval/fid", 4)]  # the generator changed


@pytest.fixture(scope="module")
def tf_reports(jax_eval):
    """The evaluator under TensorFlow on the JAX run's ckpt-2 and ckpt-4: {step: {features: report}}."""
    import json

    import keras
    import ml_collections

    from keras_pgen import checkpoints, data, registry
    from keras_pgen.metrics import evaluator

    assert keras.backend.backend() == "tensorflow"
    root, _, _ = jax_eval
    with open(root / "msg_gan" / "config.json") as f:
        config = ml_collections.ConfigDict(json.load(f))
    source = data.load_source(config.data, config.resolution, config.channels, resize_mode=config.resize_mode,
                              seed=config.seed, num_images=config.num_images)
    model = registry.build_model(config)
    reports = {}
    for step in (2, 4):
        _, items, arrays = checkpoints.read(checkpoints.path(root / "msg_gan" / "checkpoints", step))
        checkpoints.restore(model, items, arrays)
        reports[step] = {}
        for features in (("shapes", "pixels") if step == 4 else ("shapes",)):  # pixels at step 4 only, as the JAX side
            config.eval_features = features
            reports[step][features] = evaluator.evaluator_from_config(config, source).evaluate(model)
    return reports


@pytest.mark.parametrize("features, steps", [("shapes", (2, 4)), ("pixels", (4,))])
def test_evaluator_gives_the_same_numbers_under_both_backends(jax_eval, tf_reports, features, steps):
    _, _, result = jax_eval
    for step in steps:
        ours, theirs = tf_reports[step][features], result["reports"][str(step)][features]
        assert sorted(ours) == sorted(theirs)
        for name, value in ours.items():
            if name in ("class_histogram", "kinds_covered"):
                assert value == theirs[name], (step, name)
            else:
                assert value == pytest.approx(theirs[name], rel=1e-4, abs=1e-6), (step, name)


def test_a_method_without_a_generator_fails_with_the_tensorflow_error(jax_eval, tiny_config, tmp_path):
    import keras_pgen

    root, run, result = jax_eval
    config = tiny_config("vae", eval_every=2, eval_features="pixels", export=False)
    with pytest.raises(ValueError) as tensorflow_error:
        keras_pgen.train(config, str(tmp_path / "vae"), verbose=0)
    message = str(tensorflow_error.value)
    assert "eval_every needs a generator" in message and "\n" not in message
    assert result["vae"] == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {message}"]
    written = os.listdir(root / "vae") if os.path.isdir(root / "vae") else []
    assert not {"checkpoints", "tensorboard", "config.json"} & set(written), written  # failed before the first step
