"""Shared training code: the teacher-agreement metric, the cosine schedule, label batches."""

import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import training
from tfgan_compress.config import GANConfig
from tfgan_compress.stages import gan_steps_per_epoch


def test_teacher_agreement_by_hand():
    metric = training.TeacherAgreement()
    teacher = tf.constant([[3.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 5.0]])
    student = tf.constant([[1.0, 0.0], [1.0, 0.0], [2.0, -1.0], [0.0, 0.1]])
    metric.update_state(teacher, student)
    assert metric.name == "teacher_agreement" and float(metric.result()) == pytest.approx(0.75)


def test_cosine_adam_decays_to_one_percent():
    optimizer = training.cosine_adam(1e-2, total_steps=100)
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(1e-2) and float(schedule(100)) == pytest.approx(1e-4)


def test_replica_mean_outside_a_strategy_is_the_value():
    assert float(training.replica_mean(tf.constant(2.5))) == pytest.approx(2.5)


def test_label_batches_are_uniform_class_indices():
    labels = np.concatenate([b.numpy() for b in training.label_batches(4, 64, seed=0).take(20)])
    assert labels.dtype == np.int32 and set(labels) == {0, 1, 2, 3}
    assert np.bincount(labels).min() > 250


def test_gan_steps_per_epoch_reach_min_steps_whatever_the_data_size():
    one_pass = GANConfig(steps_per_epoch=0, min_steps=7500, epochs=8, batch_size=64)
    assert gan_steps_per_epoch(one_pass, 60000) == 938  # 937 passes would give 7,496 steps
    assert gan_steps_per_epoch(one_pass, 1000) == 938
    assert gan_steps_per_epoch(GANConfig(steps_per_epoch=0, min_steps=0, epochs=8, batch_size=64), 1000) == 15
    fixed = GANConfig(steps_per_epoch=100, min_steps=3000, epochs=20)
    assert gan_steps_per_epoch(fixed, 10) == 150  # a fixed epoch length is raised too, never lowered
    assert gan_steps_per_epoch(GANConfig(steps_per_epoch=100, min_steps=0, epochs=20), 10) == 100
