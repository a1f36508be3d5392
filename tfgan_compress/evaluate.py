"""Measurements of Keras and TFLite classifiers on the real test split.

* accuracy: top-1;
* bits per example: the cross-entropy ``mean_i -log2 p(y_i | x_i)``, i.e. the code length
  of the test labels under the model ("prediction is compression"; MacKay, 2003, ch. 4).
  Probabilities are floored at ``2^-20`` so a quantised zero costs 20 bits, not infinity;
* agreement with the teacher: fraction of images with the teacher's top-1 class;
* latency: median (and p90) of single-image invocations, 1 thread, after a warm-up;
* throughput (TFLite): images per second in batches of 64, 1 thread.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import quality, timing
from .litert import TFLiteClassifier

PROBABILITY_FLOOR = 2.0 ** -20


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray,
                           teacher_predictions: np.ndarray | None = None) -> dict:
    """accuracy, accuracy_per_class (recall of each class: None for a class with no test
    example), bits_per_example, agreement_with_teacher from (N, classes) probabilities."""
    probabilities = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels)
    predicted = np.argmax(probabilities, axis=-1)
    p_true = np.maximum(probabilities[np.arange(len(labels)), labels], PROBABILITY_FLOOR)
    correct = predicted == labels
    metrics = {
        "accuracy": float(np.mean(correct)),
        "accuracy_per_class": [float(np.mean(correct[labels == c])) if np.any(labels == c) else None
                               for c in range(probabilities.shape[-1])],
        "bits_per_example": float(np.mean(-np.log2(p_true))),
    }
    if teacher_predictions is not None:
        metrics["agreement_with_teacher"] = float(np.mean(predicted == teacher_predictions))
    return metrics


def keras_probabilities(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Softmax of a logits classifier over ``images``."""
    logits = quality.batched(model, images, 256)
    return np.asarray(tf.nn.softmax(logits, axis=-1))


def keras_latency_ms(model: keras.Model, image: np.ndarray, runs: int, warmup: int) -> dict:
    """Single-image latency of a compiled ``model(x)`` call (TensorFlow, 1 image)."""
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    x = tf.constant(image[None], tf.float32)
    return timing.latency_ms(lambda: fn(x).numpy(), runs, warmup)


def evaluate_keras(name: str, model: keras.Model, path, x_test, y_test, teacher_predictions,
                   runs: int, warmup: int) -> dict:
    metrics = classification_metrics(keras_probabilities(model, x_test), y_test, teacher_predictions)
    latency = keras_latency_ms(model, x_test[0], runs, warmup)
    return {"name": name, "format": "keras", **metrics, "params": int(model.count_params()),
            "bytes": Path(path).stat().st_size, "latency_ms": latency["median"], "latency_p90_ms": latency["p90"],
            "file": Path(path).name}


def evaluate_tflite(name: str, path, params: int, x_test, y_test, teacher_predictions,
                    runs: int, warmup: int) -> dict:
    runner = TFLiteClassifier(model_path=path, num_threads=1)
    metrics = classification_metrics(runner.predict(x_test), y_test, teacher_predictions)
    latency = runner.latency_ms(x_test[0], runs, warmup)
    return {"name": name, "format": "tflite", **metrics, "params": int(params),
            "bytes": Path(path).stat().st_size, "latency_ms": latency["median"], "latency_p90_ms": latency["p90"],
            # a fixed-batch (microcontroller) file runs one image at a time: no batch-64 figure
            "throughput_images_per_s": None if runner.fixed_batch else runner.throughput(x_test),
            "input_dtype": np.dtype(runner.input_dtype).name,
            "file": str(Path(path).relative_to(Path(path).parent.parent))}
