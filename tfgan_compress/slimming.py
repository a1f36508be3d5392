"""A student's first weights from the teacher's: its largest filters and units.

When the student is the teacher's architecture made narrower (LeNet-5 -> LeNet-5-half: the
same chain of convolutions, pooling and dense layers, each with as many units as the
teacher's or fewer, the logits the same), every layer of the student can start from the
teacher's: of each layer, keep the ``k`` output units (convolution filters, dense units)
whose kernels, restricted to the input units kept in the layer before, have the largest L1
norm ``sum |w|``, with their biases. This is L1-norm filter pruning (Li et al., 2017,
"Pruning Filters for Efficient ConvNets") used as an initialisation; the logits layer keeps
every class, in order. Across a ``Flatten`` the rows kept are those of the channels kept, at
every position (channels last: row ``p * C + c``).

It needs the teacher's weights only, no data: in data-free mode the student then starts from
features the teacher learned on the real images, which generator samples alone do not pin
down (MNIST, LeNet-5 -> LeNet-5-half: see benchmarks/README.md, "Third round", the
paragraph "The student started from the teacher"). :func:`slimming_mismatch` says why a pair does not qualify (a BatchNormalization
or residual teacher, a wrapper, a wider or differently shaped student), and
:func:`start_from_teacher` copies the weights.
"""

from __future__ import annotations

from typing import Optional

import keras
import numpy as np

WEIGHTED = (keras.layers.Conv2D, keras.layers.Dense)
#: layers without weights the two chains must share, config and all
SHAPE_ONLY = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.Flatten, keras.layers.ReLU,
              keras.layers.Activation, keras.layers.Softmax)
IGNORED = (keras.layers.InputLayer, keras.layers.Dropout)  # identity at inference
SAME_CONFIG = {keras.layers.Conv2D: ("kernel_size", "strides", "padding", "dilation_rate", "groups", "use_bias",
                                     "activation", "data_format"),
               keras.layers.Dense: ("use_bias", "activation")}


class Chain:
    """A model's computing layers, in order, when it is one plain chain (models nested in it
    seen through), and the input affine ``x * scale + offset`` of a leading ``Rescaling`` (as
    in a run's teacher, which takes [0, 1] and feeds the user's model its own convention)."""

    def __init__(self, model: keras.Model):
        self.scale, self.offset, self.layers = 1.0, 0.0, []
        self._add(model)
        while self.layers and (type(layer := self.layers[-1]) is keras.layers.Softmax or
                               (type(layer) is keras.layers.Activation and _is_softmax(layer))):
            self.layers.pop()  # a softmax after the logits: the student gives the logits

    def _add(self, model) -> None:
        try:
            inputs, outputs = len(model.inputs), len(model.outputs)
        except (AttributeError, TypeError, ValueError):  # a subclassed or unbuilt model: no graph to read
            raise ValueError(f"{model.name} is not a functional or sequential model") from None
        if inputs != 1 or outputs != 1:
            raise ValueError(f"{model.name} has {inputs} inputs and {outputs} outputs")
        for layer in model.layers:
            if isinstance(layer, IGNORED):
                continue
            if len(getattr(layer, "_inbound_nodes", [])) != 1:
                raise ValueError(f"{model.name} uses its layer {layer.name} more than once")
            if isinstance(layer, keras.Model):
                self._add(layer)
            elif type(layer) is keras.layers.Rescaling and not self.layers and self._is_scalar(layer):
                self.scale, self.offset = self.scale * float(layer.scale), self.offset * float(layer.scale) + float(
                    layer.offset)
            elif type(layer) in WEIGHTED or type(layer) in SHAPE_ONLY:
                self.layers.append(layer)
            else:
                raise ValueError(f"{model.name} has a {type(layer).__name__} layer ({layer.name})")

    @staticmethod
    def _is_scalar(layer) -> bool:
        return np.ndim(layer.scale) == 0 and np.ndim(layer.offset) == 0 and float(layer.scale) > 0

    @property
    def affine(self) -> bool:
        return (self.scale, self.offset) != (1.0, 0.0)

    @property
    def weighted(self) -> list[int]:
        """Indices in :attr:`layers` of the convolution and dense layers."""
        return [index for index, layer in enumerate(self.layers) if type(layer) in WEIGHTED]


class NotNarrower(ValueError):
    """The student is not the teacher made narrower; the message says why."""


def _shape_config(layer) -> dict:
    """What a layer without weights computes: its config less name, dtype and trainable."""
    return {key: value for key, value in layer.get_config().items() if key not in ("name", "dtype", "trainable")}


def _is_softmax(layer) -> bool:
    return layer.get_config().get("activation") == "softmax"


def _pair_mismatch(teacher_layer, student_layer, last: bool) -> Optional[str]:
    kind = type(teacher_layer)
    if type(student_layer) is not kind:
        return (f"the teacher's {teacher_layer.name} is a {kind.__name__}, the student's {student_layer.name} a "
                f"{type(student_layer).__name__}")
    if kind not in WEIGHTED:
        if _shape_config(teacher_layer) != _shape_config(student_layer):
            return f"the teacher's {teacher_layer.name} and the student's {student_layer.name} differ"
        return None
    teacher_config, student_config = teacher_layer.get_config(), student_layer.get_config()
    for key in SAME_CONFIG[kind]:
        if key == "activation" and last and _is_softmax(teacher_layer) and student_config[key] == "linear":
            continue  # a softmax teacher: the student's logits are the teacher's before its softmax
        if teacher_config.get(key) != student_config.get(key):
            return (f"{key} of the teacher's {teacher_layer.name} ({teacher_config.get(key)}) is not the student's "
                    f"({student_config.get(key)})")
    teacher_units, student_units = teacher_layer.kernel.shape[-1], student_layer.kernel.shape[-1]
    if student_units > teacher_units or (last and student_units != teacher_units):
        return (f"the student's {student_layer.name} has {student_units} units, the teacher's {teacher_layer.name} "
                f"{teacher_units}")
    return None


def _narrower_chains(teacher: keras.Model, student: keras.Model) -> tuple[Chain, Chain]:
    """The two chains, layer for layer, when ``student`` is ``teacher`` made narrower; else
    :class:`NotNarrower`."""
    try:
        teacher_chain, student_chain = Chain(teacher), Chain(student)
    except ValueError as err:
        raise NotNarrower(str(err)) from None
    teacher_layers, student_layers = teacher_chain.layers, student_chain.layers
    if student_chain.affine:
        raise NotNarrower("the student rescales its input")
    if tuple(teacher.inputs[0].shape[1:]) != tuple(student.inputs[0].shape[1:]):
        raise NotNarrower(f"the teacher takes {tuple(teacher.inputs[0].shape[1:])}, "
                          f"the student {tuple(student.inputs[0].shape[1:])}")
    if len(teacher_layers) != len(student_layers):
        raise NotNarrower(f"the teacher has {len(teacher_layers)} layers, the student {len(student_layers)}")
    weighted = teacher_chain.weighted
    if not weighted:
        raise NotNarrower("the teacher has no convolution or dense layer")
    for index, (teacher_layer, student_layer) in enumerate(zip(teacher_layers, student_layers)):
        reason = _pair_mismatch(teacher_layer, student_layer, last=index == weighted[-1])
        if reason:
            raise NotNarrower(reason)
    if weighted[-1] != len(teacher_layers) - 1:
        raise NotNarrower(f"the teacher's {teacher_layers[-1].name} follows its logits")
    first = teacher_layers[weighted[0]]
    if teacher_chain.offset and not first.use_bias:
        raise NotNarrower(f"the teacher's input offset cannot be folded into {first.name}, which has no bias")
    if any(type(layer) not in (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.Flatten)
           for layer in teacher_layers[:weighted[0]]) and teacher_chain.affine:
        raise NotNarrower("the teacher's input rescaling comes before a layer it cannot be folded through")
    for teacher_layer, student_layer in zip(teacher_layers, student_layers):
        if isinstance(teacher_layer, keras.layers.Flatten):  # the same positions, fewer channels
            teacher_shape, student_shape = teacher_layer.input.shape[1:-1], student_layer.input.shape[1:-1]
            if tuple(teacher_shape) != tuple(student_shape):
                raise NotNarrower(f"the feature maps before {teacher_layer.name} differ ({teacher_shape} against "
                                  f"{student_shape})")
    return teacher_chain, student_chain


def slimming_mismatch(teacher: keras.Model, student: keras.Model) -> Optional[str]:
    """Why ``student`` is not ``teacher`` made narrower (a phrase), or None when it is."""
    try:
        _narrower_chains(teacher, student)
    except NotNarrower as err:
        return str(err)
    return None


def largest_units(kernel: np.ndarray, count: int) -> np.ndarray:
    """Indices, ascending, of the ``count`` output units of ``kernel`` (last axis) of largest L1 norm."""
    norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    return np.sort(np.argsort(-norms, kind="stable")[:count])


def start_from_teacher(student: keras.Model, teacher: keras.Model) -> list[tuple[str, int, int]]:
    """Set every weight of ``student`` from ``teacher``'s largest units (see the module's
    docstring); returns ``(layer, units kept, teacher's units)`` per weighted layer.
    :class:`NotNarrower` (a ValueError), with the reason, when the pair does not qualify."""
    return _copy_largest_units(*_narrower_chains(teacher, student))


def _copy_largest_units(teacher_chain: Chain, student_chain: Chain) -> list[tuple[str, int, int]]:
    kept, channels, summary = None, None, []  # teacher units kept in the last weighted layer, and how many it had
    folded, last = False, teacher_chain.weighted[-1]
    for index, (teacher_layer, student_layer) in enumerate(zip(teacher_chain.layers, student_chain.layers)):
        if isinstance(teacher_layer, keras.layers.Flatten) and kept is not None:
            positions = int(np.prod(teacher_layer.input.shape[1:-1]))
            kept = (np.arange(positions)[:, None] * channels + kept[None, :]).reshape(-1)
        if type(teacher_layer) not in WEIGHTED:
            continue
        kernel = np.asarray(teacher_layer.kernel.numpy(), dtype=np.float64)
        bias = np.asarray(teacher_layer.bias.numpy(), dtype=np.float64) if teacher_layer.use_bias else None
        if not folded:  # w . (x * scale + offset) + b = (w * scale) . x + (b + offset * sum w)
            if teacher_chain.offset:
                bias = bias + teacher_chain.offset * kernel.reshape(-1, kernel.shape[-1]).sum(axis=0)
            kernel, folded = kernel * teacher_chain.scale, True
        if kept is not None:
            kernel = kernel[..., kept, :]
        units = int(student_layer.kernel.shape[-1])
        out = np.arange(units) if index == last else largest_units(kernel, units)
        student_layer.kernel.assign(kernel[..., out].astype(student_layer.kernel.dtype))
        if student_layer.use_bias:
            student_layer.bias.assign(bias[out].astype(student_layer.bias.dtype))
        summary.append((student_layer.name, units, int(kernel.shape[-1])))
        kept, channels = out, int(kernel.shape[-1])
    return summary


def start_student(student: keras.Model, teacher: keras.Model, student_init: str = "auto") -> dict:
    """The student's first weights by ``student_init`` (``datafree.student_init``): ``teacher``
    (ValueError when the student is not the teacher made narrower), ``auto`` (the teacher's when
    it is, else the student's own random ones) or ``random``. Returns the record a run keeps
    (``student_start.json``): ``{"from": "teacher", "layers": [[name, kept, of], ...]}`` or
    ``{"from": "random", "reason": ...}``."""
    if student_init == "random":
        return {"from": "random", "reason": "datafree.student_init is random"}
    try:
        chains = _narrower_chains(teacher, student)
    except NotNarrower as err:
        if student_init == "teacher":
            raise NotNarrower(f"datafree.student_init is teacher, but the student is not the teacher made narrower "
                              f"({err}); set it to auto or random") from None
        return {"from": "random", "reason": f"not the teacher made narrower: {err}"}
    return {"from": "teacher", "layers": [list(entry) for entry in _copy_largest_units(*chains)]}


def describe_start(record: dict) -> str:
    """One line for the console: where the student's first weights came from."""
    if record["from"] == "teacher":
        return ("the student starts from the teacher's largest filters and units (L1 norm; "
                + ", ".join(f"{name} {count} of {total}" for name, count, total in record["layers"]) + ")")
    return f"the student starts from random weights ({record['reason']})"
