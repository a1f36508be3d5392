"""Typed configuration of a run, with named presets.

Every stage reads one section of :class:`RunConfig`. The resolved configuration (every
default written out) is saved as ``config.json`` in the run directory, and can be read
back with :func:`RunConfig.from_dict`, which refuses unknown keys and wrong types.

Presets:

* ``digits``: scikit-learn's 8x8 digits, sized to finish in a couple of minutes on two
  CPU cores; the default for images up to 16x16 (:func:`preset_for`).
* ``tiny``: a handful of steps on tiny networks, for tests and smoke runs.
* ``mnist``: LeNet-5 teacher and LeNet-5-half student for 28x28 sources (MNIST,
  Fashion-MNIST), sized for two CPU cores; the default for larger images.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import UsageError

GAN_LOSSES = ("hinge", "non_saturating", "wasserstein_gp")


@dataclass
class ClassifierConfig:
    """A LeNet-style classifier: two conv blocks (conv, ReLU, 2x2 max-pool), two dense."""

    conv_filters: tuple = (16, 32)
    dense_units: tuple = (128, 64)
    kernel_size: int = 3
    dropout: float = 0.0


@dataclass
class TeacherConfig:
    """Training of the teacher on the real training split (skipped with ``--teacher``)."""

    network: ClassifierConfig = field(
        default_factory=lambda: ClassifierConfig(conv_filters=(32, 64), dense_units=(128, 64), dropout=0.2)
    )
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 2e-3
    augment_shift: int = 1  # random translation in pixels, 0 to disable


@dataclass
class GANConfig:
    """Conditional GAN (projection discriminator, class-conditional generator)."""

    loss: str = "hinge"  # one of GAN_LOSSES
    noise_dim: int = 32
    generator_width: int = 64
    discriminator_width: int = 64
    spectral_norm: bool = True
    gradient_penalty_weight: float = 10.0  # used by wasserstein_gp only
    epochs: int = 20
    steps_per_epoch: int = 100  # 0: one pass over the training split per epoch
    batch_size: int = 64
    generator_learning_rate: float = 2e-4
    discriminator_learning_rate: float = 2e-4
    beta_1: float = 0.0
    beta_2: float = 0.9
    ema_decay: float = 0.999
    log_every_steps: int = 10  # TensorBoard scalars every N steps (and per epoch)
    samples_per_class: int = 10  # columns of the per-epoch sample grid


@dataclass
class DistillConfig:
    """Knowledge distillation of the student on generator samples only."""

    network: ClassifierConfig = field(
        default_factory=lambda: ClassifierConfig(conv_filters=(12, 24), dense_units=(64, 32))
    )
    epochs: int = 30
    steps_per_epoch: int = 100
    batch_size: int = 128
    temperature: float = 4.0
    learning_rate: float = 3e-3
    mixup: bool = True  # also distil on convex mixes of generator samples
    augment_shift: int = 0  # random translation of generator samples, in pixels
    hard_latent_steps: int = 0  # gradient steps moving the noise to teacher-student disagreement
    hard_latent_step_size: float = 1.0  # length of each step in noise space


@dataclass
class DataFreeConfig:
    """Data-free mode (``mode = "data-free"``): generator and student trained from the teacher
    alone (:mod:`tfgan_compress.datafree`). Student network: ``distill.network``; generator:
    ``gan.noise_dim`` and ``gan.generator_width``. One epoch is one synthesis round: the
    generator starts afresh, its samples go into a replay bank the student learns from."""

    epochs: int = 40  # synthesis rounds
    steps_per_epoch: int = 100  # iterations per round: one generator step + student_steps each
    batch_size: int = 128  # generator batch
    student_batch_size: int = 128
    student_steps: int = 5  # student updates (on bank samples) per generator update
    adversarial_weight: float = 1.0  # weight of -|T(x) - S(x)|_1 (DFAD) in the generator loss
    class_weight: float = 1.0  # weight of the teacher's class margin hinge
    class_margin: float = 3.0  # logits by which the teacher must prefer the asked-for class
    bn_weight: float = 0.1  # DeepInversion prior, when the teacher has BatchNormalization
    diversity_weight: float = 10.0  # mode-seeking term: different noise, different images
    intensity_weight: float = 10.0  # image-norm prior: penalty on mean pixel intensity ...
    intensity_allowance: float = 0.2  # ... above this (pixels in [0, 1]); weight 0 to disable
    augment_shift: float = 0.15  # image prior: random shift (fraction of the image size) ...
    augment_rotation: float = 15.0  # ... rotation (degrees) ...
    augment_zoom: float = 0.15  # ... and zoom under which the teacher must still see the class
    student_augment_shift: float = 0.07  # random shift of bank samples for the student (fraction)
    bank_size: int = 50000  # replay bank of generator samples (ring buffer)
    bank_from: float = 0.5  # bank a round's samples from this fraction of the round on
    generator_learning_rate: float = 2e-3
    student_learning_rate: float = 2e-3


@dataclass
class ExportConfig:
    """TFLite conversion of the student."""

    variants: tuple = ("float32", "float16", "dynamic", "int8", "int8_io")
    generator_variants: tuple = ("float16", "int8")  # the generator as TFLite, () to skip
    calibration_samples: int = 500
    calibration_source: str = "generator"  # or "real" (real training images)
    # Top-1 agreement with the Keras student on the test images, required of each file.
    min_agreement_float: float = 0.995  # float32, float16
    min_agreement_quantized: float = 0.99  # dynamic, int8, int8_io


@dataclass
class EvaluateConfig:
    """Measurements on the real test split."""

    latency_runs: int = 200
    latency_warmup: int = 20


@dataclass
class RunConfig:
    """Everything a ``tfgan-compress run`` needs."""

    preset: str = "digits"
    data: str = "digits"
    seed: int = 0
    strategy: str = "default"  # default, mirrored, multi-worker, tpu (tfgan_compress.distribute)
    mode: str = "gan"  # "gan": conditional GAN on the data; "data-free": from the teacher alone
    teacher_path: Optional[str] = None
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    datafree: DataFreeConfig = field(default_factory=DataFreeConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def validate(self) -> "RunConfig":
        """Raise :class:`UsageError` on values no stage can work with."""
        if self.gan.loss not in GAN_LOSSES:
            raise UsageError(f"gan.loss must be one of {', '.join(GAN_LOSSES)}, got {self.gan.loss!r}")
        if self.mode not in ("gan", "data-free"):
            raise UsageError(f"mode must be gan or data-free, got {self.mode!r}")
        if self.strategy not in ("default", "mirrored", "multi-worker", "tpu"):
            raise UsageError(f"strategy must be default, mirrored, multi-worker or tpu, got {self.strategy!r}")
        if self.export.calibration_source not in ("generator", "real"):
            raise UsageError("export.calibration_source must be 'generator' or 'real'")
        unknown = set(self.export.variants) - {"float32", "float16", "dynamic", "int8", "int8_io"}
        if unknown:
            raise UsageError(f"export.variants has unknown variant(s): {', '.join(sorted(unknown))}")
        unknown = set(self.export.generator_variants) - {"float16", "int8"}
        if unknown:
            raise UsageError(f"export.generator_variants has unknown variant(s): {', '.join(sorted(unknown))}")
        for name, value in [
            ("teacher.epochs", self.teacher.epochs),
            ("gan.epochs", self.gan.epochs),
            ("gan.log_every_steps", self.gan.log_every_steps),
            ("gan.samples_per_class", self.gan.samples_per_class),
            ("distill.epochs", self.distill.epochs),
            ("distill.steps_per_epoch", self.distill.steps_per_epoch),
            ("teacher.batch_size", self.teacher.batch_size),
            ("gan.batch_size", self.gan.batch_size),
            ("distill.batch_size", self.distill.batch_size),
            ("datafree.epochs", self.datafree.epochs),
            ("datafree.steps_per_epoch", self.datafree.steps_per_epoch),
            ("datafree.batch_size", self.datafree.batch_size),
            ("datafree.student_steps", self.datafree.student_steps),
            ("datafree.student_batch_size", self.datafree.student_batch_size),
            ("datafree.bank_size", self.datafree.bank_size),
            ("export.calibration_samples", self.export.calibration_samples),
            ("evaluate.latency_runs", self.evaluate.latency_runs),
        ]:
            if value < 1:
                raise UsageError(f"{name} must be at least 1, got {value}")
        if self.datafree.batch_size < 2:
            raise UsageError("datafree.batch_size must be at least 2 (pairs for the diversity term)")
        if not 0.0 <= self.datafree.bank_from < 1.0:
            raise UsageError("datafree.bank_from must be in [0, 1)")
        if self.distill.temperature <= 0:
            raise UsageError("distill.temperature must be positive")
        if not 0.0 <= self.gan.ema_decay < 1.0:
            raise UsageError("gan.ema_decay must be in [0, 1)")
        return self

    def to_dict(self) -> dict:
        return _to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """Build a config from a (possibly partial) nested dict; unknown keys are errors."""
        return _from_dict(cls, values, "config").validate()


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
        raise UsageError(f"{where} has unknown key(s): {', '.join(unknown)}")
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(hint, value, where):
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(inner, value, where)
    if hint is tuple:
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where} must be a list, got {type(value).__name__}")
        return tuple(value)
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


def _mnist() -> RunConfig:
    """LeNet-5 (conv 6, 16 of 5x5; dense 120, 84; 61.7k parameters) teacher and LeNet-5-half
    (conv 3, 8; dense 60, 42; 15.7k parameters) student, as in the data-free distillation
    papers (DAFL, DFAD); GAN sized for two CPU cores."""
    lenet5 = ClassifierConfig(conv_filters=(6, 16), dense_units=(120, 84), kernel_size=5)
    lenet5_half = ClassifierConfig(conv_filters=(3, 8), dense_units=(60, 42), kernel_size=5)
    return RunConfig(
        preset="mnist",
        teacher=TeacherConfig(network=lenet5, epochs=12, batch_size=128, learning_rate=2e-3),
        gan=GANConfig(noise_dim=64, generator_width=32, discriminator_width=32, epochs=8,
                      steps_per_epoch=0, batch_size=64, log_every_steps=50),
        # Measured on MNIST (benchmarks/README.md): T = 2, shifted samples, one hard-latent
        # step and no mixup gave the best student of the variants tried.
        distill=DistillConfig(network=lenet5_half, epochs=30, steps_per_epoch=200, batch_size=128,
                              learning_rate=3e-3, temperature=2.0, mixup=False, augment_shift=2,
                              hard_latent_steps=1),
    )


PRESETS = {"digits": RunConfig, "tiny": _tiny, "mnist": _mnist}


def preset(name: str) -> RunConfig:
    """Return a fresh config for a named preset."""
    try:
        factory = PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    return factory()


def preset_for(spec) -> str:
    """The default preset for data of this shape: ``digits`` up to 16x16 pixels, else ``mnist``."""
    return "digits" if max(spec.image_shape[:2]) <= 16 else "mnist"


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
            raise UsageError(f"{where} has unknown key: {key}")
        if isinstance(target[key], dict) and isinstance(value, dict):
            _deep_update(target[key], value, f"{where}.{key}")
        else:
            target[key] = value
