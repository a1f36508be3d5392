"""Wall-clock latency of a call: the one timing loop behind every latency figure."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np


def latency_ms(call: Callable[[], object], runs: int, warmup: int) -> dict:
    """``call()`` ``warmup`` times untimed, then ``runs`` times timed one by one:
    ``{"median": ms, "p90": ms}``."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median": statistics.median(times), "p90": float(np.percentile(times, 90))}


def environment() -> dict:
    """What latency and speed figures depend on: versions, CPU model and core count, date."""
    import datetime
    import os
    import platform
    from importlib import metadata

    def version(package: str):
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"tfgan_compress": version("tfgan_compress"), "tensorflow": version("tensorflow"),
            "keras": version("keras"), "ai_edge_litert": version("ai-edge-litert"), "python": platform.python_version(),
            "cpu": cpu, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "latency_method": "median and 90th percentile of single-image invocations timed in Python "
                              "(time.perf_counter around each call), 1 thread, after warm-up runs"}


ONEDNN_MIN_PIXELS = 28 * 28  # oneDNN's kernels pay off from MNIST-sized images up (measured below)


def prefer_onednn_kernels(image_shape=None) -> bool:
    """Ask for TensorFlow's oneDNN CPU kernels (``TF_ENABLE_ONEDNN_OPTS=1``) for images of
    28x28 pixels and more; returns whether the setting was made here.

    TensorFlow turns them on by itself only on CPUs with AVX-512 (VNNI and newer); on an
    AVX2-only CPU (2-core AMD EPYC, matmul peak 134 GFLOP/s) its own kernels were 1.3-2.2x
    slower: the data-free iteration on MNIST (LeNet-5 -> LeNet-5-half) took 316 ms without
    and 140 ms with oneDNN, ResNet-9 training 110 against 171 images/s, the residual GAN
    55 against 75 images/s. On 8x8 images (the ``digits`` preset) oneDNN was the slower
    (the README command 112 s against 155 s), so small images keep TensorFlow's default;
    ``image_shape`` None counts as large. Does nothing once TensorFlow is imported (the
    setting is read when it loads) or when the user set the variable.
    """
    import os
    import sys

    if "tensorflow" in sys.modules or "TF_ENABLE_ONEDNN_OPTS" in os.environ:
        return False
    if image_shape is not None and int(image_shape[0]) * int(image_shape[1]) < ONEDNN_MIN_PIXELS:
        return False
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return True


def use_all_cores_per_op() -> None:
    """One TensorFlow op at a time, each on every core this process may use.

    TensorFlow's defaults here ran some graphs on one core: on the 2-core machine the
    residual GAN's step with DiffAugment took 125 real images/s under the defaults and
    about 240 with this setting, while ResNet-9 training kept its speed (585 vs 566
    images/s). The data-free iteration on MNIST (generator, teacher and student steps, whose
    small ops can run side by side) went the other way: 22-23.5 s a round of 200 with this
    setting against 16-20 s under the defaults (alternating runs, same machine); on 32x32
    colour images (ResNet-9 teacher, the ``color`` preset) 52-55 s against 50.5-51 s for 30
    iterations. So the CLI leaves the defaults to data-free runs. Must run before TensorFlow executes its first op;
    later it does nothing.
    """
    import os

    import tensorflow as tf

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cores)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised (a notebook, a test): keep its pools
        pass


def forward_flops(model) -> int:
    """Floating-point operations (2 per multiply-add) of one image through ``model``'s
    convolutions and dense layers (nested models included); the rest is negligible."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
            continue
        inner = getattr(layer, "layer", layer)  # SpectralNormalization wraps the layer it normalises
        if isinstance(inner, keras.layers.DepthwiseConv2D):
            h, w, c = layer.output.shape[1:]
            total += 2 * h * w * c * inner.kernel_size[0] * inner.kernel_size[1]
        elif isinstance(inner, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            kh, kw, c_in, c_out = inner.kernel.shape
            h, w = layer.output.shape[1:3]
            if isinstance(inner, keras.layers.Conv2DTranspose):  # each input pixel meets the whole kernel
                h, w = layer.input.shape[1:3]
                c_in, c_out = c_out, c_in
            total += 2 * h * w * kh * kw * c_in * c_out
        elif isinstance(inner, keras.layers.Dense):
            total += 2 * int(inner.kernel.shape[0]) * int(inner.kernel.shape[1])
    return int(total)


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Measured float32 matrix-multiply rate of this machine (best of ``repeats``), GFLOP/s."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda: tf.matmul(a, b))
    product().numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9
