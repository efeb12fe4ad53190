"""The built-in shapes' judge: held-out accuracy of the shipped weights, its report on hand-made inputs against
numpy references, the real-vs-real floor on disjoint sets, deterministic training, and the JAX backend."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg

from keras_pgen.data.shapes import KINDS, ShapesSource
from keras_pgen.metrics import distances, shapes_judge
from tests.conftest import REPO


@pytest.fixture(scope="module")
def judge():
    return shapes_judge.default_judge()


def renders(num, resolution=32, channels=3, seed=0):
    return ShapesSource(resolution, channels, num_images=num, seed=seed, cache_max_bytes=0).render(np.arange(num))


def scipy_fid(x, y):
    """The textbook formula with scipy's sqrtm (the pytorch-fid reference)."""
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))


def numpy_kid(x, y):
    """Unbiased MMD^2 with the cubic polynomial kernel over the whole sets (one subset of all of them)."""
    k = lambda a, b: (a @ b.T / x.shape[1] + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * k(x, y).mean())


def test_shipped_judge_is_accurate_on_held_out_renders(judge):
    """Data seed 0 (the default run's data) is never trained on; 16x16 images are resized to 32."""
    assert judge.info["train_seeds"] and shapes_judge.HELD_OUT_SEED not in judge.info["train_seeds"]
    images, labels = renders(600)
    assert np.mean(judge.probabilities(images).argmax(axis=1) == labels) >= 0.95
    small, small_labels = renders(600, resolution=16)
    assert np.mean(judge.probabilities(small).argmax(axis=1) == small_labels) >= 0.93


def test_kind_report_on_hand_made_probabilities():
    top = np.array([0] * 50 + [1] * 45 + [3] * 5)  # ring has exactly 5% of the samples: covered
    probabilities = np.full((100, 7), 0.05)
    probabilities[np.arange(100), top] = 0.7
    report = shapes_judge.kind_report(probabilities)
    assert report["kinds_covered"] == 3
    assert report["class_histogram"] == {"circle": 50, "square": 45, "triangle": 0, "ring": 5, "ellipse": 0,
                                         "star": 0, "cross": 0}
    assert report["mean_confidence"] == pytest.approx(0.7)
    probabilities[-1] = np.eye(7)[6]  # ring 4%: not covered; cross 1%: not covered; that row's top-1 is 1.0
    report = shapes_judge.kind_report(probabilities)
    assert report["kinds_covered"] == 2 and report["class_histogram"]["cross"] == 1
    assert report["mean_confidence"] == pytest.approx((99 * 0.7 + 1.0) / 100)


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # scipy's sqrtm on 150 samples of 64 ReLU features
def test_renders_of_three_kinds_cover_three_with_fid_against_numpy(judge):
    images, labels = renders(900)
    chosen = np.flatnonzero(np.isin(labels, [KINDS.index("ring"), KINDS.index("star"), KINDS.index("cross")]))[:150]
    real = renders(300, seed=5)[0]  # 2 x 150: the reference set, then the disjoint floor set
    report = shapes_judge.judge(images[chosen], real=real, extractor=judge)
    assert report["kinds_covered"] == 3 and report["num_images"] == report["num_real"] == 150
    histogram = report["class_histogram"]
    assert histogram["ring"] + histogram["star"] + histogram["cross"] >= 0.95 * 150
    assert report["mean_confidence"] > 0.9 and report["real_mean_confidence"] > 0.9
    # FID / KID in the judge's features against numpy / scipy; the floor is the next 150 reals vs the first 150
    fake_f, ref_f, floor_f = judge(images[chosen]), judge(real[:150]), judge(real[150:])
    assert report["fid"] == pytest.approx(scipy_fid(fake_f, ref_f), rel=1e-6)
    assert report["fid_real_floor"] == pytest.approx(scipy_fid(floor_f, ref_f), rel=1e-6)
    assert report["kid"] == pytest.approx(numpy_kid(fake_f, ref_f), rel=1e-6)
    assert report["kid_real_floor"] == pytest.approx(numpy_kid(floor_f, ref_f), rel=1e-6, abs=1e-9)
    assert report["fid"] > 5 * report["fid_real_floor"] and report["kid"] > 5 * abs(report["kid_real_floor"])
    # all seven kinds from another seed are near the floor
    everything = shapes_judge.judge(images[:150], real=real, extractor=judge)
    assert everything["kinds_covered"] == 7 and everything["fid"] < 3 * everything["fid_real_floor"]


def test_floor_uses_disjoint_sets_and_halves_a_small_real_set():
    real = np.arange(10)
    reference, floor = shapes_judge.split_real(real, 4)
    np.testing.assert_array_equal(reference, [0, 1, 2, 3])
    np.testing.assert_array_equal(floor, [4, 5, 6, 7])
    reference, floor = shapes_judge.split_real(real, 6)  # fewer than 2 x 6: two halves of 5
    np.testing.assert_array_equal(reference, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(floor, [5, 6, 7, 8, 9])
    features = np.random.default_rng(0).normal(size=(30, 4))
    both = shapes_judge.distances_with_floor(features[:10] + 1.0, features[10:20], features[20:], num_subsets=3)
    assert both["fid_real_floor"] == pytest.approx(distances.fid_from_features(features[20:], features[10:20]))
    assert both["fid"] == pytest.approx(distances.fid_from_features(features[:10] + 1.0, features[10:20]))


def test_grey_float_and_larger_inputs(judge):
    images = renders(8, resolution=64)[0]
    features, probabilities = judge.predict(images)
    assert features.shape == (8, 64) and probabilities.shape == (8, 7) and features.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    # [-1, 1] floats are the same input as uint8; grey images are their channel repeated
    np.testing.assert_allclose(judge(images.astype(np.float32) / 127.5 - 1.0), features, rtol=1e-5, atol=1e-6)
    grey = renders(8, channels=1)[0]
    assert grey.shape[-1] == 1
    np.testing.assert_array_equal(judge(grey), judge(np.repeat(grey, 3, axis=-1)))
    with pytest.raises(ValueError, match="1 or 3"):
        judge(np.zeros((2, 32, 32, 4), np.uint8))


def test_training_is_deterministic_given_its_seed(tmp_path):
    """A shortened training (2 steps): the same seed gives identical weights; they moved from the seed's initial
    weights, which differ from another seed's."""
    import keras

    args = dict(num_images=32, epochs=1, batch_size=16, seeds=(101,), verbose=0)
    first = shapes_judge.train(seed=1, **args).get_weights()
    again = shapes_judge.train(seed=1, **args)
    assert all(np.array_equal(a, b) for a, b in zip(first, again.get_weights()))
    initial = {}
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        initial[seed] = shapes_judge.build_network().get_weights()
    assert not any(np.array_equal(a, b) for a, b in zip(first, initial[1]) if a.ndim == 4)  # every conv trained
    assert not any(np.array_equal(a, b) for a, b in zip(initial[1], initial[2]) if a.ndim == 4)
    # a weights file round-trips (what the script writes and the judge loads)
    path = str(tmp_path / "judge.npz")
    shapes_judge.save_weights(again, path, {"feature_scale": 0.5, "network": shapes_judge.NETWORK})
    loaded = shapes_judge.ShapesJudge(path)
    assert all(np.array_equal(a, b) for a, b in zip(first, loaded.network.get_weights()))
    images = renders(4)[0]
    np.testing.assert_allclose(loaded(images), 0.5 * np.asarray(again(shapes_judge.preprocess(images))[0]),
                               rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="--train"):
        shapes_judge.ShapesJudge(str(tmp_path / "missing.npz"))


JAX_SCRIPT = """
import json, sys
sys.modules["tensorflow"] = None  # `import tensorflow` fails from here on
import numpy as np
from keras_pgen.metrics import shapes_judge
import keras
out = {"backend": keras.backend.backend()}
for name in sys.argv[1:]:
    features, probabilities = shapes_judge.default_judge().predict(np.load(name))
    out[name] = [features.tolist(), probabilities.tolist()]
print(json.dumps(out))
"""


def test_judge_runs_under_jax_without_tensorflow(judge, tmp_path):
    """Same features and probabilities as under TensorFlow, at the judge's side and resized from 16x16."""
    inputs = {str(tmp_path / "32.npy"): renders(4)[0], str(tmp_path / "16.npy"): renders(4, resolution=16)[0]}
    for name, images in inputs.items():
        np.save(name, images)
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT, *inputs], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": REPO,
                                         "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax"
    for name, images in inputs.items():
        features, probabilities = judge.predict(images)
        np.testing.assert_allclose(out[name][0], features, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(out[name][1], probabilities, rtol=1e-4, atol=1e-5)
