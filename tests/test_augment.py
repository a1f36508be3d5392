"""DiffAugment: differentiable, shape-keeping, reproducible per seed, each policy doing what it says."""

import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress.augment import POLICIES, diff_augment, translate

IMAGES = tf.constant(np.random.default_rng(0).random((8, 16, 16, 3)), tf.float32)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_each_policy_is_differentiable_and_reproducible(policy):
    seed = tf.constant([3, 4])
    with tf.GradientTape() as tape:
        tape.watch(IMAGES)
        out = diff_augment(IMAGES, [policy], seed)
        total = tf.reduce_sum(out)
    assert out.shape == IMAGES.shape
    assert float(tf.reduce_sum(tf.abs(tape.gradient(total, IMAGES)))) > 0
    np.testing.assert_array_equal(out, diff_augment(IMAGES, [policy], seed))
    assert not np.array_equal(out, diff_augment(IMAGES, [policy], tf.constant([5, 6])))


def test_translation_moves_content_by_at_most_an_eighth():
    image = np.zeros((1, 16, 16, 1), np.float32)
    image[0, 8, 8, 0] = 1.0
    for s in range(20):
        out = diff_augment(tf.constant(image), ["translation"], tf.constant([s, 0])).numpy()
        (row,), (col,) = np.nonzero(out[0, ..., 0])[0], np.nonzero(out[0, ..., 0])[1]
        assert abs(row - 8) <= 2 and abs(col - 8) <= 2


def test_translate_shifts_each_image_by_whole_pixels_up_to_the_pad_with_zero_fill():
    """Pad-and-crop views: every image is its own shift of the original by at most ``pad``
    rows and columns, zeros where the shift uncovers, and all shifts in range occur."""
    images = np.random.default_rng(0).uniform(0.1, 1.0, (256, 10, 10, 2)).astype(np.float32)
    out = translate(tf.constant(images), tf.constant([3, 4], tf.int64), 3, 3).numpy()
    seen = set()
    for original, view in zip(images, out):
        matches = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                   if np.array_equal(view, np.pad(original, [(3, 3), (3, 3), (0, 0)])[3 - dy:13 - dy, 3 - dx:13 - dx])]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 49


def test_cutout_zeroes_a_quarter_at_most():
    out = diff_augment(tf.ones((64, 16, 16, 1)), ["cutout"], tf.constant([1, 2])).numpy()
    zeroed = np.mean(out == 0, axis=(1, 2, 3))
    assert np.all(zeroed <= 0.25 + 1e-6) and zeroed.mean() > 0.1
