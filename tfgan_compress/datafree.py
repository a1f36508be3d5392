"""Data-free distillation: a student from the teacher alone.

No real training image is read. A class-conditional generator ``G(z, y)`` and the student
``S`` play a two-player game around the frozen teacher ``T`` (the DFAD / ZSKT / DAFL
family):

* generator step (``generator_steps`` per iteration), minimising
  ``- adversarial_weight * D(T(x), S(x))``            explore where the student is wrong
  ``+ class_weight * CE(T(x), y)``                    look like class ``y`` to the teacher
  ``+ bn_weight * sum_l ||mu_l(x) - mu_l|| + ||sigma2_l(x) - sigma2_l||`` (teacher BN layers)
  ``- diversity_weight * |G(z1, y) - G(z2, y)| / |z1 - z2|``  mode seeking (Mao et al., 2019)
  with ``x = G(z, y)``; ``D`` is the temperature-``T`` KL divergence. The first term is
  DFAD's (Fang et al., 2019, "Data-Free Adversarial Distillation"), the second the
  one-hot prior of DAFL (Chen et al., 2019) made class-conditional so that classes stay
  balanced, the third DeepInversion's (Yin et al., 2020) matching of batch-norm statistics,
  used only when the teacher has BatchNormalization layers;
* student steps (``student_steps`` per iteration) minimise ``D(T(x), S(x))`` on fresh
  generator samples (Hinton et al., 2015).

:func:`distill_data_free` takes the teacher, a generator and a student and nothing else:
the training code has no handle on real data. ``fit`` gets class labels only.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from . import losses
from .config import DataFreeConfig
from .distill import label_batches
from .gan import PrebuiltModel, per_replica_seed


def batchnorm_statistics_model(teacher: keras.Model):
    """(model returning the inputs of every BatchNormalization layer, the layers), or None."""
    layers = [layer for layer in teacher.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        return None, []
    return keras.Model(teacher.inputs, [layer.input for layer in layers]), layers


def batchnorm_statistics_loss(features, layers):
    """DeepInversion's prior: distance of batch statistics from the BN running statistics."""
    if not isinstance(features, (list, tuple)):  # a model with one output returns a tensor
        features = [features]
    total = 0.0
    for feature, layer in zip(features, layers):
        axes = list(range(len(feature.shape) - 1))
        mean, variance = tf.nn.moments(tf.cast(feature, tf.float32), axes=axes)
        total += tf.norm(mean - layer.moving_mean) + tf.norm(variance - layer.moving_variance)
    return total


def mode_seeking_ratio(images_a, images_b, noise_a, noise_b):
    """``mean|G(z_a) - G(z_b)| / mean|z_a - z_b|`` per pair (Mao et al., 2019, "Mode Seeking
    GANs"): maximised, it keeps the generator from mapping all noise to one image per class."""
    image_distance = tf.reduce_mean(tf.abs(images_a - images_b), axis=[1, 2, 3])
    noise_distance = tf.reduce_mean(tf.abs(noise_a - noise_b), axis=-1)
    return image_distance / (noise_distance + 1e-5)


@keras.saving.register_keras_serializable(package="tfgan_compress")
class DataFreeDistiller(PrebuiltModel):
    """Generator and student trained against each other around a frozen teacher (``fit``)."""

    def __init__(self, teacher, generator, student, noise_dim: int, temperature: float = 1.0,
                 adversarial_weight: float = 1.0, class_weight: float = 1.0, bn_weight: float = 0.1,
                 diversity_weight: float = 1.0, student_steps: int = 5, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.teacher = teacher
        self.generator = generator
        self.student = student
        self.teacher.trainable = False
        self.noise_dim = noise_dim
        self.temperature = temperature
        self.adversarial_weight = adversarial_weight
        self.class_weight = class_weight
        self.bn_weight = bn_weight
        self.diversity_weight = diversity_weight
        self.student_steps = student_steps
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.bn_model, self.bn_layers = batchnorm_statistics_model(teacher)
        self.generator_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.student_loss_tracker = keras.metrics.Mean(name="distill_loss")
        self.disagreement_tracker = keras.metrics.Mean(name="g_disagreement")
        self.conditioning_tracker = keras.metrics.Mean(name="teacher_label_accuracy")
        self.agreement_tracker = keras.metrics.Mean(name="teacher_agreement")
        self.built = True

    def compile(self, generator_optimizer=None, student_optimizer=None, **kwargs):
        kwargs.setdefault("optimizer", None)
        super().compile(**kwargs)
        self.generator_optimizer = generator_optimizer or keras.optimizers.Adam(1e-3)
        self.student_optimizer = student_optimizer or keras.optimizers.Adam(1e-3)
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.student_optimizer.build(self.student.trainable_variables)

    @property
    def metrics(self):
        return [self.generator_loss_tracker, self.student_loss_tracker, self.disagreement_tracker,
                self.conditioning_tracker, self.agreement_tracker]

    def call(self, images, training=False):
        return self.student(images, training=training)

    def _noise(self, batch):
        return tf.random.stateless_normal((batch, self.noise_dim), seed=per_replica_seed(self.seed_generator))

    def train_step(self, data):
        labels = tf.cast(tf.reshape(data, [-1]), tf.int32)
        batch = tf.shape(labels)[0]
        # the two halves of the generator batch share their labels (for the diversity term)
        half = batch // 2
        labels = tf.concat([labels[:half], labels[:half]], axis=0)
        batch = 2 * half

        # generator: explore disagreement, stay recognisable as class y, stay diverse
        with tf.GradientTape() as tape:
            noise = self._noise(batch)
            images = self.generator([noise, labels], training=True)
            teacher_logits = self.teacher(images, training=False)
            student_logits = self.student(images, training=False)
            disagreement = losses.distillation_loss(teacher_logits, student_logits, self.temperature)
            class_loss = tf.keras.losses.sparse_categorical_crossentropy(labels, teacher_logits, from_logits=True)
            diversity = mode_seeking_ratio(images[:half], images[half:], noise[:half], noise[half:])
            per_example = (self.class_weight * class_loss - self.adversarial_weight * disagreement
                           - self.diversity_weight * tf.concat([diversity, diversity], axis=0))
            g_loss = losses.average_over_global_batch(per_example)
            if self.bn_model is not None and self.bn_weight:
                g_loss += self.bn_weight * batchnorm_statistics_loss(self.bn_model(images, training=False),
                                                                     self.bn_layers)
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.generator_optimizer.apply(grads, self.generator.trainable_variables)
        teacher_classes = tf.argmax(teacher_logits, axis=-1, output_type=tf.int32)
        self.conditioning_tracker.update_state(tf.cast(tf.equal(teacher_classes, labels), tf.float32))
        self.disagreement_tracker.update_state(tf.reduce_mean(disagreement))
        self.generator_loss_tracker.update_state(tf.reduce_mean(per_example))

        # student: k steps of distillation on fresh samples
        for _ in range(self.student_steps):
            images = tf.stop_gradient(self.generator([self._noise(batch), labels], training=True))
            teacher_logits = self.teacher(images, training=False)
            with tf.GradientTape() as tape:
                student_logits = self.student(images, training=True)
                per_example = losses.distillation_loss(teacher_logits, student_logits, self.temperature)
                s_loss = losses.average_over_global_batch(per_example)
            grads = tape.gradient(s_loss, self.student.trainable_variables)
            self.student_optimizer.apply(grads, self.student.trainable_variables)
        self.student_loss_tracker.update_state(tf.reduce_mean(per_example))
        self.agreement_tracker.update_state(tf.cast(tf.equal(
            tf.argmax(student_logits, axis=-1, output_type=tf.int32),
            tf.argmax(teacher_logits, axis=-1, output_type=tf.int32)), tf.float32))
        return self.step_logs()


def distill_data_free(teacher: keras.Model, generator: keras.Model, student: keras.Model, config: DataFreeConfig,
                      seed: int = 0, callbacks=(), verbose="auto") -> keras.callbacks.History:
    """Train ``generator`` and ``student`` in place from the teacher alone; returns the history.

    Both learning rates follow a cosine decay over all iterations.
    """
    num_classes = int(teacher.outputs[0].shape[-1])
    noise_dim = int(generator.inputs[0].shape[-1])
    model = DataFreeDistiller(teacher, generator, student, noise_dim, temperature=config.temperature,
                              adversarial_weight=config.adversarial_weight, class_weight=config.class_weight,
                              bn_weight=config.bn_weight, diversity_weight=config.diversity_weight,
                              student_steps=config.student_steps, seed=seed)
    total = config.epochs * config.steps_per_epoch

    def adam(rate):
        return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(rate, total, alpha=0.01))

    model.compile(generator_optimizer=adam(config.generator_learning_rate),
                  student_optimizer=adam(config.student_learning_rate))
    return model.fit(label_batches(num_classes, config.batch_size, seed), epochs=config.epochs,
                     steps_per_epoch=config.steps_per_epoch, callbacks=list(callbacks), verbose=verbose,
                     shuffle=False)
