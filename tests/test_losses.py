"""Loss values against hand-computed numbers on 4-element tensors."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import losses

REAL = tf.constant([1.0, -1.0, 0.5, 2.0])
FAKE = tf.constant([-1.0, 0.0, 2.0, -3.0])


def softplus(x):
    return math.log1p(math.exp(x))


def test_hinge():
    # relu(1 - real) = [0, 2, 0.5, 0]; relu(1 + fake) = [0, 1, 3, 0]
    np.testing.assert_allclose(losses.hinge_discriminator_loss(REAL, FAKE), [0.0, 3.0, 3.5, 0.0])
    np.testing.assert_allclose(losses.hinge_generator_loss(FAKE), [1.0, 0.0, -2.0, 3.0])


def test_non_saturating():
    expected_d = [softplus(-r) + softplus(f) for r, f in zip([1, -1, 0.5, 2], [-1, 0, 2, -3])]
    np.testing.assert_allclose(losses.non_saturating_discriminator_loss(REAL, FAKE), expected_d, rtol=1e-6)
    # -log(sigmoid(0)) = log 2
    np.testing.assert_allclose(losses.non_saturating_generator_loss(tf.zeros(4)), [math.log(2)] * 4, rtol=1e-6)


def test_wasserstein():
    np.testing.assert_allclose(losses.wasserstein_discriminator_loss(REAL, FAKE), [-2.0, 1.0, 1.5, -5.0])
    np.testing.assert_allclose(losses.wasserstein_generator_loss(FAKE), [1.0, 0.0, -2.0, 3.0])


@pytest.mark.parametrize("weight, expected", [(0.5, 0.0), (1.0, 1.0), (0.25, 0.25)])
def test_gradient_penalty_of_a_linear_critic(weight, expected):
    # D(x) = w * sum(x) on 2x2x1 images: grad = w everywhere, ||grad|| = 2w, penalty (2w - 1)^2.
    def critic(images, labels):
        return weight * tf.reduce_sum(images, axis=[1, 2, 3])

    real = tf.random.uniform([4, 2, 2, 1])
    fake = tf.random.uniform([4, 2, 2, 1])
    penalty = losses.gradient_penalty(critic, real, fake, tf.zeros([4], tf.int32), seed=[1, 2])
    np.testing.assert_allclose(penalty, [expected] * 4, atol=1e-5)


def test_each_gan_loss_choice_is_one_object_with_both_roles():
    from tfgan_compress.config import GANLossName, choices

    assert tuple(losses.GAN_LOSSES) == choices(GANLossName)
    hinge = losses.gan_loss("hinge")
    np.testing.assert_allclose(hinge.discriminator_loss(REAL, FAKE), losses.hinge_discriminator_loss(REAL, FAKE))
    assert hinge.penalty is None and hinge.saturates_at_zero
    wgan = losses.gan_loss("wasserstein_gp", penalty_weight=5.0)
    assert wgan.penalty is losses.gradient_penalty and wgan.penalty_weight == 5.0 and not wgan.saturates_at_zero
    with pytest.raises(ValueError, match="unknown GAN loss"):
        losses.gan_loss("lsgan")


def test_gradient_penalty_noise_is_stateless():
    def critic(images, labels):
        return tf.reduce_sum(images ** 2, axis=[1, 2, 3])

    real, fake = tf.ones([4, 2, 2, 1]), tf.zeros([4, 2, 2, 1])
    first = losses.gradient_penalty(critic, real, fake, tf.zeros([4], tf.int32), seed=[3, 4])
    again = losses.gradient_penalty(critic, real, fake, tf.zeros([4], tf.int32), seed=[3, 4])
    other = losses.gradient_penalty(critic, real, fake, tf.zeros([4], tf.int32), seed=[5, 6])
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_distillation_loss_by_hand():
    # teacher p = [0.5, 0.5], student q = [0.25, 0.75]: KL = 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3)
    teacher = tf.constant([[0.0, 0.0]] * 4)
    student = tf.constant([[0.0, math.log(3.0)]] * 4)
    np.testing.assert_allclose(losses.distillation_loss(teacher, student, 1.0), [0.5 * math.log(4 / 3)] * 4,
                               rtol=1e-5)
    # At T = 2, logits scaled by 2 give the same distributions, and the loss is multiplied by T^2 = 4.
    np.testing.assert_allclose(losses.distillation_loss(teacher, 2 * student, 2.0), [2 * math.log(4 / 3)] * 4,
                               rtol=1e-5)
    np.testing.assert_allclose(losses.distillation_loss(student, student, 3.0), [0.0] * 4, atol=1e-6)


def test_average_over_global_batch():
    assert float(losses.average_over_global_batch(tf.constant([1.0, 2.0, 3.0, 6.0]))) == pytest.approx(3.0)
    assert float(losses.average_over_global_batch(tf.constant([1.0, 2.0, 3.0, 6.0]), 8)) == pytest.approx(1.5)


def test_teacher_class_loss_is_the_cross_entropy_of_the_asked_for_class():
    logits = tf.constant([[0.0, math.log(3.0)], [0.0, 0.0]])  # p = [0.25, 0.75] and [0.5, 0.5]
    np.testing.assert_allclose(losses.teacher_class_loss(logits, tf.constant([1, 0])),
                               [-math.log(0.75), -math.log(0.5)], rtol=1e-6)


def test_class_margin_loss_by_hand():
    logits = tf.constant([[5.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.0, 4.0]])
    labels = tf.constant([0, 0, 2])
    # gaps to the best other class: 4, -1, 4; margin 3 -> max(0, 3 - gap)
    np.testing.assert_allclose(losses.class_margin_loss(labels, logits, 3.0).numpy(), [0.0, 4.0, 0.0])


def test_class_feature_statistics_loss_by_hand():
    # class 0: features [0, 2] and [2, 2] -> mean [1, 2], (n - 1) std [sqrt 2, 0]; class 1 has one
    # sample (skipped); class 2 none. Targets: class 0 mean [1, 0], std [sqrt 2, 1]; scale [1, 2].
    features = tf.constant([[0.0, 2.0], [2.0, 2.0], [9.0, 9.0]])
    labels = tf.constant([0, 0, 1])
    means = tf.constant([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    stds = tf.constant([[math.sqrt(2.0), 1.0], [1.0, 1.0], [1.0, 1.0]])
    scale = tf.constant([1.0, 2.0])
    # dimension 0: 0 + 0; dimension 1: ((2 - 0) / 2)^2 + ((0 - 1) / 2)^2 = 1.25; mean over dimensions
    assert float(losses.class_feature_statistics_loss(features, labels, means, stds, scale)) == pytest.approx(
        0.625, abs=1e-4)
    # the batch that has the targets' statistics costs nothing; no class with two samples: 0
    assert float(losses.class_feature_statistics_loss(features[:2], labels[:2], tf.constant(
        [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]]), tf.constant([[math.sqrt(2.0), 0.0]] * 3), scale)) < 1e-6
    assert float(losses.class_feature_statistics_loss(features[1:], labels[1:], means, stds, scale)) == 0.0
    # a class without targets (known 0) is left out
    assert float(losses.class_feature_statistics_loss(features, labels, means, stds, scale,
                                                      tf.constant([0.0, 1.0, 1.0]))) == 0.0


def test_mode_seeking_in_features_is_the_feature_distance_in_units_of_their_magnitude_over_the_noise_distance():
    features_a = tf.constant([[1.0, 3.0], [2.0, 2.0]])
    features_b = tf.constant([[1.0, 1.0], [2.0, 2.0]])  # mean |f| over both halves: 14 / 8 = 1.75
    noise_a, noise_b = tf.constant([[0.0, 0.0], [1.0, 1.0]]), tf.constant([[1.0, 1.0], [0.0, 0.0]])
    ratio = losses.feature_mode_seeking_ratio(features_a, features_b, noise_a, noise_b).numpy()
    np.testing.assert_allclose(ratio, [1.0 / 1.75, 0.0], rtol=1e-4)  # mean |diff| 1 and 0, noise distance 1
    scaled = losses.feature_mode_seeking_ratio(10 * features_a, 10 * features_b, noise_a, noise_b).numpy()
    np.testing.assert_allclose(scaled, ratio, rtol=1e-4)  # inflating the features earns nothing
