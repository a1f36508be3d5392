"""Data-free distillation: a student from the teacher alone.

No real training image is read. A class-conditional generator ``G(z, y)`` and the student
``S`` play a two-player game around the frozen teacher ``T`` (the DFAD / ZSKT / DAFL
family), with a replay bank of past samples between them. Each iteration of
:class:`DataFreeDistiller` (a ``keras.Model`` trained with ``fit``) is:

1. **generator step**, minimising over the generator, with ``x = G(z, y)`` and
   ``a(x)`` a random shift, rotation and zoom of ``x``::

     class_weight       * max(0, m - (T_y(a(x)) - max_{c != y} T_c(a(x))))   teacher sees y, margin m
   - adversarial_weight * mean_c |T_c(a(x)) - S_c(a(x))|                      where the student is wrong
   - diversity_weight   * mean|G(z1, y) - G(z2, y)| / mean|z1 - z2|           mode seeking
   + intensity_weight   * max(0, mean(x) - intensity_allowance)              as little ink as will do
   + bn_weight * sum_l ||mu_l(x) - mu_l|| + ||sigma2_l(x) - sigma2_l||        teacher BN layers only

   The adversarial term is DFAD's L1 logit disagreement (Fang et al., 2019, "Data-Free
   Adversarial Distillation"); the class term is DAFL's one-hot prior (Chen et al., 2019)
   made class-conditional (balanced classes) and a margin rather than a cross-entropy, so
   that samples are not pushed to saturated "super-stimuli"; mode seeking is Mao et al.,
   2019; the batch-norm prior is DeepInversion's (Yin et al., 2020); the intensity term is
   the image-norm prior of model inversion (Mahendran & Vedaldi, 2015; DeepInversion's l2
   prior) as a hinge: a sample may be as bright as ``intensity_allowance`` on average for
   free, beyond that every unit of ink must buy class margin. Asking the teacher to
   see class ``y`` in *randomly transformed* samples is the image prior that matters most
   on MNIST-like data (DeepInversion's jitter, made stronger): a fooling pattern rarely
   survives a shift, a rotation and a zoom, a stroke-like shape does.
2. the second half of each round's samples go into a **replay bank** (ring buffer,
   ``bank_size`` images), as in Binici et al., 2022 ("Preventing Catastrophic Forgetting
   and Distribution Mismatch in Knowledge Distillation via Synthetic Data");
3. **student steps** (``student_steps`` per iteration) minimise the L1 distance of the
   student's logits to the teacher's (DFAD) on shifted bank samples, seen through the same
   random shift, rotation and zoom as the image prior (``student_prior_views``) and, with
   ``student_elastic``, an elastic distortion (Simard et al., 2003; :mod:`elastic`): shift,
   prior view, distortion and all are one resampling (:func:`affine.random_affine`,
   :func:`elastic.random_elastic_affine`). Each generator draws a few shapes per class; bent
   strokes give the student many more from the same bank. The teacher
   labels every view afresh, the augmentation of a "consistent" teacher (Beyer et al., 2022,
   "Knowledge distillation: A good teacher is patient and consistent"). Matching logits
   rather than temperature-softened probabilities transfers the whole function, which
   matters on samples the teacher is very sure of.

An epoch is one *synthesis round*: :class:`GeneratorReset` re-initialises the generator
(and its optimizer state) at the start of every epoch, as CMI and FastDFKD do (Fang et
al., 2021; 2022). A generator left to itself settles on one image per class and only
drifts; a fresh one finds new modes, and the bank keeps the old ones.

:func:`distill_data_free` takes the teacher, a generator and a student and nothing else:
the training code has no handle on real data. ``fit`` gets class labels only. The student's
first weights are the caller's: the data-free stage starts a student that is the teacher made
narrower from the teacher's largest filters and units (:mod:`slimming`,
``datafree.student_init``).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from . import losses
from .losses import batchnorm_statistics_loss, mode_seeking_ratio
from .teacher_taps import batchnorm_taps
from .affine import random_affine
from .config import DataFreeConfig
from .elastic import random_elastic_affine
from .training import (DirectedMetrics, SerializableDistiller, TeacherAgreement, directed_mean, label_batches,
                       per_replica_seed, warmup_cosine)


def batchnorm_statistics_model(teacher: keras.Model):
    """(model returning the inputs of every BatchNormalization layer, the layers), or (None, [])."""
    return batchnorm_taps(teacher)


def intensity_penalty(images, allowance: float):
    """``max(0, mean(x) - allowance)`` per image: the image-norm prior as a hinge (pixels in [0, 1])."""
    return tf.nn.relu(tf.reduce_mean(images, axis=[1, 2, 3]) - allowance)


def logit_disagreement(teacher_logits, student_logits):
    """``mean_c |t_c - s_c|`` per example (DFAD's MAE; Fang et al., 2019)."""
    return tf.reduce_mean(tf.abs(teacher_logits - student_logits), axis=-1)


def reinitialize(model: keras.Model, seed: int) -> None:
    """Draw every weight of ``model`` afresh from its layer's own initializer.

    Covers Dense/Conv (kernel, bias), Embedding and BatchNormalization (gamma, beta and the
    moving statistics); seeded, so that a resumed run draws the same weights again.
    """
    for layer_index, layer in enumerate(model.layers):
        for attribute in ("kernel", "bias", "embeddings", "gamma", "beta", "moving_mean", "moving_variance"):
            variable = getattr(layer, attribute, None)
            initializer = getattr(layer, f"{attribute}_initializer", None)
            if variable is None or initializer is None or not hasattr(variable, "assign"):
                continue
            config = initializer.get_config()
            if "seed" in config:
                initializer = initializer.__class__.from_config({**config, "seed": seed * 1009 + layer_index})
            variable.assign(initializer(tuple(variable.shape), dtype=variable.dtype))


def student_jitter_pixels(config: DataFreeConfig, image_shape) -> float:
    """Largest shift of bank samples for the student, in whole pixels (at least one; 0 when off)."""
    if not config.student_augment_shift:
        return 0.0
    return float(max(1, round(config.student_augment_shift * min(image_shape[:2]))))


def student_optimizer_for(config: DataFreeConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """The student's optimizer: Adam, or SGD with momentum 0.9 (DFAD's student), its learning
    rate decaying along a cosine to 1% over ``total_steps``, with decoupled weight decay
    ``student_weight_decay`` (``w <- w - lr * wd * w`` each step; Loshchilov & Hutter, 2019).

    Adam is the default; SGD at 0.05 with decay 5e-4 is DFAD's choice.
    """
    schedule = warmup_cosine(config.student_learning_rate, total_steps)
    weight_decay = config.student_weight_decay or None
    if config.student_optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=weight_decay)
    return keras.optimizers.Adam(schedule, weight_decay=weight_decay)


@keras.saving.register_keras_serializable(package="tfgan_compress")
class DataFreeDistiller(SerializableDistiller):
    """Generator and student trained against each other around a frozen teacher (``fit``).

    (Long, as Keras models are: trackers, ``compile``, ``train_step`` and the steps it calls
    belong together.) ``config``: the ``datafree`` section. Its ``steps_per_epoch`` is the number of
    iterations between generator resets (a round): samples of the first ``bank_from``
    fraction of a round (but the first round) are not banked, the generator is still
    finding its feet there.
    """

    config_class, config_section = DataFreeConfig, "datafree"

    def __init__(self, teacher, generator, student, config: DataFreeConfig | None = None, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.config = config = config or DataFreeConfig()
        self.teacher = teacher
        self.generator = generator
        self.student = student
        self.teacher.trainable = False
        self.noise_dim = int(generator.inputs[0].shape[-1])
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        image_shape = tuple(int(d) for d in generator.outputs[0].shape[1:])
        self.student_jitter_pixels = student_jitter_pixels(config, image_shape)
        self.bn_model, self.bn_layers = batchnorm_statistics_model(teacher)
        # the replay bank: saved with the model (BackupAndRestore), one copy under tf.distribute
        self.bank = self.add_weight(shape=(config.bank_size,) + image_shape, initializer="zeros", dtype="float32",
                                    trainable=False, name="sample_bank", aggregation="only_first_replica")
        self.bank_count = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False,
                                          name="bank_count", aggregation="only_first_replica")
        self.generator_loss_tracker = directed_mean("g_loss", "down")
        self.student_loss_tracker = directed_mean("distill_loss", "down")
        self.disagreement_tracker = directed_mean("g_disagreement")
        self.conditioning_tracker = directed_mean("teacher_label_accuracy", "up")
        self.agreement_tracker = TeacherAgreement()
        self.bank_fill_tracker = directed_mean("bank_images")
        self.metric_list = DirectedMetrics([
            self.generator_loss_tracker, self.student_loss_tracker, self.disagreement_tracker,
            self.conditioning_tracker, self.agreement_tracker, self.bank_fill_tracker])
        self.built = True

    def compile(self, generator_optimizer=None, student_optimizer=None, **kwargs):
        """Two optimizers. Defaults: Adam at ``generator_learning_rate`` (constant: each round
        starts afresh) and :func:`student_optimizer_for` (cosine over all the student's steps)."""
        c = self.config
        student_steps = c.epochs * c.steps_per_epoch * c.student_steps
        self.compile_optimizers({
            "generator_optimizer": (generator_optimizer or keras.optimizers.Adam(
                c.generator_learning_rate, beta_1=c.generator_beta_1), self.generator),
            "student_optimizer": (student_optimizer or student_optimizer_for(c, student_steps),
                                  self.student),
        }, **kwargs)

    def call(self, images, training=False):
        return self.student(images, training=training)

    def reset_generator(self, round_index: int) -> None:
        """Fresh generator weights and optimizer moments for synthesis round ``round_index``."""
        reinitialize(self.generator, self.seed * 100_003 + round_index)
        for variable in self.generator_optimizer.variables:
            if "momentum" in variable.path or "velocit" in variable.path:
                variable.assign(tf.zeros_like(variable))

    def _noise(self, batch):
        return tf.random.stateless_normal((batch, self.noise_dim), seed=per_replica_seed(self.seed_generator))

    def _view(self, images, prior: bool = True, jitter_pixels: float = 0.0, elastic: bool = False):
        """``images`` through the image prior's random shift, rotation and zoom (when ``prior``),
        a further random shift of up to ``jitter_pixels`` and, when ``elastic``, the
        ``student_elastic`` distortion, in one resampling (:mod:`affine`, :mod:`elastic`)."""
        c = self.config
        ranges = (c.augment_shift, c.augment_rotation, c.augment_zoom) if prior else (0.0, 0.0, 0.0)
        seed = per_replica_seed(self.seed_generator)
        if elastic and c.student_elastic:
            return random_elastic_affine(images, seed, *ranges, jitter_pixels, c.student_elastic,
                                         c.student_elastic_cell)
        return random_affine(images, seed, *ranges, jitter_pixels)

    def generator_step(self, labels):
        """One generator update; returns the (stopped) samples."""
        batch = tf.shape(labels)[0]
        half = batch // 2
        with tf.GradientTape() as tape:
            noise = self._noise(batch)
            images = self.generator([noise, labels], training=True)
            view = self._view(images)
            teacher_logits = self.teacher(view, training=False)
            student_logits = self.student(view, training=False)
            disagreement = logit_disagreement(teacher_logits, student_logits)
            class_loss = losses.class_margin_loss(labels, teacher_logits, self.config.class_margin)
            diversity = mode_seeking_ratio(images[:half], images[half:], noise[:half], noise[half:])
            per_example = (self.config.class_weight * class_loss - self.config.adversarial_weight * disagreement
                           - self.config.diversity_weight * tf.concat([diversity, diversity], axis=0)
                           + self.config.intensity_weight * intensity_penalty(images, self.config.intensity_allowance))
            g_loss = losses.average_over_global_batch(per_example)
            if self.bn_model is not None and self.config.bn_weight:
                g_loss += self.config.bn_weight * batchnorm_statistics_loss(self.bn_model(images, training=False),
                                                                     self.bn_layers)
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.generator_optimizer.apply(grads, self.generator.trainable_variables)
        teacher_classes = tf.argmax(teacher_logits, axis=-1, output_type=tf.int32)
        self.conditioning_tracker.update_state(tf.cast(tf.equal(teacher_classes, labels), tf.float32))
        self.disagreement_tracker.update_state(tf.reduce_mean(disagreement))
        self.generator_loss_tracker.update_state(tf.reduce_mean(per_example))
        return tf.stop_gradient(images)

    def bank_images(self, images):
        """Write ``images`` into the ring buffer (unless early in a round but the first).

        Called after the generator update: the optimizer's count of updates, less one, is
        the index of the step that made ``images`` (the count is saved with the model).
        """
        step = tf.cast(self.generator_optimizer.iterations, tf.int32) - 1
        in_round = step % self.config.steps_per_epoch
        keep = tf.logical_or(step < self.config.steps_per_epoch,
                             tf.cast(in_round, tf.float32) >= self.config.bank_from * self.config.steps_per_epoch)

        def write():
            count = tf.shape(images)[0]
            rows = (self.bank_count + tf.range(count)) % self.config.bank_size
            if tf.distribute.has_strategy():  # distributed variables have no scatter in replica context
                self.bank.assign(tf.tensor_scatter_nd_update(self.bank, rows[:, None], images))
            else:
                self.bank.value.scatter_nd_update(rows[:, None], images)  # in place, no copy
            self.bank_count.assign(self.bank_count + count)
            return tf.constant(True)

        tf.cond(keep, write, lambda: tf.constant(False))

    def student_step(self):
        filled = tf.maximum(tf.minimum(self.bank_count, self.config.bank_size), 1)
        rows = tf.random.stateless_uniform((self.config.student_batch_size,),
                                           seed=per_replica_seed(self.seed_generator),
                                           minval=0, maxval=filled, dtype=tf.int32)
        images = tf.gather(self.bank.value, rows)  # a sparse read of the variable, not a copy of the bank
        images = self._view(images, self.config.student_prior_views, self.student_jitter_pixels, elastic=True)
        teacher_logits = self.teacher(images, training=False)
        with tf.GradientTape() as tape:
            student_logits = self.student(images, training=True)
            per_example = logit_disagreement(teacher_logits, student_logits)
            loss = losses.average_over_global_batch(per_example)
        grads = tape.gradient(loss, self.student.trainable_variables)
        self.student_optimizer.apply(grads, self.student.trainable_variables)
        return per_example, teacher_logits, student_logits

    def train_step(self, data):
        labels = tf.cast(tf.reshape(data, [-1]), tf.int32)
        # the two halves of the generator batch share their labels (for the diversity term)
        half = tf.shape(labels)[0] // 2
        labels = tf.concat([labels[:half], labels[:half]], axis=0)
        images = self.generator_step(labels)
        self.bank_images(images)
        for _ in range(self.config.student_steps):
            per_example, teacher_logits, student_logits = self.student_step()
        self.student_loss_tracker.update_state(tf.reduce_mean(per_example))
        self.agreement_tracker.update_state(teacher_logits, student_logits)
        self.bank_fill_tracker.update_state(tf.cast(tf.minimum(self.bank_count, self.config.bank_size), tf.float32))
        return self.step_logs()


def bank_sample(model: DataFreeDistiller, count: int, seed: int = 0):
    """Up to ``count`` images drawn without replacement from the filled part of the bank."""
    filled = min(int(model.bank_count.numpy()), model.config.bank_size)
    rows = np.random.default_rng(seed).choice(filled, size=min(count, filled), replace=False)
    return np.asarray(model.bank.numpy()[np.sort(rows)])


class GeneratorReset(keras.callbacks.Callback):
    """Start every epoch (synthesis round) but the first with a freshly initialised generator."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch > 0:
            self.model.reset_generator(epoch)


def distill_data_free(teacher: keras.Model, generator: keras.Model, student: keras.Model, config: DataFreeConfig,
                      seed: int = 0, callbacks=(), verbose="auto", epochs_done: int = 0) -> keras.callbacks.History:
    """Train ``generator`` and ``student`` in place from the teacher alone; returns the history
    (``history.model`` is the :class:`DataFreeDistiller`, with its bank). The generator
    left in place is the last round's.
    """
    model = DataFreeDistiller(teacher, generator, student, config, seed=seed)
    model.compile()
    num_classes = int(teacher.outputs[0].shape[-1])
    # the reset comes before the caller's callbacks (BackupAndRestore restores on train begin)
    labels = label_batches(num_classes, config.batch_size, seed, skip_batches=epochs_done * config.steps_per_epoch)
    return model.fit(labels, epochs=config.epochs,
                     steps_per_epoch=config.steps_per_epoch, callbacks=[GeneratorReset(), *callbacks],
                     verbose=verbose, shuffle=False)
