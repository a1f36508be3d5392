"""What each stage does, given a :class:`pipeline.StageContext`.

Each function here is the ``produce`` of one declared stage (:data:`pipeline.STAGES`):
it reads what it needs through the context (``ctx.load("teacher")``, ``ctx.dataset``),
says what it is about to do (``ctx.announce``), trains with ``ctx.fit_callbacks(...)``
and returns the artifacts it made as ``{name: value}``; the runner does the rest (skip
when done, seed, timing, saving). The export and evaluation write their many files
themselves, through the run folder's names.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np

from . import (callbacks, data, datafree, distill, distribute, evaluate, export, networks, quality, report, slimming,
               timing)
from .errors import UsageError
from .gan import ConditionalGAN
from .generator_mixture import generator_classes, generator_mixture
from . import student as student_choice
from .teacher import as_functional, as_logits, taking_convention, taking_unit_range, to_convention, train_teacher

#: what the teacher_input record says of a teacher trained here
BUILT_IN_INPUT = {"convention": "0-1", "scale": 1.0, "offset": 0.0, "requested": "auto",
                  "test_accuracy_by_convention": None}


def teacher(ctx) -> dict:
    """The teacher: the user's ``--teacher`` copied into the run, or trained on the real
    training split."""
    if ctx.config.teacher_path:
        model, record = ctx.user_teacher()
        measured = ", ".join(f"{name} {accuracy:.2%}"
                             for name, accuracy in record["test_accuracy_by_convention"].items())
        notes = (report.close_conventions_sentence(record) + report.grey_layout_sentence(record)
                 + report.precision_sentence(record))
        ctx.announce(f"loading the user's teacher {ctx.config.teacher_path}; it takes "
                     f"{report.describe_convention(record)} input (test accuracy by input convention: {measured}); "
                     f"the student will take the same; output {record['output']}" + ("." + notes if notes else ""))
        return {"teacher": model, "teacher_input": record}
    if ctx.folder.exists("teacher"):  # a run folder from before teacher_input.json: its teacher was built here
        ctx.announce(f"using {ctx.folder.path('teacher')}, trained here on images in [0, 1]")
        return {"teacher": ctx.load("teacher"), "teacher_input": BUILT_IN_INPUT}
    dataset, cfg = ctx.dataset, ctx.config.teacher
    ctx.announce(f"training on {len(dataset.x_train)} real {data.examples_noun(dataset)}, {cfg.epochs} epochs")
    with ctx.strategy.scope():
        model = train_teacher(dataset, cfg, seed=ctx.seed, callbacks=ctx.fit_callbacks(), verbose=ctx.verbose,
                              epochs_done=ctx.epochs_done())
    # said now, not only in the report at the end: a weak teacher is worth knowing before the GAN's hours
    predicted = np.argmax(evaluate.keras_probabilities(model, dataset.x_test), axis=-1)
    ctx.progress(f"  teacher: {np.mean(predicted == dataset.y_test):.2%} on the {len(dataset.x_test):,} real test "
                 f"{data.examples_noun(dataset)}")
    return {"teacher": model, "teacher_input": BUILT_IN_INPUT}


BN_TARGET_IMAGES = 10000  # real training images whose teacher statistics the GAN's prior targets (bn_target real)


def gan(ctx) -> dict:
    """The conditional GAN on the real training split; its EMA generator, sample grids."""
    cfg, dataset, folder = ctx.config.gan, ctx.dataset, ctx.folder
    spec = dataset.spec
    batch_size = min(cfg.batch_size, len(dataset.x_train))
    steps = gan_steps_per_epoch(cfg, len(dataset.x_train))
    with ctx.strategy.scope():
        teacher_model = (distribute.replicate(as_logits(ctx.load("teacher")), ctx.strategy)
                         if ctx.has("teacher") else None)
        taps, notes = gan_teacher_terms(cfg, teacher_model)
    augmented = f", DiffAugment {'+'.join(cfg.diff_augment)}" if cfg.diff_augment else ""
    if cfg.teacher_weight and teacher_model is not None:
        augmented += f", teacher term x{cfg.teacher_weight:g}"
    discriminator_kind = (f"discriminator on {len(taps.outputs)} teacher feature maps + pixels" if taps is not None
                          else cfg.architecture)
    generators = f", {cfg.generators} generators" if cfg.generators > 1 else ""
    ctx.announce(f"conditional GAN ({discriminator_kind}, {cfg.loss} loss{augmented}{generators}), {cfg.epochs} epochs "
                 f"x {steps} steps, batch {cfg.batch_size}")
    for note in notes:
        ctx.progress(f"  {note}")
    if cfg.bn_view_shift == "auto":
        cfg = dataclasses.replace(cfg, bn_view_shift=measured_view_shift(ctx, cfg, teacher_model))
    with ctx.strategy.scope():
        generator = generator_mixture([
            networks.build_generator(spec.image_shape, spec.num_classes, cfg.noise_dim, cfg.generator_width,
                                     cfg.architecture) for _ in range(cfg.generators)])
        discriminator = networks.build_discriminator(spec.image_shape, spec.num_classes, cfg.discriminator_width,
                                                     cfg.spectral_norm, cfg.architecture, taps=taps)
        model = ConditionalGAN(generator, discriminator, cfg, seed=ctx.seed, teacher=teacher_model)
        model.compile()
    if cfg.bn_view_shift and (model.bn_model is not None or model.uses_teacher_loss):  # the terms that read them
        ctx.progress(f"  the teacher's terms see the samples shifted up to {cfg.bn_view_shift} pixels (gan.bn_view_shift)")
    if model.bn_model is not None and cfg.bn_target == "real":
        chosen = np.sort(np.random.default_rng(ctx.seed).permutation(len(dataset.x_train))[:BN_TARGET_IMAGES])
        model.set_batchnorm_targets(dataset.x_train[chosen])
        ctx.progress(f"  batch-norm prior: toward the teacher's statistics on {len(chosen):,} real training images")
    if cfg.diversity_weight > 0:
        space = "the teacher's penultimate features" if model.diversity_in_features else "pixels"
        ctx.progress(f"  mode seeking on pairs of one class, distances in {space} (gan.diversity_weight "
                     f"{cfg.diversity_weight:g}, gan.diversity_space)")
    if model.class_feature_targets_used:
        chosen = np.sort(quality.class_balanced_indices(dataset.y_train, BN_TARGET_IMAGES, np.random.default_rng(ctx.seed)))
        left_out = model.set_class_feature_targets(dataset.x_train[chosen], dataset.y_train[chosen])
        ctx.progress(f"  class feature statistics: each class's samples toward the mean and spread of the teacher's "
                     f"penultimate features on {len(chosen):,} real training {data.examples_noun(dataset)} "
                     f"(gan.class_feature_weight)")
        if left_out:
            ctx.progress(f"  ... not for {', '.join(dataset.class_names[c] for c in left_out)}: one training "
                         f"{data.examples_noun(dataset).rstrip('s')} each, no spread to measure")
    extra, run_logs = [], folder.logs("gan") / "train"  # beside the epoch scalars of Keras' TensorBoard
    if teacher_model is not None:
        per_class = max(10, cfg.epoch_score_samples // spec.num_classes)
        real = quality.class_balanced_indices(dataset.y_train, per_class * spec.num_classes,
                                              np.random.default_rng(ctx.seed))
        extra.append(callbacks.TeacherScore(teacher_model, spec.num_classes, per_class=per_class,
                                            real_images=dataset.x_train[real], real_labels=dataset.y_train[real],
                                            log_dir=run_logs, class_names=dataset.class_names))
    grid = callbacks.SampleGrid(folder.samples_dir, run_logs, spec.num_classes, cfg.samples_per_class,
                                spectrograms=dataset.frontend is not None)
    if cfg.class_balanced and not data.classes_of_one_size(dataset.y_train):
        ctx.progress(f"  class-balanced real batches: each of the {spec.num_classes} classes drawn equally often")
    start = time.time()
    model.fit(data.training_pipeline(dataset.x_train, dataset.y_train, batch_size, ctx.seed,
                                     skip_batches=ctx.epochs_done() * steps, class_balanced=cfg.class_balanced),
              epochs=cfg.epochs, steps_per_epoch=steps, shuffle=False, verbose=ctx.verbose,
              callbacks=ctx.fit_callbacks(*extra, grid, update_freq=cfg.log_every_steps,
                                          watch_discriminator=model.gan_loss.saturates_at_zero))
    ctx.progress(f"  GAN training: {cfg.epochs * steps * cfg.batch_size / (time.time() - start):,.0f} images/s")
    callbacks.save_png(folder.samples_png, grid.grid())
    listen_to_samples(ctx, model.ema_generator)
    return {"generator": model.ema_generator}


def measured_view_shift(ctx, cfg, teacher_model) -> int:
    """``gan.bn_view_shift`` auto: the shift whose zero-filled views of real training images
    come nearest the teacher's running batch-norm statistics (:func:`gan_views.measure_view_shift`),
    said on the console; 0 where no teacher term would read the views, there are no
    statistics to measure, or the prior's targets are measured on the raw real images
    (``bn_target`` real)."""
    from . import gan_views
    from .teacher_taps import batchnorm_taps

    if cfg.bn_target == "real" and cfg.bn_weight:  # the prior's targets are measured on the real images as they are
        ctx.progress("  gan.bn_view_shift auto: 0, the prior's targets are the teacher's statistics on the real "
                     "training images as they are (gan.bn_target real), so its samples are shown as they are")
        return 0
    reads_views = teacher_model is not None and (cfg.bn_weight or cfg.teacher_weight)
    bn_model, layers = batchnorm_taps(teacher_model, with_output=True) if reads_views else (None, [])
    if bn_model is None:
        if reads_views:
            ctx.progress("  gan.bn_view_shift auto: the teacher has no batch-norm statistics to measure its training "
                         "views by; the samples are shown to it as they are")
        return 0
    dataset = ctx.dataset
    chosen = np.random.default_rng(ctx.seed).permutation(len(dataset.x_train))[:gan_views.MEASURE_IMAGES]
    shift, measured = gan_views.measure_view_shift(bn_model, layers, dataset.x_train[np.sort(chosen)],
                                                   gan_views.largest_view_shift(dataset.spec.image_shape), ctx.seed)
    scan = ", ".join(f"{d:.2f}" for d in measured)
    ctx.progress(f"  gan.bn_view_shift auto: {shift} (the batch-norm prior's distance on {len(chosen):,} real training "
                 f"{data.examples_noun(dataset)} shifted up to 0, 1, ... pixels with zero fill: {scan})")
    return shift


def listen_to_samples(ctx, generator) -> None:
    """For recordings: a few samples of each class as WAV files (``samples/<class>_<i>.wav``)."""
    dataset = ctx.dataset
    if dataset.frontend is None:
        return
    from .sonify import write_sample_recordings

    written = write_sample_recordings(generator, dataset.frontend, dataset.class_names, ctx.folder.samples_dir,
                                      seed=ctx.seed)
    ctx.progress(f"  {len(written)} samples as sound (Griffin-Lim): {ctx.folder.samples_dir}/*.wav")


def gan_teacher_terms(cfg, teacher_model) -> tuple:
    """(the teacher's feature maps for a projected discriminator, or None; progress notes on
    the terms that read the teacher and cannot: no teacher, no graph, no batch norm; and on
    ``gan.diversity_space`` set with mode seeking off, which would change nothing silently)."""
    from .teacher_taps import NoTaps, batchnorm_taps, feature_taps, penultimate_taps

    wanted = [name for name, on in (("gan.discriminator_taps", cfg.discriminator_taps),
                                    ("gan.bn_weight", cfg.bn_weight), ("gan.teacher_weight", cfg.teacher_weight),
                                    ("gan.class_feature_weight", cfg.class_feature_weight))
              if on]
    idle = ([f"gan.diversity_space {cfg.diversity_space} has no effect: mode seeking is off (gan.diversity_weight 0)"]
            if cfg.diversity_space != "pixels" and not cfg.diversity_weight else [])
    diversity_in_features = cfg.diversity_weight and cfg.diversity_space == "teacher_features"
    if teacher_model is None:
        notes = idle + ([f"no teacher in this run: {', '.join(wanted)} not used"] if wanted else [])
        if diversity_in_features:
            notes.append("no teacher in this run: mode seeking measures distances in pixels (gan.diversity_space)")
        return None, notes
    notes, taps = idle, None
    if cfg.discriminator_taps:
        try:
            taps = feature_taps(teacher_model, cfg.discriminator_taps)
        except NoTaps as err:
            notes.append(f"the discriminator judges pixels only: {err}")
    if cfg.bn_weight and batchnorm_taps(teacher_model)[0] is None:
        notes.append("the teacher has no batch-norm layers (or no graph to read them from): the statistics prior "
                     "(gan.bn_weight) is skipped")
    reads_features = cfg.class_feature_weight or diversity_in_features
    no_features = reads_features and penultimate_taps(teacher_model) is None  # the taps built once for both terms
    if no_features and diversity_in_features:
        notes.append("the teacher has no Dense layer (or no graph to read one from): mode seeking measures "
                     "distances in pixels (gan.diversity_space)")
    if no_features and cfg.class_feature_weight:
        notes.append("the teacher has no Dense layer (or no graph to read one from): the class feature statistics "
                     "(gan.class_feature_weight) are skipped")
    return taps, notes


def gan_steps_per_epoch(cfg, train_images: int) -> int:
    """``gan.steps_per_epoch`` (0: one pass over the training images), raised so that the GAN
    trains at least ``gan.min_steps`` steps in all: a small training set is a shorter epoch,
    not a shorter GAN."""
    steps = cfg.steps_per_epoch or max(1, train_images // cfg.batch_size)
    return max(steps, -(-cfg.min_steps // cfg.epochs))


def student_network(ctx, teacher_model) -> tuple:
    """A fresh student for the teacher's image shape and classes: (the model trained here,
    taking [0, 1] images and giving logits; the model saved, taking the teacher's input).

    The preset's ``distill.network``; the widest of its family within ``student_budget_kb``;
    or the architecture of ``student_path``, which takes the teacher's input as it is.
    """
    image_shape = tuple(teacher_model.inputs[0].shape[1:])
    num_classes = int(teacher_model.outputs[0].shape[-1])
    convention, config = ctx.teacher_input(), ctx.config
    with ctx.strategy.scope():
        if config.student_path:
            saved = student_choice.user_architecture(ctx.user_student(), image_shape, num_classes,
                                                     config.student_path)
            return as_logits(taking_unit_range(saved, image_shape, convention)), saved
        network = config.distill.network
        if config.student_budget_kb:
            network = student_choice.widest_within_budget(image_shape, num_classes, network,
                                                          round(config.student_budget_kb * student_choice.KB),
                                                          ctx.progress, **described_data(ctx.dataset))[0]
        trained = networks.build_classifier(image_shape, num_classes, network, name="student")
        return trained, taking_convention(trained, convention)


def note_student_size(ctx, student, teacher_model) -> None:
    """Say so when the student is not smaller than the teacher (a small user teacher against
    the preset's student): the run goes on, but it compresses nothing."""
    student_params, teacher_params = student.count_params(), teacher_model.count_params()
    if student_params >= teacher_params:
        # the user's own --student is their choice: no advice to pick one
        advice = "" if ctx.config.student_path else "; --student-budget-kb KB or --student FILE gives a smaller one"
        ctx.progress(f"  note: the student is not smaller than the teacher ({student_params:,} against "
                     f"{teacher_params:,} parameters){advice}")


def distill_feature_terms(cfg, teacher_logits, student) -> tuple:
    """(the ``distill`` settings, progress notes): ``feature_weight`` set to 0, with one note,
    where the teacher or the student has no last ``Dense`` layer to read the features at
    (:func:`distill.feature_distillation_parts`), as the GAN's terms are skipped for a teacher
    they cannot read."""
    if not cfg.feature_weight:
        return cfg, []
    try:
        distill.feature_distillation_parts(teacher_logits, student)
    except UsageError as err:
        return dataclasses.replace(cfg, feature_weight=0.0), [f"{err}; the feature terms are skipped"]
    return cfg, []


def distill_student(ctx) -> dict:
    """The student, distilled from the teacher on generator samples only.

    Deliberately reads no data: no real training image can reach the student.
    """
    cfg = ctx.config.distill
    teacher_model, generator = ctx.load("teacher"), ctx.load("generator")
    student, saved = student_network(ctx, teacher_model)
    ratio = student.count_params() / teacher_model.count_params()
    samples = "generator samples"
    if cfg.sample_bank:  # float16 in memory: say how much, a large bank on large images is gigabytes
        distill.check_sample_bank_fits(cfg, generator.outputs[0].shape[1:])  # the stage run on its own
        megabytes = distill.sample_bank_bytes(cfg, generator.outputs[0].shape[1:]) / 1e6
        samples = f"a bank of {cfg.sample_bank:,} generator samples drawn first ({megabytes:,.{1 if megabytes < 10 else 0}f} MB in memory)"
        if cfg.bank_teacher_logits:
            samples += ", labelled by the teacher once as they are drawn"
    if cfg.class_blend:
        samples += f", {cfg.class_blend:.0%} of them between two classes"
    if cfg.sample_bank and cfg.explore_steps:
        samples += f", {cfg.explore_samples:,} of them explored anew before each epoch"
    if cfg.feature_weight:
        samples += f", the teacher's penultimate features too (weight {cfg.feature_weight:g})"
    if cfg.teacher_echo > 1:
        samples += f", {cfg.teacher_echo} student updates on each batch the teacher labels (distill.teacher_echo)"
    ctx.announce(f"student of {student.count_params():,} parameters ({ratio:.2f} of the teacher), "
                 f"{cfg.epochs} epochs x {cfg.steps_per_epoch} steps on {samples}, T={cfg.temperature}")
    note_student_size(ctx, student, teacher_model)
    teacher_logits = distribute.replicate(as_logits(teacher_model), ctx.strategy)
    generator = distribute.replicate(generator, ctx.strategy)
    cfg, notes = distill_feature_terms(cfg, teacher_logits, student)
    for note in notes:
        ctx.progress(f"  note: {note}")
    with ctx.strategy.scope():
        distill.distill_on_generator(teacher_logits, generator, student, cfg, seed=ctx.seed,
                                     callbacks=ctx.fit_callbacks(), verbose=ctx.verbose, epochs_done=ctx.epochs_done(),
                                     progress=ctx.progress, explored_grid=ctx.folder.explored_png,
                                     spectrograms=ctx.config.audio_settings() is not None)
    return {"student": saved}  # a drop-in for the teacher: it takes the teacher's input


def data_free(ctx) -> dict:
    """Generator and student from the teacher alone (data-free mode), and a sample of the
    replay bank for int8 calibration.

    Deliberately reads no data: the training code has no handle on real images.
    """
    cfg, gan_cfg, folder = ctx.config.datafree, ctx.config.gan, ctx.folder
    teacher_model = ctx.load("teacher")
    num_classes = int(teacher_model.outputs[0].shape[-1])
    with ctx.strategy.scope():
        generator = networks.build_generator(tuple(teacher_model.inputs[0].shape[1:]), num_classes, gan_cfg.noise_dim,
                                             gan_cfg.generator_width)
    student, saved = student_network(ctx, teacher_model)
    ctx.announce(f"generator and student ({student.count_params():,} parameters, "
                 f"{student.count_params() / teacher_model.count_params():.2f} of the teacher) from the "
                 f"teacher alone, {cfg.epochs} epochs x {cfg.steps_per_epoch} iterations "
                 f"({cfg.student_steps} student steps each)")
    note_student_size(ctx, student, teacher_model)
    start = student_start(ctx, teacher_model, student)
    teacher_logits = distribute.replicate(as_logits(teacher_model), ctx.strategy)
    grid = callbacks.SampleGrid(folder.samples_dir, folder.logs("data-free") / "train", num_classes,
                                gan_cfg.samples_per_class, spectrograms=ctx.config.audio_settings() is not None)
    with ctx.strategy.scope():
        history = datafree.distill_data_free(teacher_logits, generator, student, cfg, seed=ctx.seed,
                                             callbacks=ctx.fit_callbacks(grid, update_freq=50), verbose=ctx.verbose,
                                             epochs_done=ctx.epochs_done())
    callbacks.save_png(folder.samples_png, grid.grid())
    if ctx.data_loaded():
        listen_to_samples(ctx, generator)
    # int8 calibration from the replay bank: every round's samples, not only the last generator's
    bank = datafree.bank_sample(history.model, ctx.config.export.calibration_samples, ctx.seed)
    # student_start first: the student, saved last, is what marks the stage done
    return {"student_start": start, "calibration_bank": bank, "generator": generator, "student": saved}


def student_start(ctx, teacher_model, student) -> dict:
    """The data-free student's first weights (:func:`slimming.start_student` by
    ``datafree.student_init``), said on the console; the record saved as ``student_start.json``."""
    try:
        record = slimming.start_student(student, teacher_model, ctx.config.datafree.student_init)
    except slimming.NotNarrower as err:
        raise UsageError(str(err)) from None
    ctx.progress("  " + slimming.describe_start(record))
    return record


def calibration_source(ctx) -> str:
    """``real``, ``generator``, or ``replay bank`` (data-free mode, once its bank sample exists)."""
    source = ctx.config.export.calibration_source
    if source == "generator" and ctx.config.mode == "data-free" and ctx.has("calibration_bank"):
        return "replay bank"
    return source


def calibration_images(ctx, generator, source: str) -> np.ndarray:
    """int8 calibration set: class-balanced generator samples, real training images on
    request, or (data-free mode) the replay-bank sample, which holds every synthesis round."""
    cfg = ctx.config.export
    if source == "real":
        x_train = ctx.dataset.x_train
        return x_train[np.random.default_rng(ctx.config.seed).choice(len(x_train), min(cfg.calibration_samples, len(x_train)), replace=False)]
    if source == "replay bank":
        return ctx.load("calibration_bank")
    num_classes = generator_classes(generator)
    labels = (np.arange(cfg.calibration_samples) % num_classes).astype(np.int32)
    return quality.generate(generator, labels, ctx.config.seed, batch_size=256)


MICRO_VARIANTS = ("int8", "int8_io")  # the student files a microcontroller kit is made for


def microcontroller_kits(ctx, files) -> dict:
    """For each int8 student file that passed its bar: C source, op resolver and measured
    tensor arena in ``tflite/micro/`` (:mod:`tfgan_compress.micro`), by variant."""
    from . import micro

    kits = {}
    for exported in files:
        if not exported.passed:
            continue
        kit = micro.write_kit(exported.path, ctx.folder.model_card.parent / "micro")
        kits[exported.variant] = kit
        ctx.progress(f"  {exported.path.name} for microcontrollers: ops {', '.join(kit['ops'])}; tensor arena "
                     f"{kit['arena_bytes_measured']:,} bytes measured in TFLite-Micro, "
                     f"{kit['arena_bytes_recommended']:,} recommended (tflite/micro/)")
    return kits


def remove_files_of_other_variants(folder, cfg) -> None:
    """Files of the variants this export does not make, left by an earlier export of the run
    that stopped before its model card (export settings may change until then): removed, so
    ``tflite/`` holds only the files the card lists."""
    from typing import get_args

    from . import micro
    from .config import GeneratorVariant

    for model, chosen, every in (("student", cfg.variants, export.VARIANTS),
                                 ("generator", cfg.generator_variants, get_args(GeneratorVariant))):
        for variant in set(every) - set(chosen):
            path = folder.tflite(model, variant)
            for stale in (path, folder.tflite_below_bar(model, variant),
                          *micro.kit_paths(path, folder.model_card.parent / "micro")):
                stale.unlink(missing_ok=True)


def export_tflite(ctx) -> dict:
    """TFLite variants of the student (and the teacher's float32 file, for latency ratios,
    and the generator), each checked with LiteRT against Keras on the test images; then
    ``labels.txt`` and, last, ``model_card.json``."""
    cfg, folder, dataset = ctx.config.export, ctx.folder, ctx.dataset
    student = as_logits(as_functional(ctx.load("student"), dataset.spec.image_shape))
    generator = ctx.load("generator")
    remove_files_of_other_variants(folder, cfg)
    source = calibration_source(ctx)
    ctx.announce(f"TFLite {', '.join(cfg.variants)}; int8 calibrated on {cfg.calibration_samples} {source} samples")
    calibration = calibration_images(ctx, generator, source)
    bars = {variant: export.agreement_bar(variant, cfg) for variant in export.VARIANTS}
    convention = ctx.teacher_input()  # the student takes the teacher's input; the run's teacher takes [0, 1]
    metadata = functools.partial(export.with_metadata, class_names=dataset.class_names,
                                 teacher_input=ctx.load("teacher_input"), source=dataset.source,
                                 frontend=dataset.frontend)
    exported = export.export_classifier(student, functools.partial(folder.tflite, "student"),
                                        to_convention(calibration, convention), to_convention(dataset.x_test, convention),
                                        cfg.variants, bars, ctx.progress, metadata=metadata)
    if ctx.has("teacher"):
        export.export_classifier(as_logits(ctx.load("teacher")), functools.partial(folder.tflite, "teacher"),
                                 calibration, dataset.x_test, ("float32",), bars, ctx.progress)
    generator_files = export.export_generator(generator, functools.partial(folder.tflite, "generator"),
                                              cfg.generator_variants, ctx.progress)
    export.write_labels(folder.labels, dataset.class_names)
    extra = {"calibration": {"source": source, "samples": int(len(calibration))},
             "agreement_checked_on": f"{len(dataset.x_test)} images of the test split",
             "generator": {"files": generator_files, "noise_dim": int(generator.inputs[0].shape[-1]),
                           "inputs": "noise float32 [N, noise_dim] ~ N(0, 1), label int32 [N]",
                           "output": "images float32 [N, H, W, C] in [0, 1]"}}
    if dataset.frontend is not None:
        extra["frontend"] = export.frontend_card(dataset.frontend)
    extra["microcontroller"] = microcontroller_kits(ctx, [f for f in exported if f.variant in MICRO_VARIANTS])
    export.ModelCard(folder.model_card).write(dataset.class_names, dataset.spec.image_shape, exported,
                                              ctx.load("teacher_input"), extra)
    return {}


def described_data(dataset) -> dict:
    """What a student file's metadata says of the data (its size counts in a budget)."""
    return {"class_names": list(dataset.class_names), "source": dataset.source, "frontend": dataset.frontend}


#: what a TFLite-Micro row adds of :func:`micro.compare_with_litert`
MICRO_COMPARISONS = ("litert_builtin_accuracy", "same_class_as_litert_builtin", "same_class_as_litert",
                     "identical_to_litert_builtin")


#: the GAN's per-epoch sample figures (callbacks.TeacherScore) that the report shows
EPOCH_QUALITY = ("teacher_label_accuracy", "frechet_distance")


def micro_rows(kits: dict, folder, x, y, teacher_predictions, params: int) -> list[dict]:
    """Each microcontroller file run in the TFLite-Micro interpreter on the test split."""
    from . import micro

    rows = []
    for variant, kit in kits.items():
        path = folder.tflite("student", variant)
        if not path.is_file():
            continue
        compared = micro.compare_with_litert(path.read_bytes(), x, y, kit["arena_bytes_recommended"])
        rows.append({"name": f"student_{variant} (TFLite-Micro)", "format": "tflite-micro",
                     **evaluate.classification_metrics(compared["probabilities"], y, teacher_predictions),
                     **{key: compared[key] for key in MICRO_COMPARISONS}, "params": int(params),
                     "bytes": path.stat().st_size, "arena_bytes": kit["arena_bytes_measured"],
                     "latency_ms": None, "latency_p90_ms": None, "throughput_images_per_s": None,
                     "file": f"tflite/{path.name}"})
    return rows


def evaluate_all(ctx) -> dict:
    """Every model and export on the real test split -> ``report.json`` / ``report.md`` /
    ``frontier.png``; the test figures are also added to the model card."""
    cfg, folder, dataset = ctx.config.evaluate, ctx.folder, ctx.dataset
    ctx.announce(f"{len(dataset.x_test)} real test {data.examples_noun(dataset)}; latency over {cfg.latency_runs} "
                 f"single-example runs, 1 thread")
    teacher_model = as_logits(ctx.load("teacher"))
    student = as_logits(as_functional(ctx.load("student"), dataset.spec.image_shape))
    x, y = dataset.x_test, dataset.y_test
    x_student = to_convention(x, ctx.teacher_input())  # the run's teacher takes [0, 1], the student the user's range
    teacher_predictions = np.argmax(evaluate.keras_probabilities(teacher_model, x), -1)
    settings = (y, teacher_predictions, cfg.latency_runs, cfg.latency_warmup)
    rows = [evaluate.evaluate_keras("teacher", teacher_model, folder.path("teacher"), x, *settings)]
    baseline = None
    if folder.tflite("teacher", "float32").is_file():
        baseline = evaluate.evaluate_tflite("teacher_float32", folder.tflite("teacher", "float32"),
                                            teacher_model.count_params(), x, *settings)
        rows.append(baseline)
    rows.append(evaluate.evaluate_keras("student", student, folder.path("student"), x_student, *settings))
    for variant in ctx.config.export.variants:
        path, below_bar = folder.tflite("student", variant), False
        if not path.is_file() and folder.tflite_below_bar("student", variant).is_file():
            path, below_bar = folder.tflite_below_bar("student", variant), True
        row = evaluate.evaluate_tflite(f"student_{variant}", path, student.count_params(), x_student, *settings)
        rows.append({**row, "below_agreement_bar": True} if below_bar else row)
    card = export.ModelCard(folder.model_card)
    card_content = card.read()
    rows += micro_rows(card_content.get("microcontroller", {}), folder, x_student, y, teacher_predictions,
                       student.count_params())
    if baseline is not None:
        for row in rows:
            if row["format"] == "tflite":
                row["speedup_vs_teacher_float32"] = baseline["latency_ms"] / row["latency_ms"]
    generator_files = card_content.get("generator", {}).get("files", [])
    info = {
        "data": dataset.source, "preset": ctx.config.preset, "seed": ctx.config.seed,
        "mode": ctx.config.mode, "train_images": len(dataset.x_train), "test_images": len(x),
        "teacher_input": ctx.load("teacher_input"),
        "student_network": {**student_choice.layer_widths(student), "file": ctx.config.student_path,
                            "budget_bytes": round(ctx.config.student_budget_kb * student_choice.KB)
                            if ctx.config.student_budget_kb else None},
        "num_classes": dataset.num_classes,
        "image_shape": list(dataset.spec.image_shape),
        "student_start": ctx.load("student_start") if ctx.has("student_start") else None,
        "microcontroller": card_content.get("microcontroller"),
        "student_teacher_param_ratio": student.count_params() / teacher_model.count_params(),
        "real_training_images_seen_by_student": 0,
        "generator_files": {f["file"]: f["bytes"] for f in generator_files},
        # uint8 pixels + one label byte per image: what the generator file stands in for
        "training_set_bytes": int(dataset.x_train[0].size + 1) * len(dataset.x_train),
        "recordings": dataset.frontend is not None,
        "generator_by_epoch": quality.logged_by_epoch(folder.logs("gan") / "train", EPOCH_QUALITY)
        if ctx.config.mode == "gan" else {},
        "class_names": list(dataset.class_names),
        "generator_quality": quality.generator_quality(teacher_model, ctx.load("generator"), x, dataset.num_classes,
                                                       samples=ctx.config.evaluate.frechet_samples,
                                                       seed=ctx.config.seed, real_labels=y),
        "stage_seconds": {**folder.stage_seconds(), "evaluate": round(ctx.elapsed(), 2)},
        "environment": timing.environment(),
    }
    report.write_report(folder, rows, info)
    figures = {f"test_accuracy/{row['name']}": row["accuracy"] for row in rows}
    measured = info["generator_quality"]
    figures["samples/teacher_accuracy"] = measured["teacher_accuracy_on_samples"]
    figures["samples/frechet_distance"] = measured["frechet_distance_teacher_features"]
    report.write_hparams(folder.logs("hparams"), folder.root.name, ctx.config.to_dict(), figures)
    card.add_test_figures(rows, {"data": dataset.source, "images": len(x)})
    ctx.progress(report.markdown_table(rows))
    return {}

