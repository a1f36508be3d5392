"""Random affine views: one resampling that moves, turns and scales as its parameters say."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress.affine import affine_transforms, random_affine

SIZE = 16


def dot_image(row: int, col: int) -> np.ndarray:
    image = np.zeros((1, SIZE, SIZE, 1), np.float32)
    image[0, row, col, 0] = 1.0
    return image


def transform(image, shift_x=0.0, shift_y=0.0, theta=0.0, scale=1.0):
    vectors = affine_transforms(tf.constant([shift_x]), tf.constant([shift_y]), tf.constant([theta]),
                                tf.constant([scale]), SIZE, SIZE)
    return tf.raw_ops.ImageProjectiveTransformV3(images=image, transforms=vectors, output_shape=[SIZE, SIZE],
                                                 fill_value=0.0, interpolation="BILINEAR",
                                                 fill_mode="CONSTANT").numpy()


def test_identity_parameters_give_the_identity_transform():
    vectors = affine_transforms(tf.zeros(2), tf.zeros(2), tf.zeros(2), tf.ones(2), SIZE, SIZE).numpy()
    np.testing.assert_allclose(vectors, [[1, 0, 0, 0, 1, 0, 0, 0]] * 2, atol=1e-6)


def test_a_whole_pixel_shift_moves_content_by_that_many_pixels():
    out = transform(dot_image(5, 7), shift_x=3.0, shift_y=-2.0)
    assert np.argwhere(out[0, ..., 0] > 0.999).tolist() == [[3, 10]]


def test_a_quarter_turn_about_the_centre_is_a_90_degree_rotation():
    image = np.random.default_rng(0).random((1, SIZE, SIZE, 1)).astype(np.float32)
    out = transform(image, theta=math.pi / 2)
    turned = [np.rot90(image[0, ..., 0], k) for k in (1, -1)]
    assert any(np.allclose(out[0, ..., 0], t, atol=1e-4) for t in turned)


def test_scale_two_zooms_out_about_the_centre():
    image = np.zeros((1, SIZE, SIZE, 1), np.float32)
    image[0, 4:12, 4:12, 0] = 1.0  # an 8x8 square in the middle of 16x16
    out = transform(image, scale=2.0)[0, ..., 0]
    assert 14 <= (out > 0.5).sum() <= 25  # about 4x4 left
    assert out[7:9, 7:9].min() > 0.99 and out[:5].max() == 0.0


def test_random_affine_is_reproducible_per_seed_and_differentiable():
    images = tf.constant(np.random.default_rng(1).random((8, SIZE, SIZE, 1)), tf.float32)
    seed = tf.constant([3, 4])
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = random_affine(images, seed, shift=0.15, rotation=15.0, zoom=0.15, jitter_pixels=2.0)
        total = tf.reduce_sum(out)
    assert out.shape == images.shape
    assert float(tf.reduce_sum(tf.abs(tape.gradient(total, images)))) > 0
    np.testing.assert_array_equal(out, random_affine(images, seed, 0.15, 15.0, 0.15, 2.0))
    assert not np.array_equal(out, random_affine(images, tf.constant([5, 6]), 0.15, 15.0, 0.15, 2.0))
    assert random_affine(images, seed) is images  # all zero: untouched


@pytest.mark.parametrize("shift, jitter", [(0.125, 0.0), (0.0, 2.0), (0.125, 1.0)])
def test_shifts_stay_within_their_bounds(shift, jitter):
    image = np.repeat(dot_image(8, 8), 64, axis=0)
    out = random_affine(tf.constant(image), tf.constant([1, 2]), shift=shift, jitter_pixels=jitter).numpy()
    bound = shift * SIZE + jitter
    moved = []
    for single in out[..., 0]:
        rows, cols = np.nonzero(single > 1e-6)
        assert len(rows) and np.all(np.abs(rows - 8) <= math.ceil(bound)) and np.all(np.abs(cols - 8) <= math.ceil(bound))
        moved.append(np.average(rows, weights=single[rows, cols]) - 8)
    assert np.std(moved) > bound / 4  # the shifts spread over the range, not all near 0


def centroids(out):
    """(row, col) of each image's mass, relative to the centre."""
    rows, cols = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2.0
    mass = out[..., 0].sum(axis=(1, 2))
    return (out[..., 0] * rows).sum(axis=(1, 2)) / mass, (out[..., 0] * cols).sum(axis=(1, 2)) / mass


def test_rotation_and_zoom_stay_within_their_bounds():
    image = np.zeros((64, SIZE, SIZE, 1), np.float32)
    image[:, 7:9, 13:15, 0] = 1.0  # a blob right of the centre, radius 6
    row0, col0 = 0.0, 6.0
    turned = random_affine(tf.constant(image), tf.constant([7, 8]), rotation=15.0).numpy()
    rows, cols = centroids(turned)
    angles = np.degrees(np.arctan2(rows, cols) - np.arctan2(row0, col0))
    assert np.abs(angles).max() <= 15.5 and np.std(angles) > 4
    zoomed = random_affine(tf.constant(image), tf.constant([7, 8]), zoom=0.2).numpy()
    radii = np.hypot(*centroids(zoomed)) / 6.0  # content at radius r moves to r / s, s in [0.8, 1.2]
    assert radii.min() >= 1 / 1.2 - 0.03 and radii.max() <= 1 / 0.8 + 0.03 and np.std(radii) > 0.05
