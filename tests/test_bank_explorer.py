"""The bank's explorer: a copy of the generator moved toward samples the student gets wrong."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import distill, networks
from tfgan_compress.bank_explorer import BankExplorer, WritableBank
from tfgan_compress.config import ClassifierConfig, DistillConfig, RunConfig
from tfgan_compress.errors import UsageError

SHAPE, CLASSES, NOISE = (8, 8, 1), 3, 4
SMALL = ClassifierConfig(conv_filters=(2, 4), dense_units=(8, 8))
BANKED = DistillConfig(network=SMALL, epochs=3, steps_per_epoch=2, batch_size=8, sample_bank=16, explore_steps=2,
                       explore_samples=8, explore_batch_size=8)


def parts(batchnorm_teacher: bool = False):
    keras.utils.set_random_seed(0)
    if batchnorm_teacher:
        inputs = keras.Input(SHAPE)
        x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
        teacher = keras.Model(inputs, keras.layers.Dense(CLASSES)(x), name="teacher")
    else:
        teacher = networks.build_classifier(SHAPE, CLASSES, SMALL, "teacher")
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    student = networks.build_classifier(SHAPE, CLASSES, SMALL, "student")
    return teacher, generator, student


def empty_bank(size=16):
    bank = WritableBank(tf.zeros((size,) + SHAPE, tf.float16), tf.fill([size], -7))
    return bank, bank.images, bank.labels


@pytest.mark.parametrize("divergence", ["l1", "kl"])
def test_each_round_climbs_the_disagreement_and_leaves_the_generator_teacher_and_student_as_they_were(divergence):
    teacher, generator, student = parts()
    # a student ten times surer than its random weights make it: a disagreement the class term (which acts on
    # the teacher's small logits) does not drown, for the KL of the softened probabilities as for the L1 distance
    inputs = keras.Input(SHAPE)
    sure_student = keras.Model(inputs, keras.layers.Rescaling(10.0)(student(inputs)))
    frozen = [w.numpy().copy() for w in teacher.weights + generator.weights + student.weights]
    bank, images, labels = empty_bank()
    config = dataclasses.replace(BANKED, explore_steps=30, explore_learning_rate=1e-2, explore_margin=0.0,
                                 explore_divergence=divergence)
    explorer = BankExplorer(teacher, generator, sure_student, bank, config)
    figures = explorer.explore()
    assert figures["explore_disagreement_last"] > 1.5 * figures["explore_disagreement_first"]
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(frozen, teacher.weights + generator.weights
                                                             + student.weights))
    assert any(not np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(explorer.generator.weights, generator.weights))


def test_the_margin_moves_the_samples_toward_the_class_the_teacher_sees():
    # Without the disagreement to climb (student = teacher), the margin alone acts.
    teacher, generator, _ = parts()
    bank, images, labels = empty_bank()
    config = dataclasses.replace(BANKED, explore_steps=1, explore_learning_rate=1e-2, explore_margin=1.0,
                                 explore_batch_size=30)
    explorer = BankExplorer(teacher, generator, teacher, bank, config)
    at_first = explorer.explore()["explore_teacher_label_accuracy"]
    explorer.config = dataclasses.replace(config, explore_steps=60)
    figures = explorer.explore()
    assert figures["explore_disagreement_last"] == 0.0
    assert figures["explore_teacher_label_accuracy"] >= at_first + 0.3, (at_first, figures)


def test_rounds_write_the_bank_as_a_ring_of_balanced_classes():
    teacher, generator, student = parts()
    bank, images, labels = empty_bank()
    explorer = BankExplorer(teacher, generator, student, bank, dataclasses.replace(BANKED, explore_samples=10))
    explorer.explore()
    assert labels.numpy().tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0] + [-7] * 6
    first_round = images.numpy()[:10].copy()
    assert np.all(first_round.std(axis=(1, 2, 3)) > 0)  # drawn images, not the zeros the bank held
    assert np.all(images.numpy()[10:] == 0)
    explorer.explore()  # rows 10..15, then 0..3: the oldest first
    assert labels.numpy().tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 0, 1, 2]
    assert not np.array_equal(images.numpy()[:4], first_round[:4])
    assert np.array_equal(images.numpy()[4:10], first_round[4:10])


def test_the_batchnorm_prior_is_used_where_the_teacher_has_batch_norm():
    teacher, generator, student = parts(batchnorm_teacher=True)
    bank, images, labels = empty_bank()
    explorer = BankExplorer(teacher, generator, student, bank, BANKED)
    assert explorer.uses_batchnorm_prior
    assert explorer.explore()["explore_batchnorm_distance"] > 0
    plain_teacher, generator, student = parts()
    assert not BankExplorer(plain_teacher, generator, student, bank, BANKED).uses_batchnorm_prior


def test_distillation_with_the_explorer_logs_each_round_and_draws_its_last_samples(tmp_path):
    from PIL import Image

    teacher, generator, student = parts(batchnorm_teacher=True)
    frozen = [w.numpy().copy() for w in teacher.weights + generator.weights]
    lines = []
    history = distill.distill_on_generator(teacher, generator, student, BANKED, verbose=0, progress=lines.append,
                                           explored_grid=tmp_path / "samples" / "explored.png")
    grid = np.asarray(Image.open(tmp_path / "samples" / "explored.png"))
    assert grid.shape == (CLASSES * 33 - 1, 10 * 33 - 1)  # a row of 10 per class, cells of 32 px and 1-px gaps
    assert len(history.history["distill_loss"]) == 3
    assert len(history.history["explore_disagreement_last"]) == 2  # before epochs 2 and 3, not the first
    assert lines[0].startswith("  explorer: before every epoch but the first, 2 steps")
    assert [line.split(":")[0] for line in lines[1:]] == ["  explorer round 1", "  explorer round 2"]
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(frozen, teacher.weights + generator.weights))


def test_settings_the_explorer_cannot_work_with_are_refused():
    with pytest.raises(UsageError, match="sample bank"):
        RunConfig(distill=DistillConfig(explore_steps=2)).validate()
    with pytest.raises(UsageError, match="bank_teacher_logits"):
        RunConfig(distill=DistillConfig(sample_bank=256, explore_steps=2, bank_teacher_logits=True)).validate()
    with pytest.raises(UsageError, match="explore_samples"):
        RunConfig(distill=DistillConfig(sample_bank=256, explore_steps=2, explore_samples=300)).validate()
    with pytest.raises(UsageError, match="strategy"):
        RunConfig(strategy="mirrored", distill=DistillConfig(sample_bank=256, explore_steps=2)).validate()
    RunConfig(distill=DistillConfig(sample_bank=256, explore_steps=2, explore_samples=256)).validate()


def test_a_run_with_the_explorer_is_the_same_run_every_time():
    # the steps read the bank's rows themselves, so what tf.data prefetched cannot change what a step sees
    weights = []
    for _ in range(2):
        teacher, generator, student = parts()
        distill.distill_on_generator(teacher, generator, student, BANKED, verbose=0)
        weights.append([w.numpy() for w in student.weights])
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
