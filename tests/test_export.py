"""TFLite export: every variant loads in LiteRT and predicts the right shape and dtype."""

import json

import keras
import numpy as np
import pytest

from tfgan_compress import export, networks
from tfgan_compress.config import ClassifierConfig
from tfgan_compress.errors import ExportError
from tfgan_compress.litert import TFLiteClassifier, dequantize, quantize
from tfgan_compress.stages import BUILT_IN_INPUT

SHAPE, CLASSES = (8, 8, 1), 3
BARS = {"float32": 0.995, "float16": 0.995, "dynamic": 0.0, "int8": 0.0, "int8_io": 0.0}


@pytest.fixture(scope="module")
def student():
    keras.utils.set_random_seed(0)
    return networks.build_classifier(SHAPE, CLASSES, ClassifierConfig((2, 4), (8, 8)), "student")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((40, *SHAPE)).astype(np.float32)


def test_every_variant_loads_and_predicts(tmp_path_factory, student, images):
    out = tmp_path_factory.mktemp("tflite")
    exported = export.export_classifier(student, lambda v: out / f"student_{v}.tflite", images, images,
                                        export.VARIANTS, BARS, progress=lambda _: None)
    assert [f.variant for f in exported] == list(export.VARIANTS)
    for f in exported:
        runner = TFLiteClassifier(model_path=f.path)
        assert runner.input_shape == SHAPE
        io_type = np.int8 if f.variant == "int8_io" else np.float32
        assert runner.input_dtype == io_type and runner.output_dtype == io_type
        assert (f.input_quantization is not None) == (f.variant == "int8_io")
        assert f.logit_floor is None or export.VARIANTS[f.variant].calibrated
        probs = runner.predict(images[:5])
        assert probs.shape == (5, CLASSES) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=0.02)
    ops = {v: _op_names(out / f"student_{v}.tflite") for v in export.VARIANTS}
    assert not any("Flex" in name for names in ops.values() for name in names)
    # weights are constants: no resource variables, which int8 calibration could not read
    assert not any("VARIABLE" in name or name == "VAR_HANDLE" for names in ops.values() for name in names)
    assert "CONV_2D" in ops["int8"]
    export.write_labels(out / "labels.txt", ["a", "b", "c"])
    export.ModelCard(out / "model_card.json").write(["a", "b", "c"], SHAPE, exported, BUILT_IN_INPUT)
    assert (out / "labels.txt").read_text() == "a\nb\nc\n"
    card = json.loads((out / "model_card.json").read_text())
    assert {f["file"]: f["sha256"] for f in card["files"]} == {
        f.path.name: export.sha256(f.path) for f in exported}
    int8_io = next(f for f in card["files"] if f["variant"] == "int8_io")
    assert set(int8_io["input_quantization"]) == {"scale", "zero_point"}


def _op_names(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return {op["op_name"] for op in interpreter._get_ops_details()}


def test_int8_file_has_int8_weights_and_activations(student, images):
    from ai_edge_litert.interpreter import Interpreter

    int8 = export.convert(export.probability_model(student), "int8", images)
    interpreter = Interpreter(model_content=int8)
    dtypes = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    assert "int8" in dtypes and "float16" not in dtypes
    with pytest.raises(ValueError, match="calibration"):
        export.convert(export.probability_model(student), "int8", None)


def test_a_file_below_its_agreement_bar_is_kept_apart_and_marked(tmp_path, student, images):
    # A bar of 200% cannot be met by any file, even lowered for near-ties: the int8 file is written under
    # below_bar/, marked failed; the float32 file, which passed, where it belongs.
    files = export.export_classifier(student, lambda v: tmp_path / f"student_{v}.tflite", images[:16],
                                     images, ("float32", "int8"), {**BARS, "int8": 2.0}, progress=lambda _: None)
    by_variant = {f.variant: f for f in files}
    assert by_variant["float32"].passed and by_variant["float32"].path == tmp_path / "student_float32.tflite"
    assert not by_variant["int8"].passed
    assert by_variant["int8"].path == tmp_path / "below_bar" / "student_int8.tflite" and by_variant["int8"].path.is_file()
    assert not (tmp_path / "student_int8.tflite").exists()


def test_the_bar_is_lowered_by_half_the_near_ties():
    confident = np.array([[0.9, 0.1], [0.05, 0.95]])
    unsure = np.array([[0.51, 0.49], [0.05, 0.95]])  # one near-tie in two
    assert export.near_tie_share(confident) == 0.0 and export.scaled_bar(0.99, confident) == 0.99
    assert export.near_tie_share(unsure) == 0.5 and export.scaled_bar(0.99, unsure) == pytest.approx(0.74)


def test_variant_table_matches_the_config_choices_and_bars():
    from tfgan_compress.config import ExportConfig, ExportVariant, choices

    assert tuple(export.VARIANTS) == choices(ExportVariant)
    config = ExportConfig(min_agreement_float=0.9, min_agreement_quantized=0.8)
    assert {v: export.agreement_bar(v, config) for v in export.VARIANTS} == {
        "float32": 0.9, "float16": 0.9, "dynamic": 0.8, "int8": 0.8, "int8_io": 0.8}


def test_quantize_dequantize_round_trip():
    detail = {"dtype": np.int8, "quantization": (1 / 255, -128)}
    x = np.linspace(0, 1, 256, dtype=np.float32)
    q = quantize(x, detail)
    assert q.dtype == np.int8 and q.min() == -128 and q.max() == 127
    np.testing.assert_allclose(dequantize(q, detail), x, atol=0.5 / 255 + 1e-6)
    float_detail = {"dtype": np.float32, "quantization": (0.0, 0)}
    np.testing.assert_array_equal(dequantize(quantize(x, float_detail), float_detail), x)


def test_generator_exports_as_a_tflite_file(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    keras.utils.set_random_seed(0)
    generator = networks.build_generator(SHAPE, CLASSES, 4, width=4)
    files = export.export_generator(generator, lambda v: tmp_path / f"generator_{v}.tflite", ("float16", "dynamic"),
                                    progress=lambda _: None)
    assert [f["file"] for f in files] == ["generator_float16.tflite", "generator_dynamic.tflite"]
    interpreter = Interpreter(model_path=str(tmp_path / "generator_dynamic.tflite"))
    inputs = sorted(interpreter.get_input_details(), key=lambda d: d["name"])
    assert [np.dtype(d["dtype"]).name for d in inputs] == ["int32", "float32"]  # label, noise
    interpreter.allocate_tensors()
    interpreter.set_tensor(inputs[0]["index"], np.array([2], np.int32))
    interpreter.set_tensor(inputs[1]["index"], np.zeros((1, 4), np.float32))
    interpreter.invoke()
    image = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert image.shape == (1, *SHAPE) and 0.0 <= image.min() and image.max() <= 1.0


def _dense_classifier(kernel, bias, activation=None):
    inputs = keras.Input(shape=(kernel.shape[0],), name="image")
    dense = keras.layers.Dense(kernel.shape[1], activation=activation, name="logits")
    model = keras.Model(inputs, dense(inputs), name="student")
    dense.set_weights([kernel, bias])
    return model


def test_floored_logits_clamp_below_the_lowest_top_logit_less_ln512():
    rng = np.random.default_rng(1)
    kernel, bias = 30 * rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    classifier = _dense_classifier(kernel, bias)
    calibration = rng.standard_normal((64, 4)).astype(np.float32)
    logits = calibration @ kernel + bias
    floored, floor = export.floored_logits(classifier, calibration)
    assert floor == pytest.approx(logits.max(-1).min() - np.log(512), abs=1e-3)
    assert floor > logits.min()  # the case it is for: the range below is cut
    # shifted by the floor (softmax does not see it): no int8 ADD after the last Dense
    np.testing.assert_allclose(floored.predict(calibration, verbose=0), np.maximum(logits, floor) - floor, atol=1e-3)
    # the int8 file built on it still agrees with the classifier as it was
    int8 = TFLiteClassifier(model_content=export.convert(export.probability_model(floored), "int8", calibration))
    assert np.mean(np.argmax(int8.predict(calibration), -1) == np.argmax(logits, -1)) >= 0.95


def test_floored_logits_leave_other_classifiers_alone():
    rng = np.random.default_rng(2)
    kernel, bias = rng.standard_normal((4, 3)).astype(np.float32), np.zeros(3, np.float32)
    calibration = rng.standard_normal((16, 4)).astype(np.float32)
    softmax_output = _dense_classifier(kernel, bias, activation="softmax")
    assert export.floored_logits(softmax_output, calibration) == (softmax_output, None)
    narrow = _dense_classifier(kernel * 1e-3, bias)  # every logit within ln 512 of the top: nothing to cut
    assert export.floored_logits(narrow, calibration) == (narrow, None)


def test_a_dead_layer_that_litert_cannot_run_in_int8_is_named_not_a_bare_runtime_error(tmp_path, images):
    """A hidden layer that is zero on every calibration image (a student that has not
    learned) gets an int8 step of about zero, which XNNPACK refuses: the export says so in one
    line, with what to do, and writes nothing."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Dense(8, activation="relu", name="dead")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(CLASSES)(hidden))
    kernel, _ = model.get_layer("dead").get_weights()
    model.get_layer("dead").set_weights([kernel, np.full(8, -100.0, np.float32)])  # ReLU output always 0
    with pytest.raises(ExportError) as raised:
        export.export_classifier(model, lambda v: tmp_path / f"student_{v}.tflite", images, images, ("int8",),
                                 BARS, progress=lambda _: None)
    message = str(raised.value)
    assert "int8: LiteRT cannot run the converted file" in message and "calibrated range of about zero" in message
    assert "export.variants=float32,float16,dynamic" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []
