"""How good the generator is, measured with the teacher rather than looked at.

* :func:`class_faithfulness`: per class ``c``, the share of samples ``G(z, c)`` that the
  teacher classifies as ``c`` (the conditional GAN's own promise; what the student learns
  from is only as good as this);
* :func:`frechet_distance` between real and generated images in the teacher's penultimate
  features (:func:`penultimate_features`): ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``
  (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
  Nash Equilibrium"; their FID uses Inception-v3 features, here the teacher's, so figures
  compare runs on the same teacher only, not with published FIDs).
* :class:`FrechetDistance`: the same distance as a streaming ``keras.metrics.Metric``
  (running sums of features and their outer products), for ``evaluate()`` and per-epoch logs;
* :func:`logged_by_epoch`: those per-epoch figures read back from the stage's TensorBoard
  run, so that the report shows whether the distance fell over training.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .compat import producer_and_inputs

__all__ = ["batched", "penultimate_features", "frechet_distance", "FrechetDistance", "class_faithfulness", "generate",
           "generator_quality", "logged_by_epoch"]


def penultimate_features(classifier: keras.Model) -> keras.Model:
    """A model from the classifier's input to the input of its last ``Dense`` layer.

    The ``Dense`` layer may sit in a nested model that the classifier wraps in a plain
    chain of layers (a rescaling in front, a softmax or log behind: the wrappers this
    package puts around a user's teacher); the chain in front is replayed. Anything else
    raises ``ValueError``.
    """
    try:
        inputs = classifier.inputs
    except (AttributeError, ValueError):  # subclassed, or not built on an Input: no graph to cut
        raise ValueError(f"{classifier.name}: not a functional model; no penultimate features") from None
    dense = [layer for layer in classifier.layers if isinstance(layer, keras.layers.Dense)]
    if dense:
        return keras.Model(inputs, dense[-1].input, name=f"{classifier.name}_features")
    chain = _layer_chain(classifier)
    nested = [i for i, layer in enumerate(chain or []) if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"{classifier.name}: no Dense layer to take the penultimate features from")
    inner = penultimate_features(chain[nested[0]])
    x = inputs = keras.Input(shape=classifier.inputs[0].shape[1:], name="image")
    for layer in chain[:nested[0]]:
        x = layer(x)
    return keras.Model(inputs, inner(x), name=f"{classifier.name}_features")


def _layer_chain(model: keras.Model):
    """The layers from a one-input, one-output functional model's input to its output when
    each takes exactly the previous one's output (None otherwise), in order."""
    try:
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            return None
        chain, tensor = [], model.outputs[0]
        while tensor is not model.inputs[0]:
            operation, inputs = producer_and_inputs(tensor)
            if len(inputs) != 1:
                return None
            chain.append(operation)
            tensor = inputs[0]
        return chain[::-1]
    except (AttributeError, IndexError, ValueError):
        return None


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples).

    ``Tr((S_r S_g)^(1/2))`` is computed as ``Tr((A S_g A)^(1/2))``, ``A = S_r^(1/2)``: the
    same eigenvalues, but of a symmetric matrix, so no complex round-off.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    mu_r, mu_g = real.mean(0), fake.mean(0)
    cov_r, cov_g = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = _psd_sqrt(cov_r)
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_g @ root), 0, None)))
    return float(np.sum((mu_r - mu_g) ** 2) + np.trace(cov_r) + np.trace(cov_g) - 2 * cross)


def _psd_sqrt_tf(matrix):
    values, vectors = tf.linalg.eigh((matrix + tf.transpose(matrix)) / 2)
    return (vectors * tf.sqrt(tf.maximum(values, 0.0))[None, :]) @ tf.transpose(vectors)


class FrechetDistance(keras.metrics.Metric):
    """Streaming :func:`frechet_distance` between two feature sets: ``update_state(real,
    fake)`` adds batches (rows are samples, ``dim`` features), ``result()`` fits a Gaussian
    to each set seen so far (float64 sums; sample covariance) and returns the distance
    (0 until each set has two rows). Direction ``down`` (lower is better)."""

    def __init__(self, dim: int, name: str = "frechet_distance", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dim = int(dim)
        self._direction = "down"
        self.sums = {}
        for side in ("real", "fake"):
            self.sums[side] = (
                self.add_variable(shape=(), initializer="zeros", dtype="float64", name=f"{side}_count"),
                self.add_variable(shape=(dim,), initializer="zeros", dtype="float64", name=f"{side}_sum"),
                self.add_variable(shape=(dim, dim), initializer="zeros", dtype="float64", name=f"{side}_outer"))

    def update_state(self, real_features, fake_features, sample_weight=None):
        for side, features in (("real", real_features), ("fake", fake_features)):
            count, total, outer = self.sums[side]
            features = tf.cast(tf.reshape(features, [-1, self.dim]), tf.float64)
            count.assign_add(tf.cast(tf.shape(features)[0], tf.float64))
            total.assign_add(tf.reduce_sum(features, 0))
            outer.assign_add(tf.matmul(features, features, transpose_a=True))

    def _gaussian(self, side):
        count, total, outer = self.sums[side]
        n = tf.maximum(count, 2.0)
        mean = total / n
        cov = (outer - n * mean[:, None] * mean[None, :]) / (n - 1.0)
        return mean, cov

    def result(self):
        mu_r, cov_r = self._gaussian("real")
        mu_g, cov_g = self._gaussian("fake")
        root = _psd_sqrt_tf(cov_r)
        cross = tf.reduce_sum(tf.sqrt(tf.maximum(tf.linalg.eigvalsh(root @ cov_g @ root), 0.0)))
        distance = tf.reduce_sum((mu_r - mu_g) ** 2) + tf.linalg.trace(cov_r) + tf.linalg.trace(cov_g) - 2 * cross
        ready = tf.logical_and(self.sums["real"][0] >= 2, self.sums["fake"][0] >= 2)
        return tf.cast(tf.where(ready, distance, tf.zeros_like(distance)), tf.float32)

    def reset_state(self):
        for variables in self.sums.values():
            for variable in variables:
                variable.assign(tf.zeros_like(variable))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


def batched(model, inputs, batch_size: int = 250) -> np.ndarray:
    """``model(inputs)`` (one array, or a list of arrays for a model of several inputs) in
    batches, called directly: unlike ``predict``, which traces a fresh function per model
    (and TensorFlow warns when that happens often), nothing is traced."""
    parts = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    out = []
    with warnings.catch_warnings():  # a model built on [image] warns when called on image; the same call
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        for i in range(0, len(parts[0]), batch_size):
            chunk = [np.asarray(p[i:i + batch_size]) for p in parts]
            out.append(np.asarray(model(chunk if len(chunk) > 1 else chunk[0], training=False)))
    return np.concatenate(out)


def generate(generator: keras.Model, labels: np.ndarray, seed: int = 0, batch_size: int = 500) -> np.ndarray:
    """Samples of ``generator`` for ``labels`` (standard normal noise of ``seed``)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((len(labels), int(generator.inputs[0].shape[-1]))).astype(np.float32)
    return batched(generator, [noise, np.asarray(labels, np.int32)], batch_size)


def class_faithfulness(teacher_logits: keras.Model, images: np.ndarray, labels: np.ndarray,
                       num_classes: int) -> np.ndarray:
    """Per class: the share of its samples that the teacher assigns to it."""
    predicted = np.argmax(batched(teacher_logits, images), -1)
    return np.array([np.mean(predicted[labels == c] == c) if np.any(labels == c) else np.nan
                     for c in range(num_classes)])


def class_balanced_indices(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``count // K`` examples of each of the K classes present (at least one each;
    all of a class that has fewer), drawn without replacement, in random order. A distance
    between real images and class-balanced samples must draw the real images so too: on a
    long-tailed split, a random draw differs from the samples in its class mix alone, and the
    more class-faithful the generator, the larger that difference reads."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    per_class = max(1, count // len(classes))
    chosen = [rng.choice(np.flatnonzero(labels == c), min(per_class, int(np.sum(labels == c))), replace=False)
              for c in classes]
    return rng.permutation(np.concatenate(chosen))


def generator_quality(teacher_logits: keras.Model, generator: keras.Model, real_images: np.ndarray,
                      num_classes: int, samples: int = 5000, seed: int = 0,
                      real_labels: np.ndarray | None = None) -> dict:
    """``{"samples", "teacher_accuracy_on_samples", "per_class", "frechet_distance_teacher_features",
    "frechet_distance_real_vs_real"}`` (the distances None for a teacher whose penultimate
    features cannot be reached): samples against as many real images, the samples of the
    real images' classes; given ``real_labels``, the real images are drawn class-balanced
    (:func:`class_balanced_indices`), else at random and the samples class-balanced. The
    real-vs-real figure, two halves of the real images, is the floor a perfect generator
    would reach with this sample size."""
    rng = np.random.default_rng(seed)
    count = min(samples, len(real_images))
    if real_labels is None:
        labels = np.arange(count) % num_classes
        real = real_images[rng.choice(len(real_images), count, replace=False)]
    else:
        chosen = class_balanced_indices(real_labels, count, rng)
        real, labels = real_images[chosen], np.asarray(real_labels)[chosen].astype(np.int32)
        count = len(chosen)
        # a class without real images is still judged by the teacher, on samples the distance leaves out
        absent = np.setdiff1d(np.arange(num_classes), labels)
        labels = np.concatenate([labels, np.repeat(absent, max(1, count // num_classes))]).astype(np.int32)
    fake = generate(generator, labels, seed)  # the noise of the first samples does not depend on the rest
    per_class = class_faithfulness(teacher_logits, fake, labels, num_classes)
    fake = fake[:count]
    measured = {"samples": int(len(labels)),
                "teacher_accuracy_on_samples": float(np.nanmean(per_class)),
                "per_class": [float(v) for v in per_class],
                "frechet_distance_teacher_features": None, "frechet_distance_real_vs_real": None}
    try:
        features = penultimate_features(teacher_logits)
    except ValueError:  # a teacher without a top-level Dense layer: no distance
        return measured
    real_f, fake_f = batched(features, real), batched(features, fake)
    half = count // 2
    measured["frechet_distance_teacher_features"] = frechet_distance(real_f, fake_f)
    measured["frechet_distance_real_vs_real"] = frechet_distance(real_f[:half], real_f[half:2 * half])
    return measured


def logged_by_epoch(log_dir, tags) -> dict:
    """``{tag: [value of epoch 1, epoch 2, ...]}`` of the epoch scalars (``epoch_<tag>``) in the
    TensorBoard event files under ``log_dir``; a resumed run's files together, the last value
    of an epoch winning; a tag never logged is left out."""
    values: dict = {tag: {} for tag in tags}
    for path in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        try:
            for record in tf.data.TFRecordDataset(str(path)):  # the event file's records, as TensorBoard reads them
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    tag = value.tag[len("epoch_"):] if value.tag.startswith("epoch_") else None
                    if tag in values:
                        values[tag][event.step] = (float(tf.make_ndarray(value.tensor)) if value.HasField("tensor")
                                                   else float(value.simple_value))
        except tf.errors.DataLossError:  # a file cut short by an interrupted run: what was read stands
            continue
    return {tag: [by_step[step] for step in sorted(by_step)] for tag, by_step in values.items() if by_step}
