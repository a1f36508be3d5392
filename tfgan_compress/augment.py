"""Differentiable augmentation for GAN training (Zhao et al., 2020, "Differentiable
Augmentation for Data-Efficient GAN Training", NeurIPS).

The discriminator only ever sees augmented images, real and generated alike, and the
generator's gradient flows through the same augmentation, so the discriminator cannot
memorise a small training set and the generator is not taught the augmentation. Each
policy is a pure function of an image batch in [0, 1] and a stateless seed; every image
draws its own parameters:

* ``color``: brightness ``x + (u - 0.5) / 2``, saturation ``m + (x - m) * 2u`` (``m`` the
  per-pixel channel mean), contrast ``m + (x - m) * (u + 0.5)`` (``m`` the image mean),
  ``u ~ U(0, 1)`` (the paper's ranges, rescaled from [-1, 1] to [0, 1] pixels);
* ``translation``: shift by up to 1/8 of the image size, zero fill;
* ``cutout``: a zeroed square of half the image size at a random centre.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

__all__ = ["diff_augment", "translate", "POLICIES"]


def _uniform(images, seed, salt: int):
    """One ``U(0, 1)`` draw per image, shaped ``[batch, 1, 1, 1]`` (static rank: a tensor of
    unknown rank here made every convolution after it twice as slow on CPU)."""
    draws = tf.random.stateless_uniform(tf.shape(images)[:1], seed=seed + [0, salt], dtype=images.dtype)
    return tf.reshape(draws, [-1, 1, 1, 1])


def color(images, seed):
    images = images + (_uniform(images, seed, 1) - 0.5) / 2.0
    mean = tf.reduce_mean(images, axis=-1, keepdims=True)
    images = (images - mean) * (_uniform(images, seed, 2) * 2.0) + mean
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - mean) * (_uniform(images, seed, 3) + 0.5) + mean


def _shift_indices(size: int, pad: int, shift):
    """Row (or column) indices into a zero-padded axis: ``i + pad - shift``, per image."""
    return tf.range(size)[None, :] + pad - shift[:, None]


def translation(images, seed, ratio: float = 0.125):
    height, width = images.shape[1], images.shape[2]
    return translate(images, seed, max(1, int(height * ratio + 0.5)), max(1, int(width * ratio + 0.5)))


def translate(images, seed, pad_h: int, pad_w: int):
    """Each image shifted by its own ``U{-pad, ..., pad}`` rows and columns with zero fill:
    the views of pad-and-crop augmentation; ``seed``: a ``[2]`` int64 seed."""
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    shift_h = tf.random.stateless_uniform([batch], seed=seed + [0, 4], minval=-pad_h, maxval=pad_h + 1, dtype=tf.int32)
    shift_w = tf.random.stateless_uniform([batch], seed=seed + [0, 5], minval=-pad_w, maxval=pad_w + 1, dtype=tf.int32)
    padded = tf.pad(images, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
    rows = tf.gather(padded, _shift_indices(height, pad_h, shift_h), axis=1, batch_dims=1)
    return tf.gather(rows, _shift_indices(width, pad_w, shift_w), axis=2, batch_dims=1)


def cutout(images, seed, ratio: float = 0.5):
    height, width = images.shape[1], images.shape[2]
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    batch = tf.shape(images)[0]
    centre_h = tf.random.stateless_uniform([batch, 1, 1], seed=seed + [0, 6], maxval=height + (1 - cut_h % 2),
                                           dtype=tf.int32)
    centre_w = tf.random.stateless_uniform([batch, 1, 1], seed=seed + [0, 7], maxval=width + (1 - cut_w % 2),
                                           dtype=tf.int32)
    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    top, left = centre_h - cut_h // 2, centre_w - cut_w // 2
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
    return images * tf.cast(~inside, images.dtype)[..., None]


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(images, policy: Sequence[str], seed):
    """Apply each of ``policy`` (names of :data:`POLICIES`, in order) to ``images``;
    ``seed``: a ``[2]`` int seed for the stateless random ops."""
    seed = tf.cast(seed, tf.int64)
    shape = images.shape
    for i, name in enumerate(policy):
        images = tf.ensure_shape(POLICIES[name](images, seed + [10 * i, 0]), shape)
    return images
