"""``ConditionalGAN``: a ``keras.Model`` whose ``train_step`` implements the GAN objective.

Trained with plain ``model.fit(dataset_of_(image, label), callbacks=[...])``, so Keras
callbacks (TensorBoard, BackupAndRestore, ModelCheckpoint, TerminateOnNaN) work as usual.

Each step (Goodfellow et al., 2014, alternating updates):

1. discriminator: minimise ``L_D(D(x, y), D(G(z, y), y))`` (+ ``lambda * GP`` for WGAN-GP);
2. generator: minimise ``L_G(D(G(z', y), y)) + w_T * CE(T(G(z', y)), y)`` with fresh
   noise ``z'``; the second term only with a ``teacher`` and ``config.teacher_weight`` ``w_T``
   > 0 (AC-GAN's classifier term, Odena et al., 2017, with the trained teacher); with
   ``config.teacher_margin`` ``m`` the term is the hinge ``max(0, m - (T_y - max_{c != y} T_c))``
   instead of the cross-entropy;
   the teacher term's weight ramps up linearly over ``config.teacher_ramp_steps`` steps;
   with ``config.bn_weight`` ``w_BN`` > 0 and a teacher with batch norm, ``+ w_BN *
   L_BN(G(z', y))`` (DeepInversion's statistics prior, :func:`losses.batchnorm_statistics_loss`),
   toward the teacher's running statistics or, with ``config.bn_target`` "real", toward its
   statistics on real training images (:meth:`ConditionalGAN.set_batchnorm_targets`); with
   ``config.bn_view_shift`` ``s`` > 0 the prior and the teacher term see each sample shifted
   by up to ``s`` pixels with zero fill (:meth:`ConditionalGAN.teacher_view`; the pipeline
   measures ``s`` from the teacher for "auto", :mod:`gan_views`);
   with ``config.class_feature_weight`` ``w_CF`` > 0, ``+ w_CF * L_CF(G(z', y), y)``: the mean and
   spread of each class's samples in the teacher's penultimate features against those of the
   real images of that class (:func:`losses.class_feature_statistics_loss`, targets measured by
   :meth:`ConditionalGAN.set_class_feature_targets`), on the same views;
   with ``config.diversity_weight`` ``w_MS`` > 0, the batch is drawn in pairs of one class and
   ``- w_MS * |G(z1, y) - G(z2, y)| / |z1 - z2|`` (mode seeking, :func:`losses.mode_seeking_ratio`),
   or with ``config.diversity_space`` "teacher_features" the distance between the teacher's
   penultimate features of the two samples' views instead (:func:`losses.feature_mode_seeking_ratio`);
   Both discriminator inputs first go through ``DiffAugment`` when ``config.diff_augment``
   names policies (Zhao et al., 2020; :mod:`augment`), in both steps; a projected
   discriminator (:func:`networks.build_projected_discriminator`) sees them through the
   teacher's feature maps;
3. EMA generator: ``w_ema <- d * w_ema + (1 - d) * w`` with the warm-up
   ``d = min(decay, (1 + t) / (10 + t))`` (Yazici et al., 2019, "The Unusual
   Effectiveness of Averaging in GAN Training").

Losses are per-example and averaged over the *global* batch
(:func:`losses.average_over_global_batch`), so the step stays correct under
``tf.distribute``. ``call(inputs)`` runs the EMA generator, so ``predict([z, y])``
returns samples.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from . import config as configs, losses, quality
from .augment import diff_augment, translate
from .config import GANConfig
from .errors import UsageError
from .gan_views import largest_view_shift
from .teacher_taps import batchnorm_input_statistics, batchnorm_taps, penultimate_taps
from .training import DirectedMetrics, PrebuiltModel, directed_mean, per_replica_seed, replica_mean


def check_view_shift(config: GANConfig, image_shape, measured_here: bool = True) -> None:
    """Refuse (``UsageError``) a ``bn_view_shift`` of half the images' smaller side or more:
    views shifted that far would be mostly zero fill. ``auto`` is measured within those bounds
    by the pipeline (:mod:`gan_views`); a model built without it (``measured_here`` false:
    :class:`ConditionalGAN`) needs the number."""
    if config.bn_view_shift == "auto":
        if not measured_here:
            raise UsageError("gan.bn_view_shift auto is measured by the pipeline on real training images "
                             "(tfgan_compress.gan_views.measure_view_shift); give ConditionalGAN the shift it found")
        return
    if config.bn_view_shift > largest_view_shift(image_shape):
        raise UsageError(f"gan.bn_view_shift {config.bn_view_shift} must be below half the images' smaller side "
                         f"({min(image_shape[:2])} pixels); the teacher's pad-and-crop shift, e.g. 4 for 32x32")


@keras.saving.register_keras_serializable(package="tfgan_compress")
class ConditionalGAN(PrebuiltModel):
    """``G(z, y)`` against ``D(x, y)``, trained by ``fit`` on ``(image, label)`` batches.
    (Long, as Keras models are: trackers, ``compile``, ``train_step`` and serialisation
    belong together.)

    ``config``: the ``gan`` section (loss family, EMA decay, learning rates for the default
    optimizers); ``gan_loss``: a :class:`losses.GANLoss` to use instead of ``config.loss``
    (such a model trains and checkpoints, but cannot be saved as ``.keras``); ``teacher``: a
    trained classifier of the same images (logits), frozen here. With a teacher the
    generator loss gains ``config.teacher_weight * CE(T(G(z, y)), y)``
    (:func:`losses.teacher_class_loss`), and ``evaluate()`` reports sample quality.

    Keras conventions: ``model.optimizer`` is the :class:`training.OptimizerSet` of both
    optimizers, so ``LearningRateScheduler``/``ReduceLROnPlateau`` act on both (and
    :class:`callbacks.OnOptimizer` points one at a single optimizer); losses and accuracies
    have directions for ``EarlyStopping``/``ModelCheckpoint``; the compile config reloads,
    so ``keras.models.load_model(path).fit(...)`` goes on with the optimizers' state and
    step count. Logged per step: ``d_loss``, ``g_loss``, ``d_real``, ``d_fake`` (mean
    logits), ``g_grad_norm``, ``d_grad_norm`` (global gradient norms), ``g_teacher_loss``
    (with a teacher), both learning rates. ``evaluate(real_dataset)``: the same losses on
    real images against EMA samples of their labels, and with a teacher
    ``sample_teacher_accuracy`` (share of samples the teacher assigns to their class) and
    ``frechet_distance`` (real against generated, teacher penultimate features;
    :class:`quality.FrechetDistance`).
    """

    def __init__(self, generator, discriminator, config: GANConfig | None = None, seed: int = 0,
                 gan_loss: losses.GANLoss | None = None, teacher: keras.Model | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config or GANConfig()
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = keras.models.clone_model(generator)
        self.ema_generator.set_weights(generator.get_weights())
        self.ema_generator.trainable = False
        self.ema_generator.name = "ema_generator"  # not a second "generator" in summary()
        self.noise_dim = int(generator.inputs[0].shape[-1])
        check_view_shift(self.config, generator.outputs[0].shape[1:], measured_here=False)
        self.seed = seed
        self.custom_loss = gan_loss is not None
        self.gan_loss = gan_loss or losses.gan_loss(self.config.loss, self.config.gradient_penalty_weight)
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.teacher = teacher
        self.teacher_features = None
        self.bn_model, self.bn_layers = None, []
        if teacher is not None:
            teacher.trainable = False
            if self.config.bn_weight > 0:  # the teacher's logits and its batch-norm inputs in one pass
                self.bn_model, self.bn_layers = batchnorm_taps(teacher, with_output=True)
            try:
                self.teacher_features = quality.penultimate_features(teacher)
            except ValueError:  # no top-level Dense layer: no Frechet distance
                pass
        # class-conditional feature matching: the teacher's logits, batch-norm inputs (with the prior) and
        # penultimate features in one pass; its targets are weights that set_class_feature_targets measures
        # (mode seeking in the teacher's features reads the same model)
        self.class_feature_model = None
        if teacher is not None and (self.config.class_feature_weight > 0 or self.diversity_in_features):
            self.class_feature_model = penultimate_taps(teacher, with_batchnorm=self.bn_model is not None)
        if self.class_feature_model is None and self.diversity_in_features:  # no features: pixels, as noted
            self.config = dataclasses.replace(self.config, diversity_space="pixels")
        self.class_feature_targets = None
        if self.class_feature_targets_used:
            classes, width = (int(teacher.outputs[0].shape[-1]), int(self.class_feature_model.outputs[-1].shape[-1]))
            self.class_feature_targets = [
                self.add_weight(shape=shape, initializer="zeros", dtype="float32", trainable=False,
                                name=f"class_feature_{kind}")
                for kind, shape in (("means", (classes, width)), ("stds", (classes, width)), ("scale", (width,)),
                                    ("known", (classes,)))]
            self.class_feature_targets_measured = self.add_weight(
                shape=(), initializer="zeros", dtype="float32", trainable=False, name="class_feature_targets_measured")
        # the prior's target per layer: the running statistics, or (bn_target "real") weights that
        # set_batchnorm_targets fills with those of real images (saved with the model, so a resumed run keeps them)
        self.bn_targets = list(self.bn_layers)
        if self.bn_model is not None and self.config.bn_target == "real":
            self.bn_targets = [
                tuple(self.add_weight(shape=tuple(layer.moving_mean.shape), initializer="zeros", dtype="float32",
                                      trainable=False, name=f"bn_target_{kind}_{i}") for kind in ("mean", "variance"))
                for i, layer in enumerate(self.bn_layers)]
            for (mean, variance), layer in zip(self.bn_targets, self.bn_layers):
                mean.assign(layer.moving_mean)
                variance.assign(layer.moving_variance)
            # 1 once set_batchnorm_targets has measured them: fit refuses to train toward unmeasured targets
            self.bn_targets_measured = self.add_weight(shape=(), initializer="zeros", dtype="float32",
                                                       trainable=False, name="bn_targets_measured")
        # Number of EMA updates so far (for the decay warm-up); saved with the model.
        self.ema_updates = self.add_weight(shape=(), initializer="zeros", dtype="float32",
                                           trainable=False, name="ema_updates")
        self.loss_trackers = [directed_mean("d_loss", "down"), directed_mean("g_loss", "down"),
                              directed_mean("d_real"), directed_mean("d_fake")]
        self.train_trackers = self.loss_trackers + [directed_mean("g_grad_norm"), directed_mean("d_grad_norm")]
        if self.gan_loss.penalty is not None:
            self.train_trackers.append(directed_mean(self.gan_loss.penalty_name, "down"))
        if self.uses_teacher_loss:
            self.train_trackers.append(directed_mean("g_teacher_loss", "down"))
        if self.bn_model is not None:
            self.train_trackers.append(directed_mean("g_batchnorm_loss", "down"))
        if self.class_feature_targets_used:
            self.train_trackers.append(directed_mean("g_class_feature_loss", "down"))
        if self.config.diversity_weight > 0:
            self.train_trackers.append(directed_mean("g_diversity", "up"))
        self.eval_trackers = list(self.loss_trackers)
        if teacher is not None:
            self.eval_trackers.append(directed_mean("sample_teacher_accuracy", "up"))
        if self.teacher_features is not None:
            self.eval_trackers.append(quality.FrechetDistance(int(self.teacher_features.outputs[0].shape[-1])))
        self.metric_list = DirectedMetrics(self.train_trackers + self.eval_trackers[len(self.loss_trackers):])
        # The functional sub-networks are built, so the GAN is too (BackupAndRestore needs it).
        self.built = True

    def set_batchnorm_targets(self, real_images, batch_size: int = 256) -> None:
        """With ``bn_target`` "real": the prior's targets become the per-channel mean and
        variance of each tapped layer's input over ``real_images`` (the teacher in inference
        mode). A teacher's running statistics are those of its augmented training views: for a
        teacher trained with pad-and-crop they hold the edges of the zero borders, which the
        generator then draws (bright frames) to match them; the real images' own statistics
        ask for the images themselves. A feature-matching prior at every batch-norm depth
        (Salimans et al., 2016, "Improved Techniques for Training GANs", feature matching)."""
        if self.bn_model is None or self.config.bn_target != "real":
            return
        for (mean, variance), (real_mean, real_variance) in zip(
                self.bn_targets, batchnorm_input_statistics(self.bn_model, real_images, batch_size)):
            mean.assign(real_mean)
            variance.assign(real_variance)
        self.bn_targets_measured.assign(1.0)

    def set_class_feature_targets(self, real_images, real_labels, batch_size: int = 256) -> None:
        """With ``class_feature_weight`` > 0 (and a teacher with a ``Dense`` layer): the targets
        of :func:`losses.class_feature_statistics_loss`, the per-class mean and standard
        deviation of the teacher's penultimate features over ``real_images`` of each class and
        their overall standard deviation, the teacher in inference mode, on the views its terms
        see (shifted by up to ``bn_view_shift`` pixels with zero fill, fixed seed). A class of
        fewer than two images has no spread to measure: the term leaves it out. Returns the
        classes left out; refused (:class:`UsageError`) for labels outside the classes or
        when no class has two images."""
        import numpy as np

        if not self.class_feature_targets_used:
            return []
        labels = np.asarray(real_labels).reshape(-1).astype(np.int64)
        classes = int(self.class_feature_targets[0].shape[0])
        counts = np.bincount(labels, minlength=classes)
        if len(labels) != len(real_images) or labels.min() < 0 or len(counts) > classes or counts.max() < 2:
            raise UsageError(f"class feature targets need labels in 0..{classes - 1}, one per image, and two real "
                             f"images of a class at least; got {counts.tolist()} images per class")
        shift = self.config.bn_view_shift if isinstance(self.config.bn_view_shift, int) else 0
        features = []
        for start in range(0, len(labels), batch_size):
            batch = tf.convert_to_tensor(np.asarray(real_images[start:start + batch_size], np.float32))
            if shift:
                batch = translate(batch, tf.constant([start, 1000], tf.int64), shift, shift)
            features.append(np.asarray(self.class_feature_model(batch, training=False)[-1], np.float64))
        features = np.concatenate(features).reshape(len(labels), -1)
        known = counts >= 2
        means = np.stack([features[labels == c].mean(0) if known[c] else np.zeros(features.shape[1])
                          for c in range(classes)])
        stds = np.stack([features[labels == c].std(0, ddof=1) if known[c] else np.zeros(features.shape[1])
                         for c in range(classes)])
        for weight, value in zip(self.class_feature_targets, (means, stds, features.std(0) + 1e-3, known)):
            weight.assign(value.astype(np.float32))
        self.class_feature_targets_measured.assign(1.0)
        return [int(c) for c in np.flatnonzero(~known)]

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``; refused (:class:`UsageError`) with ``bn_target`` "real" before
        :meth:`set_batchnorm_targets` has measured the targets (training would silently
        pull toward the running statistics)."""
        if self.bn_model is not None and self.config.bn_target == "real" and not float(self.bn_targets_measured):
            raise UsageError("gan.bn_target is 'real' but the batch-norm targets were not measured: call "
                             "set_batchnorm_targets(real training images) before fit (the pipeline does)")
        if self.class_feature_targets_used and not float(self.class_feature_targets_measured):
            raise UsageError("gan.class_feature_weight is on but its targets were not measured: call "
                             "set_class_feature_targets(real training images, labels) before fit (the pipeline does)")
        return super().fit(*args, **kwargs)

    @property
    def diversity_in_features(self) -> bool:
        """Mode seeking on, measured in the teacher's penultimate features."""
        return (self.teacher is not None and self.config.diversity_weight > 0
                and self.config.diversity_space == "teacher_features")

    @property
    def class_feature_targets_used(self) -> bool:
        """Class-conditional feature matching on (a teacher with features to read)."""
        return self.class_feature_model is not None and self.config.class_feature_weight > 0

    @property
    def uses_teacher_loss(self) -> bool:
        return self.teacher is not None and self.config.teacher_weight > 0

    def teacher_weight_now(self):
        """``config.teacher_weight``, ramped up linearly over ``config.teacher_ramp_steps``
        generator steps (the generator optimizer's step count)."""
        if not self.config.teacher_ramp_steps:
            return self.config.teacher_weight
        done = tf.cast(self.generator_optimizer.iterations, tf.float32) / float(self.config.teacher_ramp_steps)
        return self.config.teacher_weight * tf.minimum(1.0, done)

    def teacher_loss(self, teacher_logits, labels):
        """Per-example teacher term: :func:`losses.teacher_class_loss` (cross-entropy), or with
        ``config.teacher_margin`` set, :func:`losses.class_margin_loss` at that margin."""
        if self.config.teacher_margin is None:
            return losses.teacher_class_loss(teacher_logits, labels)
        return losses.class_margin_loss(labels, teacher_logits, self.config.teacher_margin)

    def compile(self, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """Two optimizers (instances or names; default: Adam with the config's learning rates
        and betas); ``jit_compile``, ``steps_per_execution`` and ``run_eagerly`` go to
        ``keras.Model.compile``; ``optimizer``, ``loss`` and ``metrics`` are refused (nothing
        would use them)."""
        c = self.config

        def adam(rate, name):
            return keras.optimizers.Adam(rate, beta_1=c.beta_1, beta_2=c.beta_2, name=name)

        self.compile_optimizers({
            "generator_optimizer": (generator_optimizer or adam(c.generator_learning_rate, "generator_adam"),
                                    self.generator),
            "discriminator_optimizer": (discriminator_optimizer or adam(c.discriminator_learning_rate,
                                                                        "discriminator_adam"), self.discriminator),
        }, **kwargs)

    def call(self, inputs, training=False):
        return self.ema_generator(inputs, training=False)

    def sample_noise(self, batch_size):
        """Standard normal noise; a different stream on every replica of a strategy."""
        return tf.random.stateless_normal((batch_size, self.noise_dim), seed=per_replica_seed(self.noise_seed))

    def train_step(self, data):
        """``data`` is ``(images, labels)``, or ``(images, labels, noise)`` with ``noise`` of
        shape ``[batch, 2, noise_dim]`` (discriminator and generator step) for reproducible
        steps; otherwise the noise is drawn here."""
        if len(data) == 3:
            real_images, labels, given_noise = data
            d_noise, g_noise = given_noise[:, 0], given_noise[:, 1]
        else:
            real_images, labels = data
            batch = tf.shape(real_images)[0]
            d_noise, g_noise = self.sample_noise(batch), self.sample_noise(batch)
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        loss = self.gan_loss
        augment = self.augment

        # 1. discriminator step
        with tf.GradientTape() as tape:
            fake_images = self.generator([d_noise, labels], training=True)
            if self.config.discriminator_taps:  # no batch norm in it: one call on both halves is the same
                both = self.discriminator([augment(tf.concat([real_images, fake_images], axis=0)),
                                           tf.concat([labels, labels], axis=0)], training=True)
                real_logits, fake_logits = tf.split(both, 2, axis=0)
            else:
                real_logits = self.discriminator([augment(real_images), labels], training=True)
                fake_logits = self.discriminator([augment(fake_images), labels], training=True)
            per_example = loss.discriminator_loss(real_logits, fake_logits)
            if loss.penalty is not None:
                penalty = loss.penalty(lambda x, y: self.discriminator([x, y], training=True),
                                       real_images, fake_images, labels, per_replica_seed(self.noise_seed))
                per_example = per_example + loss.penalty_weight * penalty
            d_loss = losses.average_over_global_batch(per_example)
        d_grads = tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.discriminator_optimizer.apply(d_grads, self.discriminator.trainable_variables)

        # 2. generator step, fresh noise (with the diversity term: pairs of one class)
        g_labels, half = labels, tf.shape(labels)[0] // 2
        if self.config.diversity_weight > 0:
            g_labels = tf.concat([labels[:half], labels[:half], labels[2 * half:]], axis=0)
        with tf.GradientTape() as tape:
            g_images = self.generator([g_noise, g_labels], training=True)
            g_logits = self.discriminator([augment(g_images), g_labels], training=True)
            g_loss = losses.average_over_global_batch(loss.generator_loss(g_logits))
            if self.class_feature_model is not None:
                teacher_logits, *bn_inputs, class_features = self.class_feature_model(
                    self.teacher_view(g_images), training=False)
                if self.class_feature_targets_used:
                    class_feature_loss = losses.class_feature_statistics_loss(class_features, g_labels,
                                                                              *self.class_feature_targets)
                    g_loss = g_loss + self.config.class_feature_weight * class_feature_loss / tf.cast(
                        tf.distribute.get_strategy().num_replicas_in_sync, tf.float32)
            elif self.bn_model is not None:
                teacher_logits, *bn_inputs = self.bn_model(self.teacher_view(g_images), training=False)
            elif self.uses_teacher_loss:
                teacher_logits = self.teacher(self.teacher_view(g_images), training=False)
            if self.bn_model is not None:
                bn_loss = losses.batchnorm_statistics_loss(bn_inputs, self.bn_targets)
                g_loss = g_loss + self.config.bn_weight * bn_loss / tf.cast(
                    tf.distribute.get_strategy().num_replicas_in_sync, tf.float32)
            if self.uses_teacher_loss:
                teacher_loss = losses.average_over_global_batch(self.teacher_loss(teacher_logits, g_labels))
                g_loss = g_loss + self.teacher_weight_now() * teacher_loss
            if self.config.diversity_weight > 0:
                if self.diversity_in_features:
                    diversity = losses.feature_mode_seeking_ratio(class_features[:half], class_features[half:2 * half],
                                                                  g_noise[:half], g_noise[half:2 * half])
                else:
                    diversity = losses.mode_seeking_ratio(g_images[:half], g_images[half:2 * half],
                                                          g_noise[:half], g_noise[half:2 * half])
                g_loss = g_loss - self.config.diversity_weight * losses.average_over_global_batch(
                    tf.concat([diversity, diversity], axis=0))
        g_grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.generator_optimizer.apply(g_grads, self.generator.trainable_variables)

        # 3. EMA of the generator weights (BatchNorm statistics included)
        self._update_ema()

        # Report per-replica values rescaled to the mean over the global batch.
        values = [replica_mean(d_loss), replica_mean(g_loss), tf.reduce_mean(real_logits),
                  tf.reduce_mean(fake_logits), tf.linalg.global_norm(g_grads), tf.linalg.global_norm(d_grads)]
        if loss.penalty is not None:
            values.append(tf.reduce_mean(penalty))
        if self.uses_teacher_loss:
            values.append(replica_mean(teacher_loss))
        if self.bn_model is not None:
            values.append(bn_loss)
        if self.class_feature_targets_used:
            values.append(class_feature_loss)
        if self.config.diversity_weight > 0:
            values.append(tf.reduce_mean(diversity))
        for tracker, value in zip(self.train_trackers, values):
            tracker.update_state(value)
        return self.step_logs(self.train_trackers,
                              generator_learning_rate=tf.identity(self.generator_optimizer.learning_rate),
                              discriminator_learning_rate=tf.identity(self.discriminator_optimizer.learning_rate))

    def test_step(self, data):
        """Real ``(images, labels)`` against EMA samples of the same labels: the GAN losses
        and mean logits (no augmentation, no update) and, with a teacher, the sample
        quality (``sample_teacher_accuracy``, ``frechet_distance``)."""
        real_images, labels = data[0], tf.cast(tf.reshape(data[1], [-1]), tf.int32)
        fake_images = self.ema_generator([self.sample_noise(tf.shape(real_images)[0]), labels], training=False)
        real_logits = self.discriminator([real_images, labels], training=False)
        fake_logits = self.discriminator([fake_images, labels], training=False)
        values = [tf.reduce_mean(self.gan_loss.discriminator_loss(real_logits, fake_logits)),
                  tf.reduce_mean(self.gan_loss.generator_loss(fake_logits)),
                  tf.reduce_mean(real_logits), tf.reduce_mean(fake_logits)]
        for tracker, value in zip(self.loss_trackers, values):
            tracker.update_state(value)
        if self.teacher is not None:
            predicted = tf.argmax(self.teacher(fake_images, training=False), axis=-1, output_type=tf.int32)
            self.eval_trackers[len(self.loss_trackers)].update_state(tf.cast(tf.equal(predicted, labels), tf.float32))
        if self.teacher_features is not None:
            self.eval_trackers[-1].update_state(self.teacher_features(real_images, training=False),
                                                self.teacher_features(fake_images, training=False))
        return self.step_logs(self.eval_trackers)

    def augment(self, images):
        """DiffAugment of a discriminator input (identity without ``config.diff_augment``)."""
        if not self.config.diff_augment:
            return images
        return diff_augment(images, self.config.diff_augment, per_replica_seed(self.noise_seed))

    def teacher_view(self, images):
        """The samples as the teacher saw its training images (``config.bn_view_shift`` > 0):
        each shifted by up to that many pixels with zero fill, the views that its running
        statistics were gathered on when it was trained with pad-and-crop. Without them the
        prior asks the samples themselves for those views' border edges: on the CIFAR-10
        teacher the prior's distance is 32.6 for real photos and 2.9 for their views
        (``benchmarks/bn_statistics.py``). Identity when 0."""
        shift = self.config.bn_view_shift
        if not shift:
            return images
        return translate(images, per_replica_seed(self.noise_seed) + [1000, 0], shift, shift)

    def _update_ema(self):
        step = self.ema_updates + 1.0
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for ema_weight, weight in zip(self.ema_generator.weights, self.generator.weights):
            ema_weight.assign(decay * ema_weight + (1.0 - decay) * tf.cast(weight, ema_weight.dtype))
        self.ema_updates.assign(step)

    def get_config(self):
        if self.custom_loss:
            raise ValueError("a ConditionalGAN with a custom gan_loss cannot be saved as .keras; save its "
                             "generator and discriminator instead")
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "config": dataclasses.asdict(self.config),
            "seed": self.seed,
            "teacher": keras.saving.serialize_keras_object(self.teacher) if self.teacher is not None else None,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        config["config"] = configs.section_from_dict(GANConfig, config["config"], "gan")
        if config.get("teacher") is not None:
            config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        return cls(**config)
