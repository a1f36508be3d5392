"""Running ``.tflite`` classifiers with the LiteRT interpreter (``ai_edge_litert``).

``tf.lite.Interpreter`` is deprecated; this is the runtime phones and boards use. The
wrapper takes float images in [0, 1] and returns float probabilities whatever the file's
input/output types are, (de)quantising int8/uint8 tensors with the scale and zero point
stored in the file: ``q = round(x / scale) + zero_point``, ``x = (q - zero_point) * scale``.

By default LiteRT hands the ops it can to its XNNPACK delegate, as it does on a phone's CPU;
XNNPACK requantises int8 results in its own way, so an int8 file's outputs may differ from
the built-in kernels' by one step here and there. ``builtin_kernels=True`` runs the built-in
kernels only, whose arithmetic TFLite-Micro's kernels follow (measured: the same class on
every test example; a fully connected layer was seen one output step apart on rare inputs).
"""

from __future__ import annotations

import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from . import timing


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float -> the tensor's integer type with its (scale, zero_point); identity for float tensors."""
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    """The tensor's integer type -> float32; identity for float tensors."""
    if not np.issubdtype(detail["dtype"], np.integer):
        return q.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


class TFLiteClassifier:
    """A ``.tflite`` image classifier: ``predict(images) -> probabilities``."""

    def __init__(self, model_path=None, model_content: bytes | None = None, num_threads: int = 1,
                 builtin_kernels: bool = False):
        kwargs = {"model_path": str(model_path)} if model_path is not None else {"model_content": model_content}
        if builtin_kernels:
            kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.interpreter = Interpreter(num_threads=num_threads, **kwargs)
        self.interpreter.allocate_tensors()
        self._batch = 1
        self.input_detail = self.interpreter.get_input_details()[0]
        self.output_detail = self.interpreter.get_output_details()[0]
        # Files converted with a fixed batch (microcontroller files) run one image at a time.
        self.fixed_batch = int(self.input_detail["shape_signature"][0]) != -1

    @property
    def input_shape(self) -> tuple:
        return tuple(int(d) for d in self.input_detail["shape"][1:])

    @property
    def input_dtype(self):
        return self.input_detail["dtype"]

    @property
    def output_dtype(self):
        return self.output_detail["dtype"]

    def _set_batch(self, n: int) -> None:
        if n != self._batch:
            self.interpreter.resize_tensor_input(self.input_detail["index"], [n, *self.input_shape])
            self.interpreter.allocate_tensors()
            self.input_detail = self.interpreter.get_input_details()[0]
            self.output_detail = self.interpreter.get_output_details()[0]
            self._batch = n

    def predict_raw(self, inputs: np.ndarray) -> np.ndarray:
        """Invoke on already-typed inputs; return the raw output tensor."""
        self._set_batch(len(inputs))
        self.interpreter.set_tensor(self.input_detail["index"], inputs)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_detail["index"])

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Float images in [0, 1] (N, H, W, C) -> float32 output (N, classes)."""
        if self.fixed_batch:
            batch_size = 1
        outputs = []
        for start in range(0, len(images), batch_size):
            chunk = quantize(np.asarray(images[start:start + batch_size], np.float32), self.input_detail)
            outputs.append(dequantize(self.predict_raw(chunk), self.output_detail))
        return np.concatenate(outputs)

    def throughput(self, images: np.ndarray, batch_size: int = 64, max_images: int = 2048) -> float:
        """Images per second through ``predict`` in batches of ``batch_size`` (quantisation included)."""
        images = np.asarray(images[:max_images], np.float32)
        self.predict(images[:batch_size], batch_size)  # warm-up and allocation
        start = time.perf_counter()
        self.predict(images, batch_size)
        return len(images) / (time.perf_counter() - start)

    def latency_ms(self, image: np.ndarray, runs: int, warmup: int) -> dict:
        """Single-image latency over ``runs`` invocations: median, p90 (milliseconds)."""
        self._set_batch(1)
        typed = quantize(np.asarray(image[None], np.float32), self.input_detail)
        self.interpreter.set_tensor(self.input_detail["index"], typed)
        return timing.latency_ms(self.interpreter.invoke, runs, warmup)
