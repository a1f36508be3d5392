"""ConditionalGAN as a Keras user drives it: standard callbacks, compile, evaluate, save/load/fit."""

import csv
import glob

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import callbacks, losses, networks
from tfgan_compress.config import ClassifierConfig, GANConfig
from tfgan_compress.gan import ConditionalGAN

SHAPE, CLASSES, NOISE = (8, 8, 1), 3, 4


def make_gan(teacher_weight=0.0, with_teacher=True, teacher_margin=None):
    keras.utils.set_random_seed(0)
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    discriminator = networks.build_discriminator(SHAPE, CLASSES, width=4, spectral_norm=True)
    teacher = networks.build_classifier(SHAPE, CLASSES, ClassifierConfig(conv_filters=(2, 4), dense_units=(8,)),
                                        "teacher") if with_teacher else None
    model = ConditionalGAN(generator, discriminator, GANConfig(teacher_weight=teacher_weight, teacher_margin=teacher_margin),
                           teacher=teacher)
    model.compile()
    return model


def dataset(n=16, batch=4):
    x = np.random.default_rng(1).random((n, *SHAPE)).astype(np.float32)
    y = (np.arange(n) % CLASSES).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def learning_rates(model):
    return (float(keras.ops.convert_to_numpy(model.generator_optimizer.learning_rate)),
            float(keras.ops.convert_to_numpy(model.discriminator_optimizer.learning_rate)))


def test_standard_callbacks_work_on_the_gan(tmp_path):
    model = make_gan(teacher_weight=0.5)
    g0, d0 = learning_rates(model)
    history = model.fit(dataset(), epochs=3, verbose=0, callbacks=[
        keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.5),
        keras.callbacks.ReduceLROnPlateau(monitor="g_loss", factor=0.5, patience=0, min_delta=1e9),
        keras.callbacks.EarlyStopping(monitor="g_loss", patience=5),  # no mode: g_loss has a direction
        keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), monitor="d_loss", save_best_only=True),
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
        keras.callbacks.TensorBoard(str(tmp_path / "tb"), histogram_freq=1),
    ])
    # every epoch the scheduler halves both; from the second on, the plateau callback halves
    # them again (no improvement by 1e9 on the first value it saw)
    g, d = learning_rates(model)
    np.testing.assert_allclose([g / g0, d / d0], [0.5 ** 5] * 2, rtol=1e-5)
    logged = history.history
    np.testing.assert_allclose(logged["generator_learning_rate"][0], g0 * 0.5, rtol=1e-5)  # during epoch 1
    assert {"g_loss", "d_loss", "g_grad_norm", "d_grad_norm", "g_teacher_loss"} <= set(logged)
    assert (tmp_path / "best.keras").is_file()
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and "discriminator_learning_rate" in rows[0]
    assert glob.glob(str(tmp_path / "tb" / "train" / "events.out.tfevents.*"))
    best = keras.models.load_model(tmp_path / "best.keras")  # a checkpoint reloads with its optimizers
    assert best.generator_optimizer.iterations.numpy() > 0


def test_early_stopping_on_an_accuracy_maximises_it_and_stops():
    model = make_gan()
    stopper = keras.callbacks.EarlyStopping(monitor="val_sample_teacher_accuracy", patience=0, min_delta=2.0)
    history = model.fit(dataset(), validation_data=dataset(8), epochs=5, verbose=0, callbacks=[stopper])
    assert stopper.monitor_op is keras.ops.greater and len(history.history["g_loss"]) == 2


def test_a_learning_rate_callback_can_be_pointed_at_one_optimizer():
    model = make_gan()
    g0, d0 = learning_rates(model)
    model.fit(dataset(), epochs=2, verbose=0, callbacks=[callbacks.OnOptimizer(
        keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.1), "discriminator_optimizer")])
    g, d = learning_rates(model)
    assert g == pytest.approx(g0) and d == pytest.approx(d0 * 0.01)
    with pytest.raises(ValueError, match="no critic_optimizer"):
        model.fit(dataset(), epochs=1, verbose=0, callbacks=[callbacks.OnOptimizer(
            keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate), "critic_optimizer")])


@pytest.mark.parametrize("arguments, message", [
    ({"optimizer": "adam"}, "optimizer= is not used.*generator_optimizer=, discriminator_optimizer="),
    ({"loss": "mse"}, "loss= is not used"),
    ({"metrics": ["accuracy"]}, "metrics= is not used"),
])
def test_compile_refuses_arguments_it_would_ignore(arguments, message):
    model = make_gan()
    with pytest.raises(ValueError, match=message):
        model.compile(**arguments)


def test_compile_takes_optimizer_names_and_refuses_one_shared_optimizer():
    model = make_gan()
    model.compile(generator_optimizer="rmsprop", discriminator_optimizer="sgd")
    assert isinstance(model.generator_optimizer, keras.optimizers.RMSprop)
    shared = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="same object"):
        model.compile(generator_optimizer=shared, discriminator_optimizer=shared)


def test_evaluate_reports_sample_quality_on_real_images():
    model = make_gan()
    results = model.evaluate(dataset(), verbose=0, return_dict=True)
    assert {"d_loss", "g_loss", "d_real", "d_fake", "sample_teacher_accuracy", "frechet_distance"} == set(results)
    assert 0.0 <= results["sample_teacher_accuracy"] <= 1.0 and results["frechet_distance"] >= 0.0
    assert set(make_gan(with_teacher=False).evaluate(dataset(), verbose=0, return_dict=True)) == {
        "d_loss", "g_loss", "d_real", "d_fake"}


def test_a_saved_gan_continues_training_where_it_stopped(tmp_path):
    model = make_gan(teacher_weight=0.5)
    model.compile(generator_optimizer=keras.optimizers.Adam(3e-4, name="g"),
                  discriminator_optimizer=keras.optimizers.Adam(1e-4, name="d"))
    model.fit(dataset(), epochs=2, verbose=0)
    model.save(tmp_path / "gan.keras")
    restored = keras.models.load_model(tmp_path / "gan.keras")
    assert restored.generator_optimizer.iterations.numpy() == model.generator_optimizer.iterations.numpy() == 8
    assert learning_rates(restored) == pytest.approx((3e-4, 1e-4))
    for saved, loaded in zip(model.generator_optimizer.variables, restored.generator_optimizer.variables):
        np.testing.assert_allclose(saved.numpy(), loaded.numpy())  # Adam moments included
    assert float(restored.ema_updates.numpy()) == 8.0
    restored.fit(dataset(), epochs=1, verbose=0)
    assert restored.generator_optimizer.iterations.numpy() == 12


def test_summary_names_each_network_once():
    model = make_gan()
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names)) and "ema_generator" in names


def test_the_teacher_term_adds_its_weighted_cross_entropy_to_the_generator_loss():
    x = np.random.default_rng(3).random((4, *SHAPE)).astype(np.float32)
    y = np.arange(4, dtype=np.int32) % CLASSES
    noise = np.random.default_rng(4).standard_normal((4, 2, NOISE)).astype(np.float32)
    x, y, noise = tf.constant(x), tf.constant(y), tf.constant(noise)
    logs = {weight: make_gan(teacher_weight=weight).train_step((x, y, noise)) for weight in (0.0, 2.0)}
    assert "g_teacher_loss" not in logs[0.0]
    teacher_loss = float(logs[2.0]["g_teacher_loss"])
    assert teacher_loss > 0
    # same initial weights and noise: the discriminator step is identical, the generator loss differs by 2 x CE
    np.testing.assert_allclose(float(logs[2.0]["d_loss"]), float(logs[0.0]["d_loss"]), rtol=1e-5)
    np.testing.assert_allclose(float(logs[2.0]["g_loss"]) - float(logs[0.0]["g_loss"]), 2.0 * teacher_loss, rtol=1e-4)


def test_teacher_margin_makes_the_teacher_term_the_hinge_on_the_generated_samples():
    x = tf.constant(np.random.default_rng(3).random((4, *SHAPE)).astype(np.float32))
    y = tf.constant(np.arange(4, dtype=np.int32) % CLASSES)
    noise = tf.constant(np.random.default_rng(4).standard_normal((4, 2, NOISE)).astype(np.float32))
    model = make_gan(teacher_weight=1.0, teacher_margin=50.0)  # a margin no untrained teacher meets
    g_images = model.generator([noise[:, 1], y], training=True)  # the generator step's samples (same weights)
    teacher_logits = model.teacher(g_images, training=False)
    hinge = float(tf.reduce_mean(losses.class_margin_loss(y, teacher_logits, 50.0)))
    cross_entropy = float(tf.reduce_mean(losses.teacher_class_loss(teacher_logits, y)))
    logs = model.train_step((x, y, noise))
    np.testing.assert_allclose(float(logs["g_teacher_loss"]), hinge, rtol=1e-4)
    assert abs(hinge - cross_entropy) > 1.0
