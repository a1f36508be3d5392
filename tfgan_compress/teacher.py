"""The teacher: trained on the real training split, or loaded from the user's ``.keras`` file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras

from . import data
from .config import TeacherConfig
from .data import Dataset, ImageSpec
from .errors import ModelError, first_line
from .networks import build_classifier
from .training import cosine_adam


def train_teacher(dataset: Dataset, config: TeacherConfig, seed: int = 0, callbacks=(),
                  verbose="auto") -> keras.Model:
    """Train a classifier (logits output) on the real training split with cross-entropy,
    each batch randomly translated by up to ``augment_shift`` pixels (zero fill)."""
    model = build_classifier(dataset.spec.image_shape, dataset.num_classes, config.network, name="teacher")
    augment = None
    if config.augment_shift:
        height, width = dataset.spec.image_shape[:2]
        augment = keras.layers.RandomTranslation(config.augment_shift / height, config.augment_shift / width,
                                                 fill_mode="constant", interpolation="nearest", seed=seed)
    pipeline = data.training_pipeline(dataset.x_train, dataset.y_train, config.batch_size, seed,
                                      drop_remainder=False, augment=augment)
    steps = config.epochs * -(-len(dataset.x_train) // config.batch_size)
    model.compile(optimizer=cosine_adam(config.learning_rate, steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(pipeline, epochs=config.epochs, callbacks=list(callbacks), verbose=verbose, shuffle=False)
    return without_training_state(model)


def without_training_state(model: keras.Model) -> keras.Model:
    """An uncompiled copy with the same weights, so the saved file holds no optimizer state."""
    clean = model.__class__.from_config(model.get_config())  # clone_model would copy the compile state
    clean.set_weights(model.get_weights())
    return clean


def load_classifier(path, spec: ImageSpec | None = None, safe_mode: bool = True) -> keras.Model:
    """Load a user's ``.keras`` classifier and check it fits the data (shape, class count).

    ``safe_mode=True`` refuses to deserialise arbitrary Python code (Lambda layers).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: file not found")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: not a Keras model (a .keras file is a zip archive; this is not one)")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=safe_mode)
    except ValueError as err:
        if "safe_mode" in str(err) or "Lambda" in str(err):
            raise ModelError(f"{path}: contains Python code (a Lambda layer), which could run anything when "
                             f"loaded; refused in safe mode (pass --unsafe-load only for a file you trust)") from None
        raise ModelError(f"{path}: not a loadable Keras model ({first_line(err)})") from None
    except Exception as err:  # zip errors, OSError, ...
        raise ModelError(f"{path}: not a loadable Keras model ({type(err).__name__}: {err})") from None
    if spec is not None:
        check_classifier(model, spec, path)
    return model


def check_classifier(model: keras.Model, spec: ImageSpec, where) -> None:
    """Raise :class:`ModelError` when ``model`` does not take the data's images or classes."""
    try:
        input_shape = tuple(model.inputs[0].shape[1:])
        output_shape = tuple(model.outputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError, ValueError):
        raise ModelError(f"{where}: not a functional/sequential Keras classifier with one input and one output") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{where}: a classifier needs one input and one output")
    if input_shape != tuple(spec.image_shape):
        raise ModelError(f"{where}: takes images of shape {input_shape} but the data has {tuple(spec.image_shape)}")
    if output_shape != (spec.num_classes,):
        raise ModelError(f"{where}: outputs shape {output_shape} but the data has {spec.num_classes} classes")



@keras.saving.register_keras_serializable(package="tfgan_compress")
class LogProbabilities(keras.layers.Layer):
    """``log(clip(p, 1e-7, 1))``: turns a softmax output back into logits (up to a constant)."""

    def call(self, probabilities):
        return keras.ops.log(keras.ops.clip(probabilities, 1e-7, 1.0))


def as_logits(model: keras.Model) -> keras.Model:
    """The model itself when it outputs logits; for a softmax output, a wrapper returning
    ``log(p)`` (equal to the logits up to a per-example constant, which softmax ignores)."""
    last = model.layers[-1]
    is_softmax = isinstance(last, keras.layers.Softmax) or (
        getattr(last, "activation", None) is keras.activations.softmax)
    if not is_softmax:
        return model
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name="image")
    logits = LogProbabilities(name="log_probabilities")(model(inputs))
    return keras.Model(inputs, logits, name=f"{model.name}_logits")
