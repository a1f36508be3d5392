"""Which views of its training images a teacher's batch-norm statistics came from.

A ``BatchNormalization`` layer keeps running statistics of its input over the training
batches: over the *augmented* views, when the classifier was trained with augmentation. With
pad-and-crop (each image shifted by up to ``s`` pixels with zero fill; the colour preset's
teacher, ``s`` = 4) those views have zero borders, and DeepInversion's prior (Yin et al.,
CVPR 2020, "Dreaming to Distill") on raw generator samples asks the samples themselves for
such borders. The GAN's teacher terms can look at the samples through the same views
(``gan.bn_view_shift``, :meth:`gan.ConditionalGAN.teacher_view`); with ``auto`` the shift
is read off the teacher: the prior's distance

    d(s) = sum_l ||mu_l(V_s(x)) - mu_l|| + ||sigma2_l(V_s(x)) - sigma2_l||

(``mu_l``, ``sigma2_l``: the running mean and variance of batch-norm layer ``l``; ``V_s``: a
random zero-filled shift of up to ``s`` pixels, :func:`augment.translate`) for real training
images ``x``, for ``s`` = 0, 1, 2, ..., and the shift of least distance is taken. For the
committed CIFAR-10 teacher (trained with ``s`` = 4) on 1,024 training images: d = 32.6, 15.5,
8.5, 4.1, **2.9**, 5.7, 8.4 for ``s`` = 0 ... 6. For a teacher trained without shifts the
raw images should be nearest (``s`` = 0), and its samples are then shown as they are.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .augment import translate
from .teacher_taps import batchnorm_input_statistics

MEASURE_IMAGES = 1024  # real training images the shift is measured on
PATIENCE = 2  # the scan stops after this many shifts in a row farther than the best


def largest_view_shift(image_shape) -> int:
    """The largest shift allowed: below half the images' smaller side (views shifted further
    would be mostly fill)."""
    return (min(image_shape[:2]) - 1) // 2


def prior_distances(bn_model, layers, images) -> list[tuple[float, float]]:
    """Per batch-norm layer: (||mean - running mean||, ||variance - running variance||) of its
    input over ``images`` (``bn_model``: :func:`teacher_taps.batchnorm_taps` with ``with_output``)."""
    return [(float(np.linalg.norm(mean - np.asarray(layer.moving_mean))),
             float(np.linalg.norm(variance - np.asarray(layer.moving_variance))))
            for (mean, variance), layer in zip(batchnorm_input_statistics(bn_model, images), layers)]


def shifted_views(images, shift: int, seed: int) -> np.ndarray:
    """``images`` each shifted by its own random ``U{-shift, ..., shift}`` rows and columns, zero fill."""
    if shift == 0:
        return np.asarray(images, np.float32)
    return translate(tf.constant(images, tf.float32), tf.constant([seed, shift], tf.int64), shift, shift).numpy()


def measure_view_shift(bn_model, layers, images, max_shift: int, seed: int = 0) -> tuple[int, list[float]]:
    """(the shift ``s`` in ``0 ... max_shift`` whose views of ``images`` are nearest the
    running statistics by the prior's distance ``d(s)``, the distances measured in order from
    ``s`` = 0). The scan stops once :data:`PATIENCE` shifts in a row are farther than the best."""
    measured: list[float] = []
    for shift in range(max_shift + 1):
        measured.append(sum(m + v for m, v in prior_distances(bn_model, layers, shifted_views(images, shift, seed))))
        if len(measured) - 1 - int(np.argmin(measured)) >= PATIENCE:
            break
    return int(np.argmin(measured)), measured
