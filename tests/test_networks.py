"""The colour-image networks (ResNet-9, MobileNet-style, residual GAN) on tiny shapes:
they build, train a step, save and load, convert to TFLite; their FLOP counts."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import config, export, networks, timing
from tfgan_compress.config import ClassifierConfig, GANConfig
from tfgan_compress.gan import ConditionalGAN


@pytest.mark.parametrize("shape", [(8, 8, 3), (32, 32, 3), (12, 10, 1)])
@pytest.mark.parametrize("architecture, filters", [("resnet", (2, 4, 4, 8)), ("mobilenet", (4, 8, 8, 16))])
def test_classifiers_give_logits_for_any_supported_shape(shape, architecture, filters):
    model = networks.build_classifier(shape, 5, ClassifierConfig(filters, (), architecture=architecture), "m")
    assert model(np.zeros((2, *shape), np.float32)).shape == (2, 5)


def test_resnet_needs_four_stages():
    with pytest.raises(ValueError, match="4 conv_filters"):
        networks.build_classifier((8, 8, 3), 3, ClassifierConfig((4, 8), (), architecture="resnet"), "m")


def test_color_preset_student_int8_fits_128_kb():
    cfg = config.preset("color")
    student = networks.build_classifier((32, 32, 3), 10, cfg.distill.network, "student")
    assert student.count_params() < 100_000
    # the int8 file: about one byte a weight, plus the graph (114,488 bytes measured on CIFAR-10)
    assert student.count_params() + 40_000 < 128 * 1024


def test_resnet_gan_with_diff_augment_trains_and_converts(tmp_path):
    shape, classes, noise = (8, 8, 3), 3, 4
    keras.utils.set_random_seed(0)
    generator = networks.build_generator(shape, classes, noise, 4, "resnet")
    discriminator = networks.build_discriminator(shape, classes, 4, True, "resnet")
    gan = ConditionalGAN(generator, discriminator, GANConfig(architecture="resnet",
                                                             diff_augment=("color", "translation", "cutout")))
    gan.compile()
    before = [w.numpy().copy() for w in generator.trainable_weights]
    logs = gan.train_step((tf.random.uniform((4, *shape)), tf.constant([0, 1, 2, 0])))
    assert np.isfinite(float(logs["d_loss"])) and np.isfinite(float(logs["g_loss"]))
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, generator.trainable_weights))
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    z, y = np.random.default_rng(0).standard_normal((3, noise)).astype(np.float32), np.array([0, 1, 2])
    np.testing.assert_allclose(loaded([z, y]), generator([z, y]), atol=1e-6)
    content = export.convert(generator, "float32")  # UpSampling2D once made this fail
    assert export.check_generator(content, generator, "float32") < 1e-3


def test_forward_flops_counts_multiply_adds_twice():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    assert timing.forward_flops(model) == 2 * (8 * 8 * 9 * 3 * 4 + 8 * 8 * 4 * 9 + 256 * 2)


@pytest.mark.parametrize("shape", [(64, 64, 3), (32, 32, 3), (20, 24, 3)])
def test_residual_gan_networks_fit_sizes_from_32_to_64(shape):
    generator = networks.build_generator(shape, 3, 4, 2, "resnet")
    discriminator = networks.build_discriminator(shape, 3, 2, True, "resnet")
    z, y = tf.zeros((2, 4)), tf.constant([0, 2])
    images = generator([z, y])
    assert images.shape == (2, *shape)
    assert discriminator([images, y]).shape == (2, 1)
