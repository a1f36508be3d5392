"""Typed configuration of a run, with named presets.

Every stage reads one section of :class:`RunConfig`. The resolved configuration (every
default written out) is saved as ``config.json`` in the run directory, and can be read
back with :func:`RunConfig.from_dict`, which refuses unknown keys and wrong types.

Presets:

* ``digits``: scikit-learn's 8x8 digits, sized to finish in a couple of minutes on two
  CPU cores; the default for images up to 16x16 (:func:`preset_for`).
* ``tiny``: a handful of steps on tiny networks, for tests and smoke runs.
* ``mnist``: LeNet-5 teacher and a LeNet-5-sized-down student for 28x28 sources (MNIST,
  Fashion-MNIST), sized for two CPU cores; the default for larger grey images.
* ``color``: ResNet-9 teacher, residual cGAN with DiffAugment, MobileNet-style student, for
  colour photos (CIFAR-10); the default for RGB images of 32x32 and more.
* ``speech``: DS-CNN teacher and a DS-CNN student of a few kilobytes on log-mel feature
  maps, for keyword spotting; the default for ``audio:`` recordings.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from .audio_frontend import SUPPORTED_RATES
from .errors import UsageError

# The allowed values of each choice; CLI choices and export tables derive from these.
GANLossName = Literal["hinge", "non_saturating", "wasserstein_gp"]
Mode = Literal["gan", "data-free"]
Strategy = Literal["default", "mirrored", "multi-worker", "tpu"]
ExportVariant = Literal["float32", "float16", "dynamic", "int8", "int8_io"]
GeneratorVariant = Literal["float32", "float16", "dynamic"]  # float input (noise), no calibration
CalibrationSource = Literal["generator", "real"]
BatchNormTarget = Literal["running", "real"]  # what the GAN's batch-norm prior pulls toward
DiversitySpace = Literal["pixels", "teacher_features"]  # where the GAN's mode-seeking term measures distances
TeacherPrecision = Literal["float32", "bfloat16", "auto"]  # the teacher's forward pass in distillation
ExploreDivergence = Literal["l1", "kl"]  # what the bank explorer raises between teacher and student (bank_explorer.py)
BatchNormViewShift = typing.Union[int, Literal["auto"]]  # pixels, or measured on real images (gan_views.py)
OptimizerName = Literal["adam", "sgd"]
StudentInit = Literal["auto", "teacher", "random"]  # data-free student's first weights (tfgan_compress.slimming)
TeacherOptimizer = OptimizerName
ClassifierArchitecture = Literal["lenet", "resnet", "mobilenet", "dscnn"]  # networks.build_classifier
GeneratorArchitecture = Literal["dcgan", "resnet"]  # networks.build_generator / build_discriminator
DiffAugmentPolicy = Literal["color", "translation", "cutout"]  # augment.diff_augment
TeacherInput = Literal["auto", "0-1", "0-255", "-1-1", "standardized"]  # the teacher's pixel range; auto: measured
# (standardized: (x - mean) / std, x in [0, 1], the mean and std of the test split's pixels)


def choices(literal) -> tuple:
    """The allowed values of a ``Literal`` type, in declaration order."""
    return typing.get_args(literal)


def is_infinite(value) -> bool:
    """``True`` for +-inf (JSON's ``Infinity`` parses to it), which no :class:`Range` holds."""
    return isinstance(value, float) and math.isinf(value)


@dataclass(frozen=True)
class Range:
    """Allowed numeric values of a setting (each element, for a tuple setting)."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value) -> bool:
        if value != value or is_infinite(value):  # NaN, or JSON's Infinity
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


AT_LEAST_0, AT_LEAST_1, AT_LEAST_2 = Range(0), Range(1), Range(2)
POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1, high_open=True)  # [0, 1)
PROBABILITY = Range(0, 1)  # [0, 1]
# keras.utils.set_random_seed takes seeds below 2**32; stage seeds are seed * 100 + stage index
SEEDS = Range(0, 2 ** 31 // 100 - 1)


def setting(default=dataclasses.MISSING, allowed: Optional[Range] = None, factory=dataclasses.MISSING):
    """A config field with its range of allowed values (checked by :meth:`RunConfig.validate`)."""
    return field(default=default, default_factory=factory, metadata={"range": allowed} if allowed else {})


@dataclass
class ClassifierConfig:
    """A classifier network (:func:`networks.build_classifier`).

    ``lenet``: two conv blocks (conv, ReLU, 2x2 max-pool) of ``conv_filters``, then the
    ``dense_units``. ``resnet``: ResNet-9 (Page, 2018), four stages of ``conv_filters``
    (each conv-BN-ReLU, stages 2-4 max-pooled, residual pairs after stages 2 and 4).
    ``mobilenet``: a stem convolution of ``conv_filters[0]``, then one depthwise-separable
    block per further entry (stride 2 where the filters grow), global pooling, logits.
    ``dscnn``: DS-CNN for keyword spotting (Zhang et al., 2017, "Hello Edge"): a 10x4 stem
    convolution of ``conv_filters[0]`` with stride 2, one depthwise-separable block per further
    entry, global pooling, ``dropout``, logits.
    """

    # filters per conv block (lenet: 2, resnet: 4, mobilenet: stem + one per block)
    conv_filters: tuple[int, ...] = setting((16, 32), AT_LEAST_1)
    dense_units: tuple[int, ...] = setting((128, 64), AT_LEAST_1)  # lenet only
    kernel_size: int = setting(3, AT_LEAST_1)  # lenet only
    dropout: float = setting(0.0, FRACTION)  # lenet and dscnn
    architecture: ClassifierArchitecture = "lenet"  # network family (networks.build_classifier)

    #: how many ``conv_filters`` each architecture takes: exactly (lenet, resnet) or at least (mobilenet)
    FILTER_COUNTS = {"lenet": (2, 2), "resnet": (4, 4), "mobilenet": (1, None), "dscnn": (2, None)}

    def check(self, where: str) -> None:
        """Raise :class:`UsageError` when ``conv_filters`` does not fit the architecture
        (checked with the rest of the config, before a stage builds the network)."""
        low, high = self.FILTER_COUNTS[self.architecture]
        count = len(self.conv_filters)
        if count < low or (high is not None and count > high):
            wanted = f"exactly {low}" if low == high else f"at least {low}"
            raise UsageError(f"{where}conv_filters: the {self.architecture} network takes {wanted} entries, got "
                             f"{list(self.conv_filters)}")


@dataclass
class TeacherConfig:
    """Training of the teacher on the real training split (skipped with ``--teacher``)."""

    network: ClassifierConfig = field(
        default_factory=lambda: ClassifierConfig(conv_filters=(32, 64), dense_units=(128, 64), dropout=0.2)
    )
    epochs: int = setting(60, AT_LEAST_1)  # passes over the real training split
    batch_size: int = setting(64, AT_LEAST_1)  # images per step
    optimizer: TeacherOptimizer = "adam"  # adam, or sgd (Nesterov momentum 0.9)
    learning_rate: float = setting(2e-3, POSITIVE)  # peak of the schedule
    warmup_fraction: float = setting(0.0, FRACTION)  # linear warm-up over this share of the steps, then cosine
    weight_decay: float = setting(0.0, AT_LEAST_0)  # decoupled (the optimizer's weight_decay)
    label_smoothing: float = setting(0.0, FRACTION)  # share of each one-hot label spread over all classes
    augment_shift: int = setting(1, AT_LEAST_0)  # random translation in pixels (zero fill: pad-and-crop), 0: off
    augment_flip: bool = False  # random horizontal flips (photos; not for digits or text)


@dataclass
class GANConfig:
    """Conditional GAN (projection discriminator, class-conditional generator)."""

    loss: GANLossName = "hinge"  # GAN loss family (losses.gan_loss)
    architecture: GeneratorArchitecture = "dcgan"  # generator and discriminator family
    diff_augment: tuple[DiffAugmentPolicy, ...] = ()  # DiffAugment policies on every discriminator input
    noise_dim: int = setting(32, AT_LEAST_1)  # length of the generator's noise vector z
    generator_width: int = setting(64, AT_LEAST_1)  # base channel count of the generator
    # this many generators against one discriminator, each sample drawn whole from one of them, chosen by its
    # noise (generator_mixture.py; MGAN, Hoang et al., 2018), a step about one generator's compute: each gets
    # 1/K of every batch, so it needs more steps than one (3 at the colour preset's 900 taught less); 1: one
    generators: int = setting(1, AT_LEAST_1)
    # base channel count of the discriminator (and of each projected head)
    discriminator_width: int = setting(64, AT_LEAST_1)
    spectral_norm: bool = True  # spectral normalisation on every discriminator layer (Miyato et al., 2018)
    gradient_penalty_weight: float = setting(10.0, AT_LEAST_0)  # used by wasserstein_gp only
    epochs: int = setting(20, AT_LEAST_1)  # epochs of steps_per_epoch steps
    steps_per_epoch: int = setting(100, AT_LEAST_0)  # 0: one pass over the training split per epoch
    min_steps: int = setting(0, AT_LEAST_0)  # at least this many steps in all: steps per epoch are raised to reach it
    batch_size: int = setting(64, AT_LEAST_1)  # real images (and as many generated) per step
    generator_learning_rate: float = setting(2e-4, POSITIVE)  # Adam learning rate of the generator
    discriminator_learning_rate: float = setting(2e-4, POSITIVE)  # Adam learning rate of the discriminator
    beta_1: float = setting(0.0, FRACTION)  # Adam beta_1 of both optimizers
    beta_2: float = setting(0.9, FRACTION)  # Adam beta_2 of both optimizers
    ema_decay: float = setting(0.999, FRACTION)  # decay of the generator's weight average (the generator that is kept)
    # weight of the teacher's cross-entropy on generated samples in the generator loss (AC-GAN
    # style; losses.teacher_class_loss), when the run has a teacher; 0: off (benchmarks/README.md)
    teacher_weight: float = setting(0.3, AT_LEAST_0)
    # None: that term is the cross-entropy; a number m: the margin hinge max(0, m - (T_y - max_c T_c))
    # (losses.class_margin_loss), which leaves alone samples the teacher already takes for their class
    teacher_margin: Optional[float] = setting(None, AT_LEAST_0)
    # the teacher term's weight ramps up linearly from 0 over this many generator steps (0: full from the start)
    teacher_ramp_steps: int = setting(0, AT_LEAST_0)
    # judge images on the teacher's feature maps at this many depths, beside a small pixel head (Projected
    # GANs; networks.build_projected_discriminator); 0: the pixel-space discriminator of `architecture`
    discriminator_taps: int = setting(0, AT_LEAST_0)
    # DeepInversion's prior in the generator loss: the teacher's batch-norm statistics (skipped, with one
    # line, for a teacher without batch norm); 0: off
    bn_weight: float = setting(0.0, AT_LEAST_0)
    # ... toward the teacher's running statistics (running: those of its augmented training views, e.g. with the
    # zero borders of pad-and-crop), or toward its statistics on the real training images (real), measured once
    bn_target: BatchNormTarget = "running"
    # ... on the samples as the teacher saw its training images: each shifted by up to this many pixels with zero
    # fill (pad-and-crop; the teacher's augment_shift), so that the running statistics of such views do not ask
    # the samples themselves for zero borders; the teacher's class term sees the same views; 0: off; auto: the
    # shift whose views of real training images come nearest the running statistics, measured (gan_views.py)
    bn_view_shift: BatchNormViewShift = setting(0, AT_LEAST_0)
    # the teacher's penultimate features per class: each class's samples pulled toward the mean and spread of
    # that class's real training images (losses.class_feature_statistics_loss), measured once before training on
    # the views the teacher's other terms see; skipped, with one line, for a teacher without a Dense layer; 0: off
    class_feature_weight: float = setting(0.0, AT_LEAST_0)
    # mode seeking (Mao et al., 2019): maximise |G(z1, y) - G(z2, y)| / |z1 - z2| on pairs of one class; 0: off
    diversity_weight: float = setting(0.0, AT_LEAST_0)
    # ... with the distance between the two images in pixels, or between the teacher's penultimate features of
    # their views (in units of the features' mean magnitude over the batch): spread within the class as the
    # teacher sees it; skipped, with one line, for a teacher without a Dense layer
    diversity_space: DiversitySpace = "pixels"
    # real batches draw every class equally often (the generator's labels are theirs), for long-tailed data;
    # false: the training split's class shares
    class_balanced: bool = False
    log_every_steps: int = setting(10, AT_LEAST_1)  # TensorBoard scalars every N steps (and per epoch)
    samples_per_class: int = setting(10, AT_LEAST_1)  # columns of the per-epoch sample grid
    # per epoch, the teacher scores this many class-balanced samples, and the Frechet distance compares
    # them with as many real training images
    epoch_score_samples: int = setting(1000, AT_LEAST_1)
    # the run stops (diverged) when the epoch's d_loss stays below this (hinge, non-saturating) ...
    divergence_threshold: float = setting(0.05, AT_LEAST_0)
    divergence_patience: int = setting(3, AT_LEAST_1)  # ... for this many epochs in a row


@dataclass
class DistillConfig:
    """Knowledge distillation of the student on generator samples only."""

    network: ClassifierConfig = field(
        default_factory=lambda: ClassifierConfig(conv_filters=(12, 24), dense_units=(64, 32))
    )
    epochs: int = setting(30, AT_LEAST_1)  # epochs of steps_per_epoch steps
    steps_per_epoch: int = setting(100, AT_LEAST_1)  # student updates per epoch, each on a fresh generator batch
    batch_size: int = setting(128, AT_LEAST_1)  # generator samples per step
    temperature: float = setting(4.0, POSITIVE)  # softmax temperature T of the distillation loss (T^2 KL)
    learning_rate: float = setting(3e-3, POSITIVE)  # peak Adam learning rate, cosine-decayed over all steps
    mixup: bool = True  # also distil on mixes of two samples (about half the batch; see cutmix)
    cutmix: bool = False  # with mixup: the mix pastes a random box of the partner (CutMix) instead of a convex mix
    augment_shift: int = setting(0, AT_LEAST_0)  # random translation of generator samples, in pixels
    augment_flip: bool = False  # random horizontal flips of generator samples
    augment_zoom: float = setting(0.0, FRACTION)  # random zoom in or out of generator samples, up to this fraction
    augment_color: float = setting(0.0, FRACTION)  # random brightness, contrast (and saturation) changes, up to this fraction
    noise_scale: float = setting(1.0, POSITIVE)  # standard deviation of the generator noise (above 1: wider, rarer samples)
    hard_latent_steps: int = setting(0, AT_LEAST_0)  # gradient steps moving the noise to teacher-student disagreement
    hard_latent_step_size: float = setting(1.0, POSITIVE)  # length of each step in noise space
    # share of samples drawn from a blend of two classes' codes, lam y + (1 - lam) y' (the generator's class
    # interpolation, Brock et al., 2019): images between the classes, labelled by the teacher; 0: off
    class_blend: float = setting(0.0, FRACTION)
    student_ema: float = setting(0.0, FRACTION)  # momentum of an average of the student's weights, kept as the result; 0: off
    # student updates on each batch of views the teacher labels (data echoing, Choi et al., 2019): the teacher's
    # forward pass, most of a step's cost, is paid once for this many updates; the cosine runs over all updates
    teacher_echo: int = setting(1, AT_LEAST_1)
    sample_bank: int = setting(0, AT_LEAST_0)  # generator samples drawn once and reused every epoch; 0: fresh ones every step
    # with sample_bank: the teacher labels each bank sample once, as it is drawn, and every step's shifted, flipped
    # and mixed views take those logits (a mix: the mix of the softened probabilities) without calling the teacher
    # (Beyer et al.'s "fixed teacher"): a step costs the student's update only
    bank_teacher_logits: bool = False
    # the student's penultimate features, through a learned linear map P, toward the teacher's, and P's features
    # through the teacher's own head (its last Dense layer and the layers behind it) toward its logits (Yang et al.,
    # 2021, SRRL; distill.feature_distillation_loss); needs a Dense last layer in both, else skipped with one line;
    # 0: off
    feature_weight: float = setting(0.0, AT_LEAST_0)
    # the teacher's labelling of each step's views in bfloat16 (variables float32), checked to move its soft labels
    # by at most 0.01; auto: bfloat16 only where this CPU runs it measurably faster (teacher_precision.py)
    teacher_precision: TeacherPrecision = "float32"
    # with sample_bank: before every epoch but the first, a copy of the generator takes this many Adam steps toward
    # samples where the student disagrees with the teacher (DFAD's L1), the teacher still seeing their class (margin)
    # and its batch-norm statistics kept (DeepInversion), then writes explore_samples of them over the bank's oldest
    # rows (bank_explorer.py); 0: off
    explore_steps: int = setting(0, AT_LEAST_0)
    explore_samples: int = setting(1000, AT_LEAST_1)  # bank rows the explorer writes per epoch
    explore_batch_size: int = setting(64, AT_LEAST_1)  # samples per explorer step
    explore_learning_rate: float = setting(1e-4, POSITIVE)  # Adam learning rate of the explorer
    explore_margin: float = setting(2.0, AT_LEAST_0)  # logits by which the teacher must prefer the asked-for class
    explore_bn_weight: float = setting(0.1, AT_LEAST_0)  # weight of the batch-norm prior (teachers with batch norm)
    # l1: mean |T - S| of the logits (DFAD); kl: the distillation's own T^2 KL of the softened probabilities
    explore_divergence: ExploreDivergence = setting("l1")


@dataclass
class DataFreeConfig:
    """Data-free mode (``mode = "data-free"``): generator and student trained from the teacher
    alone (:mod:`tfgan_compress.datafree`). Student network: ``distill.network``; generator:
    ``gan.noise_dim`` and ``gan.generator_width``. One epoch is one synthesis round: the
    generator starts afresh, its samples go into a replay bank the student learns from."""

    epochs: int = setting(40, AT_LEAST_1)  # synthesis rounds
    steps_per_epoch: int = setting(100, AT_LEAST_1)  # iterations per round: one generator step + student_steps each
    batch_size: int = setting(128, AT_LEAST_2)  # generator batch (pairs for the diversity term)
    student_batch_size: int = setting(128, AT_LEAST_1)  # bank samples per student update
    student_steps: int = setting(5, AT_LEAST_1)  # student updates (on bank samples) per generator update
    adversarial_weight: float = setting(1.0, AT_LEAST_0)  # weight of -|T(x) - S(x)|_1 (DFAD) in the generator loss
    class_weight: float = setting(1.0, AT_LEAST_0)  # weight of the teacher's class margin hinge
    class_margin: float = setting(3.0, AT_LEAST_0)  # logits by which the teacher must prefer the asked-for class
    bn_weight: float = setting(0.1, AT_LEAST_0)  # DeepInversion prior, when the teacher has BatchNormalization
    diversity_weight: float = setting(10.0, AT_LEAST_0)  # mode-seeking term: different noise, different images
    intensity_weight: float = setting(10.0, AT_LEAST_0)  # image-norm prior: penalty on mean pixel intensity ...
    intensity_allowance: float = setting(0.2, PROBABILITY)  # ... above this (pixels in [0, 1]); weight 0 to disable
    augment_shift: float = setting(0.15, FRACTION)  # image prior: random shift (fraction of the image size) ...
    augment_rotation: float = setting(15.0, Range(0, 180))  # ... rotation (degrees) ...
    augment_zoom: float = setting(0.15, FRACTION)  # ... and zoom under which the teacher must still see the class
    student_augment_shift: float = setting(0.07, FRACTION)  # random shift of bank samples for the student (fraction)
    student_elastic: float = setting(0.0, FRACTION)  # elastic distortion of student views (fraction of size; 0: off)
    student_elastic_cell: float = setting(0.25, Range(0, 1, low_open=True))  # ... grid of ceil(1 / cell) + 1 points a side
    student_prior_views: bool = True  # the student also learns on the prior's random views (teacher-labelled)
    bank_size: int = setting(50000, AT_LEAST_1)  # replay bank of generator samples (ring buffer)
    bank_from: float = setting(0.5, FRACTION)  # bank a round's samples from this fraction of the round on
    generator_learning_rate: float = setting(2e-3, POSITIVE)  # Adam learning rate of each round's generator
    generator_beta_1: float = setting(0.5, FRACTION)  # its Adam beta_1
    student_optimizer: OptimizerName = "adam"  # adam, or sgd (momentum 0.9); cosine decay over all student steps
    student_learning_rate: float = setting(2e-3, POSITIVE)  # peak (DFAD's SGD: 0.05-0.1)
    student_weight_decay: float = setting(0.0, AT_LEAST_0)  # decoupled (the optimizer's weight_decay)
    # the student's first weights: the teacher's largest filters and units when the student is the
    # teacher made narrower (teacher: required; auto: when it is, else random; random: always random)
    student_init: StudentInit = "auto"


@dataclass
class ExportConfig:
    """TFLite conversion of the student (and of the generator)."""

    # student TFLite files to write (int8_io: int8 input and output, batch 1)
    variants: tuple[ExportVariant, ...] = ("float32", "float16", "dynamic", "int8", "int8_io")
    generator_variants: tuple[GeneratorVariant, ...] = ("float16", "dynamic")  # the generator as TFLite, [] to skip
    calibration_samples: int = setting(500, AT_LEAST_1)  # images for the int8 calibration
    calibration_source: CalibrationSource = "generator"  # or "real" (real training images)
    # Top-1 agreement with the Keras student on the test images, required of each file.
    min_agreement_float: float = setting(0.995, PROBABILITY)  # float32, float16
    min_agreement_quantized: float = setting(0.99, PROBABILITY)  # dynamic, int8, int8_io


@dataclass
class EvaluateConfig:
    """Measurements on the real test split."""

    frechet_samples: int = setting(5000, AT_LEAST_1)  # generator samples the report's Frechet distance uses
    latency_runs: int = setting(200, AT_LEAST_1)  # single-image invocations timed per file
    latency_warmup: int = setting(20, AT_LEAST_0)  # untimed invocations first


@dataclass
class AudioConfig:
    """The audio front end (:mod:`tfgan_compress.audio_frontend`) for ``audio:`` sources:
    every recording becomes a log-mel feature map of ``(frames, mel_bins)``, the models'
    input; the defaults (micro_speech's framing) give 49 x 40 for one second."""

    sample_rate: int = setting(16000, Range(8000, 48000))  # Hz every recording is resampled to (8 to 48 kHz)
    clip_seconds: float = setting(1.0, POSITIVE)  # each recording is cut or zero-padded to this length
    window_ms: float = setting(30.0, POSITIVE)  # analysis window (periodic Hann)
    hop_ms: float = setting(20.0, POSITIVE)  # step between windows
    mel_bins: int = setting(40, AT_LEAST_2)  # mel channels (HTK mel scale, tf.signal's triangles)
    lower_hz: float = setting(20.0, AT_LEAST_0)  # lowest frequency of the mel channels
    upper_hz: float = setting(7600.0, POSITIVE)  # highest frequency of the mel channels (at most sample_rate / 2)
    dynamic_range_db: float = setting(80.0, POSITIVE)  # decibels below the loudest possible value mapped to [0, 1]


@dataclass
class RunConfig:
    """Everything a ``tfgan-compress run`` needs."""

    preset: str = "digits"  # the named configuration this one started from
    data: str = "digits"  # data source: digits, tfds:NAME, idx:DIR, npz:FILE, folder:DIR, audio:DIR
    seed: int = setting(0, SEEDS)  # random seed of every stage (stage i uses seed * 100 + i)
    strategy: Strategy = "default"  # tfgan_compress.distribute
    mode: Mode = "gan"  # "gan": conditional GAN on the data; "data-free": from the teacher alone
    teacher_path: Optional[str] = None  # a trained teacher (.keras or .h5) to compress instead of training one
    teacher_input: TeacherInput = "auto"  # with teacher_path: the input convention, or auto (measured)
    student_path: Optional[str] = None  # a .keras student architecture, trained from scratch (else distill.network)
    student_budget_kb: Optional[float] = setting(None, POSITIVE)  # widest distill.network width whose int8 file fits
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    datafree: DataFreeConfig = field(default_factory=DataFreeConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)

    def validate(self) -> "RunConfig":
        """Raise :class:`UsageError` on a value outside its type's choices or its field's range."""
        _check_fields(self, "")
        if self.audio.sample_rate not in SUPPORTED_RATES:
            raise UsageError(f"audio.sample_rate must be one of {', '.join(map(str, SUPPORTED_RATES))}, got "
                             f"{self.audio.sample_rate}")
        if not self.audio.lower_hz < self.audio.upper_hz <= self.audio.sample_rate / 2:
            raise UsageError(f"audio: need lower_hz < upper_hz <= sample_rate / 2 ({self.audio.sample_rate / 2:g}), "
                             f"got {self.audio.lower_hz:g} and {self.audio.upper_hz:g}")
        if self.mode == "data-free" and not self.teacher_path:
            raise UsageError("--mode data-free needs --teacher PATH (the model to compress)")
        if self.student_path and self.student_budget_kb:
            raise UsageError("--student and --student-budget-kb exclude each other (the budget picks a width of "
                             "the preset's student network)")
        if self.gan.discriminator_taps and self.gan.loss == "wasserstein_gp":
            raise UsageError("gan.discriminator_taps (a discriminator with one logit per head) works with the hinge "
                             "and non_saturating losses, not wasserstein_gp (its penalty takes one critic output)")
        if self.gan.teacher_margin is not None and self.gan.teacher_weight == 0:
            raise UsageError("gan.teacher_margin shapes the teacher term, which gan.teacher_weight = 0 turns off; "
                             "set a weight > 0, or unset the margin (gan.teacher_margin=null; the speech preset sets one)")
        if self.gan.generators > 1 and self.distill.class_blend:
            raise UsageError("distill.class_blend blends the class code of one generator; gan.generators > 1 trains "
                             "a mixture of several: choose one (distill.class_blend=0 or gan.generators=1)")
        if self.gan.batch_size < 4 * self.gan.generators:
            raise UsageError(f"gan.generators {self.gan.generators} share each batch of gan.batch_size "
                             f"{self.gan.batch_size}: give each generator 4 samples a step at least "
                             f"(gan.batch_size >= {4 * self.gan.generators})")
        if self.distill.sample_bank and self.distill.hard_latent_steps:
            raise UsageError("distill.sample_bank reuses samples drawn once; distill.hard_latent_steps moves each "
                             "step's fresh noise: choose one (set the other to 0)")
        if self.distill.class_blend and self.distill.hard_latent_steps:
            raise UsageError("distill.hard_latent_steps moves the noise of one class's samples; distill.class_blend "
                             "draws samples between two classes: choose one (set the other to 0)")
        if self.distill.teacher_precision == "bfloat16" and self.distill.feature_weight:
            raise UsageError("distill.teacher_precision bfloat16 labels with a copy of the teacher whose features "
                             "distill.feature_weight does not read; set teacher_precision float32 or auto (auto keeps "
                             "float32 with the feature terms)")
        if self.distill.bank_teacher_logits and self.distill.feature_weight:
            raise UsageError("distill.feature_weight reads the teacher's features of every step's views, which "
                             "distill.bank_teacher_logits does not compute; set one of them only")
        if self.distill.explore_steps and not self.distill.sample_bank:
            raise UsageError("distill.explore_steps writes explored samples into a sample bank; set "
                             "distill.sample_bank (samples drawn once), or distill.explore_steps=0")
        if self.distill.explore_steps and self.strategy != "default":
            raise UsageError(f"distill.explore_steps runs its explorer on one device, between the epochs; it is not "
                             f"made for --strategy {self.strategy}: leave it 0 there")
        if self.distill.explore_steps and self.distill.bank_teacher_logits:
            raise UsageError("distill.explore_steps writes new samples into the bank, whose logits "
                             "distill.bank_teacher_logits stores once; set one of them only")
        if self.distill.explore_steps and self.distill.explore_samples > self.distill.sample_bank:
            raise UsageError(f"distill.explore_samples {self.distill.explore_samples:,} is more than the bank's "
                             f"{self.distill.sample_bank:,} rows (distill.sample_bank); set at most that many")
        if self.distill.bank_teacher_logits and not self.distill.sample_bank:
            raise UsageError("distill.bank_teacher_logits stores the teacher's logits of a sample bank; set "
                             "distill.sample_bank (samples drawn once), or leave bank_teacher_logits false")
        if 0 < self.distill.sample_bank < self.distill.batch_size:
            raise UsageError(f"distill.sample_bank ({self.distill.sample_bank}) must hold at least one batch "
                             f"(distill.batch_size {self.distill.batch_size}), or be 0 for fresh samples")
        if self.preset not in PRESETS:
            raise UsageError(f"preset {self.preset!r} is not one of {', '.join(PRESETS)}"
                             f"{closest_hint(self.preset, PRESETS)}")
        if not self.export.variants:
            raise UsageError("export.variants is empty: name at least one of " + ", ".join(choices(ExportVariant)))
        for name in ("variants", "generator_variants"):
            listed = getattr(self.export, name)
            repeated = sorted({v for v in listed if listed.count(v) > 1})
            if repeated:
                raise UsageError(f"export.{name} names {', '.join(repeated)} more than once")
        if self.teacher_input != "auto" and not self.teacher_path:
            raise UsageError("--teacher-input describes a --teacher PATH; the built-in teacher takes 0-1")
        return self

    def audio_settings(self) -> Optional[dict]:
        """The ``audio`` section as the front end takes it, when ``data`` names recordings; else None."""
        from .data import is_audio

        return dataclasses.asdict(self.audio) if is_audio(self.data) else None

    def to_dict(self) -> dict:
        return _to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """Build a config from a (possibly partial) nested dict; unknown keys are errors."""
        return _from_dict(cls, values, "config").validate()


def section_from_dict(cls, values: dict, where: str):
    """One config section (``GANConfig``...) from a dict, checked like a whole config."""
    section = _from_dict(cls, values, where)
    _check_fields(section, f"{where}.")
    return section


def _check_fields(section, prefix: str) -> None:
    hints = typing.get_type_hints(type(section))
    for f in dataclasses.fields(section):
        value, name = getattr(section, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_fields(value, f"{name}.")
            if isinstance(value, ClassifierConfig):
                value.check(f"{name}.")
            continue
        _coerce(hints[f.name], value, name)  # type and choices
        allowed = f.metadata.get("range")
        if allowed is not None and value is not None and not isinstance(value, str):  # a range bounds numbers
            for item in value if isinstance(value, tuple) else (value,):
                if item not in allowed:
                    finite = " and finite" if is_infinite(item) else ""
                    raise UsageError(f"{name} must be {allowed}{finite}, got {item!r}")


def _to_jsonable(value):
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    return value


def _from_dict(cls, values: Any, where: str):
    if not isinstance(values, dict):
        raise UsageError(f"{where} must be an object, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError(f"{where} has unknown key(s): {', '.join(key + closest_hint(key, known) for key in unknown)}")
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _json_or_text(raw: str):
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _describe(hint) -> str:
    """A type as an error message names it: ``an integer``, ``one of auto``."""
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _coerce(hint, value, where):
    """``value`` as the type ``hint`` says, or :class:`UsageError` naming the setting."""
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is typing.Union:  # Optional[X], or X or Y (e.g. an integer or "auto")
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(members) < len(typing.get_args(hint)):
            return None
        if len(members) == 1:
            return _coerce(members[0], value, where)
        for member in members:
            try:
                return _coerce(member, value, where)
            except UsageError:
                continue
        raise UsageError(f"{where} must be {' or '.join(_describe(m) for m in members)}, got {value!r}")
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise UsageError(f"{where} must be one of {', '.join(typing.get_args(hint))}, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):  # --set KEY=a,b,c: the items of a list, each read as JSON when it parses
            value = [_json_or_text(item.strip()) for item in value.split(",") if item.strip()]
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where} must be a list, got {type(value).__name__}")
        return tuple(_coerce(typing.get_args(hint)[0], item, where) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UsageError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _tiny() -> RunConfig:
    small = ClassifierConfig(conv_filters=(4, 8), dense_units=(16, 16))
    return RunConfig(
        preset="tiny",
        teacher=TeacherConfig(network=small, epochs=2, batch_size=32),
        gan=GANConfig(
            noise_dim=8, generator_width=8, discriminator_width=8, epochs=2, steps_per_epoch=3, batch_size=32,
            log_every_steps=2, samples_per_class=2,
            class_balanced=True,  # exercised by every tiny run (the tests')
        ),
        distill=DistillConfig(
            network=ClassifierConfig(conv_filters=(2, 4), dense_units=(8, 8)),
            epochs=2, steps_per_epoch=3, batch_size=16,
        ),
        # a barely trained tiny model has near-ties everywhere: no agreement bar
        datafree=DataFreeConfig(epochs=2, steps_per_epoch=2, batch_size=16, student_batch_size=16,
                                student_steps=2, bank_size=64),
        export=ExportConfig(calibration_samples=16, min_agreement_float=0.0, min_agreement_quantized=0.0),
        evaluate=EvaluateConfig(latency_runs=5, latency_warmup=1),
    )


def lenet5_half() -> ClassifierConfig:
    """LeNet-5-half (conv 3, 8 of 5x5; dense 60, 42; 15,738 parameters on 28x28x1), the
    student of the data-free distillation papers (DAFL, Chen et al., 2019; DFAD, Fang et
    al., 2019); the data-free benchmark uses it to compare with their figures."""
    return ClassifierConfig(conv_filters=(3, 8), dense_units=(60, 42), kernel_size=5)


def _mnist() -> RunConfig:
    """LeNet-5 (conv 6, 16 of 5x5; dense 120, 84; 61,706 parameters) teacher; the student
    keeps LeNet-5's convolutions and narrows its dense layers (conv 6, 16; dense 32, 24;
    16,446 parameters, int8 file under 1/10 of the teacher's float32 file), about the size
    of the papers' LeNet-5-half (:func:`lenet5_half`, 15,738). GAN sized for two CPU cores."""
    lenet5 = ClassifierConfig(conv_filters=(6, 16), dense_units=(120, 84), kernel_size=5)
    student = ClassifierConfig(conv_filters=(6, 16), dense_units=(32, 24), kernel_size=5)
    return RunConfig(
        preset="mnist",
        teacher=TeacherConfig(network=lenet5, epochs=12, batch_size=128, learning_rate=2e-3),
        gan=GANConfig(noise_dim=64, generator_width=32, discriminator_width=32, epochs=8,
                      steps_per_epoch=0, min_steps=7500, batch_size=64, log_every_steps=50),
        # shifted fresh samples, no mixup, no hard-latent step (it doubles a step's cost)
        distill=DistillConfig(network=student, epochs=120, steps_per_epoch=200, batch_size=128,
                              learning_rate=3e-3, temperature=4.0, mixup=False, augment_shift=2,
                              hard_latent_steps=0),
        # data-free: synthesis rounds of 200 iterations, so each round's generator has longer to learn
        datafree=DataFreeConfig(epochs=30, steps_per_epoch=200),
    )


def _color() -> RunConfig:
    """Colour photos from 32x32 up (CIFAR-10), sized for two CPU cores:

    * teacher: ResNet-9 (Page, 2018) at half width (32, 64, 128, 256 filters; 1.6M
      parameters), SGD with Nesterov momentum, warm-up + cosine (one-cycle shape), weight
      decay, label smoothing 0.2, pad-and-crop (4 pixels) + flip augmentation;
    * GAN: residual generator with class-conditional BN and residual projection
      discriminator with spectral norm (SN-GAN / BigGAN style), hinge loss, EMA generator,
      DiffAugment color + translation + cutout (Zhao et al., 2020), with the teacher's
      batch-norm statistics as a prior (``bn_weight`` 0.02; Yin et al., 2020) toward its
      running statistics, on the teacher's pad-and-crop views of the samples, their shift
      measured from the teacher (``bn_view_shift`` auto: 4 or 3 for teachers trained with 4): the
      running statistics are those of such views, with their zero borders, which the raw
      samples were asked for; on the views the student gained 1.3 points over three CIFAR-10
      seeds and 1.4 on the six-class set, within the seed spread (the prior toward statistics
      measured on real photos, ``bn_target`` real, taught less); and the teacher's class
      margin (2 logits, ``teacher_weight`` 0.1, ramped up over the first 1,000 steps), 3 x 300 steps: the student learns more from these samples, of which the
      teacher still doubts some, than from those of 6 x 300 steps, all taken for their class
      (on CIFAR-10 and on an imbalanced six-class set; benchmarks/README.md), or from those of
      2 x 300 steps, of which the teacher takes only half for their class (CIFAR-10), and the
      budget goes to the distillation; and mode seeking (``diversity_weight`` 1; Mao et al.,
      2019) on pairs of one class, which widens each class's samples: the student gained
      4.2, 3.4 and 9.8 points on three CIFAR-10 seeds and 1.1 on the six-class set, at the cost of
      class faithfulness (the teacher takes about 75% of the samples for their class against
      over 90%); the projected discriminator (``discriminator_taps``) is off: its confident
      samples taught the student less;
    * student: MobileNet-style depthwise-separable network (81k parameters; int8 file
      about 113 KB), distilled at T = 4 on shifted, flipped and mixed generator samples,
      46 x 200 steps on a bank of 50,000 samples drawn once (``sample_bank``; 300 MB): a
      step then skips the generator, so these steps take the time of 30 x 200 on fresh
      samples, and gave 3.3 points more than those on CIFAR-10 (benchmarks/README.md); two
      student updates on each batch the teacher labels (``teacher_echo`` 2, 35 x 200 batches
      in the same time) gained 1.2, 1.2 and -0.1 points on three CIFAR-10 seeds but lost 0.3
      on the six-class set, so the preset does not echo;
    * data-free mode: no intensity (dark-background) prior; the teacher's batch-norm
      statistics (DeepInversion) are the image prior.

    For a GPU, the documented larger configuration is ``benchmarks/configs/color_gpu.json``.
    """
    return RunConfig(
        preset="color",
        teacher=TeacherConfig(
            network=ClassifierConfig(conv_filters=(32, 64, 128, 256), dense_units=(), architecture="resnet"),
            epochs=20, batch_size=256, optimizer="sgd", learning_rate=0.2, warmup_fraction=0.2,
            weight_decay=5e-4, label_smoothing=0.2, augment_shift=4, augment_flip=True),
        gan=GANConfig(architecture="resnet", diff_augment=("color", "translation", "cutout"), noise_dim=128,
                      generator_width=32, discriminator_width=32, epochs=3, steps_per_epoch=300, batch_size=64,
                      log_every_steps=50, bn_weight=0.02, teacher_weight=0.1, teacher_margin=2.0,
                      teacher_ramp_steps=1000, bn_view_shift="auto", diversity_weight=1.0),
        distill=DistillConfig(
            network=ClassifierConfig(conv_filters=(24, 48, 96, 96, 192, 192), dense_units=(),
                                     architecture="mobilenet"),
            epochs=46, steps_per_epoch=200, batch_size=128, temperature=4.0, learning_rate=3e-3, mixup=True,
            augment_shift=4, augment_flip=True, sample_bank=50000),
        # photos have no dark background: no ink prior; the teacher's batch norm is the image prior
        datafree=DataFreeConfig(intensity_weight=0.0),
    )


def _speech() -> RunConfig:
    """Keyword spotting on log-mel feature maps (49 x 40 for the default one-second clip):

    * teacher: DS-CNN (Zhang et al., 2017, "Hello Edge") of 64 filters, a 10x4 stem and
      four depthwise-separable blocks (24k parameters), with time and frequency
      shifts of 3 steps and label smoothing 0.1;
    * GAN: the DCGAN-style conditional GAN of the grey presets on the feature maps, with the
      teacher's batch-norm statistics as a prior (``bn_weight``; Yin et al., 2020) and the
      teacher's class margin (``teacher_margin`` 2 logits, ``teacher_weight`` 0.1, ramped up
      over the first 1,000 steps) in place of its cross-entropy: with the cross-entropy at
      0.3 every sample was taken for its class with 99% confidence and the Fréchet distance
      stayed near 3, with the pair the samples are class-faithful and far closer to the
      recordings (benchmarks/README.md, Speech);
    * student: DS-CNN of 24 filters and four blocks (5k parameters; its int8 file, metadata
      included, is about 17 KB, under the 20 KB of TFLite-Micro's micro_speech model), distilled at T = 4 on
      shifted and mixed generator samples;
    * data-free mode: no rotation in the prior (a rotated spectrogram is no recording).
    """
    return RunConfig(
        preset="speech",
        teacher=TeacherConfig(
            network=ClassifierConfig(conv_filters=(64, 64, 64, 64, 64), dense_units=(), dropout=0.2,
                                     architecture="dscnn"),
            epochs=40, batch_size=64, learning_rate=3e-3, label_smoothing=0.1, augment_shift=3),
        gan=GANConfig(noise_dim=64, generator_width=32, discriminator_width=32, epochs=8, steps_per_epoch=0,
                      min_steps=4000, batch_size=64, log_every_steps=50, diff_augment=("translation",),
                      bn_weight=0.02, teacher_weight=0.1, teacher_margin=2.0, teacher_ramp_steps=1000),
        distill=DistillConfig(
            network=ClassifierConfig(conv_filters=(24, 24, 24, 24, 24), dense_units=(), architecture="dscnn"),
            epochs=40, steps_per_epoch=100, batch_size=128, temperature=4.0, learning_rate=3e-3, mixup=True,
            augment_shift=3),
        datafree=DataFreeConfig(augment_rotation=0.0),
    )


PRESETS = {"digits": RunConfig, "tiny": _tiny, "mnist": _mnist, "color": _color, "speech": _speech}


def preset(name: str) -> RunConfig:
    """Return a fresh config for a named preset."""
    try:
        factory = PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    return factory()


def preset_for(spec, audio: bool = False) -> str:
    """The default preset for data of this shape: ``speech`` for recordings (``audio``),
    ``digits`` up to 16x16 pixels, ``color`` for RGB images of 32x32 and more, else ``mnist``."""
    if audio:
        return "speech"
    height, width, channels = spec.image_shape
    if max(height, width) <= 16:
        return "digits"
    return "color" if channels == 3 and min(height, width) >= 32 else "mnist"


#: the settings of the gan and distill sections that the data-free mode reads (the rest it never does)
DATA_FREE_READS = {"gan": ("noise_dim", "generator_width", "samples_per_class"), "distill": ("network",)}


def check_overrides_are_read(overrides: dict, config: RunConfig) -> None:
    """Refuse (``UsageError``) settings given over the preset that this run would never
    read: ``datafree.*`` in the GAN mode, ``gan.*`` and ``distill.*`` other than those of
    :data:`DATA_FREE_READS` in the data-free mode, ``teacher.*`` with a teacher given
    (its training settings train nothing)."""
    unread = []
    for section, values in (overrides or {}).items():
        if not isinstance(values, dict):
            continue
        if section == "datafree" and config.mode == "gan":
            unread += [(f"datafree.{key}", "--mode gan does not run the data-free stage") for key in values]
        if section in DATA_FREE_READS and config.mode == "data-free":
            unread += [(f"{section}.{key}", f"--mode data-free reads only {', '.join(DATA_FREE_READS[section])} "
                                            f"of {section}") for key in values if key not in DATA_FREE_READS[section]]
        if section == "audio" and config.audio_settings() is None:
            unread += [(f"audio.{key}", f"the data ({config.data}) are not recordings") for key in values]
        if section == "teacher" and config.teacher_path:
            unread += [(f"teacher.{key}", "a teacher is given, so none is trained") for key in values]
    if unread:
        names = ", ".join(name for name, _ in unread)
        raise UsageError(f"{names}: not read by this run ({unread[0][1]}); leave {'them' if len(unread) > 1 else 'it'} "
                         f"out")


def closest_hint(key: str, known) -> str:
    """`` (did you mean NAME?)`` for the valid name closest to a mistyped ``key``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def merge(base: RunConfig, overrides: dict) -> RunConfig:
    """Apply a nested dict of overrides (as from a JSON config file) onto ``base``."""
    merged = base.to_dict()
    _deep_update(merged, overrides, "config")
    return RunConfig.from_dict(merged)


def _deep_update(target: dict, updates: dict, where: str) -> None:
    if not isinstance(updates, dict):
        raise UsageError(f"{where} must be an object")
    for key, value in updates.items():
        if key not in target:
            raise UsageError(f"{where} has unknown key: {key}{closest_hint(key, target)}")
        if isinstance(target[key], dict) and isinstance(value, dict):
            _deep_update(target[key], value, f"{where}.{key}")
        else:
            target[key] = value
