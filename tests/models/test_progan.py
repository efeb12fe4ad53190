"""ProGAN trained through keras_pgen.train: schedule, alpha, resume mid fade-in, export, replicas, bin/train."""
import glob

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_pgen
from keras_pgen import export, images, registry
from keras_pgen.models.base import Stage
from keras_pgen.models.progan import Phase, phase_alpha, progressive_schedule, reset_optimizer_state
from tests.conftest import run_bin, tensorboard_scalars, two_replica_strategy
from tests.models.test_gan_training import assert_same_state, state

# 4x4 for 2 steps, 8x8 fading in over steps [2, 6) (alpha 0, 1/4, 1/2, 3/4), 8x8 stable [6, 8)
SHORT = dict(resolution=8, batch_size=8, transition_images=32, stabilize_images=16, total_steps=8)


def run(config, workdir, strategy=None):
    return keras_pgen.train(config, str(workdir), strategy=strategy, verbose=0)


def test_schedule_phases_and_batch_sizes():
    phases = progressive_schedule(16, total_steps=40, transition_images=100, stabilize_images=64,
                                  batch_sizes=(16, 8, 4))
    assert phases == [Phase(0, 4, 16, 4, False),            # ceil(64 / 16)
                      Phase(4, 17, 8, 8, True), Phase(17, 25, 8, 8, False),       # ceil(100 / 8), 64 / 8
                      Phase(25, 50, 4, 16, True), Phase(50, 50, 4, 16, False)]    # last: until total_steps
    # the paper's sizes: one batch size per resolution, the last repeating
    config = keras_pgen.get_config("progan", "faces1024")
    model_phases = progressive_schedule(1024, config.total_steps, config.transition_images,
                                        config.stabilize_images, config.batch_sizes)
    assert [p.resolution for p in model_phases] == [4] + [r for r in (8, 16, 32, 64, 128, 256, 512, 1024)
                                                          for _ in range(2)]
    assert [p.batch_size for p in model_phases][-4:] == [6, 6, 3, 3]
    assert model_phases[1].end_step - model_phases[1].start_step == 600_000 // 16


def test_alpha_schedule_values_at_chosen_steps(tiny_config):
    """alpha = (step - start) / length in a transition, 1 in a stabilisation; exact, Python and tensor alike."""
    model = registry.build_model(tiny_config("progan", **SHORT))
    assert model.stages(8, 8) == [Stage(0, 2, 8, 4), Stage(2, 6, 8, 8), Stage(6, 8, 8, 8)]
    expected = {0: 1.0, 1: 1.0, 2: 0.0, 3: 0.25, 4: 0.5, 5: 0.75, 6: 1.0, 7: 1.0}
    assert {s: model.alpha_at(s) for s in expected} == expected
    for step, alpha in expected.items():
        model.prepare(step)
        assert float(model.alpha_at(tf.constant(step, tf.int64))) == alpha  # the in-graph formula
        assert float(model.generator.alpha.numpy()) == float(model.ema_generator.alpha.numpy()) == alpha
        assert model.scalars() == {"progan/resolution": 4 if step < 2 else 8, "progan/alpha": alpha}
    assert phase_alpha(Phase(10, 13, 8, 8, True), 11) == 1 / 3


def test_learning_rates_per_resolution_follow_the_phase(tiny_config):
    """g_lrs / d_lrs from 4x4 up, the last repeating: each phase sets both optimizers' rates."""
    model = registry.build_model(tiny_config("progan", resolution=16, batch_size=8, transition_images=16,
                                             stabilize_images=16, total_steps=20, g_lrs=(0.1, 0.05),
                                             d_lrs=(0.3, 0.2, 0.01)))
    # phases: 4 [0,2), 8 fading [2,4), 8 [4,6), 16 fading [6,8), 16 [8,20)
    for step, g_lr, d_lr in ((0, 0.1, 0.3), (3, 0.05, 0.2), (5, 0.05, 0.2), (7, 0.05, 0.01), (19, 0.05, 0.01)):
        model.prepare(step)
        assert float(model.g_optimizer.learning_rate.numpy()) == pytest.approx(g_lr), step
        assert float(model.d_optimizer.learning_rate.numpy()) == pytest.approx(d_lr), step


def test_reals_are_blended_like_the_generator_during_a_fade_in(tiny_config):
    """Mid fade-in D sees lerp(upsample(avgpool(x)), x, alpha) of the reals (numpy); outside it, x itself."""
    model = registry.build_model(tiny_config("progan", **SHORT))
    x = np.random.RandomState(0).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    low = x.reshape(2, 4, 2, 4, 2, 3).mean(axis=(2, 4)).repeat(2, 1).repeat(2, 2)
    for step, alpha in ((2, 0.0), (3, 0.25), (5, 0.75)):  # the 8x8 transition [2, 6)
        model.prepare(step)
        model.step.assign(step)
        np.testing.assert_allclose(np.asarray(model.real_inputs(x)), (1 - alpha) * low + alpha * x, atol=1e-6)
    model.prepare(6)  # stabilisation: no blend
    np.testing.assert_array_equal(np.asarray(model.real_inputs(x)), x)


def test_prepare_grows_without_changing_the_checkpoint_structure(tiny_config, tmp_path):
    model = registry.build_model(tiny_config("progan", **SHORT))
    saved = tf.train.Checkpoint(**model.checkpoint_items()).save(str(tmp_path / "ckpt"))
    model.train_function = "traced"
    model.prepare(0)
    assert model.train_function == "traced"  # same stage: no retrace
    model.prepare(3)
    assert model.train_function is None  # new sub-graph: Keras retraces train_step
    # the 4x4-stage checkpoint restores into the grown 8x8 model, every object matched both ways
    tf.train.Checkpoint(**model.checkpoint_items()).restore(saved).assert_consumed()
    assert model.generator.stage_resolution == model.discriminator.stage_resolution == 8
    # a frozen layer is not among the trainable variables the optimizers update; a grown one is
    trainable = lambda: {id(w) for w in model.generator.trainable_weights}  # noqa: E731
    block_8 = {id(w) for w in model.generator.block_8.weights}
    assert block_8 <= trainable()
    model.prepare(1)
    assert not block_8 & trainable() and model.generator.stage_resolution == 4


def test_adam_applies_to_a_subset_of_its_variables_like_a_fresh_adam():
    """What ProGAN relies on: Adam built on all variables, applied to the stage's subset, equals Adam on the subset."""
    a, b = keras.Variable(np.ones(3, np.float32)), keras.Variable(np.ones(2, np.float32))
    a2 = keras.Variable(np.ones(3, np.float32))
    adam = lambda: keras.optimizers.Adam(0.1, beta_1=0.0, beta_2=0.99)  # noqa: E731
    full, fresh = adam(), adam()
    full.build([a, b])
    fresh.build([a2])
    for g in ([1.0, -2.0, 0.5], [0.3, 0.3, -1.0]):
        full.apply([tf.constant(g)], [a])
        fresh.apply([tf.constant(g)], [a2])
    np.testing.assert_allclose(np.asarray(a), np.asarray(a2), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(b), np.ones(2))
    slots_b = [v for v in full.variables if v.shape == (2,)]
    assert slots_b and all(not np.any(np.asarray(v)) for v in slots_b)
    reset_optimizer_state(full)
    assert int(full.iterations.numpy()) == 0 and float(full.learning_rate.numpy()) == pytest.approx(0.1)
    assert all(not np.any(np.asarray(v)) for v in full.variables if v.shape == (3,))


@pytest.fixture(scope="module")
def resume_runs(tmp_path_factory):
    """8 steps uninterrupted; and 4 steps (stopped mid fade-in, alpha 1/2, exported) then resumed to 8."""
    tmp = tmp_path_factory.mktemp("progan_resume")
    config = keras_pgen.get_config("progan", "tiny")
    config.update(export_dir=str(tmp / "sm"), checkpoint_every=2, log_every=2, export=False, **SHORT)
    full = run(config, tmp / "full")
    config.update(total_steps=4, export=True)
    first = run(config, tmp / "resumed")
    stopped = {"state": state(first["model"]), "export_path": first["export_path"], "model": first["model"]}
    config.update(total_steps=8, export=False)
    resumed = run(config, tmp / "resumed")
    return full, stopped, resumed


def test_resume_in_the_middle_of_a_fade_in_equals_uninterrupted(resume_runs):
    full, stopped, resumed = resume_runs
    assert stopped["model"].phase == Phase(2, 6, 8, 8, True) and float(stopped["model"].generator.alpha.numpy()) == 0.5
    assert resumed["step"] == full["step"] == 8
    assert_same_state(state(full["model"]), state(resumed["model"]), atol=1e-5)
    # the optimizers were reset at the start of the last phase (step 6): two updates since
    assert int(resumed["model"].g_optimizer.iterations.numpy()) == 2
    moments = [v for v in resumed["model"].g_optimizer.variables if "momentum" in v.path or "velocity" in v.path]
    assert moments and any(np.any(np.asarray(v) != 0) for v in moments)


def test_export_mid_fade_in_reproduces_the_keras_model(resume_runs):
    _, stopped, _ = resume_runs
    model = stopped["model"]
    z = np.random.RandomState(3).randn(5, 16).astype("float32")
    expected = np.asarray(model.ema_generator(z, training=False))
    assert expected.shape == (5, 8, 8, 3)
    # the exported output is the alpha = 1/2 blend, not either path alone
    blend = 0.5 * np.asarray(model.ema_generator(z, resolution=4)).repeat(2, 1).repeat(2, 2) \
        + 0.5 * np.asarray(model.ema_generator(z, resolution=8))
    np.testing.assert_allclose(expected, blend, rtol=1e-5, atol=1e-5)
    loaded = export.load_generator(stopped["export_path"])
    # float math in another graph: equal up to a rare rounding flip of one uint8 level
    diff = np.abs(loaded.generate(z).astype(int) - images.to_uint8(expected))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (diff.max(), (diff == 0).mean())
    assert loaded.metadata["resolution"] == 8 and loaded.metadata["alpha"] == 0.5 and loaded.metadata["fading"]
    assert loaded.metadata["jit_compile"] is False and loaded.metadata["strips"] == 8  # no block tall enough to tile
    assert loaded.sample(2, seed=1).shape == (2, 8, 8, 3)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_export_in_strips_reproduces_the_whole_image_generator(jit_compile, tmp_path):
    """At 128x128 in 2 strips the 128x128 block runs strip by strip (64 rows each) in the export, mid fade-in."""
    from keras_pgen.benchmark import build_final_model

    keras.utils.set_random_seed(0)  # the weights must not depend on which tests ran before in this worker
    _, model = build_final_model("progan", "tiny", [
        "resolution=128", "latent_dim=8", "fmap_base=1024", "fmap_max=8", "total_steps=22", "export_strips=2",
        f"export_jit_compile={jit_compile}"])
    model.prepare(model.phase_at(model.total_steps).start_step - 1)  # the last step of the 128x128 fade-in
    assert model.phase.resolution == 128 and model.phase.fading
    alpha = float(model.ema_generator.alpha.numpy())
    assert 0 < alpha < 1
    z = np.random.RandomState(0).randn(3, 8).astype("float32")
    # the export generates image by image: compare with whole images made one at a time (a batch
    # of 3 convolves in another summation order, which pixel norm amplifies to ~1e-4 here)
    whole = np.concatenate([np.asarray(model.ema_generator(z[i:i + 1], training=False)) for i in range(3)])
    serving = model.export_generator()
    served = np.concatenate([np.asarray(serving(z[i:i + 1])) for i in range(3)])
    # XLA fuses the float math differently: over random weights (seeds 1-6) 1-2 of the 147,456
    # values reached 6.4e-5 / 7e-5 under XLA, the plain graph stays within 5e-5
    np.testing.assert_allclose(served, whole, atol=1.5e-4 if jit_compile else 5e-5)
    loaded = export.load_generator(model.export_to(str(tmp_path), "progan", {"step": 0}))
    assert loaded.metadata["strips"] == 2 and loaded.metadata["alpha"] == alpha
    diff = np.abs(loaded.generate(z).astype(int) - images.to_uint8(whole))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (diff.max(), (diff == 0).mean())
    assert loaded.sample(2, seed=1).shape == (2, 128, 128, 3)


def test_two_replicas_equal_one_mid_fade_in(tiny_config, tmp_path):
    """Two steps inside a transition (alpha 0 then 1/4), same global batch: 1 replica == 2 replicas."""
    config = tiny_config("progan", resolution=8, batch_size=8, transition_images=32, stabilize_images=0,
                         total_steps=2, export=False, g_lr=1e-3, d_lr=1e-3, ema_decay=0.5, adam_epsilon=1e-3)
    one = run(config, tmp_path / "one")
    two = run(config, tmp_path / "two", strategy=two_replica_strategy())
    assert two["model"].distribute_strategy.num_replicas_in_sync == 2
    assert one["model"].phase == Phase(0, 4, 8, 8, True) and float(two["model"].generator.alpha.numpy()) == 0.5
    assert_same_state(state(one["model"]), state(two["model"]), atol=2e-6)


def test_train_progan_tiny_end_to_end(tmp_path):
    """bin/train grows 4 -> 8 -> 16 in 10 steps, writes per-resolution samples and TensorBoard alpha/resolution."""
    proc = run_bin("train", "--method=progan", "--preset=tiny", f"--workdir={tmp_path / 'w'}",
                   f"--config.export_dir={tmp_path / 'sm'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = sorted(p.split("/")[-1] for p in glob.glob(str(tmp_path / "w" / "samples" / "*.png")))
    assert samples == ["step_0000002_4x4.png", "step_0000004_8x8.png", "step_0000006_8x8.png",
                       "step_0000008_16x16.png", "step_0000010_16x16.png"]
    scalars = tensorboard_scalars(tmp_path / "w", "progan/")
    # phases: 4 [0,2), 8 fading [2,4), 8 [4,6), 16 fading [6,8), 16 [8,10); logged every 2 steps
    assert scalars[("progan/resolution", 2)] == 4 and scalars[("progan/resolution", 10)] == 16
    assert scalars[("progan/alpha", 8)] == 1.0
    loaded = export.load_generator(tmp_path / "sm" / "progan" / "1")
    assert loaded.resolution == 16 and loaded.sample(2, seed=0).shape == (2, 16, 16, 3)


def test_benchmark_generate_task_times_the_exported_generator(capsys, tmp_path):
    """bin/benchmark's generate task on the tiny preset: one JSON line with counts, timings and memory.

    The timing runs in `serving_python`: here a wrapper that leaves a mark, then runs this Python.
    """
    import json
    import stat
    import sys

    from keras_pgen import benchmark

    wrapper, mark = tmp_path / "python", tmp_path / "ran"
    wrapper.write_text(f"#!/bin/sh\ntouch {mark}\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)

    with pytest.raises(ValueError, match=r"unknown benchmark task 'nope'; choose from \['generate', 'pipeline', 'train'"):
        benchmark.run_task("nope")
    result = benchmark.run_task("generate", method="progan", preset="tiny", batch_sizes=(3,), repeats=2,
                                mmap_threshold=131072, inter_op_threads=1, serving_python=str(wrapper),
                                malloc_arenas=1)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert result["generator_params"] == 26818 and result["discriminator_params"] == 34922  # with alpha
    timing = result["batch_3"]
    assert timing["image_shape"] == [16, 16, 3] and len(timing["runs"]) == 2 and not result["export_jit_compile"]
    assert timing["seconds_per_image"] == pytest.approx(timing["seconds_per_batch"] / 3, abs=1e-4)
    assert timing["peak_rss_mb"] >= timing["rss_after_import_mb"] > 0
    assert timing["malloc_mmap_threshold"] == 131072  # keras_pgen.memory, applied in the timing process
    assert timing["malloc_arenas"] == 1
    assert timing["inter_op_threads"] == 1  # read back from TensorFlow in the timing process (0: its default)
    assert mark.exists() and timing["python"] == sys.executable  # the wrapper ran it, then this Python
    assert timing["modules_imported"] > 100 and set(timing["optional_packages_imported"]) <= set(
        benchmark._OPTIONAL_PACKAGES)
