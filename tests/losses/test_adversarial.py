"""Tests for keras_pgen.losses.adversarial against hand-computed values.

Logits used throughout: real = [1, -0.5], fake = [0.2, 2]; every expected value
is written out with math.log / math.exp, never by calling the function twice.
"""
import math

import numpy as np
import pytest
from keras import ops

from keras_pgen.losses import adversarial as adv

REAL = [1.0, -0.5]
FAKE = [0.2, 2.0]


def t(x):
    return ops.convert_to_tensor(np.asarray(x, np.float32))


def value(x):
    return float(ops.convert_to_numpy(x))


def test_non_saturating_discriminator_loss():
    # mean(softplus(-real)) + mean(softplus(fake))
    expected = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(0.5))) / 2 \
        + (math.log(1 + math.exp(0.2)) + math.log(1 + math.exp(2.0))) / 2
    assert value(adv.non_saturating_discriminator_loss(t(REAL), t(FAKE))) == pytest.approx(expected, rel=1e-6)
    # -log sigmoid(real) - log(1 - sigmoid(fake)) is the same thing written differently.
    sig = lambda x: 1 / (1 + math.exp(-x))
    expected_bce = (-math.log(sig(1.0)) - math.log(sig(-0.5))) / 2 \
        + (-math.log(1 - sig(0.2)) - math.log(1 - sig(2.0))) / 2
    assert expected == pytest.approx(expected_bce, rel=1e-12)


def test_non_saturating_generator_loss_ignores_real():
    expected = (math.log(1 + math.exp(-0.2)) + math.log(1 + math.exp(-2.0))) / 2
    assert value(adv.non_saturating_generator_loss(t(FAKE))) == pytest.approx(expected, rel=1e-6)
    assert value(adv.non_saturating_generator_loss(t(FAKE), t(REAL))) == pytest.approx(expected, rel=1e-6)


def test_non_saturating_is_stable_for_large_logits():
    # softplus must not overflow: -log sigmoid(-100) = 100 (+ e^-100).
    assert value(adv.non_saturating_generator_loss(t([-100.0]))) == pytest.approx(100.0, rel=1e-6)
    assert value(adv.non_saturating_discriminator_loss(t([100.0]), t([-100.0]))) == pytest.approx(0.0, abs=1e-6)


def test_hinge_losses():
    # D: mean(relu(1 - [1, -0.5])) = mean(0, 1.5) = 0.75; mean(relu(1 + [0.2, 2])) = mean(1.2, 3) = 2.1
    assert value(adv.hinge_discriminator_loss(t(REAL), t(FAKE))) == pytest.approx(0.75 + 2.1, rel=1e-6)
    # G: -mean(fake) = -(0.2 + 2) / 2
    assert value(adv.hinge_generator_loss(t(FAKE))) == pytest.approx(-1.1, rel=1e-6)
    assert value(adv.hinge_generator_loss(t(FAKE), t(REAL))) == pytest.approx(-1.1, rel=1e-6)
    # Margins satisfied: loss 0 (relu clips).
    assert value(adv.hinge_discriminator_loss(t([2.0, 1.0]), t([-1.0, -3.0]))) == pytest.approx(0.0, abs=1e-7)


def test_wasserstein_losses():
    # D: mean(fake) - mean(real) = 1.1 - 0.25
    assert value(adv.wasserstein_discriminator_loss(t(REAL), t(FAKE))) == pytest.approx(0.85, rel=1e-6)
    assert value(adv.wasserstein_generator_loss(t(FAKE))) == pytest.approx(-1.1, rel=1e-6)
    assert value(adv.wasserstein_generator_loss(t(FAKE), t(REAL))) == pytest.approx(-1.1, rel=1e-6)


def test_relativistic_average_hinge_discriminator_loss():
    mean_r, mean_f = (1.0 - 0.5) / 2, (0.2 + 2.0) / 2  # 0.25, 1.1
    term_real = (max(0.0, 1 - (1.0 - mean_f)) + max(0.0, 1 - (-0.5 - mean_f))) / 2  # (1.1 + 2.6) / 2
    term_fake = (max(0.0, 1 + (0.2 - mean_r)) + max(0.0, 1 + (2.0 - mean_r))) / 2  # (0.95 + 2.75) / 2
    assert term_real + term_fake == pytest.approx(3.7)
    got = value(adv.relativistic_average_hinge_discriminator_loss(t(REAL), t(FAKE)))
    assert got == pytest.approx(3.7, rel=1e-6)


def test_relativistic_average_hinge_generator_loss_swaps_roles():
    # G(fake, real) = mean relu(1 - (fake - mean real)) + mean relu(1 + (real - mean fake))
    # = mean(relu(1.05), relu(-0.75)) + mean(relu(0.9), relu(-0.6)) = 0.525 + 0.45
    got = value(adv.relativistic_average_hinge_generator_loss(t(FAKE), t(REAL)))
    assert got == pytest.approx(0.975, rel=1e-6)
    swapped = value(adv.relativistic_average_hinge_discriminator_loss(t(FAKE), t(REAL)))
    assert got == pytest.approx(swapped, rel=1e-6)
    # It is NOT the discriminator loss itself (3.7): the roles really are swapped.
    assert abs(got - 3.7) > 1.0


def test_relativistic_average_hinge_clipping():
    real, fake = [3.0, 2.0], [-2.0, 0.0]  # mean real 2.5, mean fake -1
    # D: relu(1 - (3 + 1)) = relu(1 - (2 + 1)) = 0; relu(1 + (-2 - 2.5)) = relu(1 + (0 - 2.5)) = 0
    assert value(adv.relativistic_average_hinge_discriminator_loss(t(real), t(fake))) == pytest.approx(0.0, abs=1e-7)
    # G: mean(relu(1 - (-2 - 2.5)), relu(1 - (0 - 2.5))) = mean(5.5, 3.5) = 4.5;
    #    mean(relu(1 + (3 + 1)), relu(1 + (2 + 1))) = mean(5, 4) = 4.5
    assert value(adv.relativistic_average_hinge_generator_loss(t(fake), t(real))) == pytest.approx(9.0, rel=1e-6)


def test_ra_hinge_couples_the_batch_but_ns_does_not():
    real = np.array([1.0, -0.5, 3.0, 0.25], np.float32)
    fake = np.array([0.2, 2.0, -1.5, 0.7], np.float32)
    d_ra = adv.relativistic_average_hinge_discriminator_loss
    full = value(d_ra(t(real), t(fake)))
    halves = (value(d_ra(t(real[:2]), t(fake[:2]))) + value(d_ra(t(real[2:]), t(fake[2:])))) / 2
    # Hand value of the full batch: mean real = 0.6875, mean fake = 0.35.
    mr, mf = real.mean(), fake.mean()
    expected = np.mean(np.maximum(0, 1 - (real - mf))) + np.mean(np.maximum(0, 1 + (fake - mr)))
    assert full == pytest.approx(float(expected), rel=1e-6)
    assert abs(full - halves) > 0.1

    d_ns = adv.non_saturating_discriminator_loss
    full_ns = value(d_ns(t(real), t(fake)))
    halves_ns = (value(d_ns(t(real[:2]), t(fake[:2]))) + value(d_ns(t(real[2:]), t(fake[2:])))) / 2
    assert full_ns == pytest.approx(halves_ns, rel=1e-6)


def test_gradient_penalty_single_tensor():
    # per-sample norms: sqrt(9 + 16) = 5, sqrt(0 + 0 + 0 + 1) = 1 over a [2, 2, 2, 1] tensor
    g = np.zeros((2, 2, 2, 1), np.float32)
    g[0, 0, 0, 0], g[0, 1, 1, 0] = 3.0, 4.0
    g[1, 1, 0, 0] = 1.0
    assert value(adv.gradient_penalty(t(g))) == pytest.approx(((5 - 1) ** 2 + 0) / 2, rel=1e-5)
    # target 2: mean((5 - 2)^2, (1 - 2)^2) = 5
    assert value(adv.gradient_penalty(t(g), target=2.0)) == pytest.approx(5.0, rel=1e-5)


def test_gradient_penalty_list_is_one_vector_per_sample():
    grads = [t([[3.0, 0.0], [0.0, 0.0]]), t([[4.0], [1.0]])]
    # norms sqrt(3^2 + 4^2) = 5 and sqrt(0 + 1^2) = 1 -> mean((5-1)^2, (1-1)^2) = 8.
    # (A penalty per tensor would give mean(4, 1) + mean(9, 0) = 7 instead.)
    assert value(adv.gradient_penalty(grads)) == pytest.approx(8.0, rel=1e-5)
    assert value(adv.gradient_penalty(tuple(grads))) == pytest.approx(8.0, rel=1e-5)


def test_gradient_penalty_of_zero_gradients_is_finite():
    # sqrt at 0 must not give NaN: ||0|| = 0 -> (0 - 1)^2 = 1
    assert value(adv.gradient_penalty(t(np.zeros((3, 4), np.float32)))) == pytest.approx(1.0, rel=1e-5)


def test_r1_penalty():
    grads = [t([[3.0, 0.0], [0.0, 0.0]]), t([[4.0], [1.0]])]
    # squared norms 25 and 1 -> 13
    assert value(adv.r1_penalty(grads)) == pytest.approx(13.0, rel=1e-6)
    g = np.arange(12, dtype=np.float32).reshape(2, 3, 2, 1)
    # sample 0: 0+1+4+9+16+25 = 55; sample 1: 36+49+64+81+100+121 = 451
    assert value(adv.r1_penalty(t(g))) == pytest.approx((55 + 451) / 2, rel=1e-6)


def test_drift_penalty():
    # mean(1^2, (-0.5)^2) = 0.625
    assert value(adv.drift_penalty(t(REAL))) == pytest.approx(0.625, rel=1e-6)


def test_get_adversarial_loss_known_names():
    assert adv.get_adversarial_loss("ns") == (
        adv.non_saturating_discriminator_loss, adv.non_saturating_generator_loss, False)
    assert adv.get_adversarial_loss("hinge") == (adv.hinge_discriminator_loss, adv.hinge_generator_loss, False)
    assert adv.get_adversarial_loss("wgan")[:2] == (
        adv.wasserstein_discriminator_loss, adv.wasserstein_generator_loss)
    assert adv.get_adversarial_loss("wgan_gp")[:2] == (
        adv.wasserstein_discriminator_loss, adv.wasserstein_generator_loss)
    assert adv.get_adversarial_loss("ra_hinge") == (
        adv.relativistic_average_hinge_discriminator_loss, adv.relativistic_average_hinge_generator_loss, True)


def test_get_adversarial_loss_unknown_name_lists_choices():
    with pytest.raises(ValueError) as info:
        adv.get_adversarial_loss("lsgan")
    message = str(info.value)
    assert "lsgan" in message
    for name in ("hinge", "ns", "ra_hinge", "wgan", "wgan_gp"):
        assert repr(name) in message


def test_batch_coupled_flag_only_for_ra_hinge():
    flags = {name: entry[2] for name, entry in adv.ADVERSARIAL_LOSSES.items()}
    assert flags == {"ra_hinge": True, "ns": False, "hinge": False, "wgan": False, "wgan_gp": False}


def test_losses_are_exported_from_package():
    import keras_pgen.losses as losses

    assert losses.gradient_penalty is adv.gradient_penalty
    assert losses.get_adversarial_loss is adv.get_adversarial_loss
    assert losses.ADVERSARIAL_LOSSES is adv.ADVERSARIAL_LOSSES
