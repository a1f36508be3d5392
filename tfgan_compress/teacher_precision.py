"""The teacher's forward pass in bfloat16 where this CPU runs it faster (``distill.teacher_precision``).

In a distillation step on a sample bank the teacher's forward pass is most of the cost
(benchmarks/README.md: 70% of a colour step). CPUs with bfloat16 dot products (AVX512-BF16,
AMX) run it in about half the time through oneDNN; others emulate bfloat16 and are slower.
So ``auto`` measures both on the run's own generator samples and keeps bfloat16 only where it
is clearly faster and its soft labels are those of float32:

* the copy: every layer of the teacher rebuilt with Keras' ``mixed_bfloat16`` policy
  (variables float32, computation bfloat16; Micikevicius et al., 2018, "Mixed Precision
  Training", with bfloat16's float32 exponent range, so no loss scaling is needed for a
  forward pass), the logits cast back to float32;
* the check: the mean total variation ``1/2 sum_c |p_c - q_c|`` between the two soft labels
  ``softmax(t / T)`` on a batch of samples, at most :data:`MAX_SOFT_LABEL_CHANGE`;
* the choice (``auto``): bfloat16 where its best time of :data:`TIMED_CALLS` calls is under
  :data:`FASTER_BY` of float32's.

Only the frozen teacher's labels change precision; the student trains in float32, and the
exported files are made from float32 models.
"""

from __future__ import annotations

import time

import keras
import tensorflow as tf

from .errors import UsageError

__all__ = ["bfloat16_copy", "soft_label_change", "teacher_for_distillation", "MAX_SOFT_LABEL_CHANGE", "FASTER_BY",
           "TIMED_CALLS"]

MAX_SOFT_LABEL_CHANGE = 0.01  # mean total variation between float32 and bfloat16 soft labels
FASTER_BY = 0.8  # bfloat16 chosen by auto only if it takes under this share of float32's time
TIMED_CALLS = 3


def milliseconds(seconds: float) -> str:
    """``seconds`` in milliseconds with two significant digits at least (0.31, 4.2, 74)."""
    value = seconds * 1e3
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}" if value >= 0.01 else f"{value:.1g}"


def bfloat16_copy(model: keras.Model) -> keras.Model:
    """``model`` with every layer that has a dtype computing in bfloat16 (``mixed_bfloat16``),
    the same weights, and float32 outputs. ``ValueError`` where the model cannot be rebuilt
    from its config (a subclassed model)."""

    def in_bfloat16(layer):
        config = layer.get_config()
        if "dtype" in config and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=in_bfloat16)
        copy.set_weights(model.get_weights())
    except Exception as err:  # noqa: BLE001 - clone_model raises many kinds for models it cannot rebuild
        raise ValueError(f"{model.name} cannot be rebuilt in bfloat16 ({type(err).__name__}: {err})") from None
    image = keras.Input(shape=model.inputs[0].shape[1:], dtype=model.inputs[0].dtype, name="image")
    logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(copy(image))
    return keras.Model(image, logits, name=f"{model.name}_bfloat16")


def soft_label_change(logits, other_logits, temperature: float) -> float:
    """Mean total variation ``1/2 sum_c |softmax(t/T) - softmax(t'/T)|`` over the batch."""
    p = tf.nn.softmax(tf.cast(logits, tf.float32) / temperature, axis=-1)
    q = tf.nn.softmax(tf.cast(other_logits, tf.float32) / temperature, axis=-1)
    return float(tf.reduce_mean(0.5 * tf.reduce_sum(tf.abs(p - q), axis=-1)))


def _best_seconds(call, images) -> float:
    call(images)  # trace and warm up
    times = []
    for _ in range(TIMED_CALLS):
        start = time.perf_counter()
        call(images).numpy()
        times.append(time.perf_counter() - start)
    return min(times)


def teacher_for_distillation(teacher: keras.Model, setting: str, images, temperature: float,
                             progress=None) -> keras.Model:
    """The teacher (logits out) to label distillation views with: itself for ``float32``; its
    :func:`bfloat16_copy` for ``bfloat16`` (``UsageError`` if it cannot be made or its soft
    labels on ``images`` move more than :data:`MAX_SOFT_LABEL_CHANGE`); for ``auto`` whichever
    :mod:`teacher_precision` chooses on ``images`` (a batch of the run's samples), said in one
    line to ``progress``."""
    say = progress or (lambda _: None)
    if setting == "float32":
        return teacher
    try:
        copy = bfloat16_copy(teacher)
        labels_32 = tf.function(lambda x: teacher(x, training=False))
        labels_16 = tf.function(lambda x: copy(x, training=False))
        change = soft_label_change(labels_32(images), labels_16(images), temperature)
    except Exception as err:  # noqa: BLE001 - a layer without a bfloat16 kernel fails in its own way
        if setting == "bfloat16":
            raise UsageError(f"distill.teacher_precision bfloat16: {err}") from None
        say(f"  teacher in float32 for distillation (distill.teacher_precision auto: no bfloat16 copy, {err})")
        return teacher
    if change > MAX_SOFT_LABEL_CHANGE:
        message = (f"its soft labels move by {change:.4f} (mean total variation at T={temperature:g}), over "
                   f"{MAX_SOFT_LABEL_CHANGE}")
        if setting == "bfloat16":
            raise UsageError(f"distill.teacher_precision bfloat16: {message}; use float32")
        say(f"  teacher in float32 for distillation (distill.teacher_precision auto: in bfloat16 {message})")
        return teacher
    if setting == "bfloat16":
        say(f"  teacher in bfloat16 for distillation (distill.teacher_precision): soft labels within {change:.4f}")
        return copy
    seconds_32, seconds_16 = _best_seconds(labels_32, images), _best_seconds(labels_16, images)
    chosen = "bfloat16" if seconds_16 < FASTER_BY * seconds_32 else "float32"
    say(f"  teacher in {chosen} for distillation (distill.teacher_precision auto): {milliseconds(seconds_16)} ms in "
        f"bfloat16 against {milliseconds(seconds_32)} ms in float32 per batch of {int(images.shape[0])}, soft labels "
        f"within {change:.4f} (mean total variation at T={temperature:g})")
    return copy if chosen == "bfloat16" else teacher
