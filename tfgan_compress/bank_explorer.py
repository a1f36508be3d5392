"""Adversarial exploration of the sample bank: samples where the student still disagrees.

A bank drawn once from the GAN's generator (``distill.sample_bank``) holds the generator's
modes and nothing else, and the student learns the teacher's function there only: on the
CIFAR-10 preset it agrees with the teacher on almost every bank view and on two thirds of
the test photos. With ``distill.explore_steps`` = m > 0, an *explorer* joins the
distillation: a trainable copy of the generator, starting from its weights, which before
every epoch but the first takes m Adam steps on

    L = - D(T(v), S(v))                                        where the student is wrong
        + max(0, m_y - (T_y(v) - max_{c != y} T_c(v)))         the teacher still sees class y
        + w_bn * sum_l ||mu_l(v) - mu_l|| + ||s2_l(v) - s2_l||  the teacher's batch-norm statistics

with ``v`` the distillation's own random view (shift, flip) of ``G'(z, y)``, ``T`` the
frozen teacher, ``S`` the student as it is now (in inference mode, not updated here), and
``D`` (``explore_divergence``) either DFAD's ``mean_c |T_c - S_c|`` of the logits (``l1``)
or the distillation's own loss ``tau^2 KL(softmax(T / tau) || softmax(S / tau))``
(``kl``, :func:`losses.distillation_loss`, tau the distillation's temperature). The L1
distance grows without bound as the teacher's logits grow, so it can be raised by making
the teacher surer rather than the student wrong; the KL of the softened probabilities
cannot. The first term is the adversarial exploration of data-free distillation (Fang et al., 2019,
"Data-Free Adversarial Distillation"; Micaelli & Storkey, 2019, "Zero-shot Knowledge
Transfer via Adversarial Belief Matching"), the margin the class term of the GAN's teacher
(:func:`losses.class_margin_loss`), the last DeepInversion's prior (Yin et al., 2020), which
keeps the samples' inner statistics those the teacher saw in training. Starting from the
GAN's generator rather than from random weights keeps the explored samples near its
images (Fast-DFKD's point: a generator that is already good needs few steps per round;
Fang et al., 2022). The explorer keeps its weights from round to round.

After its steps the explorer draws ``explore_samples`` samples (classes balanced) and
writes them into the bank over its oldest rows (a ring that starts at row 0), so the bank
moves, epoch by epoch, toward where the student has yet to learn the teacher. Every later
step of the distillation is unchanged: it labels its own views of bank images with the
teacher.

:class:`BankExplorer` does the work; :class:`BankExploration` is the Keras callback that
calls it at the start of each epoch and puts its figures in the epoch's logs (TensorBoard,
CSV).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from . import losses
from .config import DistillConfig
from .datafree import logit_disagreement
from .teacher import image_augmenter
from .teacher_taps import batchnorm_taps

__all__ = ["WritableBank", "BankExplorer", "BankExploration", "DIVERGENCE_WORDS"]

#: how progress lines name each ``distill.explore_divergence``
DIVERGENCE_WORDS = {"l1": "by the L1 distance of the logits", "kl": "by the T^2 KL of the softened probabilities"}


class WritableBank:
    """A sample bank that an explorer writes into between epochs: float16 ``images`` and
    int32 ``labels`` as ``tf.Variable`` s. The distillation's batches are rows of it, read in
    the training step itself (:meth:`rows`), so each step sees the rows as the rounds before
    it left them whatever ``tf.data`` prefetched: a run is the same run every time. A plain
    object, not a Keras layer: the bank (300 MB for the colour preset) stays out of the
    distiller's weights and its checkpoints."""

    def __init__(self, images, labels):
        self.images = tf.Variable(images, trainable=False, name="bank_images")
        self.labels = tf.Variable(labels, trainable=False, name="bank_labels")

    def rows(self, index):
        """``(images as float32, labels)`` of the rows ``index``."""
        index = tf.reshape(index, [-1])
        return tf.cast(tf.gather(self.images, index), tf.float32), tf.gather(self.labels, index)


class BankExplorer:
    """The explorer of one distillation: its generator (a copy of ``generator``), optimizer
    and the bank rows it writes next.

    ``bank``: the :class:`WritableBank` the distillation's steps read; ``teacher`` outputs
    logits.
    """

    def __init__(self, teacher: keras.Model, generator: keras.Model, student: keras.Model, bank: WritableBank,
                 config: DistillConfig, seed: int = 0):
        self.config, self.seed, self.round = config, seed, 0
        self.teacher, self.student, self.bank = teacher, student, bank
        self.next_row = 0
        self.noise_draws = 0  # every noise draw's seed is [seed, its number]: no two draws alike
        self.num_classes = int(teacher.outputs[0].shape[-1])
        self.noise_dim = int(generator.inputs[0].shape[-1])
        self.generator = keras.models.clone_model(generator)
        self.generator.set_weights(generator.get_weights())
        for layer in self.generator._flatten_layers(include_self=True):  # a clone keeps each layer's frozen flag
            layer.trainable = True
        self.optimizer = keras.optimizers.Adam(config.explore_learning_rate, beta_1=0.5, beta_2=0.999)
        self.optimizer.build(self.generator.trainable_variables)
        self.taps, self.bn_layers = (batchnorm_taps(teacher, with_output=True) if config.explore_bn_weight
                                     else (None, []))
        image_shape = tuple(int(d) for d in generator.outputs[0].shape[1:])
        # its own random views (another seed): the distillation's stream of views stays its own
        self.augmenter = image_augmenter(image_shape, config.augment_shift, config.augment_flip, seed + 7919)
        self._step = tf.function(self._train_step, reduce_retracing=True)
        self._draw = tf.function(self._draw_images, reduce_retracing=True)

    @property
    def uses_batchnorm_prior(self) -> bool:
        return self.taps is not None

    def _train_step(self, noise, labels):
        c = self.config
        with tf.GradientTape() as tape:
            images = self.generator([noise, labels], training=False)
            views = self.augmenter(images, training=True) if self.augmenter is not None else images
            if self.taps is not None:
                teacher_logits, *bn_inputs = self.taps(views, training=False)
            else:
                teacher_logits = self.teacher(views, training=False)
            student_logits = self.student(views, training=False)
            disagreement = self._divergence(teacher_logits, student_logits)
            margin = losses.class_margin_loss(labels, teacher_logits, c.explore_margin)
            loss = tf.reduce_mean(margin - disagreement)
            prior = tf.constant(0.0)
            if self.taps is not None:
                prior = losses.batchnorm_statistics_loss(bn_inputs, self.bn_layers)
                loss = loss + c.explore_bn_weight * prior
        variables = self.generator.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        taken = tf.equal(tf.argmax(teacher_logits, axis=-1, output_type=tf.int32), labels)
        return tf.reduce_mean(disagreement), tf.reduce_mean(tf.cast(taken, tf.float32)), prior

    def _divergence(self, teacher_logits, student_logits):
        """Per example: ``explore_divergence``'s distance between the teacher's and the student's outputs."""
        if self.config.explore_divergence == "kl":
            return losses.distillation_loss(teacher_logits, student_logits, self.config.temperature)
        return logit_disagreement(teacher_logits, student_logits)

    def _draw_images(self, noise, labels):
        return tf.cast(self.generator([noise, labels], training=False), tf.float16)

    def _noise(self, count: int):
        self.noise_draws += 1
        return tf.random.stateless_normal((count, self.noise_dim), seed=[self.seed, self.noise_draws])

    def _labels(self, count: int, offset: int):
        return (tf.range(count, dtype=tf.int32) + offset) % self.num_classes

    def grid(self, per_class: int = 10, seed: int = 1234, spectrograms: bool = False):
        """One row per class of the explorer's samples as they are now (uint8 picture)."""
        from .callbacks import class_grid_inputs, image_grid

        noise, labels = class_grid_inputs(self.num_classes, per_class, self.noise_dim, seed)
        images = np.asarray(self._draw(tf.constant(noise), tf.constant(labels)), np.float32)
        return image_grid(images, rows=self.num_classes, spectrograms=spectrograms)

    def explore(self) -> dict:
        """One round: ``explore_steps`` explorer updates, then ``explore_samples`` new bank
        rows. Returns the round's figures: the mean disagreement (``explore_divergence``) of the
        teacher's and the student's outputs at the first and the last step, the share of the last step's
        samples the teacher takes for their class, and the batch-norm prior's distance."""
        c, self.round = self.config, self.round + 1
        first = last = taken = prior = 0.0
        for step in range(c.explore_steps):
            disagreement, taken, prior = self._step(self._noise(c.explore_batch_size),
                                                    self._labels(c.explore_batch_size, step))
            first = float(disagreement) if step == 0 else first
            last = float(disagreement)
        written = 0
        while written < c.explore_samples:
            count = min(256, c.explore_samples - written)
            labels = self._labels(count, written)
            rows = (self.next_row + tf.range(count)) % self.bank.images.shape[0]
            self.bank.images.scatter_nd_update(rows[:, None], self._draw(self._noise(count), labels))
            self.bank.labels.scatter_nd_update(rows[:, None], labels)
            self.next_row = (self.next_row + count) % self.bank.images.shape[0]
            written += count
        return {"explore_disagreement_first": first, "explore_disagreement_last": last,
                "explore_teacher_label_accuracy": float(taken), "explore_batchnorm_distance": float(prior)}


class BankExploration(keras.callbacks.Callback):
    """Calls :meth:`BankExplorer.explore` before every epoch but the first and adds its
    figures to that epoch's logs (place it before the callbacks that write logs);
    ``progress``: a callable for one line per round, or None; ``grid_path``: where the
    explorer's last samples are drawn at the end, one row per class (None: nowhere)."""

    def __init__(self, explorer: BankExplorer, progress=None, grid_path=None, spectrograms: bool = False):
        super().__init__()
        self.explorer, self.progress, self.figures = explorer, progress, {}
        self.grid_path, self.spectrograms = grid_path, spectrograms

    def on_train_end(self, logs=None):
        if self.grid_path is not None and self.explorer.round:
            from pathlib import Path

            from .callbacks import save_png

            Path(self.grid_path).parent.mkdir(parents=True, exist_ok=True)
            save_png(self.grid_path, self.explorer.grid(spectrograms=self.spectrograms))

    def on_epoch_begin(self, epoch, logs=None):
        self.figures = {}
        if epoch == 0:
            return
        self.figures = self.explorer.explore()
        if self.progress is not None:
            f = self.figures
            self.progress(f"  explorer round {self.explorer.round}: teacher-student disagreement "
                          f"({self.explorer.config.explore_divergence}) "
                          f"{f['explore_disagreement_first']:.3f} -> {f['explore_disagreement_last']:.3f}, "
                          f"{f['explore_teacher_label_accuracy']:.0%} taken for their class"
                          + (f", batch-norm distance {f['explore_batchnorm_distance']:.2f}"
                             if self.explorer.uses_batchnorm_prior else ""))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.figures)
