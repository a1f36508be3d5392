"""The teacher: trained on the real training split, or loaded from the user's ``.keras`` file.

Every stage works on images in [0, 1]. A user's teacher may take another *input
convention* (:data:`INPUT_CONVENTIONS`: 0-255 pixels, as ``image_dataset_from_directory``
delivers them to a model that starts with ``Rescaling(1/255)``, or [-1, 1]); it is found
by measuring the teacher on the real test split under each (:func:`find_input_convention`),
or refused when the teacher is near chance under all of them, and the run keeps the
teacher behind a ``Rescaling`` layer that maps [0, 1] to its convention
(:func:`taking_unit_range`). The student is saved in the teacher's convention again
(:func:`taking_convention`), so that it replaces the teacher in the user's code.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import keras

from . import data
from .config import TeacherConfig, TeacherInput, choices
from .data import Dataset, ImageSpec
from .errors import ModelError, first_line
from .networks import build_classifier
from .training import warmup_cosine


def steps_per_epoch(config: TeacherConfig, num_examples: int) -> int:
    """Batches in one epoch of :func:`train_teacher` over ``num_examples`` (the last one partial)."""
    return -(-num_examples // config.batch_size)


def train_teacher(dataset: Dataset, config: TeacherConfig, seed: int = 0, callbacks=(),
                  verbose="auto", epochs_done: int = 0) -> keras.Model:
    """Train a classifier (logits output) on the real training split with cross-entropy
    (label smoothing ``config.label_smoothing``, Szegedy et al., 2016), each batch randomly
    translated by up to ``augment_shift`` pixels with zero fill (pad-and-crop) and, with
    ``augment_flip``, flipped left-right; learning rate: linear warm-up then cosine decay
    (:func:`training.warmup_cosine`). ``epochs_done``: epochs an interrupted run finished
    (restored by the caller's ``BackupAndRestore``); their batches are skipped."""
    model = build_classifier(dataset.spec.image_shape, dataset.num_classes, config.network, name="teacher")
    epoch_steps = steps_per_epoch(config, len(dataset.x_train))
    pipeline = data.training_pipeline(dataset.x_train, dataset.y_train, config.batch_size, seed,
                                      drop_remainder=False, augment=image_augmenter(dataset.spec.image_shape,
                                                                                    config.augment_shift,
                                                                                    config.augment_flip, seed),
                                      skip_batches=epochs_done * epoch_steps)
    steps = config.epochs * epoch_steps
    model.compile(optimizer=teacher_optimizer(config, steps),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing)
                  if config.label_smoothing else keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    if config.label_smoothing:  # CategoricalCrossentropy takes one-hot labels
        import tensorflow as tf

        pipeline = pipeline.map(lambda x, y: (x, tf.one_hot(y, dataset.num_classes)))
    model.fit(pipeline, epochs=config.epochs, steps_per_epoch=epoch_steps, callbacks=list(callbacks),
              verbose=verbose, shuffle=False)
    return without_training_state(model)


def image_augmenter(image_shape, shift: int, flip: bool, seed: int, zoom: float = 0.0, color: float = 0.0):
    """A Keras preprocessing pipeline: random translation by up to ``shift`` pixels (zero
    fill, nearest: the same as padding and random cropping), random left-right flips, a
    random zoom in or out by up to the fraction ``zoom`` (zero fill), and random brightness
    and contrast changes by up to the fraction ``color`` (with saturation, between grey and
    twice as saturated at most, on 3-channel images; each clips to [0, 1]); ``None`` when all
    are off."""
    height, width = image_shape[:2]
    steps = []
    if zoom:
        steps.append(keras.layers.RandomZoom((-zoom, zoom), fill_mode="constant", seed=seed + 2))
    if shift:
        steps.append(keras.layers.RandomTranslation(shift / height, shift / width, fill_mode="constant",
                                                    interpolation="nearest", seed=seed))
    if flip:
        steps.append(keras.layers.RandomFlip("horizontal", seed=seed + 1))
    if color:
        steps.append(keras.layers.RandomBrightness(color, value_range=(0.0, 1.0), seed=seed + 3))
        steps.append(keras.layers.RandomContrast(color, value_range=(0.0, 1.0), seed=seed + 4))
        if image_shape[-1] == 3:
            steps.append(keras.layers.RandomSaturation((0.5 - color / 2, 0.5 + color / 2),
                                                       value_range=(0.0, 1.0), seed=seed + 5))
    return keras.Sequential(steps, name="augment") if steps else None


def teacher_optimizer(config: TeacherConfig, steps: int) -> keras.optimizers.Optimizer:
    """Adam, or SGD with Nesterov momentum 0.9, on the warm-up + cosine schedule."""
    schedule = warmup_cosine(config.learning_rate, steps, config.warmup_fraction)
    weight_decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    return keras.optimizers.Adam(schedule, weight_decay=weight_decay)


def without_training_state(model: keras.Model) -> keras.Model:
    """An uncompiled copy with the same weights, so the saved file holds no optimizer state."""
    clean = model.__class__.from_config(model.get_config())  # clone_model would copy the compile state
    clean.set_weights(model.get_weights())
    return clean


def load_error(path, err: Exception) -> ModelError:
    """One line for a model file that Keras could not load, saying what to do where we know."""
    text = str(err)
    if isinstance(err, ValueError) and ("safe_mode" in text or "Lambda" in text):
        return ModelError(f"{path}: contains Python code (a Lambda layer), which could run anything when "
                          f"loaded; refused in safe mode (pass --unsafe-load only for a file you trust)")
    unknown = (re.search(r"Could not locate (class|function) '([^']+)'", text)  # .keras
               or re.search(r"Unknown (layer|activation|object): '(?:[^'>]*>)?([^']+)'", text))  # legacy .h5
    if unknown:  # a subclassed model, custom layer or function: the file holds its config, not its code
        kind, name = unknown.groups()
        kind = {"layer": "class", "object": "class", "activation": "function"}.get(kind, kind)
        return ModelError(f"{path}: uses '{name}', a {kind} from your own code, which a model file does not "
                          f"contain; save a Sequential or functional model of Keras layers (your trained weights "
                          f"can be copied into one), or run from Python in the process that defines the {kind}, "
                          f"registered with @keras.saving.register_keras_serializable")
    if isinstance(err, ValueError):
        return ModelError(f"{path}: not a loadable Keras model ({first_line(err)})")
    return ModelError(f"{path}: not a loadable Keras model ({type(err).__name__}: {first_line(err)[:300]})")


def load_classifier(path, spec: ImageSpec | None = None, safe_mode: bool = True) -> keras.Model:
    """Load a user's classifier (``.keras``, or Keras 2's legacy ``.h5``) and check it fits
    the data (shape, class count).

    ``safe_mode=True`` refuses to deserialise arbitrary Python code (Lambda layers).
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder; give the .keras file")
    if not path.is_file():
        raise ModelError(f"{path}: file not found")
    kind = model_file_kind(path)
    if kind is None:
        raise ModelError(f"{path}: not a Keras model file (a .keras file is a zip archive, a legacy .h5 file "
                         f"HDF5; this is neither)")
    wanted = {"keras": (".keras",), "h5": (".h5", ".hdf5")}[kind]
    if path.suffix not in wanted:  # Keras picks the format by the (case-sensitive) file name ending
        raise ModelError(f"{path}: is a {'.keras (zip)' if kind == 'keras' else 'legacy HDF5'} model file; Keras "
                         f"reads it only under a name ending in {' or '.join(wanted)}: rename it")
    if kind == "h5" and _model_config(path) is None:
        raise ModelError(f"{path}: holds weights only, no model (save_weights); save the whole model with "
                         f"model.save('model.keras')")
    if safe_mode and _has_lambda_layer(path):
        raise ModelError(f"{path}: contains a Lambda layer (Python code, which could run anything when loaded); "
                         f"refused in safe mode (pass --unsafe-load only for a file you trust)")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=safe_mode)
    except Exception as err:  # zip errors, OSError, safe mode, a class of the user's own code, ...
        raise load_error(path, err) from None
    if spec is not None:
        check_classifier(model, spec, path)
    return model


def model_file_kind(path) -> str | None:
    """``"keras"`` for a zip archive (the ``.keras`` format), ``"h5"`` for HDF5 (Keras 2's
    legacy ``.h5`` format, which Keras 3 still loads), else None."""
    if zipfile.is_zipfile(path):
        return "keras"
    with open(path, "rb") as handle:
        return "h5" if handle.read(8) == b"\x89HDF\r\n\x1a\n" else None


def _model_config(path) -> dict | None:
    """The model's configuration in a ``.keras`` archive (``config.json``) or a legacy
    ``.h5`` file (its ``model_config`` attribute); None when absent or unreadable."""
    import json

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(path, "r") as handle:
            text = handle.attrs.get("model_config")
        if text is None:
            return None
        return json.loads(text.decode() if isinstance(text, bytes) else text)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None  # keras reports what is wrong with the file


def _has_lambda_layer(path) -> bool:
    """Whether the model configuration in ``path`` declares a ``Lambda`` layer."""
    config = _model_config(path)
    if config is None:
        return False

    def walk(node) -> bool:
        if isinstance(node, dict):
            return node.get("class_name") == "Lambda" or any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return walk(config)


def check_classifier(model: keras.Model, spec: ImageSpec, where) -> None:
    """Raise :class:`ModelError` when ``model`` does not take the data's images or give one
    output per class. Functional and Sequential models are checked by their declared input
    (dimensions left open, such as the batch, fit anything); subclassed ones by a call."""
    import numpy as np

    model = fed_grey_images(model, spec.image_shape)  # a model of grey images taking (H, W) or (H, W, 3)
    try:
        declared = model.inputs  # subclassed models, and Sequential ones without an Input, have none
    except (AttributeError, ValueError):
        declared = None
    if declared:
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ModelError(f"{where}: a classifier needs one input and one output")
        input_shape = tuple(model.inputs[0].shape[1:])
        if len(input_shape) != len(spec.image_shape) or any(
                d is not None and d != want for d, want in zip(input_shape, spec.image_shape)):
            raise ModelError(f"{where}: takes images of shape {input_shape} but the data has "
                             f"{tuple(spec.image_shape)}")
    try:
        output = model(np.zeros((2, *spec.image_shape), np.float32), training=False)
    except Exception as err:  # noqa: BLE001 - whatever the user's call raises
        raise ModelError(f"{where}: cannot be called on images of shape {tuple(spec.image_shape)} "
                         f"({first_line(err)})") from None
    if not hasattr(output, "shape") or tuple(output.shape[1:]) != (spec.num_classes,):
        shape = tuple(output.shape[1:]) if hasattr(output, "shape") else type(output).__name__
        raise ModelError(f"{where}: outputs shape {shape} but the data has {spec.num_classes} classes")
    if ends_in_sigmoid(model):
        raise ModelError(f"{where}: ends in a sigmoid (one independent probability per class, a multi-label "
                         f"model); a classifier of one class per image ends in logits or a softmax")


def ends_in_sigmoid(model: keras.Model) -> bool:
    """Whether the model's last layer (looked into nested models) applies a sigmoid: its
    outputs are per-class probabilities that do not compete, which distillation's softmax
    would misread as logits."""
    sigmoid = keras.activations.sigmoid
    last = model
    while isinstance(last, keras.Model) and getattr(last, "layers", None):
        last = last.layers[-1]
    return getattr(last, "activation", None) is sigmoid


def declared_input_shape(model: keras.Model) -> tuple | None:
    """The image shape a functional or Sequential model declares (batch axis left out); None
    for a subclassed model or a Sequential one without an ``Input``."""
    try:
        return tuple(model.inputs[0].shape[1:])
    except (AttributeError, ValueError, IndexError, TypeError):
        return None


def grey_image_layout(model: keras.Model, image_shape) -> str | None:
    """How ``model`` takes the data's grey ``(H, W, 1)`` images when it declares another
    layout: ``"no_channel_axis"`` for ``(H, W)`` (the usual Keras MNIST model,
    ``Sequential([Input((28, 28)), Flatten(), ...])``), ``"rgb"`` for ``(H, W, 3)`` (a colour
    network fed ``grayscale_to_rgb`` copies); None when it takes them as they are, or neither."""
    declared = declared_input_shape(model)
    if declared is None or len(image_shape) != 3 or image_shape[-1] != 1:
        return None
    if not all(d is None or d == want for d, want in zip(declared[:2], image_shape[:2])):
        return None
    if len(declared) == 2:
        return "no_channel_axis"
    if len(declared) == 3 and declared[-1] == 3:
        return "rgb"
    return None


def fed_grey_images(model: keras.Model, image_shape) -> keras.Model:
    """``model`` behind an ``Input(image_shape)`` of the data's grey images and a layer that
    gives them the layout it takes (:func:`grey_image_layout`): a ``Reshape`` to ``(H, W)``,
    or the one channel repeated three times (``grayscale_to_rgb``); else ``model`` itself."""
    layout = grey_image_layout(model, image_shape)
    if layout is None:
        return model
    inputs = keras.Input(shape=tuple(image_shape), name="image")
    if layout == "no_channel_axis":
        adapted = keras.layers.Reshape(tuple(image_shape[:2]), name="without_channel_axis")(inputs)
    else:
        adapted = keras.layers.Concatenate(axis=-1, name="grey_to_rgb")([inputs, inputs, inputs])
    return keras.Model(inputs, model(adapted), name=model.name)


#: dtype policies that compute in 16 bits (Keras mixed precision, or a float16 model)
LOW_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16")


def low_precision_policies(model: keras.Model) -> list[str]:
    """The 16-bit dtype policies among ``model``'s layers, nested models included."""
    found, stack = set(), list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        policy = getattr(getattr(layer, "dtype_policy", None), "name", None)
        if policy in LOW_PRECISION_POLICIES:
            found.add(policy)
        stack.extend(getattr(layer, "layers", []))
    return sorted(found)


def _float32_policies(node):
    """A model configuration with every 16-bit dtype policy replaced by float32."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and node.get("config", {}).get("name") in LOW_PRECISION_POLICIES:
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {key: _float32_policies(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_float32_policies(value) for value in node]
    return "float32" if node in LOW_PRECISION_POLICIES else node


def in_float32(model: keras.Model, where) -> tuple[keras.Model, list[str]]:
    """``model`` rebuilt to compute in float32 when it was saved under mixed precision (a habit
    of GPU training: ``set_global_policy("mixed_float16")``), same weights; and the 16-bit
    policies it had. Every stage here computes in float32 (the CPU has no fast float16, the
    losses mix teacher and student outputs, and the TFLite converter refuses float16 graphs),
    so its outputs are not float16 and its float32 TFLite file can be made."""
    import numpy as np

    policies = low_precision_policies(model)
    if not policies:
        return model, []
    try:
        rebuilt = model.__class__.from_config(_float32_policies(model.get_config()))
        rebuilt.set_weights([np.asarray(weight, np.float32) for weight in model.get_weights()])
    except Exception as err:  # noqa: BLE001 - a subclassed model whose config does not carry its layers
        raise ModelError(f"{where}: computes in {', '.join(policies)} and could not be rebuilt in float32 "
                         f"({first_line(err)[:200]}); save it as a Sequential or functional model, or build it "
                         f"under keras.mixed_precision.set_global_policy('float32') and copy its weights in") from None
    return rebuilt, policies


#: input convention -> (scale, offset): the teacher takes ``scale * x + offset`` for ``x`` in [0, 1];
#: ``standardized`` is ``(x - mean) / std`` with the pixel statistics of the images at hand
#: (:func:`scale_and_offset`): a teacher trained on standardised pixels (PyTorch's
#: ``Normalize(mean, std)`` habit, or a ``Normalization`` layer kept outside the model)
INPUT_CONVENTIONS = {"0-1": (1.0, 0.0), "0-255": (255.0, 0.0), "-1-1": (2.0, -1.0), "standardized": None}
assert ("auto", *INPUT_CONVENTIONS) == choices(TeacherInput), "INPUT_CONVENTIONS and config.TeacherInput disagree"


def scale_and_offset(convention: str, images) -> tuple[float, float]:
    """``(scale, offset)`` of ``convention``; for ``standardized``, ``(1 / std, -mean / std)``
    of the pixels of ``images`` (in [0, 1]; one mean and one deviation over all channels)."""
    import numpy as np

    if INPUT_CONVENTIONS[convention] is not None:
        return INPUT_CONVENTIONS[convention]
    mean, std = float(np.mean(images, dtype=np.float64)), float(np.std(images, dtype=np.float64))  # no copy
    std = std if std > 1e-6 else 1.0  # constant images: nothing to scale
    return 1.0 / std, -mean / std


def near_chance(accuracy: float, num_classes: int) -> bool:
    """Whether ``accuracy`` is too close to guessing (``1/k``) for the teacher to teach:
    below ``1/k + max(0.05, (1 - 1/k) / 4)`` (32.5% for 10 classes, 62.5% for 2)."""
    chance = 1.0 / num_classes
    return accuracy < chance + max(0.05, (1.0 - chance) / 4)


def accuracy_margin(accuracy: float, count: int) -> float:
    """What two accuracies on ``count`` test images may differ by and still be told apart:
    ``max(0.005, 2 * sqrt(p (1 - p) / n))``, two standard errors, at least half a point."""
    return max(0.005, 2.0 * (accuracy * (1.0 - accuracy) / max(count, 1)) ** 0.5)


def find_input_convention(model: keras.Model, images, labels, num_classes: int, requested: str = "auto",
                          where: str = "the teacher") -> tuple[str, dict]:
    """The convention ``model`` takes, judged by its accuracy on ``images`` (in [0, 1]), and
    the accuracy under each convention tried (only ``requested`` unless it is ``auto``).

    The first convention of :data:`INPUT_CONVENTIONS` (0-1, 0-255, -1-1, standardized: the
    most common first) whose accuracy is within :func:`accuracy_margin` of the best: a teacher
    of [0, 1] pixels is often nearly as accurate on [0, 255] or standardized ones, and a
    student of the wrong range would be fed wrongly by the code that fed the teacher, so a
    less common convention must win clearly (:func:`close_conventions` names the runners-up).

    Raises :class:`ModelError` naming the accuracies when the best is near chance.
    """
    import numpy as np

    tried = list(INPUT_CONVENTIONS) if requested == "auto" else [requested]
    accuracies = {}
    for name in tried:
        scale, offset = scale_and_offset(name, images)
        outputs = model.predict(np.asarray(images, np.float32) * scale + offset, batch_size=256, verbose=0)
        accuracies[name] = float(np.mean(np.argmax(outputs, axis=-1) == np.asarray(labels)))
    top = max(accuracies.values())
    best = next(name for name in tried if accuracies[name] >= top - accuracy_margin(top, len(labels)))
    if near_chance(accuracies[best], num_classes):
        measured = ", ".join(f"{name} {accuracy:.2%}" for name, accuracy in accuracies.items())
        raise ModelError(f"{where}: near chance ({1 / num_classes:.0%}) on the {len(labels)} test images under "
                         f"every input convention tried ({measured}); check that the model and the data match"
                         + ("" if requested != "auto" else ", or name the convention with --teacher-input"))
    return best, accuracies


def close_conventions(chosen: str, accuracies: dict, count: int) -> list[str]:
    """The conventions other than ``chosen`` whose accuracy on the ``count`` test images is
    within :func:`accuracy_margin` of the best: the ones the test split cannot rule out."""
    top = max(accuracies.values())
    return [name for name, accuracy in accuracies.items()
            if name != chosen and accuracy >= top - accuracy_margin(top, count)]


def as_run_teacher(model: keras.Model, dataset: Dataset, requested: str = "auto", where="the teacher") -> tuple:
    """A user's teacher as a run keeps it, and the ``teacher_input`` record that says how:
    the logits under its softmax when they can be reached, behind a ``Rescaling`` from [0, 1]
    to the input convention found on the test split (or ``requested``), and for a grey-image
    teacher taking ``(H, W)`` or ``(H, W, 3)``, the layer that makes that of the data's
    ``(H, W, 1)`` (:func:`fed_grey_images`; the record's ``teacher_image_shape``; the
    student takes ``(H, W, 1)``); a mixed-precision teacher is
    rebuilt in float32 (:func:`in_float32`; the record's ``teacher_dtype_policies``)."""
    image_shape = dataset.spec.image_shape
    model, policies = in_float32(model, where)
    logits = without_softmax(model)  # before the channel axis is added: it reads the model's own last layer
    declared, layout_adapted = declared_input_shape(model), grey_image_layout(model, image_shape) is not None
    model = fed_grey_images(logits if logits is not None else model, image_shape)
    if logits is not None:
        output = "softmax: the logits under it are used"
    elif outputs_probabilities(as_functional(model, image_shape)):
        output = "softmax: its log-probabilities are used (the logits are not reachable)"
    else:
        output = "logits"
    convention, accuracies = find_input_convention(model, dataset.x_test, dataset.y_test, dataset.num_classes,
                                                   requested, where)
    scale, offset = scale_and_offset(convention, dataset.x_test)
    record = {"convention": convention, "scale": scale, "offset": offset, "requested": requested,
              "test_accuracy_by_convention": accuracies, "output": output}
    close = close_conventions(convention, accuracies, len(dataset.y_test))
    if close:  # the test split cannot tell them apart: say so, and how to be sure
        record["close_conventions"] = close
    if convention == "standardized":
        record["pixel_mean"], record["pixel_std"] = -offset / scale, 1.0 / scale
    if policies:
        record["teacher_dtype_policies"] = policies
    if layout_adapted:
        record["teacher_image_shape"] = [int(d) if d is not None else None for d in declared]
    return taking_unit_range(model, image_shape, record), record


def _rescaled(model: keras.Model, image_shape, scale: float, offset: float, name: str) -> keras.Model:
    inputs = keras.Input(shape=tuple(image_shape), name="image")
    return keras.Model(inputs, model(keras.layers.Rescaling(scale, offset, name=name)(inputs)), name=model.name)


def taking_unit_range(model: keras.Model, image_shape, teacher_input: dict) -> keras.Model:
    """A functional model taking images in [0, 1] that feeds ``model`` in the input convention
    of the ``teacher_input`` record (its ``scale`` and ``offset``; also for ``0-1``: subclassed
    models and models without a fixed input become functional)."""
    return _rescaled(model, image_shape, teacher_input["scale"], teacher_input["offset"], "to_teacher_input")


def as_functional(model: keras.Model, image_shape) -> keras.Model:
    """``model`` as a functional model with a fixed ``image_shape`` input (itself when it is one)."""
    if declared_input_shape(model) == tuple(image_shape):  # None: subclassed, or Sequential without an Input
        return model
    inputs = keras.Input(shape=tuple(image_shape), name="image")
    return keras.Model(inputs, model(inputs), name=model.name)


def taking_convention(model: keras.Model, teacher_input: dict) -> keras.Model:
    """``model`` (on [0, 1] images) behind a layer that maps the ``teacher_input`` record's
    convention to [0, 1]; itself for ``0-1``."""
    scale, offset = teacher_input["scale"], teacher_input["offset"]
    if (scale, offset) == (1.0, 0.0):
        return model
    return _rescaled(model, model.inputs[0].shape[1:], 1.0 / scale, -offset / scale, "from_teacher_input")


def to_convention(images, teacher_input: dict):
    """Images in [0, 1] as a model of the ``teacher_input`` record's convention takes them."""
    scale, offset = teacher_input["scale"], teacher_input["offset"]
    return images if (scale, offset) == (1.0, 0.0) else images * scale + offset


@keras.saving.register_keras_serializable(package="tfgan_compress")
class LogProbabilities(keras.layers.Layer):
    """``log(clip(p, 1e-7, 1))``: turns a softmax output back into logits (up to a constant)."""

    def call(self, probabilities):
        return keras.ops.log(keras.ops.clip(probabilities, 1e-7, 1.0))


def without_softmax(model: keras.Model) -> keras.Model | None:
    """The logits under a softmax output: the model up to its last ``Softmax`` layer, or with
    its last ``Dense(activation="softmax")`` made linear (same weights). None when the
    structure does not show them (a subclassed model), or there is no softmax at the end.

    Distillation wants these: ``log(softmax)`` of a confident teacher has its small
    probabilities rounded to 0 in float32, and with them the teacher's ranking of the
    other classes (the "dark knowledge" of Hinton et al., 2015).
    """
    try:
        inputs, last = model.inputs, model.layers[-1]
    except (AttributeError, ValueError, IndexError):
        return None
    softmax = keras.activations.softmax
    if isinstance(last, keras.layers.Softmax) or (
            isinstance(last, keras.layers.Activation) and last.activation is softmax):
        return keras.Model(inputs, last.input, name=model.name)
    if isinstance(last, keras.layers.Dense) and last.activation is softmax:
        linear = keras.layers.Dense(last.units, use_bias=last.use_bias, name=f"{last.name}_logits")
        outputs = linear(last.input)
        linear.set_weights(last.get_weights())
        return keras.Model(inputs, outputs, name=model.name)
    return None


def outputs_probabilities(model: keras.Model) -> bool:
    """Whether ``model`` ends in a softmax: its outputs on probe images are non-negative and
    sum to 1 (read from the numbers, so nested and subclassed models are judged alike)."""
    import numpy as np

    probe = np.random.default_rng(0).random((4, *model.inputs[0].shape[1:])).astype(np.float32)
    outputs = np.asarray(model(probe, training=False), np.float64)
    return bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3))


def as_logits(model: keras.Model) -> keras.Model:
    """The model itself when it outputs logits; for a softmax output, a wrapper returning
    ``log(p)`` (equal to the logits up to a per-example constant, which softmax ignores)."""
    if not outputs_probabilities(model):
        return model
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name="image")
    logits = LogProbabilities(name="log_probabilities")(model(inputs))
    return keras.Model(inputs, logits, name=f"{model.name}_logits")
