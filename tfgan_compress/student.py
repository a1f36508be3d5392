"""The student network: the preset's (``distill.network``), the user's architecture
(``--student FILE``, trained from scratch), or the widest of the preset's family whose
int8 TFLite file fits a budget (``--student-budget-kb N``).

The family: the preset's network with every convolution's filters and every dense layer's
units multiplied by one width factor ``w`` (rounded, at least 1), ``w`` on the grid
``2^(k/4)`` from 1/8 to 8; the int8 file grows with ``w``, so a bisection over the grid
finds the widest that fits, each candidate measured by converting it (int8 weights and
activations, as the exported ``student_int8.tflite``).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from . import export, networks
from .config import ClassifierConfig
from .data import ImageSpec
from .errors import UsageError

KB = 1024  # bytes: flash budgets are counted in binary kilobytes
WIDTHS = tuple(2.0 ** (k / 4) for k in range(-12, 13))


def scaled(config: ClassifierConfig, width: float) -> ClassifierConfig:
    """``config`` with filters and units multiplied by ``width`` (rounded, at least 1)."""
    def grow(values):
        return tuple(max(1, round(v * width)) for v in values)

    return dataclasses.replace(config, conv_filters=grow(config.conv_filters), dense_units=grow(config.dense_units))


def int8_bytes(image_shape, num_classes: int, config: ClassifierConfig, **described) -> int:
    """Size of the full-integer int8 TFLite file of a classifier of ``config``, as the export
    writes it: with its metadata (``described``: ``class_names``, ``source`` and ``frontend``
    of the data, which the metadata holds; class numbers when not given)."""
    model = networks.build_classifier(image_shape, num_classes, config, name="student")
    rng = np.random.default_rng(0)
    # weights as after training: no two constants alike (the converter stores equal ones, such
    # as freshly zeroed biases, once, which would understate the size of the trained file)
    model.set_weights([rng.normal(0.0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()])
    calibration = rng.random((8, *image_shape)).astype(np.float32)
    content = export.convert(export.probability_model(model), "int8", calibration)
    return len(export.with_metadata("int8", content, described.get("class_names") or
                                    [str(c) for c in range(num_classes)], {"scale": 1.0, "offset": 0.0},
                                    described.get("source", ""), described.get("frontend")))


def check_budget_reachable(image_shape, num_classes: int, base: ClassifierConfig, budget_bytes: int,
                           **described) -> None:
    """Raise :class:`UsageError` when even the narrowest family member's int8 file is over budget."""
    narrowest = int8_bytes(image_shape, num_classes, scaled(base, WIDTHS[0]), **described)
    if narrowest > budget_bytes:
        raise UsageError(f"--student-budget-kb: the narrowest student of the preset's family (width x{WIDTHS[0]:g}) "
                         f"has an int8 file of {narrowest:,} bytes, over the budget of {budget_bytes:,} bytes")


def widest_within_budget(image_shape, num_classes: int, base: ClassifierConfig, budget_bytes: int,
                         progress=print, **described) -> tuple[ClassifierConfig, float, int]:
    """(network, width factor, int8 bytes) of the widest family member that fits."""
    sizes = {}

    def size(index: int) -> int:
        if index not in sizes:
            sizes[index] = int8_bytes(image_shape, num_classes, scaled(base, WIDTHS[index]), **described)
        return sizes[index]

    check_budget_reachable(image_shape, num_classes, base, budget_bytes, **described)
    low, high = 0, len(WIDTHS) - 1  # size(low) fits; find the last index that fits
    if size(high) <= budget_bytes:
        low = high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if size(middle) <= budget_bytes else (low, middle)
    progress(f"  student budget {budget_bytes:,} bytes: width x{WIDTHS[low]:.3g} of the preset's network "
             f"({len(sizes)} candidates measured), int8 file {size(low):,} bytes")
    return scaled(base, WIDTHS[low]), WIDTHS[low], size(low)


def user_architecture(model: keras.Model, image_shape, num_classes: int, where) -> keras.Model:
    """The user's student architecture with fresh weights, checked like the teacher; one taking
    grey images as ``(H, W)`` or ``(H, W, 3)`` gets the layer that makes that layout in front
    and takes ``(H, W, 1)``, as every student file of a run does
    (:func:`teacher.fed_grey_images`); one saved under mixed precision computes in float32
    (:func:`teacher.in_float32`)."""
    from .teacher import check_classifier, fed_grey_images, in_float32

    check_classifier(model, ImageSpec(tuple(image_shape), tuple(str(c) for c in range(num_classes))), where)
    model = in_float32(model, where)[0]  # trained and exported in float32, whatever policy it was saved with
    try:
        fresh = keras.models.clone_model(model)  # same layers, new initial weights
    except Exception:  # noqa: BLE001 - subclassed models without clone support: rebuild from config
        fresh = model.__class__.from_config(model.get_config())
    fresh = fed_grey_images(fresh, image_shape)
    fresh(np.zeros((1, *image_shape), np.float32))
    return fresh


def layer_widths(model: keras.Model) -> dict:
    """``{"conv_filters": [...], "dense_units": [...]}`` of a model, nested models included."""
    widths = {"conv_filters": [], "dense_units": []}
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.Conv2D):
            widths["conv_filters"].append(int(layer.filters))
        elif isinstance(layer, keras.layers.Dense):
            widths["dense_units"].append(int(layer.units))
        elif hasattr(layer, "layers"):
            for key, values in layer_widths(layer).items():
                widths[key] += values
    return widths
