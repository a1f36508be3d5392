"""Metrics by hand."""

import math

import numpy as np
import pytest

from tfgan_compress import evaluate


def test_classification_metrics_by_hand():
    probs = np.array([[0.5, 0.5, 0.0], [0.25, 0.75, 0.0], [0.0, 0.0, 1.0], [0.9, 0.1, 0.0]])
    labels = np.array([0, 1, 2, 1])
    teacher = np.array([0, 1, 2, 0])
    m = evaluate.classification_metrics(probs, labels, teacher)
    assert m["accuracy"] == pytest.approx(0.75)  # argmax [0, 1, 2, 0]
    # bits: -log2 of [0.5, 0.75, 1.0, 0.1]
    expected_bits = (1 + -math.log2(0.75) + 0 + -math.log2(0.1)) / 4
    assert m["bits_per_example"] == pytest.approx(expected_bits)
    assert m["agreement_with_teacher"] == pytest.approx(1.0)


def test_zero_probability_costs_twenty_bits_not_infinity():
    m = evaluate.classification_metrics(np.array([[1.0, 0.0]]), np.array([1]))
    assert m["bits_per_example"] == pytest.approx(20.0)


def test_a_fixed_batch_file_gets_no_batch_throughput(tmp_path):
    from tfgan_compress import export, networks
    from tfgan_compress.config import ClassifierConfig

    student = networks.build_classifier((8, 8, 1), 3, ClassifierConfig((2, 4), (8, 8)), "student")
    images = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    rows = {}
    for variant in ("int8", "int8_io"):
        path = tmp_path / "tflite" / f"student_{variant}.tflite"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(export.convert(export.probability_model(student), variant, images))
        rows[variant] = evaluate.evaluate_tflite(variant, path, 0, images, np.zeros(16, int), np.zeros(16, int), 3, 1)
    assert rows["int8"]["throughput_images_per_s"] > 0
    assert rows["int8_io"]["throughput_images_per_s"] is None  # it runs one image at a time


def test_accuracy_per_class_is_each_class_recall_and_none_for_a_class_without_test_examples():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.1, 0.9, 0.0]])
    labels = np.array([0, 0, 1, 1])  # class 0: 1 of 2 right; class 1: 1 of 2; class 2: no test example
    m = evaluate.classification_metrics(probs, labels)
    assert m["accuracy_per_class"] == [pytest.approx(0.5), pytest.approx(0.5), None]
