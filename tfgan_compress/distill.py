"""Knowledge distillation of the student on generator samples only.

:func:`distill_on_generator` takes the teacher, the (EMA) generator and a fresh student,
and nothing else: it has no parameter through which real training images could reach the
student. Every batch is drawn fresh from the generator inside the ``train_step``:

1. class labels ``y`` uniform over the classes (the ``fit`` input is just these labels);
2. images ``x = G(z, y)``, ``z ~ N(0, I)``; with ``mixup``, half the batch is replaced by
   convex mixes ``lam * x_i + (1 - lam) * x_j``, ``lam ~ U(0, 1)`` (Zhang et al., 2018),
   which puts training points between the classes where the decision boundary lies;
3. loss ``T^2 KL(softmax(t/T) || softmax(s/T))`` (Hinton et al., 2015) on teacher and
   student logits.

The generator and teacher are frozen. Trained with ``fit``, so callbacks work.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from . import losses
from .config import DistillConfig


@keras.saving.register_keras_serializable(package="tfgan_compress")
class GeneratorDistiller(keras.Model):
    """Student trained on teacher soft labels of generator samples (``fit`` on label batches)."""

    def __init__(self, teacher, generator, student, noise_dim: int, temperature: float = 4.0,
                 mixup: bool = True, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.teacher = teacher
        self.generator = generator
        self.student = student
        self.teacher.trainable = False
        self.generator.trainable = False
        self.noise_dim = noise_dim
        self.temperature = temperature
        self.mixup = mixup
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="distill_loss")
        self.agreement_tracker = keras.metrics.Mean(name="teacher_agreement")
        self.conditioning_tracker = keras.metrics.Mean(name="generator_label_accuracy")
        self.built = True  # all parts are built functional models (BackupAndRestore needs it)

    @property
    def metrics(self):
        return [self.loss_tracker, self.agreement_tracker, self.conditioning_tracker]

    def call(self, images, training=False):
        return self.student(images, training=training)

    def synthesize(self, labels):
        """A batch of generator images for ``labels`` (half mixed when ``mixup``)."""
        batch = tf.shape(labels)[0]
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        replica = tf.distribute.get_replica_context()
        if replica is not None:
            seed = seed + tf.stack([tf.cast(replica.replica_id_in_sync_group, tf.int64) * 1_000_003, 0])
        noise = tf.random.stateless_normal((batch, self.noise_dim), seed=seed)
        images = self.generator([noise, labels], training=False)
        if self.mixup:
            lam = tf.random.stateless_uniform((batch, 1, 1, 1), seed=seed + [0, 7])
            use_mix = tf.cast(tf.random.stateless_uniform((batch, 1, 1, 1), seed=seed + [0, 13]) < 0.5,
                              images.dtype)
            lam = use_mix * lam + (1.0 - use_mix)
            partner = tf.argsort(tf.random.stateless_uniform((batch,), seed=seed + [0, 17]))
            images = lam * images + (1.0 - lam) * tf.gather(images, partner)
        return images

    def train_step(self, data):
        labels = tf.cast(tf.reshape(data, [-1]), tf.int32)
        images = self.synthesize(labels)
        teacher_logits = self.teacher(images, training=False)
        with tf.GradientTape() as tape:
            student_logits = self.student(images, training=True)
            per_example = losses.distillation_loss(teacher_logits, student_logits, self.temperature)
            loss = losses.average_over_global_batch(per_example)
        grads = tape.gradient(loss, self.student.trainable_variables)
        self.optimizer.apply(grads, self.student.trainable_variables)
        teacher_class = tf.argmax(teacher_logits, axis=-1, output_type=tf.int32)
        self.loss_tracker.update_state(tf.reduce_mean(per_example))
        self.agreement_tracker.update_state(
            tf.cast(tf.equal(tf.argmax(student_logits, axis=-1, output_type=tf.int32), teacher_class), tf.float32))
        self.conditioning_tracker.update_state(tf.cast(tf.equal(teacher_class, labels), tf.float32))
        return {m.name: m.result() for m in self.metrics}


def label_batches(num_classes: int, batch_size: int, seed: int):
    """Endless ``tf.data`` stream of uniform random class labels: the only ``fit`` input."""
    ds = tf.data.Dataset.random(seed=seed).map(lambda v: tf.cast(v % num_classes, tf.int32))
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def distill_on_generator(teacher: keras.Model, generator: keras.Model, student: keras.Model,
                         config: DistillConfig, seed: int = 0, callbacks=(), verbose="auto") -> keras.callbacks.History:
    """Train ``student`` in place on teacher soft labels of fresh generator samples.

    The learning rate follows a cosine decay over all steps (Loshchilov & Hutter, 2017).
    Returns the ``fit`` history.
    """
    num_classes = int(teacher.output_shape[-1])
    noise_dim = int(generator.inputs[0].shape[-1])
    distiller = GeneratorDistiller(teacher, generator, student, noise_dim=noise_dim,
                                   temperature=config.temperature, mixup=config.mixup, seed=seed)
    total_steps = config.epochs * config.steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, total_steps, alpha=0.01)
    distiller.compile(optimizer=keras.optimizers.Adam(schedule))
    return distiller.fit(label_batches(num_classes, config.batch_size, seed), epochs=config.epochs,
                         steps_per_epoch=config.steps_per_epoch, callbacks=list(callbacks), verbose=verbose,
                         shuffle=False)
