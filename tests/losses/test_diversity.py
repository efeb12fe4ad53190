"""Diversity and top-k matching losses (seed 000) against hand-worked examples and numpy references."""
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_pgen.losses import diversity as div


def np_out(x):
    return np.asarray(ops.convert_to_numpy(x))


def rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def features(n, seed=0):
    """Two layers of feature maps for n images."""
    return [rand((n, 4, 4, 3), seed), rand((n, 2, 2, 5), seed + 100)]


def np_pairwise(fa, fb, weights, distance):
    def dist(a, b):
        a, b = a.astype(np.float64), b.astype(np.float64)
        if distance == "l1":
            return np.mean(np.abs(a - b))
        if distance == "l2":
            return np.mean((a - b) ** 2)
        gram = lambda f: f.reshape(-1, f.shape[-1]).T @ f.reshape(-1, f.shape[-1]) / (f.shape[0] * f.shape[1])
        return np.mean((gram(a) - gram(b)) ** 2)

    n, m = len(fa[0]), len(fb[0])
    return np.array([[sum(w * dist(a[i], b[j]) for w, a, b in zip(weights, fa, fb)) for j in range(m)]
                     for i in range(n)])


@pytest.mark.parametrize("distance", ["l1", "l2", "gram"])
def test_pairwise_distances_match_numpy(distance):
    fa, fb = features(3, 0), features(5, 1)
    got = np_out(div.pairwise_feature_distances(fa, fb, [0.5, 2.0], distance))
    np.testing.assert_allclose(got, np_pairwise(fa, fb, [0.5, 2.0], distance), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("distance", ["l1", "gram"])
def test_diversity_loss_is_zero_for_the_real_batch_itself(distance):
    real = features(4, 2)
    assert float(div.perceptual_diversity_loss(real, real, distance=distance)) == pytest.approx(0.0, abs=1e-7)
    other = features(4, 3)
    assert float(div.perceptual_diversity_loss(other, real, distance=distance)) > 1e-3


def test_diversity_loss_grows_as_the_generated_batch_collapses_to_one_image():
    """fake_i = (1 - t) real_i + t real_0: L1 pairwise distances shrink by (1 - t), so the loss is t * mean(D_real)."""
    real = features(5, 4)
    d_real = np_pairwise(real, real, [1.0, 1.0], "l1")
    values = []
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        fake = [(1 - t) * f + t * f[:1] for f in real]
        values.append(float(div.perceptual_diversity_loss(fake, real)))
        assert values[-1] == pytest.approx(t * d_real.mean(), rel=1e-4, abs=1e-6)
    assert values == sorted(values) and values[0] == pytest.approx(0.0, abs=1e-6) and values[-1] > 0.1
    # with a Gram distance, a collapsed batch is also worse than the real spread
    collapsed = [np.repeat(f[:1], 5, axis=0) for f in real]
    assert float(div.perceptual_diversity_loss(collapsed, real, distance="gram")) > 1e-3


def test_diversity_loss_rejects_batches_of_different_sizes():
    with pytest.raises(ValueError, match="batches of one size"):
        div.perceptual_diversity_loss(features(3), features(4))


def reference_assignment(distances, uniforms, k):
    """The seed's prose, in plain Python."""
    g, r = distances.shape
    used, partners = set(), [None] * g
    for i in range(g):
        for j in sorted(range(r), key=lambda j: (distances[i, j], j))[:k]:
            if j not in used:
                partners[i] = j
                used.add(j)
                break
    free = sorted((j for j in range(r) if j not in used), key=lambda j: uniforms[j])
    matched = [p is not None for p in partners]
    for i in range(g):
        if partners[i] is None:
            partners[i] = free.pop(0)
    return partners, matched


def hand_example():
    """8 generated x 16 real images, k = 5. Rows list their nearest reals in order; other reals are far.

    row 0: [0, 5, 6, ...]       -> 0
    row 1: [0, 1, ...]          -> 1 (0 is taken)
    row 2: [1, 0, 2, ...]       -> 2 (1 and 0 taken)
    row 3: [3, ...]             -> 3
    row 4: [4, ...]             -> 4
    row 5: [4, 3, 2, 1, 0, 7]   -> none: its 5 nearest are all taken (7 is 6th, out of the top 5)
    row 6: [0, 1, 2, 3, 5]      -> 5 (the 5th candidate)
    row 7: [2, 0, 4, 1, 3, 6]   -> none
    Random fill: free reals 6..15 by ascending uniform: u[12] = 0.01 < u[9] = 0.02 < the rest,
    so row 5 gets 12 and row 7 gets 9. The taken reals have the smallest uniforms of all
    (0.0) and must still be skipped.
    """
    orders = [[0, 5, 6], [0, 1], [1, 0, 2], [3], [4], [4, 3, 2, 1, 0, 7], [0, 1, 2, 3, 5], [2, 0, 4, 1, 3, 6]]
    distances = np.tile(100.0 + np.arange(16, dtype=np.float32), (8, 1))
    for i, order in enumerate(orders):
        for rank, j in enumerate(order):
            distances[i, j] = 1.0 + rank
    uniforms = np.linspace(0.5, 0.99, 16).astype(np.float32)
    uniforms[:6] = 0.0
    uniforms[12], uniforms[9] = 0.01, 0.02
    return distances, uniforms


def test_matching_assignment_hand_worked_example():
    distances, uniforms = hand_example()
    partners, matched = div.top_k_matching_assignment(distances, uniforms, k=5)
    assert np_out(partners).tolist() == [0, 1, 2, 3, 4, 12, 5, 9]
    assert np_out(matched).tolist() == [True, True, True, True, True, False, True, False]
    assert reference_assignment(distances, uniforms, 5) == ([0, 1, 2, 3, 4, 12, 5, 9], np_out(matched).tolist())
    # k = 6: row 5 now reaches real 7; row 7 reaches 6
    partners, matched = div.top_k_matching_assignment(distances, uniforms, k=6)
    assert np_out(partners).tolist() == [0, 1, 2, 3, 4, 7, 5, 6] and bool(np.all(np_out(matched)))
    # other draws, other random fill
    uniforms[9], uniforms[15] = 0.9, 0.001
    partners, _ = div.top_k_matching_assignment(distances, uniforms, k=5)
    assert np_out(partners).tolist() == [0, 1, 2, 3, 4, 15, 5, 12]


def test_matching_assignment_k1_and_graph_mode():
    partners, matched = div.top_k_matching_assignment([[0., 1., 2.], [0., 5., 1.]], [0.3, 0.2, 0.1], k=1)
    assert np_out(partners).tolist() == [0, 2] and np_out(matched).tolist() == [True, False]
    distances, uniforms = hand_example()
    graph = tf.function(lambda d, u: div.top_k_matching_assignment(d, u, k=5))
    dynamic = graph.get_concrete_function(tf.TensorSpec([None, None]), tf.TensorSpec([None]))
    assert np_out(dynamic(distances, uniforms)[0]).tolist() == [0, 1, 2, 3, 4, 12, 5, 9]


@pytest.mark.parametrize("seed", range(6))
def test_matching_assignment_equals_the_reference_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    g = int(rng.integers(2, 9))
    r = 2 * g
    # few distinct values: many ties and many rows with all candidates taken
    distances = rng.integers(0, 4, size=(g, r)).astype(np.float32)
    uniforms = rng.uniform(size=r).astype(np.float32)
    k = int(rng.integers(1, 6))
    partners, matched = div.top_k_matching_assignment(distances, uniforms, k=k)
    expected, expected_matched = reference_assignment(distances, uniforms, k)
    assert np_out(partners).tolist() == expected and np_out(matched).tolist() == expected_matched
    assert len(set(expected)) == g  # every generated image has its own real partner


def test_matching_loss_value_and_gradient_use_only_the_chosen_pairs():
    fake, real = features(4, 5), features(8, 6)
    uniforms = np.random.default_rng(7).uniform(size=8).astype(np.float32)
    weights = [1.0, 0.5]
    distances = np_pairwise(fake, real, weights, "l1")
    expected_partners, _ = reference_assignment(distances, uniforms, 5)
    fake_vars = [tf.Variable(f) for f in fake]
    with tf.GradientTape() as tape:
        loss, partners, _ = div.perceptual_matching_loss(fake_vars, real, uniforms, k=5, layer_weights=weights)
    assert np_out(partners).tolist() == expected_partners
    assert float(loss) == pytest.approx(np.mean([distances[i, p] for i, p in enumerate(expected_partners)]), rel=1e-5)
    grads = tape.gradient(loss, fake_vars)
    for w, f, r, grad in zip(weights, fake, real, grads):
        # d/d fake of mean_i w * mean|fake_i - real_p(i)|: w * sign(.) / (G * size)
        expected = w * np.sign(f - r[expected_partners]) / (4 * f[0].size)
        np.testing.assert_allclose(np_out(grad), expected, rtol=1e-5, atol=1e-9)
