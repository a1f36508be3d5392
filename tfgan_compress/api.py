"""``compress``: the whole tool as one Python call, for scripts and notebooks.

::

    import tfgan_compress

    result = tfgan_compress.compress(teacher, "digits", "runs/mine")
    result.student            # the distilled keras.Model (takes what the teacher takes)
    result.files["int8"]      # Path of tflite/student_int8.tflite
    result.report["models"]   # the rows of report.json

It runs the same declared stages as ``tfgan-compress run`` (:func:`pipeline.run_context`)
into the same run folder (resume, refusals, report), so a command line and a script
continue each other's runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import config as configs, data as data_sources
from .errors import DataError, UsageError
from .run_folder import RunFolder

__all__ = ["CompressResult", "compress"]


@dataclass
class CompressResult:
    """What :func:`compress` made: the run folder, its models (loaded), the exported files
    by variant (``float32``, ``int8``, ...) and the report (``report.json`` as a dict)."""

    folder: RunFolder
    teacher: Any
    generator: Any
    student: Any
    files: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> dict:
        """``{row name: test accuracy}`` of the report's models."""
        return {row["name"]: row["accuracy"] for row in self.report.get("models", [])}


def compress(teacher=None, data="digits", out=None, *, mode: Optional[str] = None, preset: Optional[str] = None,
             config=None, callbacks=None, seed: Optional[int] = None, teacher_input: Optional[str] = None,
             unsafe_load: bool = False, verbose: Optional[int] = None, progress=print) -> CompressResult:
    """Compress ``teacher`` into a small TFLite student, as ``tfgan-compress run`` does.

    ``teacher``: a ``keras.Model`` (logits or softmax output), a path to a ``.keras`` or
    ``.h5`` file, or ``None`` to train the preset's teacher on ``data``. ``data``: a source
    string (``digits``, ``idx:DIR``, ``npz:FILE``, ``folder:DIR``, ``tfds:NAME``), or a
    ``(train, test)`` pair, each a ``tf.data.Dataset`` of ``(image, label)`` (batched or
    not) or an ``(images, labels)`` pair of arrays. ``out``: the run folder (default
    ``runs/<preset>-<timestamp>``). ``preset``: a named configuration (default: chosen
    from the image shape); ``config``: a :class:`config.RunConfig`, or a dict of settings
    over the preset (``{"gan": {"epochs": 5}}``). ``callbacks``: Keras callbacks attached
    to every training stage's ``fit`` (EarlyStopping, a logger of your own). ``mode``
    (``gan`` or ``data-free``), ``seed`` and ``teacher_input`` (the teacher's pixel range,
    default measured) override the config's; ``unsafe_load`` allows model files with
    Lambda layers (Python code) that you trust.
    Bad input raises :class:`errors.InputError` (nothing written).
    """
    if isinstance(data, str) and data_sources.is_audio(data):  # the front end's settings come from the config
        run_config = _resolve_config(preset, config, default=lambda: "speech")
        dataset = data_sources.load(data, audio=dataclasses.asdict(run_config.audio))
    else:
        dataset = _as_dataset(data)
        run_config = _resolve_config(preset, config, default=lambda: configs.preset_for(
            dataset.spec, audio=dataset.frontend is not None))
    run_config.data = dataset.source
    if mode is not None:
        run_config.mode = mode
    if seed is not None:
        run_config.seed = seed
    teacher_model = None
    if teacher is not None:
        if isinstance(teacher, (str, Path)):
            run_config.teacher_path = str(teacher)
        elif hasattr(teacher, "predict") and hasattr(teacher, "layers"):
            teacher_model = teacher
            run_config.teacher_path = _model_label(teacher)
        else:
            raise UsageError(f"teacher must be a keras.Model or a path, got {type(teacher).__name__}")
    if teacher_input is not None:
        run_config.teacher_input = teacher_input
    run_config.validate()
    if isinstance(config, dict):
        configs.check_overrides_are_read(config, run_config)
    from . import pipeline  # TensorFlow from here on

    ctx = pipeline.run_context(run_config, out, progress=progress, safe_mode=not unsafe_load, dataset=dataset,
                               verbose=verbose, teacher_model=teacher_model, user_callbacks=callbacks or ())
    folder = ctx.folder
    files = {variant: folder.tflite("student", variant) for variant in run_config.export.variants
             if folder.tflite("student", variant).is_file()}
    return CompressResult(folder, ctx.load("teacher"), ctx.load("generator"), ctx.load("student"), files,
                          folder.load("report"))


def _resolve_config(preset: Optional[str], config, default) -> configs.RunConfig:
    """``config`` as a RunConfig: itself, or its settings over ``preset`` (``default()`` names
    the preset when neither says)."""
    if isinstance(config, configs.RunConfig):
        if preset is not None and preset != config.preset:
            raise UsageError(f"preset {preset!r} and a config of preset {config.preset!r}: give one")
        return dataclasses.replace(config)
    base = configs.preset(preset or default())
    if config is None:
        return base
    if not isinstance(config, dict):
        raise UsageError(f"config must be a RunConfig or a dict of settings, got {type(config).__name__}")
    return configs.merge(base, config)


def _model_label(model) -> str:
    """``memory:<name>:<digest of the weights>``: what the run's config records of an
    in-memory teacher, so that a rerun with other weights is told apart."""
    digest = hashlib.blake2b(digest_size=8)
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return f"memory:{model.name}:{digest.hexdigest()}"


def _as_dataset(data) -> data_sources.Dataset:
    """A source string, a loaded :class:`data.Dataset`, or a ``(train, test)`` pair of
    ``tf.data`` datasets or ``(images, labels)`` arrays, validated as the sources are."""
    if isinstance(data, data_sources.Dataset):
        return data
    if isinstance(data, str):
        return data_sources.load(data)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataError("data must be a source string or a (train, test) pair of tf.data datasets or "
                        "(images, labels) arrays")
    (x_train, y_train, kind), (x_test, y_test, _) = (_split_arrays(split, name)
                                                      for split, name in zip(data, ("train", "test")))
    return data_sources.make_dataset(x_train, y_train, x_test, y_test, f"in-memory {kind}", f"in-memory {kind}")


def _split_arrays(split, name: str) -> tuple:
    """(images, labels, kind) of one split: arrays, or a ``tf.data.Dataset`` read to the end."""
    if isinstance(split, (tuple, list)) and len(split) == 2:
        return np.asarray(split[0]), np.asarray(split[1]), "arrays"
    if hasattr(split, "element_spec") and hasattr(split, "as_numpy_iterator"):
        images, labels = [], []
        for element in split.as_numpy_iterator():
            if not isinstance(element, tuple) or len(element) != 2:
                raise DataError(f"the {name} dataset must yield (image, label) pairs")
            x, y = element
            batched = _is_batch(x, y)
            images.append(x if batched else x[None])
            labels.append(np.reshape(y, (-1,)) if batched else np.reshape(y, (1,)))
        if not images:
            raise DataError(f"the {name} dataset is empty")
        return np.concatenate(images), np.concatenate(labels), "tf.data"
    raise DataError(f"the {name} split must be a tf.data.Dataset or an (images, labels) pair, "
                    f"got {type(split).__name__}")


def _is_batch(x, y) -> bool:
    """Whether a ``tf.data`` element is a batch: images are at least 8 pixels a side, so an
    (N, H, W) grey batch and an (H, W, C) colour image, C in {1, 3}, cannot be confused."""
    if np.ndim(y) == 0:
        return False
    if np.ndim(y) == 2:  # one-hot rows
        return True
    return np.ndim(x) == 4 or (np.ndim(x) == 3 and np.shape(x)[-1] not in (1, 3))
