"""Stages as data, and the one runner that runs them.

A :class:`Stage` is declared once in :data:`STAGES`: its name, the artifacts it needs and
makes (named as in :class:`run_folder.RunFolder`), the modes it belongs to, and the
function (:mod:`tfgan_compress.stages`) that makes its artifacts. :func:`run_stages`
does for every stage what each would otherwise repeat:

* skip it when everything it makes exists ("using ..."; the evaluation alone always
  measures again), refuse it when something it needs is missing (naming the stage that
  makes it), before anything is written;
* the progress line ``[i/n] stage: ...``; the seed ``config.seed * 100 + i``, set after
  its inputs are loaded and before it builds anything, so a resumed run builds what an
  uninterrupted one does;
* the ``fit`` callbacks (:meth:`StageContext.fit_callbacks`: divergence monitor,
  BackupAndRestore under ``checkpoints/<stage>``, TensorBoard under ``logs/<stage>``);
* the atomic save of the returned artifacts, and the stage's wall-clock time.

:func:`run` runs the stages of ``config.mode`` in order; the CLI's sub-commands are the
stage names (``tfgan-compress data-free`` exists because the stage does).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import keras

from . import callbacks, data, distill, distribute, stages, teacher
from . import student as student_choice
from .commands import STAGE_COMMANDS
from .config import Mode, RunConfig, choices
from .errors import BelowAgreementBar, UsageError
from .gan import check_view_shift
from .run_folder import RunFolder
from .teacher import check_classifier, load_classifier

__all__ = ["Stage", "STAGES", "stages_of", "StageContext", "run_stages", "run", "run_context"]


@dataclass(frozen=True)
class Stage:
    """One step of a run: what it needs and makes, and the function that makes it."""

    name: str
    help: str
    modes: tuple  # the run modes it belongs to
    produce: Callable[["StageContext"], dict]  # returns {artifact: value} for the runner to save
    needs: tuple = ()  # artifacts that must exist
    uses: tuple = ()  # artifacts used when they exist
    makes: tuple = ()  # artifacts it writes; all present = done
    needs_data: bool = False  # reads config.data
    divergence_hint: str = ""  # the setting to change when its training diverges
    runs_again: bool = False  # runs even when its artifacts exist (measurements are redone)


#: every stage, in run order (names, help and modes: :data:`commands.STAGE_COMMANDS`)
STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("teacher", *STAGE_COMMANDS["teacher"],
          stages.teacher, makes=("teacher", "teacher_input"), needs_data=True,
          divergence_hint="Lower teacher.learning_rate."),
    Stage("gan", *STAGE_COMMANDS["gan"],
          stages.gan, uses=("teacher",), makes=("generator",), needs_data=True,
          divergence_hint="Lower gan.discriminator_learning_rate (or raise gan.generator_learning_rate), keep "
                          "gan.spectral_norm on, or try gan.loss = wasserstein_gp."),
    Stage("distill", *STAGE_COMMANDS["distill"],
          stages.distill_student, needs=("teacher", "teacher_input", "generator"), makes=("student",),
          divergence_hint="Lower distill.learning_rate."),
    Stage("data-free", *STAGE_COMMANDS["data-free"],
          stages.data_free, needs=("teacher", "teacher_input"), makes=("calibration_bank", "generator", "student"),
          divergence_hint="Lower datafree.generator_learning_rate (g_loss), or datafree.student_learning_rate or "
                          "datafree.student_weight_decay (distill_loss)."),
    Stage("export", *STAGE_COMMANDS["export"],
          stages.export_tflite, needs=("student", "generator", "teacher_input"), uses=("teacher", "calibration_bank"),
          makes=("tflite",), needs_data=True),
    Stage("evaluate", *STAGE_COMMANDS["evaluate"],
          stages.evaluate_all, needs=("teacher", "teacher_input", "student", "generator", "tflite"), makes=("report",),
          needs_data=True,
          runs_again=True),
)}


def stages_of(mode: str) -> list[Stage]:
    """The stages of a run in ``mode``, in order."""
    return [stage for stage in STAGES.values() if mode in stage.modes]


def fit_verbosity() -> int:
    """Keras progress bars on a terminal, one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


@dataclass
class StageContext:
    """What a stage function gets: the config, the run folder, the data, the artifacts."""

    config: RunConfig
    folder: RunFolder
    progress: Callable[[str], None] = print
    safe_mode: bool = True
    given_dataset: Optional[data.Dataset] = None
    given_teacher: Optional[keras.Model] = None  # an in-memory teacher (tfgan_compress.compress), for teacher_path
    user_callbacks: tuple = ()  # the caller's Keras callbacks, attached to every training stage's fit
    stage: Optional[Stage] = None
    seed: int = 0
    started: float = 0.0
    verbose: int = field(default_factory=fit_verbosity)
    loaded: dict = field(default_factory=dict)

    @functools.cached_property
    def dataset(self) -> data.Dataset:
        """``config.data``, loaded once."""
        if self.given_dataset is not None:
            return self.given_dataset
        return data.load(self.config.data, audio=self.config.audio_settings())

    @functools.cached_property
    def strategy(self):
        """The ``tf.distribute`` strategy every training stage runs under (``config.strategy``)."""
        return distribute.make_strategy(self.config.strategy)

    def data_loaded(self) -> bool:
        return self.given_dataset is not None or "dataset" in self.__dict__  # cached_property's slot

    def user_teacher(self) -> tuple:
        """``config.teacher_path``, loaded once, checked against the data, its input convention
        found on the test split: (the teacher taking [0, 1] images, the ``teacher_input`` record)."""
        if "user_teacher" not in self.loaded:
            path = self.config.teacher_path
            if self.given_teacher is not None:
                model = self.given_teacher
                check_classifier(model, self.dataset.spec, path)
            else:
                model = load_classifier(path, self.dataset.spec, safe_mode=self.safe_mode)
            self.loaded["user_teacher"] = teacher.as_run_teacher(model, self.dataset, self.config.teacher_input, path)
        return self.loaded["user_teacher"]

    def user_student(self) -> keras.Model:
        """``config.student_path``, loaded once (an architecture: its weights are not used)."""
        if "user_student" not in self.loaded:
            self.loaded["user_student"] = load_classifier(self.config.student_path, safe_mode=self.safe_mode)
        return self.loaded["user_student"]

    def teacher_input(self) -> dict:
        """The teacher's input convention, its ``teacher_input`` record (``convention``,
        ``scale``, ``offset``...; ``0-1`` for the built-in teacher)."""
        return self.load("teacher_input")

    def has(self, artifact: str) -> bool:
        return artifact in self.loaded or self.folder.exists(artifact)

    def load(self, artifact: str):
        """An artifact made by this run (kept in memory) or saved in the folder (loaded once;
        the teacher is checked against the data when the data is at hand)."""
        if artifact not in self.loaded:
            if artifact == "teacher":
                spec = self.dataset.spec if self.data_loaded() else None
                value = load_classifier(self.folder.path("teacher"), spec, safe_mode=self.safe_mode)
            else:
                value = self.folder.load(artifact, safe_mode=self.safe_mode)
            self.loaded[artifact] = value
        return self.loaded[artifact]

    def announce(self, what: str) -> None:
        """The stage's progress line: ``[i/n] stage: what``."""
        self.progress(f"{self.position()} {self.stage.name}: {what}")

    def position(self) -> str:
        names = [stage.name for stage in stages_of(self.config.mode)]
        return f"[{names.index(self.stage.name) + 1}/{len(names)}]"

    def elapsed(self) -> float:
        return time.time() - self.started

    def epochs_done(self) -> int:
        """Epochs of this stage that an interrupted run finished (0 for a fresh stage): its
        training streams skip their batches, so that the resumed run sees the same data."""
        return self.folder.epochs_backed_up(self.stage.name) or 0

    def fit_callbacks(self, *extra, update_freq="epoch", watch_discriminator: bool = False) -> list:
        """``[divergence monitor, BackupAndRestore, *extra, *user callbacks, TensorBoard]`` for this
        stage's ``fit``:
        the monitor first (it stops before a bad epoch is backed up), TensorBoard last (it
        logs what the callbacks before it added)."""
        name = self.stage.name
        backup, done = self.folder.checkpoint(name), self.folder.epochs_backed_up(name)
        if done is not None:
            self.progress(f"  resuming {name} after epoch {done} from {backup}")
        gan = self.config.gan
        return [callbacks.DivergenceMonitor(name, self.stage.divergence_hint, watch_discriminator,
                                            gan.divergence_threshold, gan.divergence_patience),
                callbacks.DiskSpaceGuard(backup),  # before the backup: a full disk mid-write crashed h5py
                keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=True, double_checkpoint=True),
                callbacks.RandomStateBackup(self.folder.random_state(name)),
                keras.callbacks.LambdaCallback(  # after the backup: the time up to the epoch it saved
                    on_epoch_end=lambda epoch, logs: self.folder.record_seconds(name, self.elapsed(), finished=False)),
                *extra,
                *self.user_callbacks,
                callbacks.TextSummary(self.folder.logs(name) / "train", "config",
                                      "```json\n" + json.dumps(self.config.to_dict(), indent=2) + "\n```"),
                callbacks.TensorBoard(str(self.folder.logs(name)), update_freq=update_freq, write_graph=False)]


def stage_seed(config, stage_name: str) -> int:
    """The seed of one stage: ``config.seed * 100 + i``, ``i`` its place in the mode's stages."""
    return config.seed * 100 + [s.name for s in stages_of(config.mode)].index(stage_name)


def run_stage(stage: Stage, ctx: StageContext) -> None:
    """Skip, or seed, run, save and time one stage (its needs were checked by :func:`run_stages`)."""
    ctx.stage = stage
    folder = ctx.folder
    if not stage.runs_again and all(folder.exists(artifact) for artifact in stage.makes):
        ctx.announce("using " + ", ".join(str(folder.path(artifact)) for artifact in stage.makes))
        return
    folder.check_backup(stage.name, ctx.progress)  # an unreadable backup is set aside before anything loads it
    for artifact in stage.needs + stage.uses:  # loading a model draws random initial weights: before the seed
        if ctx.has(artifact):
            ctx.load(artifact)
    ctx.seed = stage_seed(ctx.config, stage.name)
    keras.utils.set_random_seed(ctx.seed)
    ctx.started = time.time() - folder.seconds_so_far(stage.name)  # an interrupted stage's time counts too
    for artifact, value in (stage.produce(ctx) or {}).items():
        folder.save(artifact, value)
        ctx.loaded[artifact] = value
    missing = [str(folder.path(artifact)) for artifact in stage.makes if not folder.exists(artifact)]
    if missing:
        raise RuntimeError(f"the {stage.name} stage did not write {', '.join(missing)}")
    folder.record_seconds(stage.name, ctx.elapsed())


def run_stages(config: RunConfig, out_dir, names, progress=print, safe_mode: bool = True,
               dataset: Optional[data.Dataset] = None, verbose: Optional[int] = None,
               teacher_model: Optional[keras.Model] = None, user_callbacks=()) -> StageContext:
    """Run the named stages, in order, in one run folder; bad input fails before anything
    is written. Returns the context (its folder, the artifacts it holds). ``verbose``: Keras'
    ``fit`` verbosity (default: progress bars on a terminal, a line per epoch otherwise).
    ``teacher_model``: the in-memory model ``config.teacher_path`` names; ``user_callbacks``:
    Keras callbacks attached to every training stage."""
    config.validate()
    plan = [STAGES[name] for name in names]
    for stage in plan:
        if config.mode not in stage.modes:
            raise UsageError(f"the {stage.name} stage belongs to --mode {' or '.join(stage.modes)}, "
                             f"not {config.mode}")
    if out_dir is not None and str(out_dir) == "":
        raise UsageError("--out is empty; give a folder name")
    folder, resumed = (RunFolder(out_dir), False) if out_dir else RunFolder.default(config)
    if config.strategy == "multi-worker" and not distribute.is_chief():
        # Every worker runs the same steps; only the chief's files are the run's.
        folder = RunFolder(tempfile.mkdtemp(prefix=f"tfgan-compress-{distribute.task_name()}-"))
    folder.check_ours(config.data)  # never write into a folder of the user's, nor into the data's
    folder.check_same_settings(config)  # a rerun with other settings would mix two runs
    if config.teacher_path and STAGES["teacher"] not in plan and not folder.exists("teacher"):
        plan.insert(0, STAGES["teacher"])  # copies the user's --teacher into the run first
    made = set()
    for stage in plan:  # every need is in the folder, or made by an earlier stage of the plan
        for artifact in stage.needs:
            if artifact not in made and not folder.exists(artifact):
                makers = [s.name for s in stages_of(config.mode) if artifact in s.makes]
                raise UsageError(f"{folder.path(artifact)}: not found; run the {' or '.join(makers)} stage first")
        made.update(stage.makes)
    ctx = StageContext(config, folder, progress, safe_mode, dataset, teacher_model, tuple(user_callbacks or ()))
    if verbose is not None:
        ctx.verbose = verbose
    if any(stage.needs_data for stage in plan):
        ctx.dataset  # noqa: B018 - load and validate now, before anything is written
    data_record = data.fingerprint(ctx.dataset) if ctx.data_loaded() else None
    if data_record is not None:
        folder.check_same_data(data_record)  # changed data under the same path would reuse the old models
    if config.teacher_path and STAGES["teacher"] in plan and not folder.exists("teacher"):
        ctx.user_teacher()  # a teacher that does not fit the data also fails before anything is written
    makes_student = any("student" in stage.makes for stage in plan) and not folder.exists("student")
    if config.student_path and makes_student:
        student = ctx.user_student()  # and so does a student file that cannot be used
        if ctx.data_loaded():
            check_classifier(student, ctx.dataset.spec, config.student_path)
    if config.student_budget_kb and makes_student and ctx.data_loaded():  # and a budget nothing fits
        spec = ctx.dataset.spec
        student_choice.check_budget_reachable(spec.image_shape, spec.num_classes, config.distill.network,
                                              round(config.student_budget_kb * student_choice.KB),
                                              **stages.described_data(ctx.dataset))
    if STAGES["gan"] in plan and ctx.data_loaded():
        check_view_shift(config.gan, ctx.dataset.spec.image_shape)  # before the teacher's training
    if config.distill.sample_bank and STAGES["distill"] in plan and ctx.data_loaded():
        distill.check_sample_bank_fits(config.distill, ctx.dataset.spec.image_shape)  # not after the GAN's hours
    if config.strategy != "default":
        ctx.strategy  # noqa: B018 - a strategy that cannot be made (no TF_CONFIG, no TPU) fails before writing too
    with folder.claimed():  # the marker, and the lock a second process on this folder is refused by
        folder.check_same_settings(config)  # again, now that no other process can write them
        if data_record is not None:
            folder.check_same_data(data_record)
            folder.record_data(data_record)
        folder.create(config)
        if resumed:
            progress(f"run directory: {folder.root} (resuming the newest unfinished run of these settings; give "
                     f"--out to choose)")
        elif len(plan) > 1:
            progress(f"run directory: {folder.root}")
            if ctx.data_loaded():
                progress(f"data: {data.describe(ctx.dataset)}")
        with scratch_space(folder):
            for stage in plan:
                run_stage(stage, ctx)
    return ctx


@contextlib.contextmanager
def scratch_space(folder: RunFolder):
    """Temporary files (the TFLite converter's SavedModel folders, among others) in the run
    folder's own scratch folder (:meth:`RunFolder.scratch_space`) rather than the system's
    temp dir: a run killed mid-export leaves them where the next run of that folder removes them."""
    with folder.scratch_space() as scratch:
        saved = tempfile.tempdir
        tempfile.tempdir = str(scratch)
        try:
            yield scratch
        finally:
            tempfile.tempdir = saved


def run(config: RunConfig, out_dir=None, progress=print, safe_mode: bool = True,
        dataset: Optional[data.Dataset] = None, strict: bool = False, verbose: Optional[int] = None,
        teacher_model: Optional[keras.Model] = None, user_callbacks=()) -> dict:
    """All stages of ``config.mode`` into one run folder; returns the report (``report.json``).

    ``dataset``: the already loaded ``config.data``, if the caller has it. An exported file
    below its agreement bar does not stop the run: it is kept under ``tflite/below_bar/``
    and flagged in the report (``below_agreement_bar``); :func:`check_exports` raises on it
    (the CLI's exit status 3); ``strict=True`` calls it at the end.
    """
    return run_context(config, out_dir, progress, safe_mode, dataset, strict, verbose, teacher_model,
                       user_callbacks).folder.load("report")


def run_context(config: RunConfig, out_dir=None, progress=print, safe_mode: bool = True,
                dataset: Optional[data.Dataset] = None, strict: bool = False, verbose: Optional[int] = None,
                teacher_model: Optional[keras.Model] = None, user_callbacks=()) -> StageContext:
    """:func:`run`, returning the stage context (the run folder and the models it holds)."""
    start = time.time()
    ctx = run_stages(config, out_dir, [stage.name for stage in stages_of(config.mode)], progress, safe_mode,
                     dataset, verbose, teacher_model, user_callbacks)
    progress(f"done in {time.time() - start:.0f} s: {ctx.folder.report_md}")
    if strict:
        check_exports(ctx.folder)
    return ctx


def check_exports(folder: RunFolder) -> None:
    """Raise :class:`BelowAgreementBar` when an exported file of the run missed its bar."""
    from .export import ModelCard

    card = ModelCard(folder.model_card)
    if not card.path.is_file():
        return
    missed = card.below_bar()
    if missed:
        listed = "; ".join(f"{entry['file']}: agreement with Keras {entry['agreement_with_keras']:.2%} < "
                           f"{entry['agreement_bar']:.2%}" for entry in missed)
        raise BelowAgreementBar(f"{len(missed)} exported file(s) below the agreement bar, kept apart and marked in "
                                f"the report and model card ({listed}); the other files passed")
