"""Data-free distillation: generator and student learn from the teacher alone."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import cli, datafree, networks
from tfgan_compress.config import ClassifierConfig, DataFreeConfig

SHAPE, CLASSES, NOISE = (8, 8, 1), 3, 4
SMALL = ClassifierConfig((2, 4), (8, 8))


def teacher_with_batchnorm():
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(x))


@pytest.mark.parametrize("make_teacher", [lambda: networks.build_classifier(SHAPE, CLASSES, SMALL, "t"),
                                          teacher_with_batchnorm])
def test_one_epoch_trains_generator_and_student_not_teacher(make_teacher):
    keras.utils.set_random_seed(0)
    teacher = make_teacher()
    generator = networks.build_generator(SHAPE, CLASSES, NOISE, width=4)
    student = networks.build_classifier(SHAPE, CLASSES, SMALL, "student")
    snapshot = {name: [w.numpy().copy() for w in m.weights] for name, m in
                [("teacher", teacher), ("generator", generator), ("student", student)]}
    history = datafree.distill_data_free(
        teacher, generator, student, DataFreeConfig(epochs=1, steps_per_epoch=2, batch_size=8, student_steps=2),
        verbose=0).history
    assert {"g_loss", "distill_loss", "g_disagreement", "teacher_label_accuracy", "teacher_agreement"} <= set(history)
    assert all(np.isfinite(v[-1]) for v in history.values())

    def changed(name, model):
        return any(not np.allclose(a, w.numpy()) for a, w in zip(snapshot[name], model.weights))

    assert changed("generator", generator) and changed("student", student)
    assert not changed("teacher", teacher)


def test_batchnorm_prior_only_for_teachers_with_batchnorm():
    assert datafree.batchnorm_statistics_model(networks.build_classifier(SHAPE, CLASSES, SMALL, "t"))[0] is None
    model, layers = datafree.batchnorm_statistics_model(teacher_with_batchnorm())
    assert len(layers) == 1
    features = model(tf.random.uniform((4, *SHAPE)))
    assert float(datafree.batchnorm_statistics_loss([features], layers)) > 0


def test_training_code_has_no_parameter_for_real_data():
    params = set(inspect.signature(datafree.distill_data_free).parameters)
    assert params == {"teacher", "generator", "student", "config", "seed", "callbacks", "verbose"}


def test_cli_data_free_needs_a_teacher(tmp_path, capsys):
    assert cli.main(["run", "--mode", "data-free", "--preset", "tiny", "--out", str(tmp_path / "r")]) == 2
    assert "--mode data-free needs --teacher" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_cli_data_free_run(tmp_path, capsys):
    assert cli.main(["teacher", "--preset", "tiny", "--out", str(tmp_path / "t")]) == 0
    out = tmp_path / "df"
    assert cli.main(["run", "--mode", "data-free", "--preset", "tiny", "--teacher", str(tmp_path / "t" / "teacher.keras"),
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "[2/4] data-free" in printed and "[2/5] gan" not in printed
    for name in ["generator.keras", "student.keras", "report.json", "tflite/student_int8.tflite", "samples.png"]:
        assert (out / name).is_file(), name
