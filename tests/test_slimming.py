"""A student started from the teacher's largest filters and units (tfgan_compress.slimming)."""

import keras
import numpy as np
import pytest

from tfgan_compress import networks, slimming
from tfgan_compress.config import ClassifierConfig

SHAPE, CLASSES = (16, 16, 1), 5
WIDE = ClassifierConfig(conv_filters=(4, 6), dense_units=(10, 8), kernel_size=3)
NARROW = ClassifierConfig(conv_filters=(2, 3), dense_units=(5, 4), kernel_size=3)


def build(config, name, seed=0):
    keras.utils.set_random_seed(seed)
    return networks.build_classifier(SHAPE, CLASSES, config, name)


def teacher_with_dead_units():
    """A wide teacher whose units outside the narrow student's count are dead (kernel and bias 0),
    so that it computes exactly what a narrow network of its live units computes."""
    teacher = build(WIDE, "teacher")
    dead = {"conv1": [0, 2], "conv2": [1, 3, 4], "dense1": [0, 3, 5, 6, 9], "dense2": [1, 2, 4, 7]}
    for name, units in dead.items():
        layer = teacher.get_layer(name)
        kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
        kernel[..., units], bias[units] = 0.0, 0.0
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
    return teacher


def test_a_student_of_the_live_units_computes_what_the_teacher_computes():
    # the dead channels sit between live ones: the rows kept across conv2 and the Flatten
    # (position * channels + channel) must be the live channels' at every position
    teacher, student = teacher_with_dead_units(), build(NARROW, "student", seed=1)
    kept = slimming.start_from_teacher(student, teacher)
    assert kept == [("conv1", 2, 4), ("conv2", 3, 6), ("dense1", 5, 10), ("dense2", 4, 8), ("logits", 5, 5)]
    images = np.random.default_rng(0).uniform(size=(32, *SHAPE)).astype("float32")
    np.testing.assert_allclose(student.predict(images, verbose=0), teacher.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_a_student_as_wide_as_the_teacher_is_the_teacher():
    teacher, student = build(WIDE, "teacher"), build(WIDE, "student", seed=1)
    slimming.start_from_teacher(student, teacher)
    for mine, theirs in zip(student.weights, teacher.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_largest_units_are_chosen_by_l1_norm_and_kept_in_order():
    kernel = np.zeros((3, 3, 2, 5), "float32")
    kernel[..., 1] = 0.1  # norm 1.8
    kernel[0, 0, 0, 3] = -5.0  # norm 5: the sign does not count
    kernel[..., 4] = -0.05  # norm 0.9
    assert list(slimming.largest_units(kernel, 2)) == [1, 3]
    assert list(slimming.largest_units(kernel, 3)) == [1, 3, 4]


def test_a_softmax_teacher_gives_its_logits_before_the_softmax():
    teacher = build(WIDE, "teacher")
    probabilities = keras.Model(teacher.inputs, keras.layers.Activation("softmax")(teacher.outputs[0]))
    student = build(WIDE, "student", seed=1)
    assert slimming.slimming_mismatch(probabilities, student) is None
    slimming.start_from_teacher(student, probabilities)
    images = np.random.default_rng(1).uniform(size=(8, *SHAPE)).astype("float32")
    np.testing.assert_allclose(keras.ops.softmax(student(images)), probabilities(images), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("student_config, phrase", [
    (ClassifierConfig(conv_filters=(2, 3), dense_units=(5, 4), kernel_size=5), "kernel_size"),
    (ClassifierConfig(conv_filters=(8, 3), dense_units=(5, 4), kernel_size=3), "has 8 units"),
    (ClassifierConfig(conv_filters=(2, 3), dense_units=(5,), kernel_size=3), "layers"),
    (ClassifierConfig(architecture="mobilenet", conv_filters=(4, 8), dense_units=()), "layer"),
])
def test_a_student_that_is_not_the_teacher_made_narrower_is_refused(student_config, phrase):
    teacher, student = build(WIDE, "teacher"), build(student_config, "student")
    reason = slimming.slimming_mismatch(teacher, student)
    assert reason and phrase in reason
    with pytest.raises(ValueError, match=phrase):
        slimming.start_from_teacher(student, teacher)


def test_teachers_with_batchnorm_are_refused():
    resnet = networks.build_classifier((8, 8, 3), CLASSES, ClassifierConfig(architecture="resnet",
                                                                           conv_filters=(4, 4, 4, 4)), "r")
    student = networks.build_classifier((8, 8, 3), CLASSES, ClassifierConfig(conv_filters=(2, 2), dense_units=(4,)), "s")
    assert "BatchNormalization" in slimming.slimming_mismatch(resnet, student)


def wrapped(model, scale, offset):
    """``model`` behind a Rescaling, as a run's teacher feeds a user's teacher its convention."""
    inputs = keras.Input(model.inputs[0].shape[1:])
    return keras.Model(inputs, model(keras.layers.Rescaling(scale, offset)(inputs)))


def test_the_run_teachers_input_rescaling_is_folded_into_the_first_layer():
    # a 0-255 teacher behind the run's wrapper: the student, on [0, 1], computes what the wrapper does
    teacher, student = build(WIDE, "teacher"), build(WIDE, "student", seed=1)
    run_teacher = wrapped(teacher, 255.0, 0.0)
    slimming.start_from_teacher(student, run_teacher)
    images = np.random.default_rng(2).uniform(size=(8, *SHAPE)).astype("float32")
    np.testing.assert_allclose(student.predict(images, verbose=0), run_teacher.predict(images, verbose=0),
                               rtol=1e-4, atol=1e-3)
    # an offset too (a -1-1 teacher), exact for a first dense layer (a convolution's zero padding is not folded)
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Dense(6, activation="relu")(keras.layers.Flatten()(inputs))
    mlp = keras.Model(inputs, keras.layers.Dense(CLASSES)(hidden))
    mlp_student = keras.models.clone_model(mlp)
    run_mlp = wrapped(mlp, 2.0, -1.0)
    slimming.start_from_teacher(mlp_student, run_mlp)
    np.testing.assert_allclose(mlp_student.predict(images, verbose=0), run_mlp.predict(images, verbose=0),
                               rtol=1e-4, atol=1e-4)
    assert "rescales its input" in slimming.slimming_mismatch(teacher, wrapped(build(WIDE, "s"), 2.0, 0.0))


def test_a_subclassed_teacher_is_refused_not_read():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(CLASSES)

        def call(self, images):
            return self.dense(keras.ops.reshape(images, (-1, 256)))

    teacher = Subclassed()
    teacher(np.zeros((1, *SHAPE), "float32"))
    assert slimming.slimming_mismatch(teacher, build(NARROW, "student"))
    assert slimming.start_student(build(NARROW, "student"), teacher, "auto")["from"] == "random"
    with pytest.raises(ValueError, match="made narrower"):
        slimming.start_student(build(NARROW, "student"), teacher, "teacher")
