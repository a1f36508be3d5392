"""The microcontroller kit (tfgan_compress.micro) of the tiny run's int8 files."""

import json
import re

import numpy as np
import pytest

from tfgan_compress import micro


@pytest.fixture(scope="module")
def card(tiny_run):
    return json.loads((tiny_run / "tflite" / "model_card.json").read_text())


@pytest.mark.parametrize("variant", ["int8", "int8_io"])
def test_c_array_holds_the_files_bytes(tiny_run, variant):
    model = tiny_run / "tflite" / f"student_{variant}.tflite"
    source = (tiny_run / "tflite" / "micro" / f"student_{variant}_model_data.cc").read_text()
    assert f"alignas(16) const unsigned char student_{variant}_model_data[]" in source
    body = source.split("{", 1)[1].split("}", 1)[0]
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body)) == model.read_bytes()
    assert f"student_{variant}_model_data_len = {model.stat().st_size};" in source
    header = (tiny_run / "tflite" / "micro" / f"student_{variant}_model_data.h").read_text()
    assert f"extern const unsigned char student_{variant}_model_data[];" in header


@pytest.mark.parametrize("variant", ["int8", "int8_io"])
def test_op_resolver_lists_exactly_the_files_ops(tiny_run, card, variant):
    from ai_edge_litert.interpreter import Interpreter

    model = tiny_run / "tflite" / f"student_{variant}.tflite"
    interpreter = Interpreter(model_path=str(model))
    used = sorted({op["op_name"] for op in interpreter._get_ops_details()})  # LiteRT's own reading of the file
    kit = card["microcontroller"][variant]
    assert kit["ops"] == used
    resolver = (tiny_run / "tflite" / "micro" / f"student_{variant}_op_resolver.h").read_text()
    assert f"MicroMutableOpResolver<{len(used)}>" in resolver
    assert sorted(re.findall(r"resolver\.(Add\w+)\(\)", resolver)) == sorted(micro.resolver_method(op) for op in used)
    if variant == "int8_io":
        assert "QUANTIZE" not in used  # int8 in, int8 out


def test_resolver_method_names_follow_tflite_micro():
    assert [micro.resolver_method(op) for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D",
                                                 "SOFTMAX")] == \
        ["AddConv2D", "AddDepthwiseConv2D", "AddFullyConnected", "AddMaxPool2D", "AddSoftmax"]


def test_arena_is_the_smallest_that_runs(tiny_run, card):
    content = (tiny_run / "tflite" / "student_int8_io.tflite").read_bytes()
    measured = card["microcontroller"]["int8_io"]["arena_bytes_measured"]
    from tfgan_compress.export import quiet_converter

    with quiet_converter():
        assert micro._runs(content, measured) and not micro._runs(content, measured - 32)
    assert card["microcontroller"]["int8_io"]["arena_bytes_recommended"] >= measured * micro.ARENA_MARGIN


def test_report_sets_tflite_micro_beside_litert(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    rows = {row["name"]: row for row in report["models"]}
    for variant in ("int8", "int8_io"):
        micro_row, litert_row = rows[f"student_{variant} (TFLite-Micro)"], rows[f"student_{variant}"]
        assert abs(micro_row["accuracy"] - litert_row["accuracy"]) <= 0.001
        # TFLite-Micro's int8 kernels follow LiteRT's built-in kernels (XNNPACK requantises its own way)
        assert micro_row["same_class_as_litert_builtin"] >= 0.99 and micro_row["identical_to_litert_builtin"] >= 0.95
    text = (tiny_run / "report.md").read_text()
    assert "## Microcontrollers (TFLite-Micro)" in text and "class that LiteRT's built-in kernels give on" in text


def test_micro_and_litert_give_the_same_scores(tiny_run):
    from tfgan_compress.litert import TFLiteClassifier

    model = tiny_run / "tflite" / "student_int8_io.tflite"
    images = np.random.default_rng(0).random((20, 8, 8, 1)).astype(np.float32)
    ours = micro.micro_probabilities(model.read_bytes(), images, 16 * 1024)
    theirs = TFLiteClassifier(model_path=model).predict(images)
    np.testing.assert_allclose(ours, theirs, atol=1 / 256 + 1e-6)  # at most one step of the int8 output
    assert np.mean(ours.argmax(-1) == theirs.argmax(-1)) >= 0.95  # a one-step tie may flip


def test_keyword_student_runs_identically_in_tflite_micro_and_litert(tmp_path):
    from tfgan_compress import config, export, networks
    from tfgan_compress.litert import TFLiteClassifier

    student = networks.build_classifier((12, 16, 1), 3, config.preset("speech").distill.network, "student")
    images = np.random.default_rng(0).random((40, 12, 16, 1)).astype(np.float32) ** 3  # mostly quiet, as log-mel maps
    content = export.convert(export.probability_model(student), "int8_io", images)
    (tmp_path / "kws.tflite").write_bytes(content)
    assert "MUL" not in micro.op_names(content)  # no centring layer (networks.build_dscnn)
    ours = micro.micro_probabilities(content, images, 64 * 1024)
    np.testing.assert_array_equal(ours, TFLiteClassifier(model_content=content, builtin_kernels=True).predict(images))
    compared = micro.compare_with_litert(content, images, np.zeros(len(images), int), 64 * 1024)
    assert compared["identical_to_litert_builtin"] == compared["same_class_as_litert_builtin"] == 1.0
    np.testing.assert_array_equal(compared["probabilities"], ours)
