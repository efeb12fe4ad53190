"""Feature-matching losses (VAE-GAN, DeePSiM) against numpy and hand-made values."""
import numpy as np
import pytest

from keras_pgen.losses import feature_matching as fm
from keras_pgen.networks.feature_discriminator import FeatureDiscriminator


def _seed001_loss(real_layers, fake_layers):
    """Seed 001's `loss(critic, x, y)` in numpy: per sample, sum of squared differences of every layer."""
    n = real_layers[0].shape[0]
    total = np.zeros(n)
    for rx, ry in zip(real_layers, fake_layers):
        total += ((rx.reshape(n, -1) - ry.reshape(n, -1)) ** 2).sum(-1)
    return total


def test_discriminator_feature_distance_matches_seed_code():
    rng = np.random.RandomState(0)
    shapes = [(3, 4, 4, 2), (3, 2, 2, 5), (3, 1)]
    a = [rng.randn(*s).astype("float32") for s in shapes]
    b = [rng.randn(*s).astype("float32") for s in shapes]
    got = np.asarray(fm.discriminator_feature_distance(a, b))
    np.testing.assert_allclose(got, _seed001_loss(a, b), rtol=1e-5)
    # layer weights and the per-element mean
    w = [0.5, 2.0, 0.0]
    expected = sum(wi * ((x - y) ** 2).reshape(3, -1).mean(-1) for wi, x, y in zip(w, a, b))
    np.testing.assert_allclose(np.asarray(fm.discriminator_feature_distance(a, b, w, reduction="mean")),
                               expected, rtol=1e-5)
    with pytest.raises(ValueError, match="layer weights"):
        fm.discriminator_feature_distance(a, b, [1.0])


def test_distance_through_feature_discriminator_equals_numpy():
    """Every layer of the discriminator enters the distance (fromRGB, each block, head convs)."""
    d = FeatureDiscriminator(resolution=16, fmap_base=64, fmap_max=16)
    rng = np.random.RandomState(1)
    x, y = (rng.uniform(-1, 1, (2, 16, 16, 3)).astype("float32") for _ in range(2))
    fx, fy = d.features(x), d.features(y)
    assert [tuple(f.shape[1:]) for f in fx] == [(16, 16, 8), (8, 8, 16), (4, 4, 16), (4, 4, 16), (1, 1, 16)]
    expected = _seed001_loss([np.asarray(f) for f in fx], [np.asarray(f) for f in fy])
    np.testing.assert_allclose(np.asarray(fm.discriminator_feature_distance(fx, fy)), expected, rtol=1e-5)
    # the features and the logits come from the same pass; config round trip keeps the network
    feats, logits = d.features_and_logits(x)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(d(x)), rtol=1e-6)
    clone = FeatureDiscriminator.from_config(d.get_config())
    clone.set_weights(d.get_weights())
    np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(d(x)), rtol=1e-6)


@pytest.mark.parametrize("d_loss, g_loss, threshold, expected", [
    (0.5, 2.0, 0.1, True),     # ratio 0.25
    (0.05, 2.0, 0.1, False),   # ratio 0.025: D too strong, pause
    (0.2, 2.0, 0.1, True),     # ratio exactly the threshold: update
    (0.0, 0.0, 0.1, True),     # degenerate: no division by zero
    (0.3, 1.0, 0.5, False),
])
def test_ratio_pause_rule(d_loss, g_loss, threshold, expected):
    allowed = fm.discriminator_update_allowed("ratio", threshold, d_loss=d_loss, g_adversarial_loss=g_loss)
    assert bool(allowed) is expected


def test_accuracy_pause_rule_and_accuracy():
    real = np.array([[1.0], [2.0], [-1.0], [3.0]], "float32")   # 3 of 4 right
    fake = np.array([[-1.0], [-2.0], [-0.5], [-3.0]], "float32")  # 4 of 4 right
    acc = fm.discriminator_accuracy(real, fake)
    assert float(acc) == pytest.approx(0.875)
    assert bool(fm.discriminator_update_allowed("accuracy", 0.9, accuracy=acc))
    assert not bool(fm.discriminator_update_allowed("accuracy", 0.8, accuracy=acc))
    assert bool(fm.discriminator_update_allowed("none", 0.0))
    with pytest.raises(ValueError, match="unknown discriminator pause rule"):
        fm.discriminator_update_allowed("sometimes", 0.1)
