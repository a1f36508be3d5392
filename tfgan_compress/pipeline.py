"""Stages and the run directory.

Each stage is a function over the run directory; :func:`run` chains them. A stage whose
artifact already exists is skipped (its artifact is loaded), so re-running the same
command after an interruption continues with the first unfinished stage.

::

    runs/<name>/
      config.json  teacher.keras  generator.keras  student.keras
      tflite/student_{float32,float16,dynamic,int8,int8_io}.tflite  teacher_float32.tflite
             generator_{float16,int8}.tflite  labels.txt  model_card.json
      samples/epoch_NNN.png  samples.png      logs/{teacher,gan,distill,samples}/
      checkpoints/   report.md  report.json  frontier.png
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import keras
import numpy as np

from . import artifacts, callbacks, data, datafree, distill, distribute, evaluate, export, networks, report
from .config import RunConfig
from .errors import UsageError
from .gan import ConditionalGAN
from .teacher import as_logits, load_classifier, train_teacher

STAGES = ("teacher", "gan", "distill", "export", "evaluate")
DATA_FREE_STAGES = ("teacher", "data-free", "export", "evaluate")


def default_run_dir(preset: str) -> Path:
    return Path("runs") / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"


def fit_verbosity() -> int:
    """Keras progress bars on a terminal, one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


@dataclass
class Run:
    """A run directory and its configuration; the stage functions hang off it."""

    config: RunConfig
    run_dir: Path
    progress: Callable[[str], None] = print
    safe_mode: bool = True

    # ------------------------------------------------------------------ paths
    @property
    def teacher_path(self) -> Path:
        return self.run_dir / "teacher.keras"

    @property
    def generator_path(self) -> Path:
        return self.run_dir / "generator.keras"

    @property
    def student_path(self) -> Path:
        return self.run_dir / "student.keras"

    @property
    def bank_calibration_path(self) -> Path:
        """Data-free mode: replay-bank samples kept for int8 calibration."""
        return self.run_dir / "calibration_bank.npy"

    @property
    def tflite_dir(self) -> Path:
        return self.run_dir / "tflite"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    def tflite_path(self, variant: str) -> Path:
        return self.tflite_dir / f"student_{variant}.tflite"

    # ------------------------------------------------------------------ set-up
    @classmethod
    def create(cls, config: RunConfig, run_dir, progress=print, safe_mode: bool = True) -> "Run":
        """Check the folder is writable, create it, and write the resolved ``config.json``."""
        run_dir = Path(run_dir)
        artifacts.check_writable_dir(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise UsageError(f"{run_dir}: exists and is not a folder")
        run_dir.mkdir(parents=True, exist_ok=True)
        artifacts.write_json(run_dir / "config.json", config.to_dict())
        return cls(config, run_dir, progress, safe_mode)

    @functools.cached_property
    def strategy(self):
        """The ``tf.distribute`` strategy every training stage runs under (``config.strategy``)."""
        return distribute.make_strategy(self.config.strategy)

    def _timings(self) -> dict:
        path = self.run_dir / "checkpoints" / "stage_seconds.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def _record_time(self, stage: str, seconds: float) -> None:
        timings = self._timings()
        timings[stage] = round(seconds, 2)
        artifacts.write_json(self.run_dir / "checkpoints" / "stage_seconds.json", timings)

    @property
    def stages(self) -> tuple:
        return DATA_FREE_STAGES if self.config.mode == "data-free" else STAGES

    def _seed(self, stage: str) -> int:
        seed = self.config.seed * 100 + self.stages.index(stage)
        keras.utils.set_random_seed(seed)
        return seed

    def _announce(self, stage: str, what: str) -> None:
        self.progress(f"[{self.stages.index(stage) + 1}/{len(self.stages)}] {stage}: {what}")

    def _backup(self, name: str) -> keras.callbacks.BackupAndRestore:
        """Per-epoch backup, so an interrupted stage resumes from its last finished epoch."""
        metadata = self.run_dir / "checkpoints" / name / "training_metadata.json"
        if metadata.is_file():
            done = json.loads(metadata.read_text()).get("epoch", 0)
            self.progress(f"  resuming {name} after epoch {done} from {metadata.parent}")
        return keras.callbacks.BackupAndRestore(str(self.run_dir / "checkpoints" / name), delete_checkpoint=True,
                                                double_checkpoint=True)

    def _tensorboard(self, name: str, update_freq="epoch") -> keras.callbacks.TensorBoard:
        return keras.callbacks.TensorBoard(str(self.logs_dir / name), update_freq=update_freq,
                                           write_graph=False)

    # ------------------------------------------------------------------ stages
    def teacher(self, dataset: Optional[data.Dataset] = None,
                user_teacher: Optional[keras.Model] = None) -> keras.Model:
        """Train the teacher on the real training split, or load the user's / a finished one.

        ``user_teacher``: ``config.teacher_path`` already loaded and checked by the caller.
        """
        spec = dataset.spec if dataset is not None else None
        if self.teacher_path.is_file():
            self._announce("teacher", f"using {self.teacher_path}")
            return load_classifier(self.teacher_path, spec, safe_mode=self.safe_mode)
        if self.config.teacher_path:
            self._announce("teacher", f"loading the user's teacher {self.config.teacher_path}")
            model = user_teacher or load_classifier(self.config.teacher_path, spec, safe_mode=self.safe_mode)
            artifacts.save_keras(model, self.teacher_path)
            return model
        if dataset is None:
            raise UsageError("the teacher stage needs --data (or --teacher PATH)")
        cfg = self.config.teacher
        self._announce("teacher", f"training on {len(dataset.x_train)} real images, {cfg.epochs} epochs")
        start = time.time()
        monitor = callbacks.DivergenceMonitor("teacher", "Lower teacher.learning_rate.")
        with self.strategy.scope():
            model = train_teacher(dataset, cfg, seed=self._seed("teacher"),
                                  callbacks=[monitor, self._backup("teacher"), self._tensorboard("teacher")],
                                  verbose=fit_verbosity())
        artifacts.save_keras(model, self.teacher_path)
        self._record_time("teacher", time.time() - start)
        return model

    def gan(self, dataset: data.Dataset, teacher: Optional[keras.Model] = None) -> keras.Model:
        """Train the conditional GAN on the real training split; save the EMA generator."""
        if self.generator_path.is_file():
            self._announce("gan", f"using {self.generator_path}")
            return keras.models.load_model(self.generator_path, compile=False)
        cfg = self.config.gan
        seed = self._seed("gan")
        spec = dataset.spec
        steps = cfg.steps_per_epoch or len(dataset.x_train) // cfg.batch_size
        self._announce("gan", f"conditional GAN ({cfg.loss} loss), {cfg.epochs} epochs x {steps} steps, "
                              f"batch {cfg.batch_size}")
        with self.strategy.scope():
            generator = networks.build_generator(spec.image_shape, spec.num_classes, cfg.noise_dim,
                                                 cfg.generator_width)
            discriminator = networks.build_discriminator(spec.image_shape, spec.num_classes,
                                                         cfg.discriminator_width, cfg.spectral_norm)
            model = ConditionalGAN(generator, discriminator, spec.num_classes, cfg.noise_dim, loss=cfg.loss,
                                   gradient_penalty_weight=cfg.gradient_penalty_weight, ema_decay=cfg.ema_decay,
                                   seed=seed)
            model.compile(
                generator_optimizer=keras.optimizers.Adam(cfg.generator_learning_rate, beta_1=cfg.beta_1,
                                                          beta_2=cfg.beta_2),
                discriminator_optimizer=keras.optimizers.Adam(cfg.discriminator_learning_rate, beta_1=cfg.beta_1,
                                                              beta_2=cfg.beta_2),
            )
        pipeline = data.training_pipeline(dataset.x_train, dataset.y_train, min(cfg.batch_size, len(dataset.x_train)),
                                          seed).repeat()
        monitor = callbacks.DivergenceMonitor(
            "gan", "Lower gan.discriminator_learning_rate (or raise gan.generator_learning_rate), keep "
                   "gan.spectral_norm on, or try gan.loss = wasserstein_gp.",
            watch_discriminator=cfg.loss in ("hinge", "non_saturating"))
        fit_callbacks = [monitor, self._backup("gan")]
        if teacher is not None:
            fit_callbacks.append(callbacks.TeacherScore(as_logits(teacher), spec.num_classes))
        fit_callbacks += [
            callbacks.SampleGrid(self.run_dir / "samples", self.logs_dir, spec.num_classes, cfg.samples_per_class),
            self._tensorboard("gan", update_freq=cfg.log_every_steps),
        ]
        start = time.time()
        model.fit(pipeline, epochs=cfg.epochs, steps_per_epoch=steps, callbacks=fit_callbacks,
                  verbose=fit_verbosity(), shuffle=False)
        seconds = time.time() - start
        self.progress(f"  GAN training: {cfg.epochs * steps * cfg.batch_size / seconds:,.0f} images/s")
        grid = callbacks.SampleGrid(self.run_dir / "samples", None, spec.num_classes, cfg.samples_per_class)
        grid.set_model(model)
        callbacks.save_png(self.run_dir / "samples.png", grid.grid())
        artifacts.save_keras(model.ema_generator, self.generator_path)
        self._record_time("gan", seconds)
        return model.ema_generator

    def distill(self, teacher: keras.Model, generator: keras.Model) -> keras.Model:
        """Distil the student from the teacher on generator samples only.

        Deliberately takes no dataset: no real training image can reach the student.
        """
        if self.student_path.is_file():
            self._announce("distill", f"using {self.student_path}")
            return keras.models.load_model(self.student_path, compile=False)
        cfg = self.config.distill
        image_shape = tuple(teacher.inputs[0].shape[1:])
        num_classes = int(teacher.outputs[0].shape[-1])
        with self.strategy.scope():
            student = networks.build_classifier(image_shape, num_classes, cfg.network, name="student")
        ratio = student.count_params() / teacher.count_params()
        self._announce("distill", f"student of {student.count_params():,} parameters ({ratio:.2f} of the teacher), "
                                  f"{cfg.epochs} epochs x {cfg.steps_per_epoch} steps on generator samples, "
                                  f"T={cfg.temperature}")
        start = time.time()
        frozen_teacher = distribute.replicate(as_logits(teacher), self.strategy)
        frozen_generator = distribute.replicate(generator, self.strategy)
        with self.strategy.scope():
            distill.distill_on_generator(
                frozen_teacher, frozen_generator, student, cfg, seed=self._seed("distill"),
                callbacks=[callbacks.DivergenceMonitor("distill", "Lower distill.learning_rate."),
                           self._backup("distill"), self._tensorboard("distill")],
                verbose=fit_verbosity())
        artifacts.save_keras(student, self.student_path)
        self._record_time("distill", time.time() - start)
        return student

    def data_free(self, teacher: keras.Model) -> tuple:
        """Generator and student from the teacher alone (data-free mode).

        Deliberately takes no dataset: the training code has no handle on real images.
        Returns (generator, student); both are saved like the GAN mode's.
        """
        if self.student_path.is_file() and self.generator_path.is_file():
            self._announce("data-free", f"using {self.generator_path} and {self.student_path}")
            return (keras.models.load_model(self.generator_path, compile=False),
                    keras.models.load_model(self.student_path, compile=False))
        cfg, gan_cfg = self.config.datafree, self.config.gan
        image_shape = tuple(teacher.inputs[0].shape[1:])
        num_classes = int(teacher.outputs[0].shape[-1])
        seed = self._seed("data-free")
        with self.strategy.scope():
            generator = networks.build_generator(image_shape, num_classes, gan_cfg.noise_dim, gan_cfg.generator_width)
            student = networks.build_classifier(image_shape, num_classes, self.config.distill.network, name="student")
        self._announce("data-free", f"generator and student ({student.count_params():,} parameters, "
                                    f"{student.count_params() / teacher.count_params():.2f} of the teacher) from the "
                                    f"teacher alone, {cfg.epochs} epochs x {cfg.steps_per_epoch} iterations "
                                    f"({cfg.student_steps} student steps each)")
        start = time.time()
        frozen_teacher = distribute.replicate(as_logits(teacher), self.strategy)
        grid = callbacks.SampleGrid(self.run_dir / "samples", self.logs_dir, num_classes, gan_cfg.samples_per_class)
        with self.strategy.scope():
            history = datafree.distill_data_free(
                frozen_teacher, generator, student, cfg, seed=seed,
                callbacks=[callbacks.DivergenceMonitor("data-free", "Lower datafree.generator_learning_rate."),
                           self._backup("data-free"), grid, self._tensorboard("data-free", update_freq=50)],
                verbose=fit_verbosity())
        callbacks.save_png(self.run_dir / "samples.png", grid.grid())
        # int8 calibration from the replay bank: every round's samples, not only the last generator's
        calibration = datafree.bank_sample(history.model, self.config.export.calibration_samples, seed)
        with artifacts.atomic_path(self.bank_calibration_path, suffix=".npy") as tmp:
            np.save(tmp, calibration)
        artifacts.save_keras(generator, self.generator_path)
        artifacts.save_keras(student, self.student_path)
        self._record_time("data-free", time.time() - start)
        return generator, student

    def calibration_source_name(self) -> str:
        """``real``, ``generator``, or ``replay bank`` (data-free mode, once its bank sample exists)."""
        if (self.config.export.calibration_source == "generator" and self.config.mode == "data-free"
                and self.bank_calibration_path.is_file()):
            return "replay bank"
        return self.config.export.calibration_source

    def calibration_images(self, generator: keras.Model, num_classes: int,
                           dataset: Optional[data.Dataset] = None) -> np.ndarray:
        """Calibration set for int8: class-balanced generator samples (or real ones on request; in
        data-free mode, samples of the replay bank, which hold every synthesis round)."""
        cfg = self.config.export
        rng = np.random.default_rng(self.config.seed)
        if cfg.calibration_source == "real":
            if dataset is None:
                raise UsageError("export.calibration_source = 'real' needs --data")
            pick = rng.choice(len(dataset.x_train), min(cfg.calibration_samples, len(dataset.x_train)), replace=False)
            return dataset.x_train[pick]
        if self.calibration_source_name() == "replay bank":
            return np.load(self.bank_calibration_path)
        labels = (np.arange(cfg.calibration_samples) % num_classes).astype(np.int32)
        noise_dim = int(generator.inputs[0].shape[-1])
        noise = rng.standard_normal((len(labels), noise_dim)).astype(np.float32)
        return np.asarray(generator.predict([noise, labels], batch_size=256, verbose=0))

    def export(self, student: keras.Model, generator: keras.Model, class_names, check_images: np.ndarray,
               dataset: Optional[data.Dataset] = None, teacher: Optional[keras.Model] = None) -> list:
        """TFLite variants of the student (and the teacher's float32 file, for latency ratios,
        and the generator), each checked with LiteRT against Keras on ``check_images``."""
        cfg = self.config.export
        if (self.tflite_dir / "model_card.json").is_file():
            self._announce("export", f"using {self.tflite_dir}")
            return []
        source = self.calibration_source_name()
        self._announce("export", f"TFLite {', '.join(cfg.variants)}; int8 calibrated on "
                                 f"{cfg.calibration_samples} {source} samples")
        start = time.time()
        calibration = self.calibration_images(generator, len(class_names), dataset)
        bars = {v: cfg.min_agreement_float if v in ("float32", "float16") else cfg.min_agreement_quantized
                for v in export.VARIANTS}
        exported = export.export_classifier(student, self.tflite_dir, "student", calibration, check_images,
                                            cfg.variants, agreement_bars=bars, progress=self.progress)
        if teacher is not None:
            export.export_classifier(as_logits(teacher), self.tflite_dir, "teacher", calibration, check_images,
                                     ("float32",), agreement_bars=bars, progress=self.progress)
        generator_files = export.export_generator(generator, self.tflite_dir, cfg.generator_variants,
                                                  progress=self.progress)
        extra = {"calibration": {"source": source, "samples": int(len(calibration))},
                 "agreement_checked_on": f"{len(check_images)} images of the test split",
                 "generator": {"files": generator_files, "noise_dim": int(generator.inputs[0].shape[-1]),
                               "inputs": "noise float32 [N, noise_dim] ~ N(0, 1), label int32 [N]",
                               "output": "images float32 [N, H, W, C] in [0, 1]"}}
        # The card is written last: its presence marks the stage as finished.
        export.write_labels_and_card(self.tflite_dir, class_names, tuple(student.inputs[0].shape[1:]), exported,
                                     extra)
        self._record_time("export", time.time() - start)
        return exported

    def evaluate(self, dataset: data.Dataset) -> dict:
        """Every model and export on the real test split -> report.json / report.md / frontier.png;
        the test figures are also added to ``tflite/model_card.json``."""
        cfg = self.config.evaluate
        self._announce("evaluate", f"{len(dataset.x_test)} real test images; latency over {cfg.latency_runs} "
                                   f"single-image runs, 1 thread")
        start = time.time()
        teacher = as_logits(load_classifier(self.teacher_path, dataset.spec, safe_mode=self.safe_mode))
        student = keras.models.load_model(self.student_path, compile=False)
        x, y = dataset.x_test, dataset.y_test
        teacher_predictions = np.argmax(evaluate.keras_probabilities(teacher, x), -1)
        args = (x, y, teacher_predictions, cfg.latency_runs, cfg.latency_warmup)
        rows = [evaluate.evaluate_keras("teacher", teacher, self.teacher_path, *args)]
        teacher_tflite = self.tflite_dir / "teacher_float32.tflite"
        if teacher_tflite.is_file():
            rows.append(evaluate.evaluate_tflite("teacher_float32", teacher_tflite, teacher.count_params(), *args))
        rows.append(evaluate.evaluate_keras("student", student, self.student_path, *args))
        for variant in self.config.export.variants:
            rows.append(evaluate.evaluate_tflite(f"student_{variant}", self.tflite_path(variant),
                                                 student.count_params(), *args))
        if teacher_tflite.is_file():
            for row in rows:
                if row["format"] == "tflite":
                    row["speedup_vs_teacher_float32"] = rows[1]["latency_ms"] / row["latency_ms"]
        card_path = self.tflite_dir / "model_card.json"
        card = json.loads(card_path.read_text())
        generator_files = card.get("generator", {}).get("files", [])
        self._record_time("evaluate", time.time() - start)
        info = {
            "data": dataset.source, "preset": self.config.preset, "seed": self.config.seed,
            "mode": self.config.mode, "train_images": len(dataset.x_train), "test_images": len(x),
            "num_classes": dataset.num_classes,
            "image_shape": list(dataset.spec.image_shape),
            "student_teacher_param_ratio": student.count_params() / teacher.count_params(),
            "real_training_images_seen_by_student": 0,
            "generator_files": {f["file"]: f["bytes"] for f in generator_files},
            # uint8 pixels + one label byte per image: what the generator file stands in for
            "training_set_bytes": int(dataset.x_train[0].size + 1) * len(dataset.x_train),
            "stage_seconds": self._timings(),
        }
        result = report.write_report(self.run_dir, rows, info)
        by_file = {Path(row["file"]).name: row for row in rows if row["format"] == "tflite"}
        for entry in card["files"]:
            row = by_file.get(entry["file"])
            if row is not None:
                entry["test"] = {k: row[k] for k in ("accuracy", "bits_per_example", "agreement_with_teacher",
                                                     "latency_ms", "latency_p90_ms", "throughput_images_per_s")}
        card["test_split"] = {"data": dataset.source, "images": len(x)}
        artifacts.write_json(card_path, card)
        self.progress(report.markdown_table(rows))
        return result

def run(config: RunConfig, out_dir=None, progress=print, safe_mode: bool = True,
        dataset: Optional[data.Dataset] = None) -> dict:
    """All stages in order into one run directory; returns the report (also written as JSON).

    ``dataset``: the already loaded ``config.data``, if the caller has it.
    """
    config.validate()
    if dataset is None:
        dataset = data.load(config.data)  # fails before anything is written
    if config.mode == "data-free" and not config.teacher_path:
        raise UsageError("--mode data-free needs --teacher PATH (the model to compress)")
    user_teacher = None
    if config.teacher_path:  # a teacher that does not fit the data also fails before anything is written
        user_teacher = load_classifier(config.teacher_path, dataset.spec, safe_mode=safe_mode)
    run_dir = Path(out_dir) if out_dir else default_run_dir(config.preset)
    if config.strategy == "multi-worker" and not distribute.is_chief():
        # Every worker runs the same steps; only the chief's files are the run's.
        run_dir = Path(tempfile.mkdtemp(prefix=f"tfgan-compress-{distribute.task_name()}-"))
    this = Run.create(config, run_dir, progress, safe_mode)
    progress(f"run directory: {run_dir}")
    progress(f"data: {data.describe(dataset)}")
    start = time.time()
    teacher = this.teacher(dataset, user_teacher)
    if config.mode == "data-free":
        generator, student = this.data_free(teacher)  # the real data is used for the report only
    else:
        generator = this.gan(dataset, teacher)
        student = this.distill(teacher, generator)
    this.export(student, generator, dataset.class_names, dataset.x_test, dataset, teacher)
    result = this.evaluate(dataset)
    progress(f"done in {time.time() - start:.0f} s: {run_dir / 'report.md'}")
    return result
