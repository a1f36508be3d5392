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
  (running sums of features and their outer products), for ``evaluate()`` and per-epoch logs.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

__all__ = ["penultimate_features", "frechet_distance", "FrechetDistance", "class_faithfulness", "generate", "generator_quality"]


def penultimate_features(classifier: keras.Model) -> keras.Model:
    """A model from the classifier's input to the input of its last ``Dense`` layer."""
    dense = [layer for layer in classifier.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ValueError(f"{classifier.name}: no Dense layer to take the penultimate features from")
    return keras.Model(classifier.inputs, dense[-1].input, name=f"{classifier.name}_features")


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


def generate(generator: keras.Model, labels: np.ndarray, seed: int = 0, batch_size: int = 500) -> np.ndarray:
    """Samples of ``generator`` for ``labels`` (standard normal noise of ``seed``)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((len(labels), int(generator.inputs[0].shape[-1]))).astype(np.float32)
    return np.asarray(generator.predict([noise, np.asarray(labels, np.int32)], batch_size=batch_size, verbose=0))


def class_faithfulness(teacher_logits: keras.Model, images: np.ndarray, labels: np.ndarray,
                       num_classes: int) -> np.ndarray:
    """Per class: the share of its samples that the teacher assigns to it."""
    predicted = np.argmax(teacher_logits.predict(images, batch_size=500, verbose=0), -1)
    return np.array([np.mean(predicted[labels == c] == c) if np.any(labels == c) else np.nan
                     for c in range(num_classes)])


def generator_quality(teacher_logits: keras.Model, generator: keras.Model, real_images: np.ndarray,
                      num_classes: int, samples: int = 5000, seed: int = 0) -> dict:
    """``{"teacher_accuracy_on_samples", "per_class", "frechet_distance_teacher_features",
    "frechet_distance_real_vs_real"}``: class-balanced samples against as many real images
    (the real-vs-real figure, two halves of the real images, is the floor a perfect
    generator would reach with this sample size)."""
    rng = np.random.default_rng(seed)
    count = min(samples, len(real_images))
    labels = np.arange(count) % num_classes
    fake = generate(generator, labels, seed)
    real = real_images[rng.choice(len(real_images), count, replace=False)]
    features = penultimate_features(teacher_logits)
    real_f = np.asarray(features.predict(real, batch_size=500, verbose=0))
    fake_f = np.asarray(features.predict(fake, batch_size=500, verbose=0))
    per_class = class_faithfulness(teacher_logits, fake, labels, num_classes)
    half = count // 2
    return {"samples": int(count),
            "teacher_accuracy_on_samples": float(np.nanmean(per_class)),
            "per_class": [float(v) for v in per_class],
            "frechet_distance_teacher_features": frechet_distance(real_f, fake_f),
            "frechet_distance_real_vs_real": frechet_distance(real_f[:half], real_f[half:2 * half])}
