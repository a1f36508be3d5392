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
from .gan import PrebuiltModel, per_replica_seed


class _Distiller(PrebuiltModel):
    """Shared ``train_step``: teacher logits -> student loss ``T^2 KL`` -> student update.

    Subclasses say where a step's images come from (:meth:`step_images`, which also returns
    a context handed to :meth:`update_extra_metrics`).
    """

    def __init__(self, teacher, student, temperature: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        self.teacher = teacher
        self.student = student
        self.teacher.trainable = False
        self.temperature = temperature
        self.loss_tracker = keras.metrics.Mean(name="distill_loss")
        self.agreement_tracker = keras.metrics.Mean(name="teacher_agreement")
        self.built = True  # all parts are built functional models (BackupAndRestore needs it)

    @property
    def metrics(self):
        return [self.loss_tracker, self.agreement_tracker]

    def compile(self, optimizer="adam", **kwargs):
        """As ``keras.Model.compile``; the optimizer is built for the student's weights here."""
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.student.trainable_variables)

    def call(self, images, training=False):
        return self.student(images, training=training)

    def step_images(self, data):
        raise NotImplementedError

    def update_extra_metrics(self, context, teacher_classes):
        pass

    def train_step(self, data):
        images, context = self.step_images(data)
        teacher_logits = self.teacher(images, training=False)
        with tf.GradientTape() as tape:
            student_logits = self.student(images, training=True)
            per_example = losses.distillation_loss(teacher_logits, student_logits, self.temperature)
            loss = losses.average_over_global_batch(per_example)
        grads = tape.gradient(loss, self.student.trainable_variables)
        self.optimizer.apply(grads, self.student.trainable_variables)
        teacher_classes = tf.argmax(teacher_logits, axis=-1, output_type=tf.int32)
        self.loss_tracker.update_state(tf.reduce_mean(per_example))
        self.agreement_tracker.update_state(tf.cast(
            tf.equal(tf.argmax(student_logits, axis=-1, output_type=tf.int32), teacher_classes), tf.float32))
        self.update_extra_metrics(context, teacher_classes)
        return self.step_logs()


@keras.saving.register_keras_serializable(package="tfgan_compress")
class GeneratorDistiller(_Distiller):
    """Student trained on teacher soft labels of generator samples (``fit`` on label batches)."""

    def __init__(self, teacher, generator, student, noise_dim: int, temperature: float = 4.0,
                 mixup: bool = True, augment_shift: int = 0, hard_latent_steps: int = 0,
                 hard_latent_step_size: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(teacher, student, temperature, **kwargs)
        self.generator = generator
        self.generator.trainable = False
        self.noise_dim = noise_dim
        self.mixup = mixup
        self.augment_shift = augment_shift
        self.hard_latent_steps = hard_latent_steps
        self.hard_latent_step_size = hard_latent_step_size
        height, width = generator.outputs[0].shape[1:3]
        self.augmenter = keras.layers.RandomTranslation(
            augment_shift / height, augment_shift / width, fill_mode="constant", seed=seed) if augment_shift else None
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.conditioning_tracker = keras.metrics.Mean(name="generator_label_accuracy")

    @property
    def metrics(self):
        return super().metrics + [self.conditioning_tracker]

    def synthesize(self, labels):
        """Generator images for ``labels`` and a 0/1 mask of those left unmixed.

        With ``hard_latent_steps``, the noise first climbs the teacher-student divergence:
        ``z <- z + eta * g / ||g||``, ``g = grad_z KL(T(G(z)) || S(G(z)))``, so that the
        samples move, along the generator's manifold, to where the student is still wrong.
        With ``augment_shift``, each image is translated by up to that many pixels (the
        teacher labels the shifted image, so any input is a valid training point).
        With ``mixup``, about half the images become ``lam * x_i + (1 - lam) * x_j``,
        ``lam ~ U(0, 1)``, ``j`` a random partner from the batch.
        """
        batch = tf.shape(labels)[0]
        seed = per_replica_seed(self.seed_generator)
        noise = tf.random.stateless_normal((batch, self.noise_dim), seed=seed)
        for _ in range(self.hard_latent_steps):
            noise = self.harder_noise(noise, labels)
        images = self.generator([noise, labels], training=False)
        if self.augmenter is not None:
            images = self.augmenter(images, training=True)
        if not self.mixup:
            return images, tf.ones([batch])
        lam = tf.random.stateless_uniform((batch,), seed=seed + [0, 7])
        mixed = tf.cast(tf.random.stateless_uniform((batch,), seed=seed + [0, 13]) < 0.5, images.dtype)
        lam = mixed * lam + (1.0 - mixed)
        partner = tf.argsort(tf.random.stateless_uniform((batch,), seed=seed + [0, 17]))
        lam4 = tf.reshape(lam, [-1, 1, 1, 1])
        return lam4 * images + (1.0 - lam4) * tf.gather(images, partner), 1.0 - mixed

    def harder_noise(self, noise, labels):
        """One normalised gradient-ascent step of the noise on the per-example KL."""
        with tf.GradientTape() as tape:
            tape.watch(noise)
            images = self.generator([noise, labels], training=False)
            divergence = losses.distillation_loss(self.teacher(images, training=False),
                                                  self.student(images, training=False), self.temperature)
        grad = tape.gradient(divergence, noise)
        grad = grad / (tf.norm(grad, axis=-1, keepdims=True) + 1e-12)
        return tf.stop_gradient(noise + self.hard_latent_step_size * grad)

    def step_images(self, data):
        labels = tf.cast(tf.reshape(data, [-1]), tf.int32)
        images, unmixed = self.synthesize(labels)
        return images, (labels, unmixed)

    def update_extra_metrics(self, context, teacher_classes):
        # How often the teacher sees the class the generator was asked for (unmixed images only).
        labels, unmixed = context
        self.conditioning_tracker.update_state(tf.cast(tf.equal(teacher_classes, labels), tf.float32),
                                               sample_weight=unmixed)


class ImageDistiller(_Distiller):
    """Student trained on teacher soft labels of given images: the real-data reference."""

    def step_images(self, data):
        return (data[0] if isinstance(data, (tuple, list)) else data), None


def label_batches(num_classes: int, batch_size: int, seed: int):
    """Endless ``tf.data`` stream of uniform random class labels: the only ``fit`` input."""
    ds = tf.data.Dataset.random(seed=seed).map(lambda v: tf.cast(v % num_classes, tf.int32))
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def distill_on_generator(teacher: keras.Model, generator: keras.Model, student: keras.Model,
                         config: DistillConfig, seed: int = 0, callbacks=(), verbose="auto") -> keras.callbacks.History:
    """Train ``student`` in place on teacher soft labels of fresh generator samples.

    Returns the ``fit`` history.
    """
    num_classes = int(teacher.output_shape[-1])
    noise_dim = int(generator.inputs[0].shape[-1])
    distiller = GeneratorDistiller(teacher, generator, student, noise_dim=noise_dim,
                                   temperature=config.temperature, mixup=config.mixup,
                                   augment_shift=config.augment_shift,
                                   hard_latent_steps=config.hard_latent_steps,
                                   hard_latent_step_size=config.hard_latent_step_size, seed=seed)
    return _fit(distiller, label_batches(num_classes, config.batch_size, seed), config, callbacks, verbose)


def _fit(distiller: _Distiller, pipeline, config: DistillConfig, callbacks, verbose) -> keras.callbacks.History:
    """Adam with a cosine-decayed learning rate over all steps (Loshchilov & Hutter, 2017)."""
    total_steps = config.epochs * config.steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, total_steps, alpha=0.01)
    distiller.compile(optimizer=keras.optimizers.Adam(schedule))
    return distiller.fit(pipeline, epochs=config.epochs, steps_per_epoch=config.steps_per_epoch,
                         callbacks=list(callbacks), verbose=verbose, shuffle=False)


def distill_on_images(teacher: keras.Model, student: keras.Model, images, config: DistillConfig, seed: int = 0,
                      callbacks=(), verbose="auto") -> keras.callbacks.History:
    """Reference method: the same distillation on given (real) images, shuffled every epoch.

    Used by the benchmark to measure what the GAN-based path gives up; not by the pipeline.
    """
    distiller = ImageDistiller(teacher, student, temperature=config.temperature)
    pipeline = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed).repeat()
    pipeline = pipeline.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return _fit(distiller, pipeline, config, callbacks, verbose)
