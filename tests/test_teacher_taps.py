"""The teacher's inner activations, read through the wrappers the run puts around a teacher."""

import keras
import numpy as np
import pytest

from tfgan_compress import networks, teacher
from tfgan_compress.config import ClassifierConfig
from tfgan_compress.teacher_taps import NoTaps, batchnorm_taps, feature_taps

SHAPE = (16, 16, 3)


def resnet():
    keras.utils.set_random_seed(0)
    return networks.build_classifier(SHAPE, 3, ClassifierConfig((4, 4, 8, 8), (), architecture="resnet"), "t")


def wrapped(model):
    """A 0-255 teacher with a softmax, as the run holds a user's: Rescaling in front, log behind."""
    inputs = keras.Input(SHAPE)
    probabilities = keras.layers.Softmax()(model(keras.layers.Rescaling(1 / 255)(inputs)))
    return teacher.as_logits(keras.Model(inputs, probabilities))


def test_feature_taps_are_stage_ends_shallow_to_deep_through_the_wrappers():
    model = resnet()
    shapes = [tuple(o.shape[1:3]) for o in feature_taps(model, 3).outputs]
    assert shapes == [(8, 8), (4, 4), (2, 2)]
    outer = wrapped(model)
    x = np.random.default_rng(0).random((2, *SHAPE)).astype(np.float32) * 255
    direct = feature_taps(model, 2)(x / 255)
    through = feature_taps(outer, 2)(x)
    for a, b in zip(direct, through):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_batchnorm_taps_with_the_output_give_the_teachers_own_output_in_the_same_pass():
    outer = wrapped(resnet())
    model, layers = batchnorm_taps(outer, with_output=True)
    assert len(layers) == 8 and len(model.outputs) == 9
    x = np.random.default_rng(1).random((2, *SHAPE)).astype(np.float32) * 255
    np.testing.assert_allclose(np.asarray(model(x)[0]), np.asarray(outer(x)), rtol=1e-5, atol=1e-5)


def test_a_teacher_wrapped_twice_with_layers_of_one_name_is_tapped():
    """A run folder's teacher.keras given as --teacher: the run wraps it once more."""
    once = teacher.taking_unit_range(resnet(), SHAPE, {"scale": 2.0, "offset": -1.0})
    twice = teacher.taking_unit_range(once, SHAPE, {"scale": 1.0, "offset": 0.0})
    model, layers = batchnorm_taps(twice, with_output=True)
    assert len(layers) == 8
    x = np.random.default_rng(2).random((2, *SHAPE)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(x)[0]), np.asarray(twice(x)), rtol=1e-5, atol=1e-5)
    assert len(feature_taps(twice, 2).outputs) == 2


def test_a_teacher_without_batch_norm_or_graph_has_no_taps():
    plain = networks.build_classifier((8, 8, 1), 3, ClassifierConfig((2, 4), (8,)), "plain")
    assert batchnorm_taps(plain) == (None, [])

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(NoTaps, match="not a functional model"):
        feature_taps(Subclassed())


def test_penultimate_taps_give_output_batchnorm_inputs_and_features_in_one_model():
    """One pass where the Dense layer sits beside the batch norm; a head on a nested base
    model (the keras.applications way) in two; none without a Dense layer."""
    from tfgan_compress import quality
    from tfgan_compress.teacher_taps import penultimate_taps

    x = np.random.default_rng(3).random((2, *SHAPE)).astype(np.float32) * 255
    outer = wrapped(resnet())
    for with_batchnorm, count in ((True, 10), (False, 2)):
        model = penultimate_taps(outer, with_batchnorm)
        assert len(model.outputs) == count
        np.testing.assert_allclose(np.asarray(model(x)[0]), np.asarray(outer(x)), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(model(x)[-1]), np.asarray(quality.penultimate_features(outer)(x)),
                                   rtol=1e-5, atol=1e-5)
    keras.utils.set_random_seed(0)
    base_in = keras.Input(SHAPE)
    base = keras.Model(base_in, keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(base_in)), name="base")
    inputs = keras.Input(SHAPE)
    headed = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(base(inputs))))
    model = penultimate_taps(headed, with_batchnorm=True)
    assert [tuple(o.shape[1:]) for o in model.outputs] == [(3,), (14, 14, 4), (4,)]
    np.testing.assert_allclose(np.asarray(model(x)[0]), np.asarray(headed(x)), rtol=1e-5, atol=1e-5)
    # a base with a Dense layer of its own (a projection) under a Dense head: the head's input, as the Frechet
    # distance takes it, not the base's inner Dense
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(base_in)))
    projecting = keras.Model(base_in, keras.layers.Dense(6)(pooled), name="projecting")
    on_projection = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.ReLU()(projecting(inputs))))
    model = penultimate_taps(on_projection, with_batchnorm=True)
    assert [tuple(o.shape[1:]) for o in model.outputs] == [(3,), (14, 14, 4), (6,)]
    np.testing.assert_allclose(np.asarray(model(x)[-1]), np.asarray(quality.penultimate_features(on_projection)(x)),
                               rtol=1e-5, atol=1e-5)
    no_dense = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(3, 1)(inputs)))
    assert penultimate_taps(no_dense) is None
