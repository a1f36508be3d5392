"""The teacher's labels in bfloat16 where it pays (``distill.teacher_precision``)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress import teacher_precision
from tfgan_compress.config import RunConfig
from tfgan_compress.errors import UsageError
from tfgan_compress.teacher_precision import bfloat16_copy, soft_label_change, teacher_for_distillation


def small_teacher(seed=0):
    keras.utils.set_random_seed(seed)
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(image)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(4)(x), name="teacher")


def images(n=32):
    return tf.random.stateless_uniform((n, 8, 8, 3), seed=[0, 1])


def test_the_bfloat16_copy_computes_in_bfloat16_keeps_the_weights_and_gives_float32_logits():
    teacher = small_teacher()
    copy = bfloat16_copy(teacher)
    assert any(layer.compute_dtype == "bfloat16" for layer in copy.layers[1].layers)
    for kept, original in zip(copy.get_weights(), teacher.get_weights()):
        np.testing.assert_array_equal(kept, original)  # variables stay float32: the same numbers
    out = copy(images())
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out, teacher(images()), atol=0.05)
    assert soft_label_change(teacher(images()), out, 4.0) < teacher_precision.MAX_SOFT_LABEL_CHANGE


def test_float32_is_the_teacher_itself_and_bfloat16_the_checked_copy():
    teacher, lines = small_teacher(), []
    assert teacher_for_distillation(teacher, "float32", images(), 4.0, lines.append) is teacher
    chosen = teacher_for_distillation(teacher, "bfloat16", images(), 4.0, lines.append)
    assert chosen is not teacher and chosen.name == "teacher_bfloat16"
    assert len(lines) == 1 and "bfloat16" in lines[0] and "soft labels within" in lines[0]


@pytest.mark.parametrize("seconds_16, chosen", [(0.5, "bfloat16"), (0.9, "float32")])
def test_auto_keeps_bfloat16_only_where_it_is_measured_clearly_faster(monkeypatch, seconds_16, chosen):
    teacher, lines = small_teacher(), []
    names = iter(["float32", "bfloat16"])
    timings = {"float32": 1.0, "bfloat16": seconds_16}
    monkeypatch.setattr(teacher_precision, "_best_seconds", lambda call, x: timings[next(names)])
    model = teacher_for_distillation(teacher, "auto", images(), 4.0, lines.append)
    assert (model is teacher) == (chosen == "float32")
    assert lines[0].startswith(f"  teacher in {chosen}") and "per batch of 32" in lines[0]


def test_soft_labels_that_bfloat16_moves_are_refused_or_left_in_float32():
    # logits near 1000: bfloat16 keeps 8 bits of mantissa (steps of 4 there), so 1000 and 1001 become one value
    image = keras.Input((2,))
    dense = keras.layers.Dense(2, use_bias=False)
    teacher = keras.Model(image, dense(image), name="teacher")
    dense.set_weights([np.array([[1000.0, 1001.0], [0.0, 0.0]], np.float32)])
    x = tf.constant([[1.0, 0.0]] * 4)
    lines = []
    with pytest.raises(UsageError, match="soft labels move"):
        teacher_for_distillation(teacher, "bfloat16", x, 4.0, lines.append)
    assert teacher_for_distillation(teacher, "auto", x, 4.0, lines.append) is teacher
    assert "in float32" in lines[-1] and "soft labels move" in lines[-1]


def test_a_teacher_that_cannot_be_rebuilt_stays_float32_under_auto_and_is_refused_for_bfloat16():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(keras.ops.reshape(x, (-1, 8 * 8 * 3)))

    teacher, lines = Subclassed(), []
    teacher(images(2))
    assert teacher_for_distillation(teacher, "auto", images(), 4.0, lines.append) is teacher
    assert "no bfloat16 copy" in lines[-1]
    with pytest.raises(UsageError, match="bfloat16"):
        teacher_for_distillation(teacher, "bfloat16", images(), 4.0, lines.append)


def test_bfloat16_with_the_feature_terms_is_refused():
    with pytest.raises(UsageError, match="teacher_precision"):
        RunConfig.from_dict({"distill": {"teacher_precision": "bfloat16", "feature_weight": 1.0}})


def test_the_auto_line_gives_sub_millisecond_timings_in_more_digits_than_zero():
    from tfgan_compress.teacher_precision import milliseconds

    assert [milliseconds(s) for s in (0.074, 0.0042, 0.00031, 0.000004)] == ["74", "4.2", "0.31", "0.004"]
