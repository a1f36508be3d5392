"""gan_views: the shift of the teacher's pad-and-crop training views, read off its batch-norm statistics."""

import keras
import numpy as np
import pytest

from tfgan_compress import gan_views
from tfgan_compress.config import GANConfig
from tfgan_compress.errors import UsageError
from tfgan_compress.gan import ConditionalGAN, check_view_shift
from tfgan_compress.teacher_taps import batchnorm_input_statistics, batchnorm_taps


def pixel_batchnorm_teacher(shape, classes=3):
    """A classifier whose one batch-norm layer reads the pixels themselves."""
    inputs = keras.Input(shape)
    x = keras.layers.BatchNormalization()(inputs)
    outputs = keras.layers.Dense(classes)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def test_the_measured_shift_is_the_one_the_running_statistics_were_gathered_on():
    """Running statistics set to those of views shifted up to 2 pixels: the scan finds 2,
    and stops two shifts past it."""
    shape = (8, 8, 1)
    teacher = pixel_batchnorm_teacher(shape)
    bn_model, layers = batchnorm_taps(teacher, with_output=True)
    images = np.ones((512, *shape), np.float32)  # a view's mean is the share of pixels the shift keeps
    (mean, variance), = batchnorm_input_statistics(bn_model, gan_views.shifted_views(images, 2, seed=7))
    layers[0].moving_mean.assign(mean)
    layers[0].moving_variance.assign(variance)
    shift, measured = gan_views.measure_view_shift(bn_model, layers, images, max_shift=3, seed=1)
    assert shift == 2 and len(measured) == 4
    assert measured[0] > measured[1] > measured[2] < measured[3]
    # never beyond the largest allowed shift, and 0 when the raw images are nearest
    assert gan_views.measure_view_shift(bn_model, layers, images, max_shift=1, seed=1)[0] == 1
    (mean, variance), = batchnorm_input_statistics(bn_model, images)
    layers[0].moving_mean.assign(mean)
    layers[0].moving_variance.assign(variance)
    shift, measured = gan_views.measure_view_shift(bn_model, layers, images, max_shift=3, seed=1)
    assert shift == 0 and len(measured) == 1 + gan_views.PATIENCE


@pytest.mark.parametrize("shape, largest", [((8, 8, 1), 3), ((32, 32, 3), 15), ((49, 40, 1), 19), ((9, 7, 1), 3)])
def test_the_largest_shift_stays_below_half_the_smaller_side(shape, largest):
    assert gan_views.largest_view_shift(shape) == largest
    check_view_shift(GANConfig(bn_view_shift=largest), shape)
    with pytest.raises(UsageError, match="must be below half the images' smaller side"):
        check_view_shift(GANConfig(bn_view_shift=largest + 1), shape)


def test_a_gan_built_by_hand_needs_the_number_auto_stands_for():
    from tfgan_compress import networks

    shape = (8, 8, 1)
    check_view_shift(GANConfig(bn_view_shift="auto"), shape)  # the pipeline measures it
    with pytest.raises(UsageError, match="gan.bn_view_shift auto is measured by the pipeline"):
        ConditionalGAN(networks.build_generator(shape, 3, 4, width=4), networks.build_discriminator(shape, 3, 4),
                       GANConfig(bn_weight=0.1, bn_view_shift="auto"), teacher=pixel_batchnorm_teacher(shape))


def test_auto_shows_the_samples_as_they_are_when_the_prior_targets_raw_real_image_statistics():
    """bn_target real: the targets are measured on the real images without views, so auto gives 0."""
    from types import SimpleNamespace

    from tfgan_compress.stages import measured_view_shift

    said = []
    ctx = SimpleNamespace(progress=said.append)
    cfg = GANConfig(bn_weight=0.1, bn_target="real", bn_view_shift="auto")
    assert measured_view_shift(ctx, cfg, pixel_batchnorm_teacher((8, 8, 1))) == 0
    assert len(said) == 1 and "gan.bn_target real" in said[0]
