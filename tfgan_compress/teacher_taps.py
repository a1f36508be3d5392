"""The frozen teacher's inner activations, for the terms that look through its eyes.

A trained classifier is a feature network for exactly the data at hand. Two terms of the
GAN (and of the data-free mode) read its inner layers:

* the projected discriminator's heads (:func:`networks.build_projected_discriminator`)
  judge real and generated images on the teacher's feature maps at several depths
  (:func:`feature_taps`; Sauer et al., NeurIPS 2021, "Projected GANs Converge Faster");
* the batch-norm statistics prior compares the per-channel mean and variance of the inputs
  of every ``BatchNormalization`` layer on a generated batch with the layer's running
  statistics (:func:`batchnorm_taps`; Yin et al., CVPR 2020, "Dreaming to Distill").

The layers may sit in a nested model that the run's teacher wraps in a plain chain of
layers (the rescaling this package puts in front of a user's teacher, a softmax or log
behind it); the chain in front is replayed, so the taps take the same [0, 1] images as the
run's teacher. A subclassed teacher has no graph to tap: :class:`NoTaps`.
"""

from __future__ import annotations

from typing import Callable

import keras

from .quality import _layer_chain, penultimate_features

__all__ = ["NoTaps", "tap_model", "feature_taps", "batchnorm_taps", "penultimate_taps", "classifier_head",
           "trainable_penultimate_taps"]


class NoTaps(ValueError):
    """The classifier's graph shows no layer of the kind asked for (or no graph at all)."""


def _innermost(classifier: keras.Model) -> tuple[list, keras.Model]:
    """(the chain of layers in front of the functional model that holds the classifier's
    layers, that model): ``([], classifier)`` when the classifier is itself flat."""
    try:
        classifier.inputs  # noqa: B018 - subclassed models have none
    except (AttributeError, ValueError):
        raise NoTaps(f"{classifier.name}: not a functional model; its layers cannot be tapped") from None
    chain = _layer_chain(classifier)
    nested = [i for i, layer in enumerate(chain or []) if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        return [], classifier
    front, inner = _innermost(chain[nested[0]])
    return chain[:nested[0]] + front, inner


def _chain_around(classifier: keras.Model) -> tuple[list, keras.Model, list]:
    """(layers in front of the innermost functional model, that model, layers behind it)."""
    front, inner = _innermost(classifier)
    back, model = [], classifier
    while model is not inner:
        chain = _layer_chain(model)
        index = [i for i, layer in enumerate(chain) if isinstance(layer, keras.Model)][0]
        back = chain[index + 1:] + back
        model = chain[index]
    return front, inner, back


def _on_its_own(layer, x, name: str):
    """``layer(x)``, the layer inside a one-layer model of its own: a chain may hold two layers
    of one name (a teacher saved from a run folder, wrapped again by the next run, has two
    ``to_teacher_input``), which one functional model refuses."""
    inputs = keras.Input(shape=x.shape[1:], name=f"{name}_input")
    return keras.Model(inputs, layer(inputs), name=name)(x)


def tap_model(classifier: keras.Model, select: Callable[[keras.Model], list], name: str,
              with_output: bool = False, frozen: bool = True) -> keras.Model:
    """A model from the classifier's input to the outputs of ``select(inner)``, a list of
    tensors of the innermost functional model; :class:`NoTaps` when the list is empty. With
    ``with_output``, the classifier's own output comes first (one pass gives both). The
    model shares the classifier's layers; ``frozen`` (the teacher's taps) marks them not
    trainable, ``frozen=False`` leaves them as they are (a student trained through its taps)."""
    front, inner, back = _chain_around(classifier)
    tensors = select(inner)
    if not tensors:
        raise NoTaps(f"{classifier.name}: no layer to tap for {name}")
    if with_output:
        tensors = [inner.outputs[0], *tensors]
    inner_taps = keras.Model(inner.inputs, tensors, name=f"{inner.name}_{name}")
    x = inputs = keras.Input(shape=classifier.inputs[0].shape[1:], name="image")
    for i, layer in enumerate(front):
        x = _on_its_own(layer, x, f"{name}_front_{i}")
    outputs = inner_taps(x)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    if with_output:
        for i, layer in enumerate(back):
            outputs[0] = _on_its_own(layer, outputs[0], f"{name}_back_{i}")
    model = keras.Model(inputs, outputs, name=f"{classifier.name}_{name}")
    if frozen:
        model.trainable = False
    return model


def feature_taps(classifier: keras.Model, count: int = 2) -> keras.Model:
    """The teacher's feature maps at ``count`` depths: of every spatial resolution below the
    input's (down to 2x2), the output of the last layer at that resolution (the end of a
    stage), the ``count`` deepest such stages, shallow to deep."""

    def stage_ends(inner: keras.Model) -> list:
        size = tuple(inner.inputs[0].shape[1:3])
        ends = {}
        for layer in inner.layers:
            try:
                shape = tuple(layer.output.shape)
            except (AttributeError, ValueError):  # a layer used twice has no single output
                continue
            if len(shape) == 4 and shape[1:3] != size and min(shape[1:3]) >= 2:
                ends[shape[1:3]] = layer.output  # later layers at the same size replace earlier ones
        return list(ends.values())[-count:]

    return tap_model(classifier, stage_ends, "features")


def batchnorm_taps(classifier: keras.Model, with_output: bool = False) -> tuple[keras.Model | None, list]:
    """(a model returning the input of every ``BatchNormalization`` layer, the layers), or
    ``(None, [])`` for a teacher without batch norm or without a graph to tap. With
    ``with_output``, the model returns the classifier's output first, then those inputs."""

    def batchnorm_inputs(inner: keras.Model) -> list:
        return [layer.input for layer in inner.layers if isinstance(layer, keras.layers.BatchNormalization)]

    try:
        model = tap_model(classifier, batchnorm_inputs, "batchnorm_inputs", with_output)
    except NoTaps:
        return None, []
    _, inner = _innermost(classifier)
    return model, [layer for layer in inner.layers if isinstance(layer, keras.layers.BatchNormalization)]


def penultimate_taps(classifier: keras.Model, with_batchnorm: bool = False) -> keras.Model | None:
    """A model returning the classifier's output, then (``with_batchnorm``) the input of
    every ``BatchNormalization`` layer as :func:`batchnorm_taps` does, then the input of its
    last ``Dense`` layer (the penultimate features, those of :func:`quality.penultimate_features`):
    the teacher's terms in one pass where that layer sits in the model that holds the batch
    norm, else in two (a head on a nested base model, the usual way to build on
    ``keras.applications``). None for a
    classifier without a ``Dense`` layer or without a graph to tap."""

    def batchnorm_and_features(inner: keras.Model) -> list:
        dense = [layer for layer in inner.layers if isinstance(layer, keras.layers.Dense)]
        if not dense:
            return []
        norms = ([layer.input for layer in inner.layers if isinstance(layer, keras.layers.BatchNormalization)]
                 if with_batchnorm else [])
        return [*norms, dense[-1].input]

    try:
        front, _, back = _chain_around(classifier)
        # one pass only where the innermost model holds the last Dense layer: a Dense head outside it (on a
        # base model that has Dense layers of its own) is the one quality.penultimate_features takes
        if not any(isinstance(layer, keras.layers.Dense) for layer in front + back):
            return tap_model(classifier, batchnorm_and_features, "penultimate", with_output=True)
    except NoTaps:
        pass
    try:
        features = penultimate_features(classifier)
    except ValueError:
        return None
    head = batchnorm_taps(classifier, with_output=True)[0] if with_batchnorm else None
    inputs = keras.Input(shape=classifier.inputs[0].shape[1:], name="image")
    outputs = list(head(inputs)) if head is not None else [classifier(inputs)]
    model = keras.Model(inputs, [*outputs, features(inputs)], name=f"{classifier.name}_penultimate")
    model.trainable = False
    return model


def batchnorm_input_statistics(bn_model: keras.Model, images, batch_size: int = 256) -> list[tuple]:
    """Per tapped layer of ``bn_model`` (:func:`batchnorm_taps` with ``with_output``): the
    per-channel mean and (population) variance of the layer's input over ``images``, the
    teacher in inference mode, as float32 numpy arrays; accumulated in float64 batch by batch."""
    import numpy as np

    rows, sums, squares = None, None, None
    for start in range(0, len(images), batch_size):
        _, *features = bn_model(np.asarray(images[start:start + batch_size], np.float32), training=False)
        flat = [np.asarray(f, np.float64).reshape(-1, f.shape[-1]) for f in features]
        if rows is None:
            rows, sums, squares = [0] * len(flat), [0.0] * len(flat), [0.0] * len(flat)
        for i, f in enumerate(flat):
            rows[i] += len(f)
            sums[i] = sums[i] + f.sum(0)
            squares[i] = squares[i] + np.square(f).sum(0)
    statistics = []
    for n, total, total_square in zip(rows, sums, squares):
        mean = total / n
        statistics.append((mean.astype(np.float32), np.maximum(total_square / n - mean ** 2, 0.0).astype(np.float32)))
    return statistics


def classifier_head(classifier: keras.Model) -> keras.Model:
    """The classifier from the input of its last ``Dense`` layer (the penultimate features
    that :func:`penultimate_taps` and :func:`quality.penultimate_features` read) to its output:
    that layer and every layer behind it (a temperature ``Rescaling``, an activation, the
    softmax or log this package wraps around a user's teacher), frozen. So ``head(f)`` is
    the classifier's own output on features ``f``, whatever follows the Dense layer;
    :class:`NoTaps` where there is no such layer or the layers behind it need more than its
    output (a skip connection around the head)."""
    try:
        front, inner, back = _chain_around(classifier)
    except NoTaps:
        raise NoTaps(f"{classifier.name}: not a functional model; no Dense layer to read") from None
    if any(isinstance(layer, keras.layers.Dense) for layer in front):
        raise NoTaps(f"{classifier.name}: a Dense layer in front of the model that holds its other layers")
    behind = [i for i, layer in enumerate(back) if isinstance(layer, keras.layers.Dense)]
    if behind:  # a head on a nested base model (the usual way to build on keras.applications)
        width = int(back[behind[-1]].kernel.shape[0])
        x = features = keras.Input(shape=(width,), name="features")
        for i, layer in enumerate(back[behind[-1]:]):
            x = _on_its_own(layer, x, f"head_back_{i}")
    else:
        dense = [layer for layer in inner.layers if isinstance(layer, keras.layers.Dense)]
        if not dense:
            raise NoTaps(f"{classifier.name}: no Dense layer at its end")
        try:
            inner_head = keras.Model(dense[-1].input, inner.outputs[0], name=f"{inner.name}_head_inner")
        except ValueError as err:  # the output needs tensors the Dense layer's input does not give
            raise NoTaps(f"{classifier.name}: its output does not follow from its last Dense layer's input "
                         f"alone ({err})") from None
        x = features = keras.Input(shape=dense[-1].input.shape[1:], name="features")
        x = inner_head(x)
        for i, layer in enumerate(back):
            x = _on_its_own(layer, x, f"head_back_{i}")
    head = keras.Model(features, x, name=f"{classifier.name}_head")
    head.trainable = False
    return head


def trainable_penultimate_taps(classifier: keras.Model) -> keras.Model:
    """A model returning the classifier's output and the input of its last ``Dense`` layer in
    one pass, sharing its layers and leaving them trainable (a student trained through it:
    one pass, so its batch-norm statistics move once a step); :class:`NoTaps` where that
    layer is not in the innermost functional model (one pass cannot give it)."""
    front, _, back = _chain_around(classifier)
    if any(isinstance(layer, keras.layers.Dense) for layer in front + back):
        raise NoTaps(f"{classifier.name}: its last Dense layer sits outside the model that holds its other layers")

    def last_dense_input(inner: keras.Model) -> list:
        dense = [layer for layer in inner.layers if isinstance(layer, keras.layers.Dense)]
        return [dense[-1].input] if dense else []

    return tap_model(classifier, last_dense_input, "penultimate", with_output=True, frozen=False)
