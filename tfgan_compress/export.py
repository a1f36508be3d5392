"""TFLite export of a classifier in four variants, with checks.

* ``float32``: plain conversion.
* ``float16``: weights stored as float16 (``target_spec.supported_types = [tf.float16]``).
* ``dynamic``: dynamic-range quantisation (int8 weights, float activations).
* ``int8``: full-integer post-training quantisation (Jacob et al., 2018): weights and
  activations int8, calibrated on a representative set, float input and output so that
  apps feed pixels directly. The calibration images are generator samples by default, so
  no real image is needed.
* ``int8_io``: the same with int8 input and output tensors and a fixed batch of one, for
  microcontrollers: the app quantises pixels with the input's (scale, zero point) and
  dequantises the output.

Only ``TFLITE_BUILTINS`` / ``TFLITE_BUILTINS_INT8`` ops are allowed (no Flex), so the files
run on any LiteRT build. The exported graph ends in a softmax: outputs are probabilities.
Every file is loaded back with ``ai_edge_litert`` and checked: input/output shape and
type, and top-1 agreement with the Keras model on check images, which must reach the bar
(99.5% for float variants, 99% for quantised ones) or the export fails and nothing is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from . import artifacts
from .errors import ExportError
from .litert import TFLiteClassifier

VARIANTS = ("float32", "float16", "dynamic", "int8", "int8_io")
AGREEMENT_BARS = {"float32": 0.995, "float16": 0.995, "dynamic": 0.99, "int8": 0.99, "int8_io": 0.99}
GENERATOR_VARIANTS = ("float16", "int8")


def convert_generator(generator: keras.Model, variant: str) -> bytes:
    """The generator as a TFLite file: (noise float32 [N, d], class int32 [N]) -> images [0, 1].

    ``float16``: float16 weights; ``int8``: int8 weights with float activations (dynamic
    range). "The dataset in a file": sample it with any class to get training images.
    """
    if variant not in GENERATOR_VARIANTS:
        raise ValueError(f"unknown generator variant {variant!r}; choose from {GENERATOR_VARIANTS}")
    noise_dim = int(generator.inputs[0].shape[-1])
    converter = frozen_converter(generator, [tf.TensorSpec([None, noise_dim], tf.float32, name="noise"),
                                             tf.TensorSpec([None], tf.int32, name="label")])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    with quiet_converter():
        return drop_internal_names(converter.convert())


@dataclass
class ExportedFile:
    variant: str
    path: Path
    bytes: int
    agreement_with_keras: float
    input_dtype: str
    output_dtype: str
    input_quantization: dict | None = None  # {"scale": s, "zero_point": z} for integer tensors
    output_quantization: dict | None = None


def quantization_of(detail: dict) -> dict | None:
    """``{"scale", "zero_point"}`` of an integer tensor (``q = round(x / scale) + zero_point``)."""
    if not np.issubdtype(detail["dtype"], np.integer):
        return None
    scale, zero_point = detail["quantization"]
    return {"scale": float(scale), "zero_point": int(zero_point)}


def probability_model(classifier: keras.Model) -> keras.Model:
    """``softmax(classifier(x))``: what a device app wants (probabilities, not logits)."""
    inputs = keras.Input(shape=classifier.inputs[0].shape[1:], name="image")
    probs = keras.layers.Softmax(name="probabilities")(classifier(inputs))
    return keras.Model(inputs, probs, name=f"{classifier.name}_probabilities")


def frozen_converter(model: keras.Model, input_signature) -> tf.lite.TFLiteConverter:
    """A converter for ``model`` called on ``input_signature``, built-in ops only.

    The weights are frozen into constants first: the converter would otherwise keep them
    as resource variables (READ_VARIABLE ops), which quantisation cannot calibrate.
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    @tf.function(input_signature=input_signature)
    def serve(*inputs):
        return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def convert(model: keras.Model, variant: str, calibration_images: np.ndarray | None = None) -> bytes:
    """Convert ``model`` (float input in [0, 1]) to a TFLite flatbuffer of ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    # Microcontroller files get a fixed batch of 1: constant shapes, no SHAPE/PACK ops.
    input_shape = [1 if variant == "int8_io" else None, *model.inputs[0].shape[1:]]
    converter = frozen_converter(model, [tf.TensorSpec(input_shape, tf.float32, name="image")])
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant in ("int8", "int8_io"):
        if calibration_images is None or len(calibration_images) == 0:
            raise ValueError("int8 export needs calibration images")
        images = np.asarray(calibration_images, np.float32)

        def representative_dataset():
            for image in images:
                yield [image[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8 if variant == "int8_io" else tf.float32
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    with quiet_converter():
        return drop_internal_names(converter.convert())


def drop_internal_names(content: bytes) -> bytes:
    """Remove the debug names of intermediate tensors (about 10% of a small int8 file).

    The model's input and output tensors and its signature keep their names, so
    ``get_input_details`` / ``get_signature_list`` read as before.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    for subgraph in model.subgraphs:
        keep = set(subgraph.inputs) | set(subgraph.outputs)
        for index, tensor in enumerate(subgraph.tensors):
            if index not in keep:
                tensor.name = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


@contextlib.contextmanager
def quiet_converter():
    """Silence the converter's C++ prints and Python warnings (they are not for the user).

    The file descriptors 1 and 2 are pointed at /dev/null for the duration; errors still
    propagate as exceptions.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def check_tflite(content: bytes, keras_model: keras.Model, check_images: np.ndarray, variant: str,
                 min_agreement: float) -> tuple[float, TFLiteClassifier]:
    """Load ``content`` with LiteRT and compare its top-1 predictions with ``keras_model``.

    Raises :class:`ExportError` when shapes or types are wrong or agreement is below the bar.
    """
    try:
        runner = TFLiteClassifier(model_content=content)
    except (RuntimeError, ValueError) as err:
        raise ExportError(f"{variant}: the converted file does not load in LiteRT ({err})") from None
    expected_in = tuple(keras_model.inputs[0].shape[1:])
    if runner.input_shape != expected_in:
        raise ExportError(f"{variant}: input shape {runner.input_shape}, expected {expected_in}")
    tflite_probs = runner.predict(check_images)
    keras_probs = np.asarray(keras_model.predict(check_images, verbose=0, batch_size=256))
    if tflite_probs.shape != keras_probs.shape:
        raise ExportError(f"{variant}: output shape {tflite_probs.shape[1:]}, expected {keras_probs.shape[1:]}")
    agreement = float(np.mean(np.argmax(tflite_probs, -1) == np.argmax(keras_probs, -1)))
    if agreement < min_agreement:
        raise ExportError(
            f"{variant}: top-1 agreement with the Keras model is {agreement:.2%} on {len(check_images)} "
            f"check images, below the required {min_agreement:.1%}; no file was kept"
            + (" (try more calibration samples: export.calibration_samples)" if variant.startswith("int8") else "")
            + "; a student that is unsure on many images loses more to quantisation (train it longer), or accept "
              "the loss with export.min_agreement_float / export.min_agreement_quantized")
    return agreement, runner


def export_classifier(classifier: keras.Model, out_dir, name: str, calibration_images: np.ndarray,
                      check_images: np.ndarray, variants: Sequence[str] = VARIANTS,
                      agreement_bars: dict | None = None, progress=print) -> list[ExportedFile]:
    """Convert, check and write ``<out_dir>/<name>_<variant>.tflite`` for each variant.

    Every file is checked before anything is written; if one fails, none is written.
    """
    bars = {**AGREEMENT_BARS, **(agreement_bars or {})}
    model = probability_model(classifier)
    converted = []
    for variant in variants:
        content = convert(model, variant, calibration_images)
        agreement, runner = check_tflite(content, model, check_images, variant, bars[variant])
        converted.append((variant, content, agreement, runner))
        progress(f"  {name}_{variant}.tflite: {len(content):,} bytes, agreement with Keras {agreement:.2%}, "
                 f"input {np.dtype(runner.input_dtype).name}, output {np.dtype(runner.output_dtype).name}")
    results = []
    for variant, content, agreement, runner in converted:
        path = artifacts.write_bytes(Path(out_dir) / f"{name}_{variant}.tflite", content)
        results.append(ExportedFile(variant, path, len(content), agreement,
                                    np.dtype(runner.input_dtype).name, np.dtype(runner.output_dtype).name,
                                    quantization_of(runner.input_detail), quantization_of(runner.output_detail)))
    return results


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_generator(content: bytes, generator: keras.Model, variant: str, samples: int = 64) -> float:
    """Load a generator file with LiteRT, compare its images with Keras; return the mean
    absolute pixel difference (raises :class:`ExportError` above 0.1 or on a bad shape)."""
    from ai_edge_litert.interpreter import Interpreter

    noise_dim = int(generator.inputs[0].shape[-1])
    num_classes = int(generator.get_layer("label_embedding").input_dim)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((samples, noise_dim)).astype(np.float32)
    labels = (np.arange(samples) % num_classes).astype(np.int32)
    interpreter = Interpreter(model_content=content, num_threads=1)
    details = {d["name"]: d for d in interpreter.get_input_details()}
    noise_in = next(d for name, d in details.items() if "noise" in name)
    label_in = next(d for name, d in details.items() if "label" in name)
    interpreter.resize_tensor_input(noise_in["index"], [samples, noise_dim])
    interpreter.resize_tensor_input(label_in["index"], [samples])
    interpreter.allocate_tensors()
    interpreter.set_tensor(noise_in["index"], noise)
    interpreter.set_tensor(label_in["index"], labels)
    interpreter.invoke()
    images = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = np.asarray(generator([noise, labels], training=False))
    if images.shape != expected.shape:
        raise ExportError(f"generator_{variant}: output shape {images.shape}, expected {expected.shape}")
    difference = float(np.mean(np.abs(images - expected)))
    if difference > 0.1:
        raise ExportError(f"generator_{variant}: images differ from Keras by {difference:.3f} on average")
    return difference


def export_generator(generator: keras.Model, out_dir, variants=GENERATOR_VARIANTS, progress=print) -> list[dict]:
    """``generator_<variant>.tflite`` for each variant, each checked against Keras."""
    converted = []
    for variant in variants:
        content = convert_generator(generator, variant)
        difference = check_generator(content, generator, variant)
        converted.append((variant, content, difference))
        progress(f"  generator_{variant}.tflite: {len(content):,} bytes, mean |pixel - Keras| {difference:.4f}")
    files = []
    for variant, content, difference in converted:
        path = artifacts.write_bytes(Path(out_dir) / f"generator_{variant}.tflite", content)
        files.append({"file": path.name, "variant": variant, "bytes": len(content), "sha256": sha256(path),
                      "mean_abs_difference_from_keras": difference})
    return files


def model_card(class_names, image_shape, exported: list[ExportedFile], extra: dict | None = None) -> dict:
    """What a device app needs: input layout and range, classes, files, quantisation, hashes."""
    return {
        "input": {"shape": [1, *image_shape], "layout": "NHWC", "dtype": "float32 (int8 for *_int8_io files)",
                  "range": [0.0, 1.0],
                  "normalisation": "x = pixel / 255 for 8-bit images (grey or RGB as in training); "
                                   "int8 input: q = round(x / scale) + zero_point"},
        "output": {"shape": [1, len(class_names)], "meaning": "class probabilities (softmax), in labels.txt order",
                   "int8_output": "p = (q - zero_point) * scale"},
        "class_names": list(class_names),
        "files": [{"file": f.path.name, "variant": f.variant, "bytes": f.bytes, "sha256": sha256(f.path),
                   "input_dtype": f.input_dtype, "output_dtype": f.output_dtype,
                   "input_quantization": f.input_quantization, "output_quantization": f.output_quantization,
                   "agreement_with_keras": f.agreement_with_keras} for f in exported],
        **(extra or {}),
    }


def write_labels_and_card(out_dir, class_names, image_shape, exported: list[ExportedFile],
                          extra: dict | None = None) -> None:
    """``labels.txt`` (one class name per line, index order) and ``model_card.json``."""
    out_dir = Path(out_dir)
    artifacts.write_text(out_dir / "labels.txt", "".join(f"{c}\n" for c in class_names))
    artifacts.write_json(out_dir / "model_card.json", model_card(class_names, image_shape, exported, extra))
