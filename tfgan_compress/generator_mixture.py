"""Several generators as one: each sample drawn whole from one of them, chosen by its noise.

Samples from several independently trained generators teach a student more than those of
any one (benchmarks/README.md: three colour GANs mixed, +2.2 points over their mean). A
mixture trained against one discriminator (``gan.generators`` K > 1) gets several
generators from one GAN's budget: the multi-generator GAN of Hoang et al., ICLR 2018
("MGAN: Training Generative Adversarial Nets with Multiple Generators"), without its
generator-classifier term. The discriminator judges the mixture, so a region that one
generator already covers is penalised for all, which pushes them apart. Each generator gets
``1/K`` of every batch, so at one generator's step budget none is trained as far
(benchmarks/README.md: three at the colour preset's 900 steps taught 3.6 points less).

Sample ``i`` is generator ``k_i = floor(K frac(1024 |z_i0|))``'s (:func:`mixture_choice`):
the fine digits of the first noise coordinate (1024, a power of two: the product is exact,
and a float16 TFLite file stores the constant exactly, so it picks as Keras does), so that
the generators share every batch and every class about equally whatever the labels' layout
(random, or cycling through a bank), and each still sees noise of the distribution it is
trained on.

* The batch is split by ``k`` (``tf.dynamic_partition``), each generator runs on its own
  share and the images are put back in place (``tf.dynamic_stitch``), so a step or a
  sample costs about one generator's compute. In training the first K samples go to
  generators ``0..K-1``, so that none ever sees an empty batch (batch-norm statistics of
  no samples are NaN); in inference an empty share is harmless (moving statistics).
* For TFLite (:func:`every_generator_on_every_sample`, which ``export.convert`` enters):
  every generator runs on the whole batch and each sample is picked by a one-hot mask, K
  times the compute but only ops TFLite has built in; the images are the same, since in
  inference nothing depends on the rest of the batch.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

__all__ = ["mixture_choice", "GeneratorMixture", "generator_mixture", "mixture_size", "generator_classes",
           "every_generator_on_every_sample"]

_DENSE = {"on": False}


@contextlib.contextmanager
def every_generator_on_every_sample():
    """Within: mixtures traced for inference run every generator on the whole batch and pick
    by a mask (ops TFLite has built in) instead of splitting the batch."""
    before, _DENSE["on"] = _DENSE["on"], True
    try:
        yield
    finally:
        _DENSE["on"] = before


def mixture_choice(noise, count: int):
    """``floor(K frac(1024 |z_0|))`` per sample (int32 in ``0..K-1``), from ``noise[:, 0]``."""
    ops = keras.ops
    scaled = ops.abs(noise[:, 0]) * 1024.0
    return ops.minimum(ops.cast(ops.floor((scaled - ops.floor(scaled)) * count), "int32"), count - 1)


@keras.saving.register_keras_serializable(package="tfgan_compress")
class GeneratorMixture(keras.layers.Layer):
    """``[noise, label] -> image`` of generator ``mixture_choice(noise, K)`` for each sample."""

    def __init__(self, generators, **kwargs):
        super().__init__(**kwargs)
        if len(generators) < 2:
            raise ValueError(f"a mixture needs two generators or more, got {len(generators)}")
        self.generators = list(generators)
        self.supports_jit = False  # dynamic_partition's shapes depend on the data: no XLA

    def build(self, input_shape):
        self.built = True  # the generators are built functional models

    def call(self, inputs, training=False):
        noise, label = inputs
        count = len(self.generators)
        which = mixture_choice(noise, count)
        if not training and _DENSE["on"]:
            images = keras.ops.stack([g([noise, label], training=False) for g in self.generators], axis=1)
            mask = keras.ops.one_hot(which, count, dtype=images.dtype)
            mask = keras.ops.reshape(mask, (-1, count) + (1,) * (len(images.shape) - 2))
            return keras.ops.sum(images * mask, axis=1)
        batch = tf.shape(noise)[0]
        if training:
            first = tf.minimum(batch, count)  # samples 0..K-1 to generators 0..K-1: no empty share
            which = tf.concat([tf.range(first, dtype=tf.int32), which[first:]], axis=0)
        positions = tf.dynamic_partition(tf.range(batch), which, count)
        noises = tf.dynamic_partition(noise, which, count)
        labels = tf.dynamic_partition(label, which, count)
        images = [g([z, y], training=training) for g, z, y in zip(self.generators, noises, labels)]
        return tf.ensure_shape(tf.dynamic_stitch(positions, images), [None, *images[0].shape[1:]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], *self.generators[0].outputs[0].shape[1:])

    def get_config(self):
        return {**super().get_config(),
                "generators": [keras.saving.serialize_keras_object(g) for g in self.generators]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        generators = [keras.saving.deserialize_keras_object(g) for g in config.pop("generators")]
        return cls(generators, **config)


def generator_mixture(generators, name: str = "generator") -> keras.Model:
    """One generator model (inputs ``[noise, label]``, as each of ``generators``) of the
    mixture; a single generator is returned as it is."""
    generators = list(generators)
    if len(generators) == 1:
        return generators[0]
    first = generators[0]
    inputs = [keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype, name=name_)
              for tensor, name_ in zip(first.inputs, ("noise", "label"))]
    for k, generator in enumerate(generators):
        generator.name = f"generator_{k}"
    return keras.Model(inputs, GeneratorMixture(generators, name="mixture")(inputs), name=name)


def _mixture_layer(generator: keras.Model):
    """The :class:`GeneratorMixture` layer of ``generator``, or None for a plain generator."""
    return next((layer for layer in generator.layers if isinstance(layer, GeneratorMixture)), None)


def mixture_size(generator: keras.Model) -> int:
    """How many generators ``generator`` mixes (1 for a plain generator)."""
    mixture = _mixture_layer(generator)
    return 1 if mixture is None else len(mixture.generators)


def generator_classes(generator: keras.Model) -> int:
    """The class count of one of this tool's generators, plain or mixed (its ``label_embedding``
    layer's rows); ``ValueError`` for a model without one."""
    mixture = _mixture_layer(generator)
    first = generator if mixture is None else mixture.generators[0]
    return int(first.get_layer("label_embedding").input_dim)
