"""Elastic views: the affine view of :mod:`affine` plus a smooth, bounded displacement field."""

import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress.affine import random_affine
from tfgan_compress.config import RunConfig
from tfgan_compress.elastic import bilinear_sample, elastic_displacements, random_elastic_affine
from tfgan_compress.errors import UsageError

SIZE = 16


def random_images(count=8, seed=0):
    return tf.constant(np.random.default_rng(seed).random((count, SIZE, SIZE, 1)), tf.float32)


def test_without_distortion_it_is_the_affine_view_of_the_same_seed():
    images, seed = random_images(), tf.constant([3, 4])
    np.testing.assert_allclose(random_elastic_affine(images, seed, 0.15, 15.0, 0.15, 2.0).numpy(),
                               random_affine(images, seed, 0.15, 15.0, 0.15, 2.0).numpy(), atol=1e-5)


def test_bilinear_sample_reads_pixels_interpolates_between_and_is_zero_outside():
    image = np.arange(SIZE * SIZE, dtype=np.float32).reshape(1, SIZE, SIZE, 1)
    x = tf.constant([[[0.0, 3.0, 2.5, -1.0, SIZE - 0.5]]])
    y = tf.constant([[[0.0, 2.0, 2.0, 0.0, 0.0]]])
    out = bilinear_sample(image, x, y).numpy()[0, 0, :, 0]
    np.testing.assert_allclose(out, [0.0, 2 * SIZE + 3, 2 * SIZE + 2.5, 0.0, (SIZE - 1) / 2], atol=1e-4)


def test_displacements_are_bounded_smooth_and_spread():
    field = elastic_displacements(64, SIZE, SIZE, tf.constant([1, 2]), elastic=0.1, cell=0.25).numpy()
    assert np.abs(field).max() <= 0.1 * SIZE + 1e-5
    assert np.abs(field).max() > 0.08 * SIZE  # uses its range
    # neighbouring pixels move alike: at most the grid's steepest slope apart (cell 0.25: a 5 x 5
    # grid stretched over 16 pixels, points 3.2 px apart, each +- 1.6 px)
    slope = 2 * 0.1 * SIZE / (SIZE / 5)
    assert np.abs(np.diff(field, axis=1)).max() <= slope + 1e-4
    assert np.abs(np.diff(field, axis=2)).max() <= slope + 1e-4
    assert np.abs(np.diff(field, axis=1)).mean() < slope / 4  # and mostly much less


def test_a_grid_finer_than_the_pixels_is_capped_at_one_point_per_pixel():
    field = elastic_displacements(128, SIZE, SIZE, tf.constant([1, 2]), elastic=0.1, cell=1e-9).numpy()
    assert field.shape == (128, SIZE, SIZE, 2) and np.isfinite(field).all()
    assert np.abs(field).max() <= 0.1 * SIZE + 1e-5


def test_distortion_moves_pixels_reproducibly_per_seed():
    images = random_images()
    a = random_elastic_affine(images, tf.constant([5, 6]), elastic=0.1).numpy()
    b = random_elastic_affine(images, tf.constant([5, 6]), elastic=0.1).numpy()
    c = random_elastic_affine(images, tf.constant([7, 8]), elastic=0.1).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, images.numpy(), atol=1e-3)
    assert a.shape == images.shape and a.min() >= 0.0 and a.max() <= 1.0


@pytest.mark.parametrize("settings", [{"student_elastic": 1.0}, {"student_elastic": -0.1},
                                      {"student_elastic_cell": 0.0}, {"student_elastic_cell": 1.5}])
def test_out_of_range_elastic_settings_are_refused(settings):
    with pytest.raises(UsageError, match="student_elastic"):
        RunConfig.from_dict({"datafree": settings}).validate()
