"""GAN and distillation losses as pure functions over tensors.

Every function returns **per-example** losses (shape ``[batch]``), never a mean: the
caller reduces them with :func:`average_over_global_batch`, which under a
``tf.distribute`` strategy divides by the *global* batch size, so that the gradients
summed across replicas equal the gradient of the mean over the global batch.

Naming follows TF-GAN's ``losses_impl.py``: ``<family>_generator_loss(fake_logits)`` and
``<family>_discriminator_loss(real_logits, fake_logits)``, one signature per role so that
families swap freely. Logits are the raw (unbounded) discriminator outputs. A family's pair,
with its optional penalty, is one :class:`GANLoss` object (TF-GAN's ``GANLoss``
namedtuple); :data:`GAN_LOSSES` holds one per ``gan.loss`` choice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

import tensorflow as tf

__all__ = ["average_over_global_batch", "non_saturating_discriminator_loss", "non_saturating_generator_loss",
           "hinge_discriminator_loss", "hinge_generator_loss", "wasserstein_discriminator_loss",
           "wasserstein_generator_loss", "gradient_penalty", "GANLoss", "GAN_LOSSES", "gan_loss",
           "distillation_loss", "teacher_class_loss", "class_margin_loss", "batchnorm_statistics_loss",
           "mode_seeking_ratio", "feature_mode_seeking_ratio", "feature_distillation_loss"]


def average_over_global_batch(per_example_loss, global_batch_size=None):
    """Mean over the global batch: ``sum(loss) / global_batch_size``.

    Outside a strategy this is the plain mean. Inside ``strategy.run`` the global batch
    size defaults to ``per_replica_batch * num_replicas_in_sync``
    (``tf.nn.compute_average_loss``).
    """
    return tf.nn.compute_average_loss(per_example_loss, global_batch_size=global_batch_size)


def _flat(logits):
    return tf.reshape(tf.cast(logits, tf.float32), [-1])


# --- non-saturating (Goodfellow et al., 2014, "Generative Adversarial Nets", sec. 3)


def non_saturating_discriminator_loss(real_logits, fake_logits):
    """``-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))``  = softplus(-real) + softplus(fake).

    The original minimax discriminator objective (binary cross-entropy, real = 1).
    """
    return tf.nn.softplus(-_flat(real_logits)) + tf.nn.softplus(_flat(fake_logits))


def non_saturating_generator_loss(fake_logits):
    """``-log sigmoid(D(G(z)))`` = softplus(-fake).

    Goodfellow et al.'s "non-saturating" heuristic: the generator maximises
    ``log D(G(z))`` instead of minimising ``log(1 - D(G(z)))``, which has strong
    gradients early in training.
    """
    return tf.nn.softplus(-_flat(fake_logits))


# --- hinge (Lim & Ye, 2017, "Geometric GAN"; Miyato et al., 2018, SN-GAN)


def hinge_discriminator_loss(real_logits, fake_logits):
    """``max(0, 1 - D(x)) + max(0, 1 + D(G(z)))``."""
    return tf.nn.relu(1.0 - _flat(real_logits)) + tf.nn.relu(1.0 + _flat(fake_logits))


def hinge_generator_loss(fake_logits):
    """``-D(G(z))``."""
    return -_flat(fake_logits)


# --- Wasserstein (Arjovsky et al., 2017) with gradient penalty (Gulrajani et al., 2017)


def wasserstein_discriminator_loss(real_logits, fake_logits):
    """Critic loss ``D(G(z)) - D(x)`` (minimised; estimates minus the Wasserstein-1 distance)."""
    return _flat(fake_logits) - _flat(real_logits)


def wasserstein_generator_loss(fake_logits):
    """``-D(G(z))``."""
    return -_flat(fake_logits)


def gradient_penalty(critic, real_images, fake_images, labels, seed):
    """WGAN-GP penalty ``(||grad_x_hat D(x_hat)||_2 - 1)^2`` per example.

    ``x_hat = eps * x + (1 - eps) * G(z)`` with ``eps ~ U[0, 1]`` per example
    (Gulrajani et al., 2017, "Improved Training of Wasserstein GANs", eq. 3).
    ``critic`` is a callable ``critic(images, labels) -> logits``; ``seed`` a ``[2]``
    stateless seed (per replica under ``tf.distribute``, like every other draw).
    """
    batch = tf.shape(real_images)[0]
    eps = tf.random.stateless_uniform([batch, 1, 1, 1], seed=seed)
    interpolated = eps * real_images + (1.0 - eps) * fake_images
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        logits = critic(interpolated, labels)
    grads = tape.gradient(logits, interpolated)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
    return tf.square(norms - 1.0)


@dataclass(frozen=True)
class GANLoss:
    """A GAN loss family: the generator and discriminator losses, and optionally a
    discriminator penalty ``penalty(critic, real, fake, labels, seed)`` added with
    ``penalty_weight`` and reported as the metric ``penalty_name``.

    ``saturates_at_zero``: the discriminator loss is near 0 only when real and fake are
    perfectly separated (hinge, non-saturating), so a long run of such epochs means the
    generator gets no signal; a Wasserstein critic's loss has no such floor.
    """

    generator_loss: Callable
    discriminator_loss: Callable
    penalty: Optional[Callable] = None
    penalty_weight: float = 0.0
    penalty_name: str = "gradient_penalty"
    saturates_at_zero: bool = True


GAN_LOSSES = {
    "hinge": GANLoss(hinge_generator_loss, hinge_discriminator_loss),
    "non_saturating": GANLoss(non_saturating_generator_loss, non_saturating_discriminator_loss),
    "wasserstein_gp": GANLoss(wasserstein_generator_loss, wasserstein_discriminator_loss, penalty=gradient_penalty,
                              saturates_at_zero=False),
}


def gan_loss(name: str, penalty_weight: float = 10.0) -> GANLoss:
    """The :class:`GANLoss` named by ``gan.loss``, with ``gan.gradient_penalty_weight``."""
    try:
        return dataclasses.replace(GAN_LOSSES[name], penalty_weight=penalty_weight)
    except KeyError:
        raise ValueError(f"unknown GAN loss {name!r}; choose from {', '.join(GAN_LOSSES)}") from None


# --- knowledge distillation (Hinton, Vinyals & Dean, 2015, "Distilling the Knowledge in a Neural Network")


def distillation_loss(teacher_logits, student_logits, temperature):
    """``T^2 * KL(softmax(t / T) || softmax(s / T))`` per example.

    The ``T^2`` factor keeps gradient magnitudes comparable across temperatures
    (Hinton et al., 2015, sec. 2).
    """
    t = tf.cast(teacher_logits, tf.float32) / temperature
    s = tf.cast(student_logits, tf.float32) / temperature
    teacher_log_probs = tf.nn.log_softmax(t, axis=-1)
    student_log_probs = tf.nn.log_softmax(s, axis=-1)
    kl = tf.reduce_sum(tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    return (temperature ** 2) * kl


def feature_distillation_loss(teacher_features, projected_features, teacher_logits, regressed_logits,
                              temperature):
    """Per example, the two terms of softmax regression representation learning (Yang et al.,
    ICLR 2021, "Knowledge Distillation via Softmax Regression Representation Learning"):

    ``mean_d (P(f_s) - f_t)_d^2 / mean(f_t^2)  +  T^2 KL(softmax(t / T) || softmax(W P(f_s) / T))``

    ``f_t``: the teacher's penultimate features; ``P(f_s)`` (``projected_features``): the
    student's, through a learned linear map to the teacher's width; ``t``: the teacher's logits;
    ``W P(f_s)`` (``regressed_logits``): the projected features through the teacher's own
    (frozen) head, its last Dense layer and any layer behind it. The first term is FitNets' hint (Romero et al., 2015) on the
    penultimate layer, in units of the teacher features' mean square over the batch (not
    differentiated), so its scale does not depend on the teacher's; the second asks the
    student's features to be ones the teacher's classifier reads as the teacher does."""
    teacher_features = tf.cast(teacher_features, tf.float32)
    scale = tf.stop_gradient(tf.reduce_mean(tf.square(teacher_features))) + 1e-8
    hint = tf.reduce_mean(tf.square(tf.cast(projected_features, tf.float32) - teacher_features), axis=-1) / scale
    return hint + distillation_loss(teacher_logits, regressed_logits, temperature)


def teacher_class_loss(teacher_logits, labels):
    """``-log softmax(T(G(z, y)))_y``: the teacher's cross-entropy on a generated sample for the
    class it was generated for.

    Added to the generator loss (weight ``gan.teacher_weight``), it asks every sample to be
    recognisable as its class, as AC-GAN's auxiliary classifier does (Odena et al., 2017,
    "Conditional Image Synthesis with Auxiliary Classifier GANs"), with the already trained
    teacher as the classifier (it is not updated). The adversarial term still asks the
    samples to look like the data, so the teacher term sharpens classes rather than
    replacing realism.
    """
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(tf.reshape(labels, [-1]), tf.int32), logits=tf.cast(teacher_logits, tf.float32))


def class_margin_loss(labels, logits, margin: float):
    """``max(0, m - (l_y - max_{c != y} l_c))`` per example: zero once the classifier prefers
    class ``y`` by ``m`` logits (a multi-class hinge, Crammer and Singer, 2001), so a sample
    need not become ever more extreme.

    As a generator term (``gan.teacher_margin``) it corrects samples the teacher takes for
    another class and leaves alone those it already takes for theirs, however close to a
    decision boundary: unlike :func:`teacher_class_loss`, it does not push every sample
    towards the class prototype. The data-free mode uses it as its class term.
    """
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    logits = tf.cast(logits, tf.float32)
    one_hot = tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)
    target = tf.reduce_sum(one_hot * logits, axis=-1)
    runner_up = tf.reduce_max(logits - 1e9 * one_hot, axis=-1)
    return tf.nn.relu(margin - (target - runner_up))


# --- priors and regularisers of a generator, read through the teacher


def batchnorm_statistics_loss(features, targets):
    """``sum_l ||mu_l(x) - mu_l||_2 + ||sigma2_l(x) - sigma2_l||_2`` over the teacher's
    ``BatchNormalization`` layers ``l``: the batch's per-channel mean and variance of each
    layer's input against a target (Yin et al., CVPR 2020, "Dreaming to Distill: Data-free
    Knowledge Transfer via DeepInversion", eq. 4). ``targets``: the layers themselves (their
    running statistics, as in DeepInversion) or ``(mean, variance)`` pairs (for example the
    statistics of real images). A scalar per batch."""
    if not isinstance(features, (list, tuple)):  # a model with one output returns a tensor
        features = [features]
    total = 0.0
    for feature, target in zip(features, targets):
        target_mean, target_variance = ((target.moving_mean, target.moving_variance)
                                        if hasattr(target, "moving_mean") else target)
        axes = list(range(len(feature.shape) - 1))
        mean, variance = tf.nn.moments(tf.cast(feature, tf.float32), axes=axes)
        total += tf.norm(mean - target_mean) + tf.norm(variance - target_variance)
    return total


def class_feature_statistics_loss(features, labels, class_means, class_stds, scale, known=None):
    """Class-conditional feature matching in the teacher's penultimate features ``f``:

    ``L = 1/|C| sum_{c in C} mean_d [((m_cd - mu_cd) / s_d)^2 + ((sd_cd - sigma_cd) / s_d)^2]``

    over the classes ``C`` with at least two samples in the batch, where ``m_c`` and ``sd_c``
    are the batch's per-dimension mean and (n - 1) standard deviation of ``f`` on the samples
    of class ``c``, ``mu_c`` and ``sigma_c`` those of the real training images of ``c``, and
    ``s`` the real features' overall standard deviation (so the term has no units). It asks
    each class's samples for the real class's spread as well as its centre: the feature
    matching of Salimans et al. (NeurIPS 2016, "Improved Techniques for Training GANs"),
    taken per class and to the second moment, as DeepInversion's prior (Yin et al., 2020)
    takes the batch-norm statistics. ``labels``: int ``[batch]``; ``class_means``,
    ``class_stds``: ``[classes, d]``; ``scale``: ``[d]``; ``known``: ``[classes]``, 1 for the
    classes that have targets (None: all), the others are left out of ``C``. A scalar per
    batch (0 when no class has two samples)."""
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    classes = tf.shape(class_means)[0]
    features = tf.cast(features, tf.float32)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(labels, tf.float32), labels, classes)
    means = tf.math.unsorted_segment_sum(features, labels, classes) / tf.maximum(counts, 1.0)[:, None]
    centred = features - tf.gather(means, labels)
    variances = (tf.math.unsorted_segment_sum(tf.square(centred), labels, classes)
                 / tf.maximum(counts - 1.0, 1.0)[:, None])
    stds = tf.sqrt(variances + 1e-8)
    per_class = tf.reduce_mean(tf.square((means - class_means) / scale) + tf.square((stds - class_stds) / scale), axis=1)
    present = tf.cast(counts >= 2.0, tf.float32)
    if known is not None:
        present = present * tf.cast(known, tf.float32)
    return tf.reduce_sum(per_class * present) / tf.maximum(tf.reduce_sum(present), 1.0)


def mode_seeking_ratio(images_a, images_b, noise_a, noise_b):
    """``mean|G(z_a) - G(z_b)| / mean|z_a - z_b|`` per pair (Mao et al., CVPR 2019, "Mode
    Seeking Generative Adversarial Networks"): maximised (subtracted from the generator's
    loss), it keeps the generator from mapping all noise to one image per class."""
    image_distance = tf.reduce_mean(tf.abs(images_a - images_b), axis=[1, 2, 3])
    noise_distance = tf.reduce_mean(tf.abs(noise_a - noise_b), axis=-1)
    return image_distance / (noise_distance + 1e-5)


def feature_mode_seeking_ratio(features_a, features_b, noise_a, noise_b):
    """Mode seeking measured in a classifier's features: ``(mean|f(G(z_a)) - f(G(z_b))| /
    mean|f|) / mean|z_a - z_b|`` per pair, ``f`` the teacher's penultimate features and
    ``mean|f|`` their mean magnitude over both halves (not differentiated), so the term does not
    grow by inflating the features. Pixel distance rewards any change (colour, frames,
    noise); this one only changes the teacher sees, the spread of each class in the space where
    the student is taught."""
    features_a, features_b = tf.cast(features_a, tf.float32), tf.cast(features_b, tf.float32)
    scale = tf.stop_gradient(tf.reduce_mean(tf.abs(tf.concat([features_a, features_b], axis=0)))) + 1e-8
    feature_distance = tf.reduce_mean(tf.abs(features_a - features_b), axis=-1) / scale
    noise_distance = tf.reduce_mean(tf.abs(noise_a - noise_b), axis=-1)
    return feature_distance / (noise_distance + 1e-5)
