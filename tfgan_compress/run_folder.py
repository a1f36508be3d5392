"""The run directory as a type: the one place that names the files in it.

::

    runs/<name>/
      .tfgan-compress                the tool's marker (and lock): this folder is a run folder
      config.json                    resolved configuration
      data.json                      the data's source and content fingerprint, as first read
      teacher_input.json             the teacher's input convention (0-1, 0-255, -1-1, standardized), as found
      teacher.keras  generator.keras  student.keras   calibration_bank.npy (data-free mode)
      student_start.json             data-free mode: the student's first weights (teacher's or random)
      tflite/<model>_<variant>.tflite  labels.txt  model_card.json
      samples.png  samples/epoch_NNN.png
      logs/<stage>/                  TensorBoard
      checkpoints/<stage>/           BackupAndRestore while a stage runs
      checkpoints/stage_seconds.json
      checkpoints/scratch/           temporary files while a run goes on (the TFLite converter's)
      report.json  report.md  frontier.png

Stages name what they need and make by *artifact* (``teacher``, ``teacher_input``, ``generator``,
``student``, ``calibration_bank``, ``student_start``, ``tflite``, ``report``); :meth:`RunFolder.path` maps
an artifact to its file (for ``tflite`` and ``report``, the file written last, whose
presence means the artifact is complete), and :meth:`save` / :meth:`load` write and
read the artifacts held in memory (models, the calibration bank) atomically.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from . import artifacts
from .compat import BACKUP_METADATA, BACKUP_WEIGHTS
from .errors import UsageError

KERAS_ARTIFACTS = ("teacher", "generator", "student")


class InFolder:
    """A path inside the run folder, as a class attribute: ``RunFolder(r).report_json``."""

    def __init__(self, *parts: str):
        self.parts = parts

    def __get__(self, folder, owner=None):
        return self if folder is None else folder.root.joinpath(*self.parts)


class RunFolder:
    """A run directory and the names of everything in it (one line per file name below)."""

    marker = InFolder(".tfgan-compress")  # made by the tool: files here are the tool's (also the lock file)
    config_json = InFolder("config.json")
    data_json = InFolder("data.json")  # the data's source and content fingerprint, as the first stage read it
    teacher_input_json = InFolder("teacher_input.json")  # the teacher's input convention, as found
    calibration_bank = InFolder("calibration_bank.npy")  # data-free mode: replay-bank sample for int8
    student_start_json = InFolder("student_start.json")  # data-free mode: the student's first weights, whence
    tflite_dir = InFolder("tflite")
    labels = InFolder("tflite", "labels.txt")
    model_card = InFolder("tflite", "model_card.json")
    samples_dir = InFolder("samples")
    samples_png = InFolder("samples.png")
    explored_png = InFolder("samples", "explored.png")  # distill.explore_steps: the explorer's last samples
    logs_dir = InFolder("logs")
    stage_seconds_json = InFolder("checkpoints", "stage_seconds.json")
    scratch_dir = InFolder("checkpoints", "scratch")  # temporary files of the run (removed at its end, or by the next)
    report_json = InFolder("report.json")
    report_md = InFolder("report.md")
    frontier_png = InFolder("frontier.png")

    def __init__(self, root):
        self.root = Path(root)

    @classmethod
    def default(cls, config, parent="runs") -> tuple["RunFolder", bool]:
        """The folder of a run given no ``--out``, and whether it resumes one: the newest
        unfinished ``runs/<preset>-<timestamp>`` made with the same settings (so running the
        same command again continues it, as with ``--out``), else a fresh one."""
        parent = Path(parent)
        candidates = sorted(parent.glob(f"{config.preset}-*"), reverse=True) if parent.is_dir() else []
        for root in candidates:
            folder = cls(root)
            if folder.config_json.is_file() and not folder.report_json.is_file():
                try:
                    folder.check_same_settings(config)
                except UsageError:
                    continue
                return folder, True
        return cls(parent / f"{config.preset}-{time.strftime('%Y%m%d-%H%M%S')}"), False

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    def tflite(self, model: str, variant: str) -> Path:
        """``tflite/<model>_<variant>.tflite``, e.g. ``student_int8``."""
        return self.tflite_dir / f"{model}_{variant}.tflite"

    def tflite_below_bar(self, model: str, variant: str) -> Path:
        """``tflite/below_bar/<model>_<variant>.tflite``: a file that missed its agreement bar."""
        return below_bar(self.tflite(model, variant))

    def random_state(self, stage: str) -> Path:
        """The random-number states of an interrupted ``fit`` of ``stage``, beside its backup."""
        return self.checkpoint(stage) / "random_state.npz"

    def logs(self, stage: str) -> Path:
        """TensorBoard folder of a stage (or of the sample grids: ``samples``)."""
        return self.logs_dir / stage

    def checkpoint(self, stage: str) -> Path:
        """BackupAndRestore folder of a stage while it runs."""
        return self.root / "checkpoints" / stage

    def epochs_backed_up(self, stage: str) -> int | None:
        """Epochs finished by an interrupted ``fit`` of ``stage``, as its BackupAndRestore
        recorded them (``None`` when there is no backup to resume)."""
        metadata = self.checkpoint(stage) / BACKUP_METADATA
        return json.loads(metadata.read_text()).get("epoch", 0) if metadata.is_file() else None

    #: the files ``keras.callbacks.BackupAndRestore(double_checkpoint=True)`` writes (Keras' names)
    BACKUP_FILES = (BACKUP_WEIGHTS, BACKUP_METADATA)

    def check_backup(self, stage: str, progress=print) -> None:
        """Make an interrupted stage's backup safe to resume from, before anything loads it:
        when its latest files are unreadable (a full disk, a truncated copy), resume from the
        copy before it (Keras' ``.bkp``), saying so; when that is unreadable too, set the
        backup aside as ``checkpoints/<stage>.unreadable`` with one line, and the stage
        starts again from its start."""
        backup = self.checkpoint(stage)
        latest = [backup / name for name in self.BACKUP_FILES]
        if not any(path.exists() for path in latest):
            return
        if all(_readable(path) for path in latest):
            return
        previous = [path.with_name(path.name + ".bkp") for path in latest]
        if all(_readable(path) for path in previous):
            for old, new in zip(previous, latest):
                shutil.copy2(old, new)
            progress(f"  the latest backup of {stage} in {backup} is unreadable; resuming from the one before it "
                     f"(epoch {self.epochs_backed_up(stage)})")
            return
        aside = backup.with_name(f"{stage}.unreadable")
        shutil.rmtree(aside, ignore_errors=True)
        backup.rename(aside)
        times = self.stage_seconds()
        if times.pop(f"{stage}:unfinished", None) is not None:
            artifacts.write_json(self.stage_seconds_json, times)
        progress(f"  the backup of {stage} in {backup} is unreadable; set aside as {aside}: {stage} starts again "
                 f"from its start")

    # ------------------------------------------------------------------ artifacts
    def path(self, artifact: str) -> Path:
        """The file that holds ``artifact`` (for a group of files, the one written last)."""
        if artifact in KERAS_ARTIFACTS:
            return self.root / f"{artifact}.keras"
        named = {"calibration_bank": self.calibration_bank, "teacher_input": self.teacher_input_json,
                 "student_start": self.student_start_json,
                 "tflite": self.model_card, "report": self.report_json}
        if artifact not in named:
            raise KeyError(f"unknown artifact {artifact!r}")
        return named[artifact]

    def exists(self, artifact: str) -> bool:
        return self.path(artifact).is_file()

    def save(self, artifact: str, value) -> Path:
        """Write a model (``.keras``), an array (``.npy``) or a dict (``.json``) atomically."""
        path = self.path(artifact)
        if artifact in KERAS_ARTIFACTS:
            return artifacts.save_keras(value, path)
        if path.suffix == ".json":
            return artifacts.write_json(path, value)
        with artifacts.atomic_path(path, suffix=path.suffix) as tmp:
            np.save(tmp, np.asarray(value))
        return path

    def load(self, artifact: str, safe_mode: bool = True):
        """A saved model (uncompiled) or array. The teacher is checked against the data by
        :func:`teacher.load_classifier` instead, where the data is at hand."""
        import keras

        path = self.path(artifact)
        if artifact in KERAS_ARTIFACTS:
            return keras.models.load_model(path, compile=False, safe_mode=safe_mode)
        if artifact == "calibration_bank":
            return np.load(path)
        return json.loads(path.read_text())

    # ------------------------------------------------------------------ ownership
    MARKER_TEXT = "This folder is a tfgan-compress run folder; the tool may rewrite or delete any file in it.\n"

    def is_ours(self) -> bool:
        """Whether the tool made this folder: its marker file, or (a run folder of an earlier
        version, made before the marker) a ``config.json`` that reads back as a run's config."""
        if self.marker.is_file():
            return True
        if not self.config_json.is_file():
            return False
        from .config import RunConfig

        try:
            RunConfig.from_dict(json.loads(self.config_json.read_text()))
        except (ValueError, UsageError, TypeError, AttributeError, OSError):
            return False
        return True

    def check_ours(self, data_source: str = "") -> None:
        """Refuse (``UsageError``, nothing written) an output folder the tool may not write in:
        a folder that holds files but was not made by the tool (the run would overwrite or
        delete them), or the data's own folder or a folder inside it."""
        root = self.root
        if str(root) == "":
            raise UsageError("--out is empty; give a folder name")
        if root.exists() and not root.is_dir():
            raise UsageError(f"{root}: exists and is not a folder (the output must be a folder)")
        data_dir = data_folder(data_source)
        if data_dir is not None:
            here, there = root.resolve(), data_dir.resolve()
            if here == there or there in here.parents:
                raise UsageError(f"{root}: is inside the data folder {data_dir}; write the run elsewhere (its files "
                                 f"would be read as data, or the data's files taken for the run's)")
        if not root.is_dir() or self.is_ours():
            return
        try:
            entries = sorted(p.name for p in root.iterdir())
        except OSError as err:
            raise UsageError(f"{root}: cannot list the output folder ({err.strerror})") from None
        if entries:
            shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
            raise UsageError(f"{root}: holds files tfgan-compress did not make ({shown}); give a new or empty folder "
                             f"as --out")

    @contextlib.contextmanager
    def claimed(self):
        """Create the folder and its marker, and hold the marker's lock while the block runs:
        a second process on the same folder is refused (``UsageError``) instead of both
        writing the same files. The lock goes with the process (``flock``), so a killed run
        leaves none behind."""
        artifacts.check_writable_dir(self.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.marker, "a+", encoding="utf-8")
        except OSError as err:  # writable by its permission bits, refused all the same (/sys, a full disk, ...)
            raise UsageError(f"{self.root}: cannot create the output folder ({err.strerror})") from None
        try:
            try:
                import fcntl
            except ImportError:  # Windows: no advisory lock; the folder is still marked
                fcntl = None
            if fcntl is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise UsageError(f"{self.root}: in use by another tfgan-compress process; wait for it to finish, "
                                     f"or use another --out") from None
            if handle.tell() == 0:
                handle.write(self.MARKER_TEXT)
                handle.flush()
            yield self
        finally:
            handle.close()  # releases the lock

    @contextlib.contextmanager
    def scratch_space(self):
        """A temporary folder of the tool's own inside the run folder (``checkpoints/scratch``),
        empty at the start (what a killed run left there is removed), removed at the end."""
        scratch = self.scratch_dir
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def start_from(self, other: "RunFolder", names) -> None:
        """Start this run folder with copies of ``other``'s artifacts ``names`` (and its data
        record), as a benchmark does that shares one teacher and generator between runs."""
        self.check_ours()
        with self.claimed():
            for name in names:
                self.path(name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(other.path(name), self.path(name))
            if other.data_json.is_file():
                shutil.copy2(other.data_json, self.data_json)

    # ------------------------------------------------------------------ the data it was made from
    def check_same_data(self, record: dict) -> None:
        """Refuse (``UsageError``) a run whose data differs from the data this folder's models
        were made from (``data.json``): same source string, changed content, or another source."""
        if not self.data_json.is_file():
            return
        try:
            saved = json.loads(self.data_json.read_text())
            old = saved["fingerprint"]
        except (ValueError, KeyError, TypeError, OSError) as err:
            raise UsageError(f"{self.data_json}: cannot be read back ({type(err).__name__}); use another --out") from None
        if old != record["fingerprint"]:
            raise UsageError(f"{self.root} was made from other data ({saved.get('source')!r}, "
                             f"{saved.get('train_images')} train / {saved.get('test_images')} test images, "
                             f"fingerprint {old[:12]}; now {record['source']!r}, {record['train_images']} / "
                             f"{record['test_images']}, fingerprint {record['fingerprint'][:12]}): its models would be "
                             f"reused as if made from this data; use another --out, or delete {self.root} to start "
                             f"afresh")

    def record_data(self, record: dict) -> None:
        if not self.data_json.is_file():
            artifacts.write_json(self.data_json, record)

    # ------------------------------------------------------------------ bookkeeping
    #: settings a rerun may change: how the run executes or is measured, not what it makes
    RERUN_MAY_CHANGE = ("strategy", "evaluate")

    def check_same_settings(self, config) -> None:
        """Refuse (``UsageError``) a run into this folder with settings other than those its
        ``config.json`` was made with: the finished stages would be reused as if made with
        them. Nothing is written."""
        if not self.config_json.is_file():
            return
        from .config import RunConfig

        try:
            saved = RunConfig.from_dict(json.loads(self.config_json.read_text())).to_dict()
        except (ValueError, UsageError) as err:
            raise UsageError(f"{self.config_json}: cannot be read back ({err}); use another --out") from None
        differing = [f"{key} {old!r} -> {new!r}" for key, old, new in _differences(saved, config.to_dict())
                     if key.split(".")[0] not in self.RERUN_MAY_CHANGE and not self._export_may_change(key)]
        if differing:
            shown = "; ".join(differing[:4]) + (f"; and {len(differing) - 4} more" if len(differing) > 4 else "")
            raise UsageError(f"{self.root} was made with other settings ({shown}); its models would be reused as if "
                             f"made with these: use another --out, or delete {self.root} to start afresh")

    def _export_may_change(self, key: str) -> bool:
        """Export settings may change until the export stage has finished (no model made so
        far depends on them), so a run whose int8 files could not be made can be finished
        without them; not the calibration count once the data-free mode has drawn its bank."""
        if key.split(".")[0] != "export" or self.exists("tflite"):
            return False
        return not (key == "export.calibration_samples" and self.exists("calibration_bank"))

    def create(self, config) -> None:
        """Write the resolved ``config.json`` (into the folder :meth:`claimed` made)."""
        artifacts.write_json(self.config_json, config.to_dict())

    def stage_seconds(self) -> dict:
        path = self.stage_seconds_json
        return json.loads(path.read_text()) if path.is_file() else {}

    def record_seconds(self, stage: str, seconds: float, finished: bool = True) -> None:
        """A stage's wall-clock seconds; ``finished=False``: so far, kept across an
        interruption (``<stage>:unfinished``) so that a resumed stage counts its whole time."""
        times = self.stage_seconds()
        times.pop(f"{stage}:unfinished", None)
        times[stage if finished else f"{stage}:unfinished"] = round(seconds, 2)
        artifacts.write_json(self.stage_seconds_json, times)

    def seconds_so_far(self, stage: str) -> float:
        """Seconds an interrupted run already spent in ``stage`` (0 for a fresh stage)."""
        return float(self.stage_seconds().get(f"{stage}:unfinished", 0.0))


def _differences(old: dict, new: dict, prefix: str = ""):
    """``(dotted key, old value, new value)`` of every leaf setting that differs, top-level
    settings (data, preset, seed, teacher) before those of the sections."""
    keys = sorted(set(old) | set(new))
    sections = [k for k in keys if isinstance(old.get(k), dict) and isinstance(new.get(k), dict)]
    for key in keys:
        if key not in sections and old.get(key) != new.get(key):
            yield f"{prefix}{key}", old.get(key), new.get(key)
    for key in sections:
        yield from _differences(old[key], new[key], f"{prefix}{key}.")


def _readable(path: Path) -> bool:
    """Whether a backup file reads back whole: JSON that parses, or HDF5 whose every array loads."""
    if not path.is_file():
        return False
    try:
        if path.name.endswith((".json", ".json.bkp")):
            json.loads(path.read_text())
            return True
        import h5py

        with h5py.File(path, "r") as h5:
            h5.visititems(lambda name, node: node[()] if isinstance(node, h5py.Dataset) else None)
        return True
    except Exception:  # noqa: BLE001 - h5py and json raise many kinds for a truncated file
        return False


def data_folder(source: str):
    """The folder a data source string reads (``idx:DIR``, ``folder:DIR``), else ``None``."""
    kind, _, arg = (source or "").partition(":")
    if kind in ("idx", "folder") and arg and Path(arg).is_dir():
        return Path(arg)
    return None


def below_bar(path: Path) -> Path:
    """Where an exported file that missed its agreement bar is kept: ``below_bar/`` beside it."""
    return Path(path).parent / "below_bar" / Path(path).name
