"""ConditionalGAN: one train_step updates both networks; fit + TensorBoard; save/load."""

import dataclasses
import glob

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import callbacks, networks
from tfgan_compress.config import GANConfig
from tfgan_compress.gan import ConditionalGAN

SHAPE, CLASSES, NOISE = (8, 8, 1), 3, 4


def make_gan(loss="hinge", seed=0):
    keras.utils.set_random_seed(seed)
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    discriminator = networks.build_discriminator(SHAPE, CLASSES, width=4, spectral_norm=True)
    model = ConditionalGAN(generator, discriminator, GANConfig(loss=loss), seed=seed)
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    return model


def batch(n=4):
    x = tf.random.uniform((n, *SHAPE))
    y = tf.constant(np.arange(n) % CLASSES, tf.int32)
    return x, y


@pytest.mark.parametrize("loss", ["hinge", "non_saturating", "wasserstein_gp"])
def test_train_step_updates_both_networks_and_returns_metrics(loss):
    model = make_gan(loss)
    g_before = [w.numpy().copy() for w in model.generator.trainable_weights]
    d_before = [w.numpy().copy() for w in model.discriminator.trainable_weights]
    ema_before = [w.numpy().copy() for w in model.ema_generator.weights]
    logs = model.train_step(batch())
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(logs)
    if loss == "wasserstein_gp":
        assert "gradient_penalty" in logs
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(g_before, model.generator.trainable_weights))
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(d_before, model.discriminator.trainable_weights))
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(ema_before, model.ema_generator.weights))
    assert float(model.ema_updates.numpy()) == 1.0


def test_fit_with_standard_callbacks_writes_tensorboard_events(tmp_path):
    model = make_gan()
    x, y = batch(8)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    model.fit(ds, epochs=2, verbose=0, callbacks=[
        keras.callbacks.TerminateOnNaN(),
        callbacks.SampleGrid(tmp_path / "samples", tmp_path / "logs" / "samples", CLASSES, per_class=2),
        keras.callbacks.TensorBoard(str(tmp_path / "logs"), update_freq=1),
    ])
    assert glob.glob(str(tmp_path / "logs" / "train" / "events.out.tfevents.*"))
    assert glob.glob(str(tmp_path / "logs" / "samples" / "events.out.tfevents.*"))
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    tags = set()
    for path in glob.glob(str(tmp_path / "logs" / "train" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags |= {v.tag for v in event.summary.value}
    assert {"epoch_d_loss", "epoch_g_loss", "batch_d_loss", "batch_g_loss"} <= tags


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    x, y = batch(8)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)

    class StopAfterTwoEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("simulated crash")

    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="simulated crash"):
        make_gan().fit(ds, epochs=4, verbose=0,
                       callbacks=[keras.callbacks.BackupAndRestore(backup), StopAfterTwoEpochs()])
    started = []
    resumed = make_gan(seed=1)
    resumed.fit(ds, epochs=4, verbose=0, callbacks=[
        keras.callbacks.BackupAndRestore(backup),
        keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: started.append(epoch))])
    assert started == [2, 3]
    # 2 epochs x 2 steps restored + 2 x 2 run: optimizer states and EMA counter came back too
    assert int(resumed.generator_optimizer.iterations.numpy()) == 8
    assert int(resumed.discriminator_optimizer.iterations.numpy()) == 8
    assert int(resumed.ema_updates.numpy()) == 8


def test_predict_returns_images_in_unit_range():
    model = make_gan()
    images = model.predict([np.zeros((5, NOISE), np.float32), np.arange(5, dtype=np.int32) % CLASSES], verbose=0)
    assert images.shape == (5, *SHAPE) and images.min() >= 0.0 and images.max() <= 1.0


def test_save_load_round_trip(tmp_path):
    model = make_gan()
    model.train_step(batch())
    noise = np.random.default_rng(0).standard_normal((3, NOISE)).astype(np.float32)
    labels = np.array([0, 1, 2], np.int32)
    expected = model.predict([noise, labels], verbose=0)
    model.ema_generator.save(tmp_path / "generator.keras")
    model.discriminator.save(tmp_path / "discriminator.keras")
    generator = keras.models.load_model(tmp_path / "generator.keras")
    discriminator = keras.models.load_model(tmp_path / "discriminator.keras")
    np.testing.assert_allclose(generator.predict([noise, labels], verbose=0), expected, atol=1e-6)
    x, y = batch(3)
    np.testing.assert_allclose(discriminator([x, y]), model.discriminator([x, y]), atol=1e-5)
    # the whole GAN model serialises too
    model.save(tmp_path / "gan.keras")
    restored = keras.models.load_model(tmp_path / "gan.keras", compile=False)
    np.testing.assert_allclose(restored.predict([noise, labels], verbose=0), expected, atol=1e-6)


def test_image_grid_layout():
    images = np.zeros((6, 8, 8, 1), np.float32)
    grid = callbacks.image_grid(images, rows=3, min_cell_px=16)
    assert grid.dtype == np.uint8 and grid.shape == (3 * 17 - 1, 2 * 17 - 1, 1)


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (13, 17, 3), (64, 64, 3)])
def test_networks_are_sized_from_the_image_shape(shape):
    generator = networks.build_generator(shape, 4, 8, width=4)
    discriminator = networks.build_discriminator(shape, 4, width=4)
    labels = tf.constant([0, 3], tf.int32)
    images = generator([tf.zeros((2, 8)), labels])
    assert tuple(images.shape) == (2, *shape)
    assert tuple(discriminator([images, labels]).shape) == (2, 1)


def teacher_with_batchnorm(shape=(16, 16, 3)):
    from tfgan_compress.config import ClassifierConfig

    return networks.build_classifier(shape, CLASSES, ClassifierConfig((4, 4, 8, 8), (), architecture="resnet"), "t")


def test_the_teacher_eyed_terms_train_the_generator_and_leave_the_teacher_alone():
    """Projected discriminator on two teacher feature maps + pixels, the batch-norm prior,
    mode seeking on same-class pairs and a ramped teacher term, in one step."""
    from tfgan_compress.teacher_taps import feature_taps

    keras.utils.set_random_seed(0)
    shape = (16, 16, 3)
    teacher = teacher_with_batchnorm(shape)
    teacher_before = [w.numpy().copy() for w in teacher.weights]
    config = GANConfig(discriminator_taps=2, bn_weight=0.1, diversity_weight=1.0, teacher_weight=0.5,
                       teacher_ramp_steps=4)
    discriminator = networks.build_discriminator(shape, CLASSES, 4, taps=feature_taps(teacher, 2))
    generator = networks.build_generator(shape, CLASSES, NOISE, width=4)
    model = ConditionalGAN(generator, discriminator, config, teacher=teacher)
    model.compile()
    images, labels = tf.random.uniform((6, *shape)), tf.constant([0, 1, 2, 0, 1, 2], tf.int32)
    assert discriminator([images, labels]).shape == (6, 3)  # pixel head + two taps
    g_before = [w.numpy().copy() for w in generator.trainable_weights]
    assert float(model.teacher_weight_now()) == 0.0  # ramp: nothing at step 0
    logs = model.train_step((images, labels))
    assert {"g_batchnorm_loss", "g_diversity", "g_teacher_loss"} <= set(logs)
    assert float(logs["g_batchnorm_loss"]) > 0 and float(logs["g_diversity"]) > 0
    assert float(model.teacher_weight_now()) == pytest.approx(0.5 / 4)
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(g_before, generator.trainable_weights))
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(teacher_before, teacher.weights))  # BN stats too


def test_a_teacher_without_batch_norm_skips_the_prior_with_one_line():
    from tfgan_compress.stages import gan_teacher_terms

    plain = networks.build_classifier(SHAPE, CLASSES, __import__("tfgan_compress.config", fromlist=["x"])
                                      .ClassifierConfig((2, 4), (8,)), "plain")
    taps, notes = gan_teacher_terms(GANConfig(bn_weight=0.1, discriminator_taps=1), plain)
    assert taps is not None and len(notes) == 1 and "statistics prior (gan.bn_weight) is skipped" in notes[0]
    assert gan_teacher_terms(GANConfig(bn_weight=0.1), None)[1] == ["no teacher in this run: gan.bn_weight, "
                                                                   "gan.teacher_weight not used"]
    inputs = keras.Input(SHAPE)  # logits from a 1x1 convolution: no Dense, no penultimate features
    no_dense = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(CLASSES, 1)(inputs)))
    notes = gan_teacher_terms(GANConfig(class_feature_weight=1.0), no_dense)[1]
    assert len(notes) == 1 and "(gan.class_feature_weight) are skipped" in notes[0]
    assert ConditionalGAN(networks.build_generator(SHAPE, CLASSES, NOISE, width=4),
                          networks.build_discriminator(SHAPE, CLASSES, 4), GANConfig(class_feature_weight=1.0),
                          teacher=no_dense).class_feature_model is None


def test_the_batch_norm_prior_can_target_the_teachers_statistics_on_real_images(tmp_path):
    """bn_target "real": the targets start as the running statistics and become the mean and
    variance of each batch-norm input over the given images; the loss then prices real images
    at about zero, which the running statistics (of the teacher's training views) need not."""
    from tfgan_compress import losses

    keras.utils.set_random_seed(0)
    shape = (8, 8, 3)
    teacher = teacher_with_batchnorm(shape)
    config = GANConfig(bn_weight=0.1, teacher_weight=0.0, bn_target="real")
    model = ConditionalGAN(networks.build_generator(shape, CLASSES, NOISE, width=4),
                           networks.build_discriminator(shape, CLASSES, 4), config, teacher=teacher)
    model.compile()
    layers = model.bn_layers
    assert len(layers) >= 2
    assert all(np.allclose(mean.numpy(), layer.moving_mean.numpy()) for (mean, _), layer in
               zip(model.bn_targets, layers))
    real = np.random.default_rng(0).uniform(0.2, 0.9, (70, *shape)).astype(np.float32)
    labels = np.arange(70) % CLASSES
    from tfgan_compress.errors import UsageError

    with pytest.raises(UsageError, match="batch-norm targets were not measured"):  # not silently the running ones
        model.fit(real, labels, batch_size=8, epochs=1, verbose=0)
    model.set_batchnorm_targets(real, batch_size=32)  # three batches, the last one short
    _, *features = model.bn_model(real, training=False)
    for (mean, variance), feature in zip(model.bn_targets, features):
        flat = feature.numpy().reshape(-1, feature.shape[-1]).astype(np.float64)
        np.testing.assert_allclose(mean.numpy(), flat.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(variance.numpy(), flat.var(0), rtol=1e-3, atol=1e-5)
    assert float(losses.batchnorm_statistics_loss(features, model.bn_targets)) < 1e-3
    assert float(losses.batchnorm_statistics_loss(features, layers)) > 0.1  # untrained running statistics
    logs = model.train_step((tf.constant(real[:6]), tf.constant([0, 1, 2, 0, 1, 2], tf.int32)))
    assert float(logs["g_batchnorm_loss"]) > 0
    # the targets are the model's own weights: a backup or a reload keeps them
    model.save_weights(tmp_path / "gan.weights.h5")
    again = ConditionalGAN(networks.build_generator(shape, CLASSES, NOISE, width=4),
                           networks.build_discriminator(shape, CLASSES, 4), config, teacher=teacher)
    again.load_weights(tmp_path / "gan.weights.h5")
    assert all(np.array_equal(a.numpy(), b.numpy()) for (a, _), (b, _) in zip(model.bn_targets, again.bn_targets))
    again.compile()
    again.fit(real[:8], labels[:8], batch_size=8, epochs=1, verbose=0)  # measured targets reloaded: it trains
    # the default target adds no weight (older backups still load)
    plain = ConditionalGAN(networks.build_generator(shape, CLASSES, NOISE, width=4),
                           networks.build_discriminator(shape, CLASSES, 4), GANConfig(bn_weight=0.1), teacher=teacher)
    assert len(plain.weights) == len(model.weights) - 2 * len(layers) - 1  # and no measured flag


def test_class_feature_statistics_targets_are_each_real_class_and_pull_the_generator(tmp_path):
    """class_feature_weight: targets measured per class on real images (refused before and
    for a class of one image), a g_class_feature_loss that prices real images at about zero
    and a generator update, one teacher pass beside the batch-norm prior."""
    from tfgan_compress import losses
    from tfgan_compress.errors import UsageError

    keras.utils.set_random_seed(0)
    shape = (8, 8, 3)
    teacher = teacher_with_batchnorm(shape)
    config = GANConfig(bn_weight=0.1, teacher_weight=0.1, teacher_margin=1.0, class_feature_weight=1.0)
    model = ConditionalGAN(networks.build_generator(shape, CLASSES, NOISE, width=4),
                           networks.build_discriminator(shape, CLASSES, 4), config, teacher=teacher)
    model.compile()
    rng = np.random.default_rng(0)
    labels = np.arange(60) % CLASSES
    real = np.clip(rng.uniform(0.0, 0.5, (60, *shape)) + 0.2 * labels[:, None, None, None], 0, 1).astype(np.float32)
    with pytest.raises(UsageError, match="targets were not measured"):
        model.fit(real, labels, batch_size=6, epochs=1, verbose=0)
    with pytest.raises(UsageError, match="two real images of a class at least"):
        model.set_class_feature_targets(real[:3], labels[:3])  # one image of each class: no spread anywhere
    assert model.set_class_feature_targets(real[:4], labels[:4]) == [1, 2]  # class 0 twice, 1 once, 2 once
    assert model.class_feature_targets[3].numpy().tolist() == [1.0, 0.0, 0.0]
    assert model.set_class_feature_targets(real, labels, batch_size=25) == []  # three batches, the last one short
    means, stds, scale, known = (w.numpy() for w in model.class_feature_targets)
    assert known.tolist() == [1.0, 1.0, 1.0]
    features = model.class_feature_model(real, training=False)[-1].numpy()
    assert features.shape[-1] == means.shape[-1] and means.shape[0] == CLASSES
    for c in range(CLASSES):
        np.testing.assert_allclose(means[c], features[labels == c].mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(stds[c], features[labels == c].std(0, ddof=1), rtol=1e-3, atol=1e-5)
    assert not np.allclose(means[0], means[2])  # the classes differ in brightness: their own targets
    assert float(losses.class_feature_statistics_loss(features, labels, *model.class_feature_targets)) < 1e-3
    before = [w.numpy().copy() for w in model.generator.trainable_weights]
    logs = model.train_step((tf.constant(real[:6]), tf.constant(labels[:6], tf.int32)))
    assert float(logs["g_class_feature_loss"]) > 0.01 and float(logs["g_batchnorm_loss"]) > 0
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, model.generator.trainable_weights))
    # off (the default): no weights, no model
    plain = ConditionalGAN(networks.build_generator(shape, CLASSES, NOISE, width=4),
                           networks.build_discriminator(shape, CLASSES, 4), GANConfig(bn_weight=0.1), teacher=teacher)
    assert plain.class_feature_model is None and len(plain.weights) == len(model.weights) - 5


def test_the_teacher_can_see_the_samples_as_its_pad_and_crop_training_views():
    """bn_view_shift s: the prior and the teacher term get each sample shifted by up to s
    pixels with zero fill (fresh draws each step); 0 leaves the samples as they are."""
    keras.utils.set_random_seed(0)
    shape = (8, 8, 3)
    teacher = teacher_with_batchnorm(shape)

    def gan(shift):
        return ConditionalGAN(networks.build_generator(shape, CLASSES, NOISE, width=4),
                              networks.build_discriminator(shape, CLASSES, 4),
                              GANConfig(bn_weight=0.1, teacher_weight=0.1, bn_view_shift=shift), teacher=teacher)

    images = tf.constant(np.random.default_rng(0).uniform(0.2, 0.9, (64, *shape)).astype(np.float32))
    assert gan(0).teacher_view(images) is images
    from tfgan_compress.errors import UsageError

    with pytest.raises(UsageError, match="bn_view_shift 4 must be below half the images' smaller side"):
        gan(4)  # 8x8 images: such views would be mostly zero fill
    model = gan(2)
    views, again = model.teacher_view(images).numpy(), model.teacher_view(images).numpy()
    assert not np.array_equal(views, again)  # a new shift per call
    zero_rows = np.all(views == 0, axis=(2, 3))  # rows wholly uncovered by a shift
    assert zero_rows.any() and zero_rows.sum(axis=1).max() <= 2
    model.compile()
    logs = model.train_step((images[:6], tf.constant([0, 1, 2, 0, 1, 2], tf.int32)))
    assert np.isfinite(float(logs["g_batchnorm_loss"])) and np.isfinite(float(logs["g_teacher_loss"]))


def test_mode_seeking_in_the_teachers_features_reads_them_and_falls_back_to_pixels_without_them():
    from tfgan_compress.stages import gan_teacher_terms

    keras.utils.set_random_seed(0)
    shape = (16, 16, 3)
    teacher = teacher_with_batchnorm(shape)
    images, labels = tf.random.uniform((6, *shape)), tf.constant([0, 1, 2, 0, 1, 2], tf.int32)
    diversity, g_loss = {}, {}
    for space, weight in (("pixels", 0.0), ("pixels", 2.0), ("teacher_features", 2.0)):
        keras.utils.set_random_seed(0)
        config = GANConfig(bn_weight=0.1, diversity_weight=weight, diversity_space=space)
        generator = networks.build_generator(shape, CLASSES, NOISE, width=4)
        model = ConditionalGAN(generator, networks.build_discriminator(shape, CLASSES, 4), config, teacher=teacher)
        model.compile()
        g_before = [w.numpy().copy() for w in generator.trainable_weights]
        logs = model.train_step((images, labels))
        g_loss[space, weight] = float(logs["g_loss"])
        diversity[space] = float(logs.get("g_diversity", 0.0))
        assert "g_class_feature_loss" not in logs and model.class_feature_targets is None  # no targets to measure
        assert any(not np.allclose(a, b.numpy()) for a, b in zip(g_before, generator.trainable_weights))
    assert diversity["teacher_features"] > 0 and abs(diversity["teacher_features"] - diversity["pixels"]) > 1e-3
    for space in ("pixels", "teacher_features"):  # the same first step, less the weighted term: it is in the loss
        assert g_loss[space, 2.0] == pytest.approx(g_loss["pixels", 0.0] - 2.0 * diversity[space], abs=1e-4)
    model.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(6), epochs=1, verbose=0)  # not refused
    inputs = keras.Input(SHAPE)  # no Dense layer: pixels, with one line
    no_dense = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(CLASSES, 1)(inputs)))
    config = GANConfig(diversity_weight=1.0, diversity_space="teacher_features")
    fallback = ConditionalGAN(networks.build_generator(SHAPE, CLASSES, NOISE, width=4),
                              networks.build_discriminator(SHAPE, CLASSES, 4), config, teacher=no_dense)
    assert not fallback.diversity_in_features and fallback.config.diversity_space == "pixels"
    notes = gan_teacher_terms(config, no_dense)[1]
    assert len(notes) == 1 and "mode seeking measures distances in pixels" in notes[0]
    assert "mode seeking measures distances in pixels" in gan_teacher_terms(config, None)[1][-1]
    # set, but mode seeking is off: one line, with or without a teacher
    idle = GANConfig(diversity_weight=0.0, diversity_space="teacher_features", teacher_weight=0.0)
    for teacher in (no_dense, None):
        assert gan_teacher_terms(idle, teacher)[1] == [
            "gan.diversity_space teacher_features has no effect: mode seeking is off (gan.diversity_weight 0)"]
    assert gan_teacher_terms(dataclasses.replace(idle, diversity_space="pixels"), None)[1] == []
