"""Generator quality measures: the Fréchet distance and the teacher's per-class faithfulness."""

import keras
import numpy as np
import pytest

from tfgan_compress import quality


def test_frechet_distance_of_shifted_gaussians_is_the_squared_shift():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((4000, 3))
    assert quality.frechet_distance(real, real) < 1e-9
    shifted = real + np.array([1.0, 2.0, 0.0])  # same covariance: only |mu_r - mu_g|^2 = 5 remains
    assert abs(quality.frechet_distance(real, shifted) - 5.0) < 1e-6
    wider = real * 2.0  # covariance 4I against I, means ~0: Tr(I + 4I - 2 * 2I) = 3
    assert abs(quality.frechet_distance(real, wider) - 3.0) < 0.2


def test_class_faithfulness_and_penultimate_features():
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    teacher = keras.Model(inputs, keras.layers.Dense(2, name="logits")(hidden))
    assert quality.penultimate_features(teacher).output.shape[-1] == 4
    images = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    predicted = np.argmax(teacher.predict(images, verbose=0), -1)
    per_class = quality.class_faithfulness(teacher, images, predicted, 2)
    assert np.allclose(per_class[~np.isnan(per_class)], 1.0)


def test_penultimate_features_reach_into_a_wrapped_teacher_and_refuse_branches():
    """The wrappers put around a user's teacher (rescaling in front, log-softmax behind) keep
    the features reachable; a branching wrapper is refused rather than replayed wrongly."""
    import keras

    from tfgan_compress.teacher import as_logits, taking_unit_range

    soft = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(5, activation="relu"),
                             keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    direct = quality.penultimate_features(soft)
    wrapped = quality.penultimate_features(as_logits(taking_unit_range(soft, (8, 8, 1), {"scale": 255.0, "offset": 0.0})))
    np.testing.assert_allclose(wrapped(x), direct(x * 255.0), rtol=1e-5)
    image = keras.Input((8, 8, 1))
    branching = keras.Model(image, keras.layers.Add()([soft(image), soft(keras.layers.Rescaling(0.5)(image))]))
    with pytest.raises(ValueError, match="no Dense layer"):
        quality.penultimate_features(branching)


def test_the_streaming_frechet_metric_equals_the_batch_formula():
    """``FrechetDistance`` (running sums, for evaluate()) and ``frechet_distance`` (numpy)
    are two implementations of one formula: fed in uneven batches, they agree."""
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 6)), rng.normal(size=(300, 6)) * 1.5 + 0.3
    metric = quality.FrechetDistance(6)
    for i in range(0, 300, 70):
        metric.update_state(real[i:i + 70], fake[i:i + 70])
    np.testing.assert_allclose(float(metric.result()), quality.frechet_distance(real, fake), rtol=1e-5)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_class_balanced_indices_take_each_class_equally_or_all_of_a_small_one():
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    chosen = quality.class_balanced_indices(labels, 30, np.random.default_rng(0))
    assert sorted(np.bincount(labels[chosen])) == [1, 9, 10] and len(set(chosen)) == len(chosen)
    assert not np.array_equal(np.sort(chosen), chosen)  # random order: two halves hold every class


def _class_centre_models(centres):
    """A generator that draws each class around its centre, as the real data below, and a teacher."""
    noise, label = keras.Input((2,)), keras.Input((), dtype="int32")
    embedding = keras.layers.Embedding(len(centres), 2, embeddings_initializer=keras.initializers.Constant(centres))
    generator = keras.Model([noise, label], keras.layers.Add()([embedding(label),
                                                                keras.layers.Rescaling(0.3)(noise)]))
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(4, kernel_initializer=keras.initializers.Identity(), name="hidden")(inputs)
    return generator, keras.Model(inputs, keras.layers.Dense(len(centres), name="logits")(hidden))


def test_a_long_tailed_real_split_does_not_read_as_a_worse_generator():
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], np.float32)
    generator, teacher = _class_centre_models(centres)
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], [900, 90, 30])  # long-tailed, as the generator is not
    real = (centres[labels] + 0.3 * rng.standard_normal((len(labels), 2))).astype(np.float32)
    fair = quality.generator_quality(teacher, generator, real, 3, samples=90, real_labels=labels)
    mixed = quality.generator_quality(teacher, generator, real, 3, samples=90)
    assert fair["samples"] == 90
    absent = quality.generator_quality(teacher, generator, real[labels < 2], 3, samples=90, real_labels=labels[labels < 2])
    assert absent["samples"] == 90 + 30 and not np.isnan(absent["per_class"][2])  # judged without real images
    assert absent["frechet_distance_teacher_features"] is not None
    assert fair["frechet_distance_teacher_features"] < 0.25 * mixed["frechet_distance_teacher_features"]


def test_the_gans_epoch_score_compares_each_class_with_its_own_real_images():
    from types import SimpleNamespace

    from tfgan_compress import callbacks

    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], np.float32)
    generator, teacher = _class_centre_models(centres)
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], [900, 90, 3])  # the last class has fewer images than the score's 30 per class
    real = (centres[labels] + 0.3 * rng.standard_normal((len(labels), 2))).astype(np.float32)
    chosen = quality.class_balanced_indices(labels, 90, rng)
    scores = {}
    for name, given in (("fair", labels[chosen]), ("mixed", None)):
        score = callbacks.TeacherScore(teacher, 3, per_class=30, real_images=real[chosen], real_labels=given)
        score.set_model(SimpleNamespace(ema_generator=generator, noise_dim=2))
        scores[name] = score.score()["frechet_distance"]
    assert scores["fair"] < 0.25 * scores["mixed"]  # without the labels, 3 real images of class 2 against 30 samples
