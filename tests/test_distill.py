"""Distillation on generator samples: trains the student, and cannot see real data."""

import dataclasses
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import distill, losses, networks, training
from tfgan_compress.config import ClassifierConfig, DistillConfig

SHAPE, CLASSES, NOISE = (8, 8, 1), 3, 4
SMALL = ClassifierConfig(conv_filters=(2, 4), dense_units=(8, 8))


def parts():
    keras.utils.set_random_seed(0)
    teacher = networks.build_classifier(SHAPE, CLASSES, SMALL, "teacher")
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    student = networks.build_classifier(SHAPE, CLASSES, SMALL, "student")
    return teacher, generator, student


def test_distillation_trains_only_the_student():
    teacher, generator, student = parts()
    frozen = [w.numpy().copy() for w in teacher.weights + generator.weights]
    before = [w.numpy().copy() for w in student.weights]
    history = distill.distill_on_generator(
        teacher, generator, student, DistillConfig(network=SMALL, epochs=2, steps_per_epoch=3, batch_size=8),
        verbose=0)
    assert {"distill_loss", "teacher_agreement", "generator_label_accuracy"} <= set(history.history)
    assert len(history.history["distill_loss"]) == 2
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, student.weights))
    assert all(np.allclose(a, w.numpy()) for a, w in zip(frozen, teacher.weights + generator.weights))


def test_student_ema_leaves_the_student_at_the_running_average_of_its_weights():
    # w_avg <- m w_avg + (1 - m) w after every step (the first step copies), written into the student at the end.
    teacher, generator, student = parts()
    after_each_step = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: after_each_step.append([w.numpy().copy()
                                                                       for w in student.trainable_weights]))
    momentum = 0.5
    distill.distill_on_generator(teacher, generator, student,
                                 DistillConfig(network=SMALL, epochs=2, steps_per_epoch=3, batch_size=8,
                                               student_ema=momentum), callbacks=[record], verbose=0)
    assert len(after_each_step) == 6
    average = after_each_step[0]
    for weights in after_each_step[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
    last = after_each_step[-1]
    assert any(not np.allclose(a, w, atol=1e-6) for a, w in zip(average, last))  # the average is not the last step
    for expected, weight in zip(average, student.trainable_weights):
        np.testing.assert_allclose(weight.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_student_ema_with_an_optimizer_that_does_not_average_is_refused():
    teacher, generator, student = parts()
    distiller = distill.GeneratorDistiller(teacher, generator, student, DistillConfig(network=SMALL, student_ema=0.9))
    with pytest.raises(ValueError, match="use_ema=True"):
        distiller.compile(optimizer=keras.optimizers.Adam())
    distiller.compile(optimizer=keras.optimizers.Adam(use_ema=True, ema_momentum=0.9))
    assert distiller.optimizer.use_ema


def test_distill_has_no_parameter_for_real_data():
    # Structural guarantee: the only inputs are models and a config; fit sees class labels only.
    params = set(inspect.signature(distill.distill_on_generator).parameters)
    # progress: a callable for one line of text; explored_grid: a PNG path the explorer's samples are drawn to;
    # spectrograms: how to draw them
    assert params == {"teacher", "generator", "student", "config", "seed", "callbacks", "verbose", "epochs_done",
                      "progress", "explored_grid", "spectrograms"}
    labels = next(iter(training.label_batches(CLASSES, 16, seed=0)))
    assert labels.dtype == tf.int32 and labels.shape == (16,)
    assert 0 <= int(tf.reduce_min(labels)) and int(tf.reduce_max(labels)) < CLASSES


def test_synthesized_batch_mixes_half_the_images():
    teacher, generator, student = parts()
    model = distill.GeneratorDistiller(teacher, generator, student, DistillConfig(mixup=False))
    labels = tf.constant([0, 1, 2, 0], tf.int32)
    pure, unmixed = model.synthesize(labels)
    assert pure.shape == (4, *SHAPE) and list(unmixed.numpy()) == [1, 1, 1, 1]
    mixed, unmixed = distill.GeneratorDistiller(teacher, generator, student, DistillConfig(mixup=True)).synthesize(
        tf.zeros([256], tf.int32))
    assert mixed.shape == (256, *SHAPE) and 0.3 < float(tf.reduce_mean(unmixed)) < 0.7
    assert float(tf.reduce_min(mixed)) >= 0.0 and float(tf.reduce_max(mixed)) <= 1.0


def test_distillation_on_real_images_reference():
    teacher, _, student = parts()
    frozen = [w.numpy().copy() for w in teacher.weights]
    before = [w.numpy().copy() for w in student.weights]
    images = np.random.default_rng(0).random((32, *SHAPE)).astype(np.float32)
    history = distill.distill_on_images(teacher, student, images,
                                        DistillConfig(network=SMALL, epochs=1, steps_per_epoch=2, batch_size=8),
                                        verbose=0)
    assert history.history["distillation_loss"][0] > 0 and history.history["student_loss"] == [0.0]
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, student.weights))
    assert all(np.allclose(a, w.numpy()) for a, w in zip(frozen, teacher.weights))


def test_keras_logits_distillation_is_our_distillation_loss():
    # keras.distillation with a KLDivergence *instance* (the string skips the softmax in Keras 3.15)
    teacher_logits = tf.constant([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0], [1.0, 1.0, 1.0], [-3.0, 0.0, 4.0]])
    student_logits = tf.constant([[1.0, 0.0, 0.0], [0.5, 1.0, -1.0], [2.0, -1.0, 0.0], [0.0, 0.0, 0.0]])
    keras_loss = keras.distillation.LogitsDistillation(2.0, loss=keras.losses.KLDivergence())
    ours = tf.reduce_mean(losses.distillation_loss(teacher_logits, student_logits, 2.0))
    np.testing.assert_allclose(float(keras_loss.compute_loss(teacher_logits, student_logits)), float(ours),
                               rtol=1e-4)


def test_cutmix_pastes_one_box_of_the_partner_of_about_the_drawn_area():
    images = tf.concat([tf.zeros((64, 16, 16, 1)), tf.ones((64, 16, 16, 1))], axis=0)
    mixed, unmixed = distill.mix_pairs(images, tf.constant([3, 4]), cutmix=True)
    mixed, unmixed = mixed.numpy(), unmixed.numpy()
    assert set(np.unique(mixed)) <= {0.0, 1.0}  # pixels are pasted, never blended
    untouched = unmixed == 1
    assert np.array_equal(mixed[untouched], images.numpy()[untouched])
    changed = np.abs(mixed - images.numpy()).reshape(128, -1).mean(axis=1)
    assert 0.2 < untouched.mean() < 0.8 and changed[~untouched].max() > 0.05
    for index in np.flatnonzero(~untouched):  # the pasted pixels form one axis-aligned box
        rows, cols = np.nonzero(mixed[index, ..., 0] != images.numpy()[index, ..., 0])
        if len(rows):
            assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)


def test_real_image_distillation_mixes_as_the_generator_path_does():
    keras.utils.set_random_seed(0)
    shape = (8, 8, 1)
    teacher = networks.build_classifier(shape, 3, ClassifierConfig((2, 4), (8,)), "t")
    student = networks.build_classifier(shape, 3, ClassifierConfig((2, 2), (4,)), "s")
    images = np.random.default_rng(0).random((16, *shape)).astype(np.float32)
    config = DistillConfig(epochs=1, steps_per_epoch=2, batch_size=8, mixup=True, cutmix=True)
    history = distill.distill_on_images(teacher, student, images, config, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_noise_scale_sets_the_spread_of_the_generator_noise():
    # a "generator" that shows its noise as the image: the samples' spread is the noise's
    teacher, _, student = parts()
    noise, labels = keras.Input((64,)), keras.Input((), dtype="int32")
    generator = keras.Model([noise, labels], keras.layers.Reshape(SHAPE)(noise))
    spreads = []
    for scale in (1.0, 2.0):
        distiller = distill.GeneratorDistiller(teacher, generator, student,
                                               DistillConfig(network=SMALL, mixup=False, noise_scale=scale))
        images, _ = distiller.synthesize(tf.zeros([256], tf.int32))
        spreads.append(float(tf.math.reduce_std(images)))
    assert spreads[0] == pytest.approx(1.0, abs=0.05) and spreads[1] == pytest.approx(2.0, abs=0.1)


def test_student_ema_on_a_loaded_resnet_generator_averages_the_student_only(tmp_path):
    # A saved generator with class-conditional batch norm comes back with trainable = False; the
    # layer's inner parts, made later, must be frozen too, or fit's final EMA write would pair the
    # student's averages with the generator's variables.
    keras.utils.set_random_seed(0)
    generator = networks.build_resnet_generator((8, 8, 3), CLASSES, NOISE, width=4)
    generator.trainable = False
    generator.save(tmp_path / "generator.keras")
    generator = keras.models.load_model(tmp_path / "generator.keras")
    teacher = networks.build_classifier((8, 8, 3), CLASSES, SMALL, "teacher")
    student = networks.build_classifier((8, 8, 3), CLASSES, SMALL, "student")
    config = DistillConfig(network=SMALL, epochs=1, steps_per_epoch=2, batch_size=8, student_ema=0.5)
    distiller = distill.GeneratorDistiller(teacher, generator, student, config)
    assert [v.path for v in distiller.trainable_weights] == [v.path for v in student.trainable_weights]
    distill.distill_on_generator(teacher, generator, student, config, verbose=0)  # the EMA write succeeds


def test_sample_bank_draws_once_and_gives_every_sample_once_per_pass():
    teacher, generator, student = parts()
    config = DistillConfig(network=SMALL, epochs=2, steps_per_epoch=2, batch_size=8, sample_bank=16)
    drawn = distill.sample_bank_batches(generator, CLASSES, config, seed=3)
    first_pass = list(drawn.take(2).as_numpy_iterator())
    images = np.concatenate([b[0] for b in first_pass])
    labels = np.concatenate([b[1] for b in first_pass])
    assert images.shape == (16, *SHAPE) and sorted(labels) == sorted(np.arange(16) % CLASSES)
    assert len({im.tobytes() for im in images}) == 16  # each bank sample once in a pass of 16 / 8 batches
    again = list(distill.sample_bank_batches(generator, CLASSES, config, seed=3).take(2).as_numpy_iterator())
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first_pass, again))  # same seed: same bank, same order
    resumed = next(iter(distill.sample_bank_batches(generator, CLASSES, config, seed=3, skip_batches=1)))
    assert np.array_equal(resumed[0].numpy(), first_pass[1][0])

    frozen = [w.numpy().copy() for w in teacher.weights + generator.weights]
    history = distill.distill_on_generator(teacher, generator, student, config, verbose=0)
    assert len(history.history["distill_loss"]) == 2
    assert all(np.allclose(a, w.numpy()) for a, w in zip(frozen, teacher.weights + generator.weights))
    assert history.history["generator_label_accuracy"][-1] >= 0


def test_mixed_teacher_logits_soften_to_the_mix_of_the_probabilities():
    # softmax(result / T) = w p_i + (1 - w) p_partner, p = softmax(t / T)
    logits = tf.constant([[4.0, 0.0, -1.0], [0.0, 2.0, 1.0], [-2.0, -2.0, 3.0]])
    share, partner, temperature = tf.constant([1.0, 0.25, 0.6]), tf.constant([2, 0, 1]), 4.0
    mixed = distill.mix_teacher_logits(logits, share, partner, temperature)
    p = tf.nn.softmax(logits / temperature).numpy()
    expected = np.stack([p[0], 0.25 * p[1] + 0.75 * p[0], 0.6 * p[2] + 0.4 * p[1]])
    np.testing.assert_allclose(tf.nn.softmax(mixed / temperature).numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("cutmix", [False, True])
def test_stored_teacher_logits_are_mixed_with_their_images_own_shares(cutmix):
    # images of constant value v_i: a view's mean pixel gives its own share w, checked against the mixed targets
    values = tf.linspace(0.0, 1.0, 64)
    images = tf.ones((64, 8, 8, 1)) * tf.reshape(values, [-1, 1, 1, 1])
    logits = tf.one_hot(tf.range(64) % 3, 3) * 5.0
    teacher, generator, student = parts()
    model = distill.GeneratorDistiller(teacher, generator, student, DistillConfig(mixup=True, cutmix=cutmix))
    views, unmixed, mixed_logits = model.views(images, tf.constant([5, 6]), logits)
    p = tf.nn.softmax(logits / 4.0).numpy()
    targets = tf.nn.softmax(mixed_logits / 4.0).numpy()
    assert 0.2 < unmixed.numpy().mean() < 0.8
    for i in range(64):
        mean = float(tf.reduce_mean(views[i]))
        if unmixed[i] == 1:
            np.testing.assert_allclose(targets[i], p[i], rtol=1e-5)
            continue
        # the partner: the image whose value makes the mean a mix of the two with the targets' share
        candidates = [j for j in range(64) if j != i and abs(values[j] - values[i]) > 1e-3]
        shares = {j: (mean - float(values[j])) / float(values[i] - values[j]) for j in candidates}
        assert any(np.allclose(targets[i], w * p[i] + (1 - w) * p[j], atol=1e-4) for j, w in shares.items())


class ImageCounter(keras.layers.Layer):
    """Identity that counts the images passing through it (in a variable, so traced steps count)."""

    def build(self, input_shape):
        self.images = self.add_weight(shape=(), initializer="zeros", trainable=False, name="images")

    def call(self, x):
        self.images.assign_add(tf.cast(tf.shape(x)[0], self.images.dtype))
        return x


def test_a_bank_the_teacher_labelled_once_trains_without_calling_the_teacher():
    teacher, generator, student = parts()
    config = DistillConfig(network=SMALL, epochs=2, steps_per_epoch=2, batch_size=8, sample_bank=16,
                           bank_teacher_logits=True)
    stream = distill.sample_bank_batches(generator, CLASSES, config, seed=3, teacher=teacher)
    images, labels, logits = next(iter(stream))
    np.testing.assert_allclose(logits.numpy(), teacher(images, training=False).numpy(), rtol=1e-4, atol=1e-5)
    plain = next(iter(distill.sample_bank_batches(generator, CLASSES, config, seed=3)))
    assert np.array_equal(plain[0].numpy(), images.numpy())  # the same bank, with the logits beside it

    def counting(model):  # the teacher behind a layer that counts the images it is given
        counter = ImageCounter()
        inputs = keras.Input(SHAPE)
        return keras.Model(inputs, model(counter(inputs))), counter

    labelled_once, counter = counting(teacher)
    before = [w.numpy().copy() for w in student.weights]
    history = distill.distill_on_generator(labelled_once, generator, student, config, verbose=0)
    assert int(counter.images.numpy()) == 16  # the bank, once; the 2 x 2 steps of 8 called it on none
    fresh_views, counter = counting(teacher)
    distill.distill_on_generator(fresh_views, generator, networks.build_classifier(SHAPE, CLASSES, SMALL, "s"),
                                 dataclasses.replace(config, bank_teacher_logits=False), verbose=0)
    assert int(counter.images.numpy()) == 2 * 2 * 8  # without: every step's views
    assert len(history.history["distill_loss"]) == 2 and history.history["distill_loss"][-1] > 0
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, student.weights))


def test_teacher_echo_gives_the_student_that_many_updates_per_batch_the_teacher_labels():
    teacher, generator, student = parts()

    def counting(model):
        counter = ImageCounter()
        inputs = keras.Input(SHAPE)
        return keras.Model(inputs, model(counter(inputs))), counter

    counted_teacher, teacher_count = counting(teacher)
    counted_student, student_count = counting(student)
    config = DistillConfig(network=SMALL, epochs=2, steps_per_epoch=2, batch_size=8, sample_bank=16, teacher_echo=3)
    history = distill.distill_on_generator(counted_teacher, generator, counted_student, config, verbose=0)
    assert int(teacher_count.images.numpy()) == 2 * 2 * 8  # each step's views, once
    assert int(student_count.images.numpy()) == 3 * 2 * 2 * 8  # three updates on each
    optimizer = history.model.optimizer
    assert int(optimizer.iterations.numpy()) == 3 * 2 * 2
    assert optimizer.get_config()["learning_rate"]["config"]["decay_steps"] == 3 * 2 * 2  # the cosine spans them all


def test_sample_bank_settings_that_cannot_work_are_refused():
    from tfgan_compress.config import RunConfig
    from tfgan_compress.errors import UsageError

    with pytest.raises(UsageError, match="hard_latent_steps"):
        RunConfig(distill=DistillConfig(sample_bank=256, hard_latent_steps=1)).validate()
    with pytest.raises(UsageError, match="at least one batch"):
        RunConfig(distill=DistillConfig(sample_bank=10, batch_size=128)).validate()
    with pytest.raises(UsageError, match="bank_teacher_logits"):
        RunConfig(distill=DistillConfig(bank_teacher_logits=True)).validate()
    RunConfig(distill=DistillConfig(sample_bank=256)).validate()
    RunConfig(distill=DistillConfig(sample_bank=256, bank_teacher_logits=True)).validate()


def test_a_sample_bank_over_half_the_memory_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from tfgan_compress import cli

    assert distill.sample_bank_bytes(DistillConfig(sample_bank=1000), (32, 32, 3)) == 1000 * 32 * 32 * 3 * 2
    monkeypatch.setattr(distill.os, "sysconf", lambda name: 4096 if name == "SC_PAGE_SIZE" else 1000)  # 4 MB
    distill.check_sample_bank_fits(DistillConfig(sample_bank=1000), (8, 8, 1))  # 128 KB: fits
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "tiny", "--out", str(out), "--set", "distill.sample_bank=100000"]) == 2
    assert not out.exists()


@pytest.mark.parametrize("architecture", ["dcgan", "resnet"])
def test_class_blend_generator_gives_the_generator_on_one_hot_weights_and_shares_its_layers(architecture):
    keras.utils.set_random_seed(0)
    generator = networks.build_generator((8, 8, 3), CLASSES, NOISE, width=4, architecture=architecture)
    blend = distill.class_blend_generator(generator)
    noise = np.random.default_rng(0).normal(size=(6, NOISE)).astype(np.float32)
    labels = np.array([0, 1, 2, 2, 1, 0])
    one_hot = np.eye(CLASSES, dtype=np.float32)[labels]
    np.testing.assert_allclose(blend([noise, one_hot], training=False), generator([noise, labels], training=False),
                               atol=1e-6)
    # halfway between classes 0 and 1 is neither class's image
    halfway = np.tile([[0.5, 0.5, 0.0]], (6, 1)).astype(np.float32)
    between = blend([noise, halfway], training=False).numpy()
    for pure in (0, 1):
        assert not np.allclose(between, generator([noise, np.full(6, pure)], training=False), atol=1e-4)
    shared = {id(v) for v in generator.weights}
    assert sum(id(v) not in shared for v in blend.weights) == 1  # only the table as a dense kernel is its own


def test_blended_class_weights_mix_a_share_of_labels_with_another_class():
    labels = tf.constant(np.arange(2000) % CLASSES, tf.int32)
    weights, unblended = distill.blended_class_weights(labels, CLASSES, 0.25, tf.constant([4, 5]))
    weights, unblended = weights.numpy(), unblended.numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    assert 0.2 < 1 - unblended.mean() < 0.3
    own = weights[np.arange(2000), labels.numpy()]
    assert np.all(own[unblended == 1] == 1.0) and np.all(own[unblended == 0] < 1.0)
    assert np.all((weights > 0).sum(axis=1) <= 2)  # at most two classes in a blend
    partner = np.where(weights > 0, 1, 0).sum(axis=1)[unblended == 0]
    assert np.mean(partner == 2) > 0.99  # the partner is another class


def test_class_blend_draws_blends_fresh_and_in_the_bank_and_trains():
    teacher, generator, student = parts()
    config = DistillConfig(network=SMALL, epochs=1, steps_per_epoch=2, batch_size=8, mixup=False, class_blend=0.5)
    distiller = distill.GeneratorDistiller(teacher, generator, student, config)
    assert [v.path for v in distiller.trainable_weights] == [v.path for v in student.trainable_weights]
    images, unblended = distiller.synthesize(tf.zeros([256], tf.int32))
    assert images.shape == (256, *SHAPE) and 0.35 < float(tf.reduce_mean(unblended)) < 0.65
    banked = distill.sample_bank_batches(generator, CLASSES, dataclasses.replace(config, sample_bank=64), seed=3)
    labels = np.concatenate([b[1] for b in banked.take(8).as_numpy_iterator()])
    assert 0.3 < np.mean(labels == -1) < 0.7 and set(labels) <= {-1, 0, 1, 2}  # -1: a blend of two classes
    frozen = [w.numpy().copy() for w in teacher.weights + generator.weights]
    for cfg in (config, dataclasses.replace(config, sample_bank=64)):
        history = distill.distill_on_generator(teacher, generator, student, cfg, verbose=0)
        assert np.isfinite(history.history["distill_loss"][-1])
    assert all(np.allclose(a, w.numpy()) for a, w in zip(frozen, teacher.weights + generator.weights))


def test_class_blend_refuses_a_generator_without_a_label_embedding_and_hard_latent_steps():
    from tfgan_compress.config import RunConfig
    from tfgan_compress.errors import UsageError

    noise, labels = keras.Input((NOISE,)), keras.Input((), dtype="int32")
    plain = keras.Model([noise, labels], keras.layers.Reshape((2, 2, 1))(noise))
    with pytest.raises(UsageError, match="label_embedding"):
        distill.class_blend_generator(plain)
    with pytest.raises(UsageError, match="class_blend"):
        RunConfig(distill=DistillConfig(class_blend=0.5, hard_latent_steps=1)).validate()


def test_feature_distillation_trains_the_student_and_its_projection_through_the_teachers_head(tmp_path):
    teacher, generator, student = parts()
    frozen = [w.numpy().copy() for w in teacher.weights + generator.weights]
    before = [w.numpy().copy() for w in student.weights]
    config = DistillConfig(network=SMALL, epochs=1, steps_per_epoch=3, batch_size=8, feature_weight=1.0)
    distiller = distill.GeneratorDistiller(teacher, generator, student, config)
    projection = distiller.student_with_projection.get_layer("feature_projection")
    assert projection.kernel.shape == (8, 8)  # student's 8 penultimate units to the teacher's 8
    start = projection.kernel.numpy().copy()
    distiller.compile()
    history = distiller.fit(training.label_batches(CLASSES, 8, seed=0), epochs=1, steps_per_epoch=3, verbose=0)
    assert history.history["feature_loss"][0] > 0
    assert not np.allclose(start, projection.kernel.numpy())
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, student.weights))
    assert all(np.allclose(a, w.numpy()) for a, w in zip(frozen, teacher.weights + generator.weights))
    # the regressed logits are the teacher's own head on the projected features: the teacher's logits when
    # the projection hands it the teacher's features
    images = tf.random.uniform((4, *SHAPE))
    logits, features = distiller.teacher_penultimate(images)
    np.testing.assert_allclose(distiller.teacher_head(features).numpy(), logits.numpy(), rtol=1e-4, atol=1e-5)
    assert not distiller.teacher_head.trainable_weights
    # a killed run resumes with the projection it had learned: it is in the distiller's weights (BackupAndRestore)
    distiller.save_weights(tmp_path / "backup.weights.h5")
    student_again = keras.models.clone_model(student)
    again = distill.GeneratorDistiller(teacher, generator, student_again, config)
    again.load_weights(tmp_path / "backup.weights.h5")
    np.testing.assert_array_equal(again.student_with_projection.get_layer("feature_projection").kernel.numpy(),
                                  projection.kernel.numpy())
    np.testing.assert_array_equal(student_again.weights[0].numpy(), student.weights[0].numpy())


def test_the_teachers_head_takes_the_layers_behind_its_last_dense_layer_and_a_head_on_a_nested_base():
    _, generator, student = parts()
    image = keras.Input(SHAPE)
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3)(image))
    cooled = keras.Model(image, keras.layers.Rescaling(0.5)(keras.layers.Dense(CLASSES)(pooled)), name="cooled")
    base = keras.Model(image, pooled, name="base")  # keras.applications style: the head outside the base
    on_base = keras.Sequential([keras.Input(SHAPE), base, keras.layers.Dense(CLASSES, activation="softmax")])
    images = tf.random.uniform((4, *SHAPE), seed=5)
    users_student = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(4, 3, activation="relu"),
                                      keras.layers.BatchNormalization(), keras.layers.GlobalAveragePooling2D(),
                                      keras.layers.Dense(CLASSES)])  # a user's student, built the usual way
    for teacher, student in ((cooled, student), (on_base, users_student)):
        distiller = distill.GeneratorDistiller(teacher, generator, student, DistillConfig(feature_weight=1.0))
        student_output, _ = distiller.student_with_projection(images)
        np.testing.assert_allclose(student_output.numpy(), student(images).numpy(), atol=1e-5)
        output, features = distiller.teacher_penultimate(images)
        np.testing.assert_allclose(distiller.teacher_head(features).numpy(), teacher(images).numpy(), atol=1e-5)
        np.testing.assert_allclose(output.numpy(), teacher(images).numpy(), atol=1e-5)


def test_feature_distillation_loss_by_hand():
    teacher_features = tf.constant([[1.0, 3.0], [0.0, 2.0]])  # mean square (1 + 9 + 0 + 4) / 4 = 3.5
    projected = tf.constant([[2.0, 3.0], [0.0, 0.0]])
    logits = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    per_example = losses.feature_distillation_loss(teacher_features, projected, logits, logits, temperature=2.0)
    np.testing.assert_allclose(per_example.numpy(), [0.5 / 3.5, 2.0 / 3.5], rtol=1e-5)  # equal logits: KL 0
    kl = losses.distillation_loss(logits, logits[::-1], 2.0)
    shifted = losses.feature_distillation_loss(teacher_features, teacher_features, logits, logits[::-1], 2.0)
    np.testing.assert_allclose(shifted.numpy(), kl.numpy(), rtol=1e-5)


def test_feature_distillation_needs_a_dense_head_on_both_and_not_stored_logits():
    from tfgan_compress.config import RunConfig
    from tfgan_compress.errors import UsageError

    teacher, generator, student = parts()
    image = keras.Input(SHAPE)
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(CLASSES, 3)(image))
    no_dense = keras.Model(image, pooled, name="all_convolutional")
    with pytest.raises(UsageError, match="student's last Dense layer.*all_convolutional"):
        distill.GeneratorDistiller(teacher, generator, no_dense, DistillConfig(feature_weight=1.0))
    with pytest.raises(UsageError, match="teacher's last Dense layer.*all_convolutional"):
        distill.GeneratorDistiller(no_dense, generator, student, DistillConfig(feature_weight=1.0))
    features = keras.layers.Dense(8)(pooled)
    skipped = keras.layers.Add()([keras.layers.Dense(CLASSES)(features), pooled])  # the output needs more
    around = keras.Model(image, skipped, name="around")
    with pytest.raises(UsageError, match="teacher's last Dense layer.*around.*does not follow"):
        distill.GeneratorDistiller(around, generator, student, DistillConfig(feature_weight=1.0))
    from tfgan_compress.stages import distill_feature_terms  # the stage skips the terms with one line instead
    config, notes = distill_feature_terms(DistillConfig(feature_weight=1.0), no_dense, student)
    assert config.feature_weight == 0 and len(notes) == 1 and "the feature terms are skipped" in notes[0]
    assert distill_feature_terms(DistillConfig(feature_weight=1.0), teacher, student) == (
        DistillConfig(feature_weight=1.0), [])
    with pytest.raises(UsageError, match="feature_weight.*bank_teacher_logits"):
        RunConfig.from_dict({"distill": {"feature_weight": 1.0, "sample_bank": 64, "bank_teacher_logits": True}})


def test_the_real_image_reference_echoes_the_teachers_batches_too():
    teacher, _, student = parts()
    images = np.random.default_rng(0).random((24, *SHAPE)).astype("float32")
    history = distill.distill_on_images(teacher, student, images,
                                        DistillConfig(network=SMALL, epochs=1, steps_per_epoch=2, batch_size=8,
                                                      teacher_echo=2), verbose=0)
    assert int(history.model.optimizer.iterations.numpy()) == 2 * 2


def test_the_real_image_reference_takes_the_feature_terms_too():
    teacher, _, student = parts()
    before = [w.numpy().copy() for w in student.weights]
    images = np.random.default_rng(0).random((24, *SHAPE)).astype("float32")
    history = distill.distill_on_images(teacher, student, images,
                                        DistillConfig(network=SMALL, epochs=1, steps_per_epoch=2, batch_size=8,
                                                      feature_weight=1.0, augment_shift=1), verbose=0)
    assert history.history["feature_loss"][0] > 0
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, student.weights))
