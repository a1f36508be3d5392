"""Keras callbacks for GAN training: sample grids (PNG + TensorBoard) and quality scores.

TensorBoard summaries written here go into the stage's own run (``logs/<stage>/train``,
where Keras' ``TensorBoard`` callback writes the epoch scalars), at the same steps as the
epoch scalars (the epoch index, from 0).

* :class:`SampleGrid` writes, after every epoch, a grid of EMA-generator samples (one row
  per class, fixed noise, so epochs are comparable) to ``samples/epoch_NNN.png`` and as an
  image summary to TensorBoard.
* :class:`TeacherScore` measures per epoch how well the generator follows its condition:
  the fraction of samples that the teacher classifies as the class they were generated
  for (``teacher_label_accuracy``, and per class under ``sample_class_accuracy/``), the
  teacher's mean confidence and, given real images, the Fréchet distance between real and
  generated images in the teacher's penultimate features (``frechet_distance``; sees mode
  collapse, which the accuracy does not). The scalars go into the epoch ``logs``, so the
  TensorBoard callback placed after it records them.
* :class:`OnOptimizer` points a learning-rate callback at one optimizer of a model that has
  several (``ReduceLROnPlateau`` on the discriminator only, say).
* :class:`TextSummary` writes a text (the resolved config) to TensorBoard once.
* :class:`TensorBoard`: Keras' callback, with epoch summaries that are not lost when the
  steps per epoch are not a multiple of ``update_freq``.
* :class:`DivergenceMonitor` stops a stage with a clear message on NaN/Inf losses or when
  the discriminator wins outright.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import artifacts, quality
from .errors import TrainingDiverged


def as_spectrogram_picture(maps: np.ndarray) -> np.ndarray:
    """Feature maps (N, frames, mel bins, 1) turned as spectrograms are drawn: time to the
    right, the lowest mel bin at the bottom -> (N, mel bins, frames, 1)."""
    return np.flip(np.transpose(maps, (0, 2, 1, 3)), axis=1)


def image_grid(images: np.ndarray, rows: int, min_cell_px: int = 32, spectrograms: bool = False) -> np.ndarray:
    """(rows * cols, H, W, C) in [0, 1] -> one uint8 image (rows * H', cols * W', C), upscaled
    by an integer factor so each cell is at least ``min_cell_px`` pixels, with 1-px gaps;
    ``spectrograms``: log-mel maps, each drawn by :func:`as_spectrogram_picture`."""
    if spectrograms:
        images = as_spectrogram_picture(images)
    n, h, w, c = images.shape
    cols = n // rows
    scale = max(1, -(-min_cell_px // max(h, w)))
    cells = np.repeat(np.repeat(images, scale, axis=1), scale, axis=2)
    ch, cw = h * scale, w * scale
    grid = np.ones((rows * (ch + 1) - 1, cols * (cw + 1) - 1, c), np.float32)
    for i in range(rows * cols):
        r, k = divmod(i, cols)
        grid[r * (ch + 1):r * (ch + 1) + ch, k * (cw + 1):k * (cw + 1) + cw] = cells[i]
    return (np.clip(grid, 0.0, 1.0) * 255).round().astype(np.uint8)


def save_png(path, grid: np.ndarray) -> Path:
    from PIL import Image

    mode_image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    with artifacts.atomic_path(path, suffix=".png") as tmp:
        mode_image.save(tmp)
    return Path(path)


def class_grid_inputs(num_classes: int, per_class: int, noise_dim: int, seed: int):
    """Fixed (noise, labels) for a grid with one row per class."""
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
    noise = np.random.default_rng(seed).standard_normal((len(labels), noise_dim)).astype(np.float32)
    return noise, labels


class SampleGrid(keras.callbacks.Callback):
    """Per-epoch grid of EMA-generator samples: ``samples_dir/epoch_NNN.png`` and, when
    ``log_dir`` is given, a TensorBoard image there (step: the epoch index, as Keras' epoch
    scalars; give the stage's ``train`` run to see them side by side). ``spectrograms``:
    the samples are log-mel maps, drawn with time to the right and low pitch at the bottom."""

    def __init__(self, samples_dir, log_dir, num_classes: int, per_class: int, seed: int = 1234,
                 spectrograms: bool = False):
        super().__init__()
        self.spectrograms = spectrograms
        self.samples_dir = Path(samples_dir)
        self.num_classes = num_classes
        self.per_class = per_class
        self.seed = seed
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None

    def grid(self) -> np.ndarray:
        """One row per class of samples from the model's (EMA) generator."""
        generator = getattr(self.model, "ema_generator", None) or self.model.generator
        noise, labels = class_grid_inputs(self.num_classes, self.per_class, self.model.noise_dim, self.seed)
        images = np.asarray(generator([noise, labels], training=False))
        return image_grid(images, rows=self.num_classes, spectrograms=self.spectrograms)

    def on_epoch_end(self, epoch, logs=None):
        grid = self.grid()
        save_png(self.samples_dir / f"epoch_{epoch + 1:03d}.png", grid)
        if self.writer is not None:
            with self.writer.as_default(), tf.summary.record_if(True):
                tf.summary.image("generator_samples_by_class", grid[None], step=epoch)
            self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.flush()  # not close: writers to one folder share one file in TensorFlow


class TeacherScore(keras.callbacks.Callback):
    """Per-epoch sample quality of the EMA generator, judged by the teacher: into the logs
    ``teacher_label_accuracy``, ``teacher_confidence`` and (with ``real_images``)
    ``frechet_distance``; to TensorBoard (``log_dir``) the per-class accuracies as
    ``sample_class_accuracy/<class>``. Fixed noise and a fixed real subset, so epochs compare.
    Given ``real_labels``, the distance compares each class's samples with as many real images
    of the class as ``real_images`` holds (drawn class-balanced: :func:`quality.class_balanced_indices`),
    so that a long-tailed class mix does not read as a worse generator.
    """

    def __init__(self, teacher: keras.Model, num_classes: int, per_class: int = 50, seed: int = 4321,
                 real_images: np.ndarray | None = None, log_dir=None, class_names=None,
                 real_labels: np.ndarray | None = None):
        super().__init__()
        self.teacher = teacher
        self.num_classes = num_classes
        self.per_class = per_class
        self.seed = seed
        self.class_names = list(class_names or range(num_classes))
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None
        self.features = None
        self.real_features = None
        if real_images is not None:
            try:
                self.features = quality.penultimate_features(teacher)
            except ValueError:  # no top-level Dense: no distance
                self.features = None
            else:
                self.real_features = quality.batched(self.features, real_images)
        self.compared = None  # which samples the distance takes: as many of each class as the real images
        if real_labels is not None:
            grid_labels = class_grid_inputs(num_classes, per_class, 1, seed)[1]
            self.compared = np.concatenate([np.flatnonzero(grid_labels == c)[:int(np.sum(real_labels == c))]
                                            for c in range(num_classes)])

    def score(self) -> dict:
        noise, labels = class_grid_inputs(self.num_classes, self.per_class, self.model.noise_dim, self.seed)
        images = quality.batched(self.model.ema_generator, [noise, labels])
        probs = np.asarray(tf.nn.softmax(quality.batched(self.teacher, images)))
        correct = np.argmax(probs, -1) == labels
        scores = {"teacher_label_accuracy": float(np.mean(correct)),
                  "teacher_confidence": float(np.mean(np.max(probs, -1)))}
        if self.real_features is not None:
            compared = images if self.compared is None else images[self.compared]
            scores["frechet_distance"] = quality.frechet_distance(self.real_features,
                                                                  quality.batched(self.features, compared))
        self.per_class_accuracy = [float(np.mean(correct[labels == c])) for c in range(self.num_classes)]
        return scores

    def on_epoch_end(self, epoch, logs=None):
        scores = self.score()
        if logs is not None:
            logs.update(scores)
        if self.writer is not None:
            with self.writer.as_default(), tf.summary.record_if(True):
                for name, value in zip(self.class_names, self.per_class_accuracy):
                    tf.summary.scalar(f"sample_class_accuracy/{name}", value, step=epoch)
            self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.flush()  # not close: writers to one folder share one file in TensorFlow


class OnOptimizer(keras.callbacks.Callback):
    """``callback`` (a learning-rate callback) acting on one optimizer of the model only:
    it sees a model whose ``optimizer`` is ``model.<optimizer_name>``, everything else as is.

        OnOptimizer(keras.callbacks.ReduceLROnPlateau("g_loss"), "discriminator_optimizer")
    """

    def __init__(self, callback: keras.callbacks.Callback, optimizer_name: str):
        super().__init__()
        self.callback = callback
        self.optimizer_name = optimizer_name

    def set_model(self, model):
        super().set_model(model)
        if not hasattr(model, self.optimizer_name):
            raise ValueError(f"{type(model).__name__} has no {self.optimizer_name}; it has "
                             f"{', '.join(getattr(model.optimizer, 'named', {})) or 'one optimizer'}")
        self.callback.set_model(_WithOptimizer(model, getattr(model, self.optimizer_name)))

    def set_params(self, params):
        super().set_params(params)
        self.callback.set_params(params)

    def __getattribute__(self, name):
        # every on_* hook goes to the wrapped callback
        if name.startswith("on_"):
            return getattr(object.__getattribute__(self, "callback"), name)
        return object.__getattribute__(self, name)


class _WithOptimizer:
    """A view of ``model`` whose ``optimizer`` is one given optimizer; writes (``stop_training``)
    go to the model."""

    def __init__(self, model, optimizer):
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "optimizer", optimizer)

    def __getattr__(self, name):
        return getattr(object.__getattribute__(self, "_model"), name)

    def __setattr__(self, name, value):
        setattr(object.__getattribute__(self, "_model"), name, value)


class TextSummary(keras.callbacks.Callback):
    """Writes ``text`` (markdown) to TensorBoard's Text tab under ``tag`` when training starts."""

    def __init__(self, log_dir, tag: str, text: str):
        super().__init__()
        self.log_dir, self.tag, self.text = str(log_dir), tag, text

    def on_train_begin(self, logs=None):
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default(), tf.summary.record_if(True):
            tf.summary.text(self.tag, self.text, step=0)
        writer.flush()  # not close: writers to one folder share one file in TensorFlow


class TensorBoard(keras.callbacks.TensorBoard):
    """``keras.callbacks.TensorBoard`` whose epoch summaries are always written.

    With ``update_freq=N``, Keras records *every* summary (its own epoch scalars and other
    callbacks' images included) under ``record_if(batch_count % N == 0)`` for the whole of
    ``fit``, so an epoch whose step count is not a multiple of N loses its epoch scalars.
    Here the epoch's summaries are written unconditionally.
    """

    def on_epoch_end(self, epoch, logs=None):
        with tf.summary.record_if(True):
            super().on_epoch_end(epoch, logs)


class DiskSpaceGuard(keras.callbacks.Callback):
    """Stops a stage in one line (:class:`errors.DiskFull`) when the disk of its backup
    folder has less free space than the backup it is about to write needs (twice the
    model's variables and an Adam optimizer's two slots for each, as
    ``BackupAndRestore(double_checkpoint=True)`` keeps two, plus ``margin_bytes``): checked at the start and before each epoch's
    backup, so that a full disk stops the run cleanly instead of inside h5py."""

    def __init__(self, folder, margin_bytes: int = 16 * 2**20):
        super().__init__()
        self.folder = Path(folder)
        self.margin_bytes = margin_bytes

    def needed_bytes(self) -> int:
        """Two backups of the model's variables and an Adam optimizer's two slots for each."""
        weights = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in self.model.variables)
        return 2 * 3 * weights + self.margin_bytes

    def check(self) -> None:
        import shutil

        from .errors import DiskFull

        existing = self.folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        free, needed = shutil.disk_usage(existing).free, self.needed_bytes()
        if free < needed:
            raise DiskFull(f"{existing}: {free / 2**20:.1f} MB free, but the backup of this stage needs about "
                           f"{needed / 2**20:.1f} MB; free some space and run the same command again (it resumes "
                           f"from the last backup)")

    def on_train_begin(self, logs=None):
        self.check()

    def on_epoch_end(self, epoch, logs=None):
        self.check()


class DivergenceMonitor(keras.callbacks.Callback):
    """Stops a stage with a clear message when training has gone wrong.

    * a non-finite value in any logged loss or metric (checked every step);
    * for GANs, a discriminator that wins outright: epoch-mean ``d_loss`` below
      ``win_threshold`` for ``patience`` epochs in a row (hinge and non-saturating losses are
      ~0 only when real and fake are perfectly separated, so the generator gets no signal).

    The exception is raised before the epoch's backup is written, so the per-epoch backup
    (BackupAndRestore) keeps the last good epoch.
    """

    def __init__(self, stage: str, hint: str, watch_discriminator: bool = False,
                 win_threshold: float = 0.05, patience: int = 3):
        super().__init__()
        self.stage = stage
        self.hint = hint
        self.watch_discriminator = watch_discriminator
        self.win_threshold = win_threshold
        self.patience = patience
        self.epoch = 0
        self.winning_epochs = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if not np.isfinite(float(value)):
                kept = (f"the last good epoch is kept in checkpoints/{self.stage}" if self.epoch > 0
                        else "no epoch had finished, so nothing was kept")
                raise TrainingDiverged(
                    f"{self.stage}: {name} became {float(value)} at epoch {self.epoch + 1}, step {batch + 1}; "
                    f"{kept}. {self.hint}")

    def on_epoch_end(self, epoch, logs=None):
        if not self.watch_discriminator or "d_loss" not in (logs or {}):
            return
        d_loss = float(logs["d_loss"])
        self.winning_epochs = self.winning_epochs + 1 if d_loss < self.win_threshold else 0
        if self.winning_epochs >= self.patience:
            raise TrainingDiverged(
                f"{self.stage}: the discriminator wins outright (d_loss {d_loss:.3g} < {self.win_threshold} for "
                f"{self.patience} epochs), so the generator gets no signal (collapse); "
                f"the last good epoch is kept in checkpoints/{self.stage}. {self.hint}")


class RandomStateBackup(keras.callbacks.Callback):
    """Saves the state of every ``keras.random.SeedGenerator`` of the model (noise, mixup,
    augmentation layers) at each epoch's end and restores it when training starts again,
    as ``BackupAndRestore`` does for the weights (whose files do not hold these states), so
    that a resumed stage draws the same random numbers as an uninterrupted one.
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)

    def states(self) -> list:
        return [v for v in self.model.variables if "seed_generator_state" in v.path]

    def on_train_begin(self, logs=None):
        if self.path.is_file():
            with np.load(self.path) as saved:
                for i, variable in enumerate(self.states()):
                    variable.assign(saved[f"state_{i}"])

    def on_epoch_end(self, epoch, logs=None):
        states = {f"state_{i}": np.asarray(v.numpy()) for i, v in enumerate(self.states())}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial.npz")
        np.savez(partial, **states)
        partial.replace(self.path)
