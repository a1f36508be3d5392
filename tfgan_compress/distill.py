"""Knowledge distillation of the student on generator samples only.

:func:`distill_on_generator` takes the teacher, the (EMA) generator and a fresh student,
and nothing else: it has no parameter through which real training images could reach the
student. Every batch is drawn fresh from the generator inside the ``train_step``:

1. class labels ``y`` uniform over the classes (the ``fit`` input is just these labels);
2. images ``x = G(z, y)``, ``z ~ N(0, I)``; with ``mixup``, half the batch is replaced by
   convex mixes ``lam * x_i + (1 - lam) * x_j``, ``lam ~ U(0, 1)`` (Zhang et al., 2018),
   which puts training points between the classes where the decision boundary lies; with
   ``class_blend``, a share of the images come from a blend of two classes' codes instead
   (:func:`class_blend_generator`), between the classes in the generator's own space;
3. loss ``T^2 KL(softmax(t/T) || softmax(s/T))`` (Hinton et al., 2015) on teacher and
   student logits; with ``feature_weight`` = w, plus ``w`` times the penultimate-feature
   terms of :func:`losses.feature_distillation_loss` (SRRL, Yang et al., 2021), the student's
   features through a linear map trained beside it (:func:`feature_distillation_parts`).

The generator and teacher are frozen. Trained with ``fit``, so callbacks work.

With ``sample_bank`` = N > 0, step 2's generator images are drawn once, N of them (class
labels balanced, noise as above), and each step takes a shuffled batch of that bank instead
(every epoch of N / batch steps sees each sample once); augmentation, mixing and the
teacher's labels are still computed on every step's own view. A step then costs the teacher
and the student only, not the generator; a bank is worth it only where it is measured at
least as good as fresh samples in equal time (benchmarks/README.md). With
``bank_teacher_logits`` the teacher labels each bank sample once, as it is drawn, and a
step's views take those logits (:func:`mix_teacher_logits` for mixes): a step then costs the
student's update only, and the labels of shifted and flipped views are those of the sample
("fixed teacher", Beyer et al., 2022; the teacher was trained to be invariant to them).
With ``explore_steps``, a copy of the generator moves between epochs toward samples the
student still gets wrong and writes some into the bank (:mod:`bank_explorer`).
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from . import losses
from .config import DistillConfig
from .errors import UsageError
from .teacher import image_augmenter
from .training import (DirectedMetrics, SerializableDistiller, TeacherAgreement, cosine_adam, directed_mean,
                       label_batches, per_replica_seed)

__all__ = ["GeneratorDistiller", "feature_distillation_parts", "mix_pairs", "mix_teacher_logits",
           "class_blend_generator", "blended_class_weights", "distill_on_generator", "sample_bank_bytes", "check_sample_bank_fits",
           "sample_bank_batches", "draw_sample_bank", "bank_order", "bank_batches", "distill_on_images"]


@keras.saving.register_keras_serializable(package="tfgan_compress")
class GeneratorDistiller(SerializableDistiller):
    """Student trained on teacher soft labels of generator samples (``fit`` on label batches).
    (Long, as Keras models are: trackers, ``compile``, ``train_step`` and the sampling it
    calls belong together.)

    ``config``: the ``distill`` section (temperature, mixup, shift, hard-latent steps).
    """

    config_class, config_section = DistillConfig, "distill"

    def __init__(self, teacher, generator, student, config: DistillConfig | None = None, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.config = config = config or DistillConfig()
        self.teacher = teacher
        self.generator = generator  # None: trained on given images only (distill_on_images)
        self.student = student
        self.teacher.trainable = False
        if generator is not None:
            generator.trainable = False
        self.noise_dim = int(generator.inputs[0].shape[-1]) if generator is not None else None
        self.num_classes = int(teacher.outputs[0].shape[-1])
        # shares the generator's (frozen) layers; saved and restored with it
        self.blend_generator = (class_blend_generator(generator) if config.class_blend and generator is not None
                                else None)
        image_shape = (generator.outputs if generator is not None else teacher.inputs)[0].shape[1:]
        self.augmenter = image_augmenter(image_shape, config.augment_shift, config.augment_flip,
                                         seed, config.augment_zoom, config.augment_color)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.bank = None  # a bank_explorer.WritableBank whose row numbers fit gives, where one is set
        self.teacher_penultimate = self.student_with_projection = None
        if config.feature_weight:
            self.teacher_penultimate, self.student_with_projection, self.teacher_head = feature_distillation_parts(
                teacher, student)
        # what the optimizer updates: the student, and the projection where there is one
        self.trained_part = student if self.student_with_projection is None else self.student_with_projection
        self.loss_tracker = directed_mean("distill_loss", "down")
        self.agreement_tracker = TeacherAgreement()
        self.conditioning_tracker = directed_mean("generator_label_accuracy", "up")
        trackers = [self.loss_tracker, self.agreement_tracker, self.conditioning_tracker]
        if config.feature_weight:
            self.feature_tracker = directed_mean("feature_loss", "down")
            trackers.append(self.feature_tracker)
        self.metric_list = DirectedMetrics(trackers)
        self.built = True  # all parts are built functional models (BackupAndRestore needs it)

    def compile(self, optimizer=None, **kwargs):
        """As ``keras.Model.compile``; default optimizer: Adam with ``config.learning_rate``
        decayed along a cosine over ``epochs * steps_per_epoch * teacher_echo`` updates. With ``student_ema``
        ``= m``, the optimizer keeps ``w_avg <- m w_avg + (1 - m) w`` after every step and
        ``fit`` ends by writing it into the student (Polyak & Juditsky, 1992); an
        ``optimizer`` given with ``student_ema`` set must itself have ``use_ema=True``."""
        c = self.config
        if optimizer is not None and c.student_ema and not getattr(optimizer, "use_ema", False):
            raise ValueError(f"{type(self).__name__}.compile: config.student_ema = {c.student_ema} averages the "
                             f"student's weights through the optimizer; pass one built with use_ema=True, "
                             f"ema_momentum={c.student_ema}, or leave out optimizer=")
        averaging = {"use_ema": True, "ema_momentum": c.student_ema} if c.student_ema else {}
        optimizer = optimizer or cosine_adam(c.learning_rate, c.epochs * c.steps_per_epoch * c.teacher_echo,
                                             **averaging)
        self.compile_optimizers({"optimizer": (optimizer, self.trained_part)}, **kwargs)

    def call(self, images, training=False):
        return self.student(images, training=training)

    def synthesize(self, labels):
        """Generator images for ``labels``, as :meth:`views` of them.

        The noise is ``z ~ N(0, noise_scale^2 I)``: a scale above 1 draws the tails of the
        generator's distribution more often (the reverse of BigGAN's truncation trick, Brock
        et al., 2019), where its samples are rarer.
        With ``hard_latent_steps``, the noise first climbs the teacher-student divergence:
        ``z <- z + eta * g / ||g||``, ``g = grad_z KL(T(G(z)) || S(G(z)))``, so that the
        samples move, along the generator's manifold, to where the student is still wrong.
        With ``augment_shift``, each image is translated by up to that many pixels, and with
        ``augment_flip`` flipped left-right at random, with ``augment_zoom`` zoomed in or out
        and with ``augment_color`` changed in brightness, contrast and saturation (the teacher
        labels the augmented image, so any input is a valid training point).
        With ``mixup``, about half the images are mixed with a random partner from the batch
        (:func:`mix_pairs`: a convex mix, or with ``cutmix`` a pasted box).
        With ``class_blend``, that share of the images is drawn from a blend of their class
        and another (:func:`blended_class_weights`); the mask returned marks them as mixed.
        """
        batch = tf.shape(labels)[0]
        seed = per_replica_seed(self.seed_generator)
        noise = tf.random.stateless_normal((batch, self.noise_dim), seed=seed, stddev=self.config.noise_scale)
        for _ in range(self.config.hard_latent_steps):
            noise = self.harder_noise(noise, labels)
        if self.blend_generator is None:
            return self.views(self.generator([noise, labels], training=False), seed)[:2]
        weights, unblended = blended_class_weights(labels, self.num_classes, self.config.class_blend, seed)
        images, unmixed, _ = self.views(self.blend_generator([noise, weights], training=False), seed)
        return images, unmixed * unblended

    def views(self, images, seed, teacher_logits=None):
        """The training views of generator ``images`` (augmented, mixed as :meth:`synthesize`
        says), a 0/1 mask of those left unmixed, and the images' stored ``teacher_logits``
        (if given) mixed as the images are (:func:`mix_teacher_logits`), else None."""
        if self.augmenter is not None:
            images = self.augmenter(images, training=True)
        if not self.config.mixup:
            return images, tf.ones([tf.shape(images)[0]]), teacher_logits
        images, unmixed, own_share, partner = _mix(images, seed, self.config.cutmix)
        if teacher_logits is not None:
            teacher_logits = mix_teacher_logits(teacher_logits, own_share, partner, self.config.temperature)
        return images, unmixed, teacher_logits

    def harder_noise(self, noise, labels):
        """One normalised gradient-ascent step of the noise on the per-example KL."""
        with tf.GradientTape() as tape:
            tape.watch(noise)
            images = self.generator([noise, labels], training=False)
            divergence = losses.distillation_loss(self.teacher(images, training=False),
                                                  self.student(images, training=False), self.config.temperature)
        grad = tape.gradient(divergence, noise)
        grad = grad / (tf.norm(grad, axis=-1, keepdims=True) + 1e-12)
        return tf.stop_gradient(noise + self.config.hard_latent_step_size * grad)

    def _student_update(self, images, teacher_logits, teacher_features):
        """One optimizer step of the student on ``T^2 KL`` (and the feature terms); returns
        its logits, the per-example KL and the per-example feature terms (None without)."""
        feature_terms = None
        with tf.GradientTape() as tape:
            if self.student_with_projection is not None:
                student_logits, projected = self.student_with_projection(images, training=True)
            else:
                student_logits = self.student(images, training=True)
            per_example = losses.distillation_loss(teacher_logits, student_logits, self.config.temperature)
            loss = losses.average_over_global_batch(per_example)
            if self.student_with_projection is not None:
                regressed = self.teacher_head(projected, training=False)
                feature_terms = losses.feature_distillation_loss(teacher_features, projected, teacher_logits,
                                                                 regressed, self.config.temperature)
                loss = loss + self.config.feature_weight * losses.average_over_global_batch(feature_terms)
        variables = self.trained_part.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return student_logits, per_example, feature_terms

    def train_step(self, data):
        """Teacher logits of fresh samples -> student loss ``T^2 KL`` -> student update
        (``teacher_echo`` updates on the same views and logits).
        ``data``: a batch of class labels, or ``(images, labels)`` of a sample bank (label -1:
        a blend of two classes), or ``(images, labels, teacher_logits)`` of a bank the teacher
        labelled when it was drawn (``bank_teacher_logits``: no teacher call here)."""
        stored_logits = None
        if self.bank is not None:  # row numbers of a bank written between epochs, read here (bank_explorer)
            data = self.bank.rows(data)
        if isinstance(data, (tuple, list)):  # a batch of the sample bank
            images, labels = data[0], data[1]
            stored_logits = data[2] if len(data) > 2 else None
            labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
            images, unmixed, stored_logits = self.views(images, per_replica_seed(self.seed_generator), stored_logits)
            unmixed = unmixed * tf.cast(labels >= 0, unmixed.dtype)
        else:
            labels = tf.cast(tf.reshape(data, [-1]), tf.int32)
            images, unmixed = self.synthesize(labels)
        teacher_features = None
        if self.teacher_penultimate is not None:
            teacher_logits, teacher_features = self.teacher_penultimate(images, training=False)
        else:
            teacher_logits = self.teacher(images, training=False) if stored_logits is None else stored_logits
        for _ in range(self.config.teacher_echo):  # data echoing: the same views and labels, once more each
            student_logits, per_example, feature_terms = self._student_update(images, teacher_logits,
                                                                              teacher_features)
        self.loss_tracker.update_state(tf.reduce_mean(per_example))
        if self.student_with_projection is not None:
            self.feature_tracker.update_state(tf.reduce_mean(feature_terms))
        self.agreement_tracker.update_state(teacher_logits, student_logits)
        # How often the teacher sees the class the generator was asked for (unmixed images only).
        teacher_classes = tf.argmax(teacher_logits, axis=-1, output_type=tf.int32)
        self.conditioning_tracker.update_state(tf.cast(tf.equal(teacher_classes, labels), tf.float32),
                                               sample_weight=unmixed)
        return self.step_logs()


def feature_distillation_parts(teacher: keras.Model, student: keras.Model) -> tuple:
    """What ``distill.feature_weight`` reads (:func:`losses.feature_distillation_loss`): (the
    teacher's logits and penultimate features in a frozen model; the student's logits and its
    penultimate features through a new linear map ``P`` to the teacher's width, in one
    trainable model; the teacher's head, from its features to its output
    (:func:`teacher_taps.classifier_head`), frozen). :class:`UsageError` naming the network
    that lacks a readable last ``Dense`` layer, or a teacher whose output does not follow
    from that layer's input (checked on four random images)."""
    from .teacher_taps import NoTaps, classifier_head, penultimate_taps, trainable_penultimate_taps

    try:
        head = classifier_head(teacher)
        teacher_taps = penultimate_taps(teacher)
        if teacher_taps is None:
            raise NoTaps(f"{teacher.name}: no penultimate features to read")
    except NoTaps as err:
        raise UsageError(f"distill.feature_weight needs the teacher's last Dense layer: {err}") from None
    try:
        student_taps = trainable_penultimate_taps(student)
    except NoTaps as err:
        raise UsageError(f"distill.feature_weight needs the student's last Dense layer in one pass: {err}") from None
    # the head must give the teacher's own output on its own features: a graph read wrongly would teach the
    # student a wrong target silently
    probe = tf.random.stateless_uniform((4, *teacher.inputs[0].shape[1:]), seed=[0, 1])
    logits, features = teacher_taps(probe, training=False)
    read = tf.nn.softmax(tf.cast(head(features, training=False), tf.float32))
    if not np.allclose(read.numpy(), tf.nn.softmax(tf.cast(logits, tf.float32)).numpy(), atol=1e-3):
        raise UsageError(f"distill.feature_weight needs the teacher's output to follow from its last Dense "
                         f"layer's input, but {teacher.name}'s does not (read off its graph: {head.name})")
    width = int(features.shape[-1])
    image = keras.Input(shape=student.inputs[0].shape[1:], name="image")
    logits, features = student_taps(image)
    projected = keras.layers.Dense(width, name="feature_projection")(features)
    student_with_projection = keras.Model(image, [logits, projected], name=f"{student.name}_with_projection")
    return teacher_taps, student_with_projection, head


def mix_pairs(images, seed, cutmix: bool = False):
    """About half the images mixed with a random partner ``j`` of the batch, and a 0/1 mask
    of those left alone: ``lam * x_i + (1 - lam) * x_j``, ``lam ~ U(0, 1)`` (mixup, Zhang et
    al., 2018), or with ``cutmix`` a random box of ``x_j`` of area ``1 - lam`` pasted into
    ``x_i`` (Yun et al., 2019). The teacher labels the mixed image itself, so any mix is a
    valid training point ("function matching": Beyer et al., CVPR 2022, "Knowledge
    distillation: A good teacher is patient and consistent")."""
    mixed_images, unmixed, _, _ = _mix(images, seed, cutmix)
    return mixed_images, unmixed


def mix_teacher_logits(teacher_logits, own_share, partner, temperature):
    """Logits whose softened probabilities are those of a mix: ``T log(w p_i + (1 - w) p_j)``,
    ``p = softmax(t / T)``, ``w`` = ``own_share`` (the share of image ``i`` in its mix) and
    ``j`` = ``partner[i]``; so ``softmax`` of the result over ``T`` is the mixed probability,
    the soft target of mixup (Zhang et al., 2018) for a teacher not called on the mix."""
    probabilities = tf.nn.softmax(tf.cast(teacher_logits, tf.float32) / temperature, axis=-1)
    share = tf.reshape(tf.cast(own_share, tf.float32), [-1, 1])
    mixed = share * probabilities + (1.0 - share) * tf.gather(probabilities, partner)
    return temperature * tf.math.log(tf.maximum(mixed, 1e-30))


def _mix(images, seed, cutmix: bool):
    """:func:`mix_pairs`, and for each image the share of its own pixels in its view (1 for
    those left alone) and its partner's index in the batch."""
    batch = tf.shape(images)[0]
    lam = tf.random.stateless_uniform((batch,), seed=seed + [0, 7])
    mixed = tf.cast(tf.random.stateless_uniform((batch,), seed=seed + [0, 13]) < 0.5, images.dtype)
    lam = mixed * lam + (1.0 - mixed)
    order = tf.argsort(tf.random.stateless_uniform((batch,), seed=seed + [0, 17]))
    partner = tf.gather(images, order)
    if not cutmix:
        lam4 = tf.reshape(lam, [-1, 1, 1, 1])
        return lam4 * images + (1.0 - lam4) * partner, 1.0 - mixed, lam, order
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    side = tf.sqrt(1.0 - lam)  # box side as a fraction of the image side
    centre = tf.random.stateless_uniform((batch, 2), seed=seed + [0, 19])
    rows = tf.cast(tf.range(height), tf.float32)[None, :] / tf.cast(height, tf.float32)
    cols = tf.cast(tf.range(width), tf.float32)[None, :] / tf.cast(width, tf.float32)
    in_rows = tf.abs(rows - centre[:, :1]) < side[:, None] / 2
    in_cols = tf.abs(cols - centre[:, 1:]) < side[:, None] / 2
    box = tf.cast(in_rows[:, :, None] & in_cols[:, None, :], images.dtype)[..., None]
    own_share = 1.0 - tf.reduce_mean(box, axis=[1, 2, 3])
    return box * partner + (1.0 - box) * images, 1.0 - mixed, own_share, order


def class_blend_generator(generator: keras.Model) -> keras.Model:
    """``generator`` with class weights ``w`` (one per class) in place of its label input:
    the class code is ``w E``, ``E`` its label embedding (layer ``label_embedding``), so a
    one-hot ``w`` gives ``G(z, y)`` exactly and ``lam e_a + (1 - lam) e_b`` the code between
    two classes: the class interpolation of conditional GANs (Brock et al., 2019, "Large
    Scale GAN Training", BigGAN), here a source of samples near the teacher's decision
    boundaries. Every other layer is the generator's own (shared, not copied)."""
    try:
        embedding = generator.get_layer("label_embedding")
    except ValueError:
        embedding = None
    if not isinstance(embedding, keras.layers.Embedding):
        raise UsageError(f"distill.class_blend needs a generator whose class input goes through an Embedding "
                         f"layer named 'label_embedding' (this tool's generators); {generator.name!r} has none")
    table = keras.ops.convert_to_numpy(embedding.embeddings)
    num_classes, code_size = table.shape

    def blend_or_share(layer):
        if layer is embedding:  # w E: a bias-free dense layer whose kernel is the embedding table
            return keras.layers.Dense(code_size, use_bias=False, name=layer.name,
                                      kernel_initializer=keras.initializers.Constant(table))
        return layer

    inputs = [keras.Input(shape=generator.inputs[0].shape[1:], name="noise"),
              keras.Input(shape=(num_classes,), name="class_weights")]
    blended = keras.models.clone_model(generator, input_tensors=inputs, clone_function=blend_or_share)
    blended.trainable = False  # its table too: a distiller's trainable weights are the student's alone
    return blended


def blended_class_weights(labels, num_classes: int, share: float, seed):
    """Class weights for :func:`class_blend_generator`: one-hot ``e_y`` for each label, of
    which about ``share`` (at random) are ``lam e_y + (1 - lam) e_y'`` instead, ``y'`` uniform
    over the other classes and ``lam ~ U(0, 1)``; and a 0/1 mask of those left one-hot."""
    batch = tf.shape(labels)[0]
    blended = tf.cast(tf.random.stateless_uniform((batch,), seed=seed + [0, 23]) < share, tf.float32)
    offset = tf.random.stateless_uniform((batch,), seed=seed + [0, 29], minval=1, maxval=max(num_classes, 2),
                                         dtype=tf.int32)
    partner = (labels + offset) % num_classes
    lam = blended * tf.random.stateless_uniform((batch,), seed=seed + [0, 31]) + (1.0 - blended)
    weights = lam[:, None] * tf.one_hot(labels, num_classes) + (1.0 - lam[:, None]) * tf.one_hot(partner, num_classes)
    return weights, 1.0 - blended


def distill_on_generator(teacher: keras.Model, generator: keras.Model, student: keras.Model,
                         config: DistillConfig, seed: int = 0, callbacks=(), verbose="auto",
                         epochs_done: int = 0, progress=None, explored_grid=None,
                         spectrograms: bool = False) -> keras.callbacks.History:
    """Train ``student`` in place on teacher soft labels of fresh generator samples (or, with
    ``config.sample_bank``, of a bank of them drawn first: :func:`sample_bank_batches`).
    With ``config.teacher_precision`` other than float32, the teacher labels in bfloat16
    where :func:`teacher_precision.teacher_for_distillation` says so (on one batch of
    samples; its line to ``progress``); with the feature terms it stays float32.
    With ``config.explore_steps``, the bank is written to between epochs by
    :class:`bank_explorer.BankExplorer` (one line per round to ``progress``; its last
    samples drawn to ``explored_grid``, a PNG path, one row per class, as log-mel maps with
    ``spectrograms``); a resumed run draws the bank again and its explorer starts again from
    the generator.

    Returns the ``fit`` history.
    """
    num_classes = int(teacher.outputs[0].shape[-1])
    float32_teacher = teacher
    if config.teacher_precision != "float32" and not config.feature_weight:
        from .teacher_precision import teacher_for_distillation

        probe_labels = tf.range(config.batch_size, dtype=tf.int32) % num_classes
        probe_noise = tf.random.stateless_normal((config.batch_size, int(generator.inputs[0].shape[-1])),
                                                 seed=[seed, 1_000_003])
        probe = generator([probe_noise, probe_labels], training=False)
        teacher = teacher_for_distillation(teacher, config.teacher_precision, probe, config.temperature, progress)
    distiller = GeneratorDistiller(teacher, generator, student, config, seed=seed)
    distiller.compile()
    skip = epochs_done * config.steps_per_epoch
    callbacks = list(callbacks)
    if config.sample_bank and config.explore_steps:
        from .bank_explorer import DIVERGENCE_WORDS, BankExploration, BankExplorer, WritableBank

        bank = WritableBank(*draw_sample_bank(generator, num_classes, config, seed)[:2])
        distiller.bank = bank
        batches = bank_order(config.sample_bank, config, seed, skip_batches=skip)
        explorer = BankExplorer(float32_teacher, generator, student, bank, config, seed=seed)
        if progress is not None and epochs_done:
            progress(f"  note: resumed after epoch {epochs_done}: the bank is drawn again and the explorer starts "
                     f"again from the generator (the earlier rounds' samples are not kept)")
        if progress is not None:
            progress(f"  explorer: before every epoch but the first, {config.explore_steps} steps of a copy of the "
                     f"generator toward samples the student gets wrong ("
                     f"{DIVERGENCE_WORDS[config.explore_divergence]}), then {config.explore_samples:,} of its "
                     f"samples over the bank's oldest rows"
                     + ("" if explorer.uses_batchnorm_prior
                        else "; no batch-norm layer of the teacher to read (none, or no graph): no prior"))
        # first: before the callbacks that write the logs
        callbacks.insert(0, BankExploration(explorer, progress, explored_grid, spectrograms))
    elif config.sample_bank:
        batches = sample_bank_batches(generator, num_classes, config, seed, skip_batches=skip,
                                      teacher=teacher if config.bank_teacher_logits else None)
    else:
        batches = label_batches(num_classes, config.batch_size, seed, skip_batches=skip)
    return distiller.fit(batches, epochs=config.epochs,
                         steps_per_epoch=config.steps_per_epoch, callbacks=callbacks, verbose=verbose,
                         shuffle=False)


def sample_bank_bytes(config: DistillConfig, image_shape) -> int:
    """Memory the bank of :func:`sample_bank_batches` holds: ``sample_bank`` float16 images."""
    return config.sample_bank * int(np.prod(image_shape)) * 2


def check_sample_bank_fits(config: DistillConfig, image_shape) -> None:
    """Refuse (``UsageError``) a bank over half of this machine's memory, before any stage runs:
    drawn at the distill stage, it would fail there after the GAN's hours."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): not checked
        return
    needed = sample_bank_bytes(config, image_shape)
    if needed > physical / 2:
        raise UsageError(f"distill.sample_bank {config.sample_bank:,} holds {needed / 1e9:,.1f} GB of "
                         f"{'x'.join(map(str, image_shape))} samples, over half of this machine's "
                         f"{physical / 1e9:,.1f} GB; set a smaller bank, or 0 for fresh samples")


def sample_bank_batches(generator: keras.Model, num_classes: int, config: DistillConfig, seed: int,
                        skip_batches: int = 0, draw_batch: int = 256, teacher: keras.Model | None = None):
    """``config.sample_bank`` generator images (float16, labels cycling over the classes,
    noise ``N(0, noise_scale^2 I)`` from ``seed``), drawn once, as an endless ``tf.data``
    stream of shuffled ``(images, labels)`` batches; ``skip_batches``: those a resumed run
    already used. The same seed draws the same bank and the same order. With
    ``config.class_blend``, that share is drawn from a blend of two classes
    (:func:`blended_class_weights`) and labelled -1. With a ``teacher`` (logits out), its
    logits of each image (the float16 image it will see) are computed once and streamed as
    a third element, ``(images, labels, teacher_logits)``."""
    images, labels, logits = draw_sample_bank(generator, num_classes, config, seed, draw_batch, teacher)
    return bank_batches(images, labels, config, seed, skip_batches, logits)


def draw_sample_bank(generator: keras.Model, num_classes: int, config: DistillConfig, seed: int,
                     draw_batch: int = 256, teacher: keras.Model | None = None) -> tuple:
    """The bank of :func:`sample_bank_batches`: ``(images, labels, teacher_logits or None)``."""
    size, noise_dim = config.sample_bank, int(generator.inputs[0].shape[-1])
    labels = tf.range(size, dtype=tf.int32) % num_classes
    blend_generator = class_blend_generator(generator) if config.class_blend else None

    @tf.function
    def draw(noise, part, start):
        if blend_generator is None:
            return tf.cast(generator([noise, part], training=False), tf.float16), part
        weights, unblended = blended_class_weights(part, num_classes, config.class_blend, tf.stack([seed, start]))
        images = blend_generator([noise, weights], training=False)
        return tf.cast(images, tf.float16), tf.where(unblended > 0, part, -1)

    @tf.function
    def label(images):
        return tf.cast(teacher(tf.cast(images, tf.float32), training=False), tf.float32)

    parts, kept_labels, logits = [], [], []
    for start in range(0, size, draw_batch):
        part = labels[start:start + draw_batch]
        noise = tf.random.stateless_normal((int(part.shape[0]), noise_dim), seed=[seed, start],
                                           stddev=config.noise_scale)
        drawn, drawn_labels = draw(noise, part, tf.constant(start, tf.int32))
        parts.append(drawn)
        kept_labels.append(drawn_labels)
        if teacher is not None:
            logits.append(label(drawn))
    return (tf.concat(parts, axis=0), tf.concat(kept_labels, axis=0),
            tf.concat(logits, axis=0) if teacher is not None else None)


def bank_order(size: int, config: DistillConfig, seed: int, skip_batches: int = 0):
    """Endless batches of row numbers of a bank of ``size``, every row once per pass in an
    order shuffled anew each pass (from ``seed``); ``skip_batches``: those already used."""
    order = tf.data.Dataset.range(size).shuffle(size, seed=seed, reshuffle_each_iteration=True).repeat()
    order = order.batch(config.batch_size, drop_remainder=True)
    return order.skip(skip_batches) if skip_batches else order


def bank_batches(images, labels, config: DistillConfig, seed: int, skip_batches: int = 0, logits=None):
    """The endless shuffled batches of a bank, ``(images, labels[, logits])``
    (:func:`bank_order`'s rows)."""
    order = bank_order(int(images.shape[0]), config, seed, skip_batches)
    if logits is None:
        batches = order.map(lambda index: (tf.cast(tf.gather(images, index), tf.float32), tf.gather(labels, index)))
    else:
        batches = order.map(lambda index: (tf.cast(tf.gather(images, index), tf.float32), tf.gather(labels, index),
                                           tf.gather(logits, index)))
    return batches.prefetch(tf.data.AUTOTUNE)


def distill_on_images(teacher: keras.Model, student: keras.Model, images, config: DistillConfig, seed: int = 0,
                      callbacks=(), verbose="auto") -> keras.callbacks.History:
    """Reference method: the same distillation on given (real) images, shuffled every epoch,
    with the same augmentation and mixing as on generator samples, with Keras' own
    ``keras.distillation.Distiller`` (logits distillation, ``T^2 KL``).

    Used by the benchmark to measure what the GAN-based path gives up; not by the pipeline.
    With ``feature_weight`` or ``teacher_echo`` > 1, the images go through
    :class:`GeneratorDistiller`'s step for a sample bank instead (no generator), so the
    reference has the feature terms and the echoed updates too.
    """
    if config.feature_weight or config.teacher_echo > 1:
        distiller = GeneratorDistiller(teacher, None, student, config, seed=seed)
        distiller.compile()
        order = tf.data.Dataset.from_tensor_slices(np.asarray(images, np.float32)).shuffle(
            len(images), seed=seed, reshuffle_each_iteration=True).repeat()
        batches = order.batch(config.batch_size, drop_remainder=True).map(
            lambda x: (x, -tf.ones([tf.shape(x)[0]], tf.int32)))  # -1: no class asked for
        return distiller.fit(batches.prefetch(tf.data.AUTOTUNE), epochs=config.epochs,
                             steps_per_epoch=config.steps_per_epoch, callbacks=list(callbacks), verbose=verbose,
                             shuffle=False)
    # A KLDivergence instance, not the string: Keras applies the softmax for the instance only.
    distiller = keras.distillation.Distiller(
        teacher=teacher, student=student, student_loss_weight=0.0,
        distillation_losses=keras.distillation.LogitsDistillation(config.temperature,
                                                                 loss=keras.losses.KLDivergence()))
    distiller.compile(optimizer=cosine_adam(config.learning_rate, config.epochs * config.steps_per_epoch),
                      loss="sparse_categorical_crossentropy")  # required by Distiller, weighted 0
    pipeline = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed).repeat()
    pipeline = pipeline.batch(config.batch_size, drop_remainder=True)
    augment = image_augmenter(images.shape[1:], config.augment_shift, config.augment_flip, seed,
                              config.augment_zoom, config.augment_color)
    if augment is not None:  # the same augmentation as on generator samples
        pipeline = pipeline.map(lambda x: augment(x, training=True))
    if config.mixup:  # and the same mixing: teacher and student see the same mixed view
        counter = tf.data.Dataset.counter()
        pipeline = tf.data.Dataset.zip((pipeline, counter)).map(
            lambda x, step: mix_pairs(x, tf.stack([tf.constant(seed, tf.int64), step]), config.cutmix)[0])
    pipeline = pipeline.prefetch(tf.data.AUTOTUNE)
    return distiller.fit(pipeline, epochs=config.epochs, steps_per_epoch=config.steps_per_epoch,
                         callbacks=list(callbacks), verbose=verbose, shuffle=False)
