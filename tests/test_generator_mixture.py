"""Several generators trained as one (``gan.generators``): each sample whole from one of them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import export, networks
from tfgan_compress.config import GANConfig, RunConfig
from tfgan_compress.errors import UsageError
from tfgan_compress.gan import ConditionalGAN
from tfgan_compress.generator_mixture import generator_classes, generator_mixture, mixture_choice, mixture_size

SHAPE, CLASSES, NOISE, COUNT = (8, 8, 1), 3, 4, 3


def make_mixture(seed=0):
    keras.utils.set_random_seed(seed)
    parts = [networks.build_generator(SHAPE, CLASSES, NOISE, width=4) for _ in range(COUNT)]
    return generator_mixture(parts), parts


def inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.standard_normal((n, NOISE)), tf.float32),
            tf.constant(np.arange(n) % CLASSES, tf.int32))


def test_each_sample_is_one_generators_chosen_by_its_noise_in_inference_and_in_training():
    mixture, parts = make_mixture()
    noise, labels = inputs(48)
    which = mixture_choice(noise, COUNT).numpy()
    assert set(which) == set(range(COUNT))  # every generator serves this batch
    for k in range(COUNT):  # every generator serves every class
        assert set(labels.numpy()[which == k]) == set(range(CLASSES))
    images = mixture([noise, labels], training=False).numpy()
    for k, part in enumerate(parts):
        np.testing.assert_allclose(images[which == k], part([noise, labels], training=False).numpy()[which == k],
                                   atol=1e-6)
    # training: each generator runs on its own share only (its batch-norm statistics are that share's), and
    # the first COUNT samples go to generators 0..COUNT-1 so that none has an empty share
    trained = mixture([noise, labels], training=True).numpy()
    which[:COUNT] = np.arange(COUNT)
    for k, part in enumerate(parts):
        share = which == k
        alone = part([tf.boolean_mask(noise, share), tf.boolean_mask(labels, share)], training=True).numpy()
        np.testing.assert_allclose(trained[share], alone, atol=1e-5)


def test_a_generator_learns_only_from_its_own_samples():
    mixture, parts = make_mixture()
    noise, labels = inputs(2 * COUNT)
    with tf.GradientTape() as tape:
        images = mixture([noise, labels], training=True)
        loss = tf.reduce_sum(images[0])  # the first sample is generator 0's
    grads = tape.gradient(loss, [part.trainable_variables for part in parts])
    assert any(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads[0] if g is not None)
    for other in grads[1:]:
        assert all(g is None or float(tf.reduce_sum(tf.abs(g))) == 0 for g in other)


def test_a_mixture_trains_in_the_gan_saves_reloads_and_exports(tmp_path):
    mixture, parts = make_mixture()
    discriminator = networks.build_discriminator(SHAPE, CLASSES, width=4)
    gan = ConditionalGAN(mixture, discriminator, GANConfig(diversity_weight=1.0), seed=0)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    before = [[w.numpy().copy() for w in part.trainable_weights] for part in parts]
    logs = gan.train_step((tf.random.uniform((4 * COUNT, *SHAPE)), tf.constant(np.arange(4 * COUNT) % CLASSES)))
    assert all(np.isfinite(float(v)) for v in logs.values())
    for part, weights in zip(parts, before):  # every generator had a share and moved
        assert any(not np.allclose(a, b.numpy()) for a, b in zip(weights, part.trainable_weights))
    assert mixture_size(gan.ema_generator) == COUNT and generator_classes(gan.ema_generator) == CLASSES
    noise, labels = inputs(6)
    gan.ema_generator.save(tmp_path / "generator.keras")
    loaded = keras.models.load_model(tmp_path / "generator.keras", compile=False)
    np.testing.assert_allclose(loaded([noise, labels]), gan.ema_generator([noise, labels]), atol=1e-6)
    for variant in ("float32", "float16"):  # float16 once stored the choice's constant rounded: other generators
        assert export.check_generator(export.convert(loaded, variant), loaded, variant) < 2e-3


def test_a_plain_generator_is_a_mixture_of_one_and_a_mixture_needs_two():
    plain = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    assert generator_mixture([plain]) is plain and mixture_size(plain) == 1 and generator_classes(plain) == CLASSES
    with pytest.raises(ValueError, match="two generators"):
        from tfgan_compress.generator_mixture import GeneratorMixture
        GeneratorMixture([plain])


@pytest.mark.parametrize("settings, message", [
    ({"gan": {"generators": 2}, "distill": {"class_blend": 0.5}}, "class_blend"),
    ({"gan": {"generators": 3, "batch_size": 8}}, "batch_size >= 12"),
])
def test_settings_a_mixture_cannot_honour_are_refused(settings, message):
    with pytest.raises(UsageError, match=message):
        RunConfig.from_dict(settings)


def test_inference_splits_the_batch_as_the_export_masks_it_even_with_empty_shares():
    mixture, parts = make_mixture()
    from tfgan_compress.generator_mixture import every_generator_on_every_sample

    for n in (1, 2, 7):  # a batch of one leaves two generators without a share
        noise, labels = inputs(n, seed=n)
        split = mixture([noise, labels], training=False).numpy()
        with every_generator_on_every_sample():
            masked = mixture([noise, labels], training=False).numpy()
        np.testing.assert_allclose(split, masked, atol=1e-6)
        assert np.all(np.isfinite(split))
