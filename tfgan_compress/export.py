"""TFLite export of a classifier (and of the generator), with checks.

The variants, one table (:data:`VARIANTS`) of converter settings used for the student and
the generator alike; the names are ``config.ExportVariant``:

* ``float32``: plain conversion.
* ``float16``: weights stored as float16 (``target_spec.supported_types = [tf.float16]``).
* ``dynamic``: dynamic-range quantisation (int8 weights, float activations).
* ``int8``: full-integer post-training quantisation (Jacob et al., 2018): weights and
  activations int8, calibrated on a representative set, float input and output so that
  apps feed pixels directly. The calibration images are generator samples by default, so
  no real image is needed. Logits too far below the top one to change an int8
  probability are raised to a floor inside the last layer (:func:`floored_logits`), for
  a finer int8 step where near-ties are decided.
* ``int8_io``: the same with int8 input and output tensors and a fixed batch of one, for
  microcontrollers: the app quantises pixels with the input's (scale, zero point) and
  dequantises the output.

Conversion goes through the public ``tf.lite.TFLiteConverter.from_keras_model``. Only
``TFLITE_BUILTINS`` / ``TFLITE_BUILTINS_INT8`` ops are allowed (no Flex), so the files run
on any LiteRT build. The exported classifier ends in a softmax: outputs are probabilities.
Every file is loaded back with ``ai_edge_litert`` and checked: input/output shape and
type (a file that fails those is never written), and top-1 agreement with the Keras model
on check images, which must reach the variant's bar (:func:`scaled_bar`:
``export.min_agreement_float`` for float variants, ``min_agreement_quantized`` for
quantised ones, lowered by half the share of near-ties, on which any rounding may flip the
top-1 class). A file below its bar is not thrown away with the training behind it: it is
written apart, under ``below_bar/``, and marked ``"passed": false`` in the model card.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from . import artifacts, quality
from .config import ExportConfig, ExportVariant, choices
from .errors import ExportError, first_line
from .generator_mixture import every_generator_on_every_sample, generator_classes
from .litert import TFLiteClassifier
from .run_folder import below_bar


def self_dir(path: Path, passed: bool) -> Path:
    """The folder the model card lives in, for a file written there or kept apart."""
    return Path(path).parent if passed else Path(path).parent.parent

__all__ = ["Variant", "VARIANTS", "agreement_bar", "scaled_bar", "near_tie_share", "convert", "probability_model", "floored_logits", "export_classifier",
           "export_generator", "ModelCard", "write_labels", "ExportedFile"]


@dataclass(frozen=True)
class Variant:
    """Converter settings of one export variant."""

    optimize: bool = False  # tf.lite.Optimize.DEFAULT: int8 weights unless float16_weights
    float16_weights: bool = False
    calibrated: bool = False  # full-integer: int8 activations, calibrated on representative images
    integer_io: bool = False  # int8 input and output tensors
    fixed_batch: bool = False  # batch of one: constant shapes, no SHAPE/PACK ops (microcontrollers)

    @property
    def quantized(self) -> bool:
        """Whether the variant holds int8 values (and so gets the quantised agreement bar)."""
        return self.optimize and not self.float16_weights


VARIANTS: dict[str, Variant] = {
    "float32": Variant(),
    "float16": Variant(optimize=True, float16_weights=True),
    "dynamic": Variant(optimize=True),
    "int8": Variant(optimize=True, calibrated=True),
    "int8_io": Variant(optimize=True, calibrated=True, integer_io=True, fixed_batch=True),
}
assert tuple(VARIANTS) == choices(ExportVariant), "export.VARIANTS and config.ExportVariant disagree"


def agreement_bar(variant: str, config: ExportConfig) -> float:
    """The configured top-1 agreement with Keras for a file of ``variant`` (before
    :func:`scaled_bar`)."""
    return config.min_agreement_quantized if VARIANTS[variant].quantized else config.min_agreement_float


#: top-1 minus top-2 probability below which a prediction counts as a near-tie
NEAR_TIE_MARGIN = 0.05


def near_tie_share(probabilities: np.ndarray) -> float:
    """Share of images whose two most probable classes are within :data:`NEAR_TIE_MARGIN`."""
    top2 = np.sort(np.asarray(probabilities), axis=-1)[:, -2:]
    return float(np.mean(top2[:, 1] - top2[:, 0] < NEAR_TIE_MARGIN))


def scaled_bar(bar: float, probabilities: np.ndarray) -> float:
    """``bar - near_tie_share / 2``: a near-tie flips under rounding noise larger than its gap
    about half the time, so a student unsure on many images is not held to the bar of a
    confident one; a confident student (no near-ties) keeps the configured bar."""
    return max(0.0, bar - near_tie_share(probabilities) / 2)


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
    bar: float = 0.0  # the agreement it had to reach (scaled_bar)
    passed: bool = True  # False: below the bar, written apart (below_bar/)
    logit_floor: float | None = None  # full-integer files: logits below it clamped to it (floored_logits)


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


#: a logit this far below the top one gives an int8 probability of 0: exp(-ln 512) is half a step of 1/256
LOGIT_FLOOR_MARGIN = float(np.log(512.0))


def floored_logits(classifier: keras.Model, calibration_images: np.ndarray) -> tuple[keras.Model, float | None]:
    """``(max(logits, floor) - floor, floor)`` with the max fused into the last ``Dense``
    layer, for full-integer files; ``(classifier, None)`` when it does not end in a linear ``Dense`` or
    when the floor would not narrow the logits' range.

    A full-integer file quantises the logits with one step over their calibrated range
    ``[min, max]``. A confident classifier's logits run far below zero for the classes it
    rules out (about -30 for a data-free Fashion-MNIST student, against a top logit of
    +25), so the step is coarse (0.2 logit) and near-ties flip their top-1 class. Logits
    more than ``ln 512`` below the top one give a probability under half an int8 step
    (1/256), exactly what they would give at that distance, so they need not be
    represented: ``floor = min over the calibration images of the top logit - ln 512``.
    ``relu(W x + b - floor)`` is the same ``Dense`` with a ReLU, which the converter
    fuses: the calibrated range starts at the floor and the step is finer, so fewer
    near-ties flip. The model returned gives ``max(logits, floor) - floor``: the softmax
    after it does not change under a constant shift, so the floor is not added back. The
    top-1 class changes only for an image whose every logit is below the floor; each file
    is checked against the classifier as it was.
    """
    last = classifier.layers[-1] if classifier.layers else None
    if (not isinstance(last, keras.layers.Dense) or last.activation is not keras.activations.linear
            or not last.use_bias or len(classifier.outputs) != 1 or classifier.outputs[0] is not last.output):
        return classifier, None
    logits = quality.batched(classifier, calibration_images, 256)
    floor = float(np.min(np.max(logits, axis=-1))) - LOGIT_FLOOR_MARGIN
    if floor <= float(np.min(logits)):
        return classifier, None
    kernel, bias = last.get_weights()
    features = keras.Model(classifier.inputs, last.input, name=f"{classifier.name}_features")
    floored_dense = keras.layers.Dense(kernel.shape[-1], activation="relu", name=f"{last.name}_above_floor")
    inputs = keras.Input(shape=classifier.inputs[0].shape[1:], name="image")
    shifted = floored_dense(features(inputs))
    floored_dense.set_weights([kernel, bias - floor])
    return keras.Model(inputs, shifted, name=classifier.name), floor


def with_batch_of_one(model: keras.Model) -> keras.Model:
    """``model`` behind inputs of batch size 1 (same names and dtypes)."""
    inputs = [keras.Input(shape=t.shape[1:], batch_size=1, dtype=t.dtype, name=t.name.split(":")[0])
              for t in model.inputs]
    return keras.Model(inputs, model(inputs if len(inputs) > 1 else inputs[0]), name=model.name)


def convert(model: keras.Model, variant: str, calibration_images: np.ndarray | None = None) -> bytes:
    """Convert ``model`` (float image input in [0, 1], or the generator's (noise, label)) to a
    TFLite flatbuffer of ``variant``; calibrated variants need ``calibration_images``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    settings = VARIANTS[variant]
    if settings.fixed_batch:
        model = with_batch_of_one(model)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if settings.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if settings.float16_weights:
        converter.target_spec.supported_types = [tf.float16]
    if settings.calibrated:
        if calibration_images is None or len(calibration_images) == 0:
            raise ValueError(f"{variant} export needs calibration images")
        images = np.asarray(calibration_images, np.float32)

        def representative_dataset():
            for image in images:
                yield [image[None]]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if settings.integer_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with quiet_converter(), every_generator_on_every_sample():
            return drop_internal_names(converter.convert())
    except Exception as err:  # noqa: BLE001 - ConverterError and whatever MLIR raises
        raise ExportError(f"{variant}: the TFLite converter refused {model.name} ({first_line(err)[:300]})") from None


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
    """Silence the converter's C++ prints, its Python prints ("Saved artifact at ...") and
    warnings (they are not for the user).

    The file descriptors 1 and 2 are pointed at /dev/null for the duration, and so are
    ``sys.stdout``/``sys.stderr`` (in a notebook they are not the descriptors); errors still
    propagate as exceptions.
    """
    import logging

    sys.stdout.flush()
    sys.stderr.flush()
    loggers = [tf.get_logger(), logging.getLogger("absl")]  # "Assets written to ...", through their own handlers
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def check_tflite(content: bytes, keras_model: keras.Model, check_images: np.ndarray, keras_probs: np.ndarray,
                 variant: str) -> tuple[float, TFLiteClassifier]:
    """Load ``content`` with LiteRT and compare its top-1 predictions on ``check_images``
    with ``keras_probs``, those of ``keras_model``: (agreement, runner).

    Raises :class:`ExportError` when the file does not load or its shapes are wrong.
    """
    try:
        runner = TFLiteClassifier(model_content=content)
    except (RuntimeError, ValueError) as err:
        raise ExportError(f"{variant}: the converted file does not load in LiteRT ({err})") from None
    expected_in = tuple(keras_model.inputs[0].shape[1:])
    if runner.input_shape != expected_in:
        raise ExportError(f"{variant}: input shape {tuple(int(d) for d in runner.input_shape)}, expected "
                          f"{tuple(int(d) for d in expected_in)}")
    try:
        tflite_probs = runner.predict(check_images)
    except RuntimeError as err:
        raise ExportError(f"{variant}: LiteRT cannot run the converted file ({str(err).strip().splitlines()[0]})"
                          f"{degenerate_range_advice(runner)}") from None
    if tflite_probs.shape != keras_probs.shape:
        raise ExportError(f"{variant}: output shape {tflite_probs.shape[1:]}, expected {keras_probs.shape[1:]}")
    agreement = float(np.mean(np.argmax(tflite_probs, -1) == np.argmax(keras_probs, -1)))
    return agreement, runner


DEGENERATE_SCALE = 1e-6  # an activation's int8 step below this: its calibrated range is about zero


def degenerate_range_advice(runner: TFLiteClassifier) -> str:
    """Why a full-integer file may not run, when it is so: activations whose calibrated range
    is about zero. A layer whose outputs were the same on every calibration sample (a dead
    ReLU layer of a student that has not learned) gets an int8 step of about zero, and the
    rescaling from its input's step to the next layer's output step is then beyond what
    XNNPACK accepts (it refuses the graph)."""
    scales = [float(np.min(detail["quantization_parameters"]["scales"]))
              for detail in runner.interpreter.get_tensor_details()
              if detail["dtype"] in (np.int8, np.uint8) and len(detail["shape"]) and detail["shape"][0] == 1
              and len(detail["quantization_parameters"]["scales"])]
    degenerate = [scale for scale in scales if scale < DEGENERATE_SCALE]
    if not degenerate:
        return ""
    return (f"; {len(degenerate)} of its activations have a calibrated range of about zero (int8 step "
            f"{min(degenerate):.1e}): a layer gave the same output on every calibration sample, as a student "
            f"that has not learned does (a dead ReLU layer); train the student longer (distill.epochs) or leave "
            f"the full-integer files out (--set export.variants=float32,float16,dynamic)")


def below_bar_advice(variant: str) -> str:
    """What to try when a file of ``variant`` misses its bar."""
    return ((" try more calibration samples (export.calibration_samples);" if VARIANTS[variant].calibrated else "")
            + " a student that is unsure on many images loses more to quantisation (train it longer), or accept "
              "the loss with export.min_agreement_float / export.min_agreement_quantized")


def export_classifier(classifier: keras.Model, destination: Callable[[str], Path], calibration_images: np.ndarray,
                      check_images: np.ndarray, variants: Sequence[str], bars: dict,
                      progress=print, metadata: Callable[[str, bytes], bytes] | None = None) -> list[ExportedFile]:
    """Convert, check and write each variant; ``bars`` maps a variant to its configured
    agreement (:func:`agreement_bar`), scaled here by the student's near-ties (:func:`scaled_bar`).

    A file that reaches its bar goes to ``destination(variant)``; one below it to
    ``below_bar/`` beside it, marked ``passed=False``. Every file is converted and checked
    before any is written (a conversion that fails leaves nothing behind). ``metadata(variant,
    content)``, when given, returns the file with its metadata (:func:`with_metadata`),
    which is what is checked and written.
    """
    model = probability_model(classifier)
    keras_probs = quality.batched(model, check_images, 256)
    ties = near_tie_share(keras_probs)
    floored, floor = (None, None)
    if any(VARIANTS[variant].calibrated for variant in variants):
        floored, floor = floored_logits(classifier, calibration_images)
        floored = probability_model(floored)
    converted = []
    for variant in variants:
        calibrated = VARIANTS[variant].calibrated
        content = convert(floored if calibrated else model, variant, calibration_images)
        if metadata is not None:
            content = metadata(variant, content)
        agreement, runner = check_tflite(content, model, check_images, keras_probs, variant)
        bar = scaled_bar(bars[variant], keras_probs)
        variant_floor = floor if calibrated else None
        converted.append((variant, content, agreement, runner, bar, variant_floor))
        lowered = (f", bar {bar:.2%} ({bars[variant]:.1%} less half the {ties:.1%} near-ties)"
                   if bar < bars[variant] else "")
        verdict = lowered if agreement >= bar else (
            f" -- BELOW its bar of {bar:.2%} ({bars[variant]:.1%} less half the {ties:.1%} near-ties); "
            f"kept apart in below_bar/;{below_bar_advice(variant)}")
        floor_note = "" if variant_floor is None else f", logits floored at {variant_floor:.1f}"
        progress(f"  {destination(variant).name}: {len(content):,} bytes, agreement with Keras {agreement:.2%}, "
                 f"input {np.dtype(runner.input_dtype).name}, output {np.dtype(runner.output_dtype).name}"
                 f"{floor_note}{verdict}")
    results = []
    for variant, content, agreement, runner, bar, variant_floor in converted:
        passed = agreement >= bar
        target = destination(variant)
        if not passed:
            target = below_bar(target)
        elif below_bar(target).exists():  # from an earlier export of this run
            below_bar(target).unlink()
        path = artifacts.write_bytes(target, content)
        results.append(ExportedFile(variant, path, len(content), agreement,
                                    np.dtype(runner.input_dtype).name, np.dtype(runner.output_dtype).name,
                                    quantization_of(runner.input_detail), quantization_of(runner.output_detail),
                                    bar, passed, variant_floor))
    return results


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_generator(content: bytes, generator: keras.Model, variant: str, samples: int = 64) -> float:
    """Load a generator file with LiteRT, compare its images with Keras; return the mean
    absolute pixel difference (raises :class:`ExportError` above 0.1 or on a bad shape)."""
    from ai_edge_litert.interpreter import Interpreter

    noise_dim = int(generator.inputs[0].shape[-1])
    num_classes = generator_classes(generator)
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


def export_generator(generator: keras.Model, destination: Callable[[str], Path], variants: Sequence[str],
                     progress=print) -> list[dict]:
    """The generator as TFLite, (noise float32 [N, d], class int32 [N]) -> images in [0, 1],
    written to ``destination(variant)`` for each variant, each checked against Keras.
    "The dataset in a file": sample it with any class to get training images."""
    converted = []
    for variant in variants:
        content = convert(generator, variant)
        difference = check_generator(content, generator, variant)
        converted.append((variant, content, difference))
        progress(f"  {destination(variant).name}: {len(content):,} bytes, mean |pixel - Keras| {difference:.4f}")
    files = []
    for variant, content, difference in converted:
        path = artifacts.write_bytes(destination(variant), content)
        files.append({"file": path.name, "variant": variant, "bytes": len(content), "sha256": sha256(path),
                      "mean_abs_difference_from_keras": difference})
    return files


def write_labels(path, class_names) -> Path:
    """``labels.txt``: one class name per line, in output index order."""
    return artifacts.write_text(path, "".join(f"{c}\n" for c in class_names))


def with_metadata(variant: str, content: bytes, class_names, teacher_input: dict, source: str,
                  frontend: dict | None = None) -> bytes:
    """``content`` with LiteRT metadata (:mod:`tfgan_compress.tflite_metadata`): labels,
    input normalisation and range, input and output descriptions."""
    from . import tflite_metadata

    shape = [1, *[int(d) for d in _input_shape(content)[1:]]]
    description = (f"student of tfgan-compress ({variant}), distilled from a teacher on generated samples of "
                   f"{source}; output: class probabilities, labels.txt order")
    built = tflite_metadata.build(f"student_{variant}", description, class_names, shape, teacher_input["scale"],
                                  teacher_input["offset"], frontend)
    return tflite_metadata.attach(content, built, "".join(f"{name}\n" for name in class_names))


def _input_shape(content: bytes) -> list:
    from ai_edge_litert.interpreter import Interpreter

    return list(Interpreter(model_content=content).get_input_details()[0]["shape"])


def frontend_card(settings: dict) -> dict:
    """The model card's ``frontend``: how to turn a recording into the models' input."""
    from .audio_frontend import FrontEnd

    frontend = FrontEnd(settings)
    return {"settings": dict(frontend.settings), "feature_shape": list(frontend.feature_shape),
            "samples_per_clip": frontend.clip_samples, "window_samples": frontend.window,
            "hop_samples": frontend.hop, "fft_length": frontend.fft_length,
            "log_floor": frontend.floor, "log_ceiling": frontend.ceiling,
            "steps": ["16-bit PCM / 32768, channels averaged",
                      "first clip_seconds, resampled to sample_rate (FFT, band-limited)",
                      "divided by its peak |sample| (a silent clip stays 0)",
                      "zero-padded at the end to samples_per_clip",
                      "frames of window_samples every hop_samples (no padding), periodic Hann window",
                      "magnitude of the rfft of fft_length points",
                      "times the HTK-mel triangle matrix of mel_bins from lower_hz to upper_hz "
                      "(tf.signal.linear_to_mel_weight_matrix)",
                      "feature = (ln max(mel, log_floor) - ln log_floor) / (ln log_ceiling - ln log_floor), "
                      "clipped to [0, 1]; shape (frames, mel_bins, 1)"],
            "reference": "audio_frontend.py (numpy; export/ in the repository), used by predict.py"}


class ModelCard:
    """``model_card.json``, what a device app needs: input layout and range, classes, files,
    quantisation, hashes. The only writer of that file: the export creates it
    (:meth:`write`), the evaluation adds each file's test figures (:meth:`add_test_figures`)."""

    TEST_KEYS = ("accuracy", "bits_per_example", "agreement_with_teacher", "latency_ms", "latency_p90_ms",
                 "throughput_images_per_s")

    def __init__(self, path):
        self.path = Path(path)

    @staticmethod
    def content(class_names, image_shape, exported: list[ExportedFile], teacher_input: dict,
                extra: dict | None = None) -> dict:
        """``teacher_input``: the teacher's input convention, which the student files share."""
        scale, offset = teacher_input["scale"], teacher_input["offset"]
        normalisation = (f"x = pixel / 255 * {scale:g} + {offset:g} for 8-bit images (grey or RGB as in training), as "
                         f"the teacher took them; ")
        if extra and "frontend" in extra:
            normalisation = (f"x = feature * {scale:g} + {offset:g}, feature: the log-mel map of the recording "
                             f"(see 'frontend'); ")
        return {
            "input": {"shape": [1, *image_shape], "layout": "NHWC", "dtype": "float32 (int8 for *_int8_io files)",
                      "convention": teacher_input["convention"], "range": [offset, scale + offset],
                      "scale": scale, "offset": offset,
                      "normalisation": normalisation + "int8 input: q = round(x / scale) + zero_point with the "
                                                       "file's own scale"},
            "output": {"shape": [1, len(class_names)], "meaning": "class probabilities (softmax), in labels.txt order",
                       "int8_output": "p = (q - zero_point) * scale"},
            "class_names": list(class_names),
            "files": [{"file": str(f.path.relative_to(self_dir(f.path, f.passed))), "variant": f.variant,
                       "bytes": f.bytes, "sha256": sha256(f.path),
                       "input_dtype": f.input_dtype, "output_dtype": f.output_dtype,
                       "input_quantization": f.input_quantization, "output_quantization": f.output_quantization,
                       "agreement_with_keras": f.agreement_with_keras, "agreement_bar": f.bar,
                       "passed": f.passed, "logit_floor": f.logit_floor} for f in exported],
            **(extra or {}),
        }

    def write(self, class_names, image_shape, exported: list[ExportedFile], teacher_input: dict,
              extra: dict | None = None) -> Path:
        return artifacts.write_json(self.path, self.content(class_names, image_shape, exported, teacher_input, extra))

    def read(self) -> dict:
        return json.loads(self.path.read_text())

    def below_bar(self) -> list[dict]:
        """The files that missed their agreement bar (written apart, under ``below_bar/``)."""
        return [entry for entry in self.read()["files"] if entry.get("passed") is False]

    def add_test_figures(self, rows: list[dict], test_split: dict) -> Path:
        """Each listed file's figures on the real test split (``rows`` as in ``report.json``)."""
        card = self.read()
        by_file = {Path(row["file"]).name: row for row in rows if row["format"] == "tflite"}
        for entry in card["files"]:
            row = by_file.get(Path(entry["file"]).name)
            if row is not None:
                entry["test"] = {key: row[key] for key in self.TEST_KEYS}
        card["test_split"] = test_split
        return artifacts.write_json(self.path, card)
