"""``tfgan-compress sample``: the generator file turned back into a dataset.

From a generator (``generator.keras``, or ``generator_*.tflite`` run with LiteRT), class-
balanced samples: ``--per-class N`` of each class, or ``--total N`` spread over the classes
(the first ``N mod classes`` classes get one more). Noise is standard normal from
``--seed``, so the same command writes the same files. Written either as

* ``OUT/<class>/00000.png`` ... plus ``OUT/labels.txt``: the layout
  ``keras.utils.image_dataset_from_directory(OUT)`` reads (8-bit grey or RGB PNG, pixel =
  round(255 x sample)); for an audio generator the PNGs are its log-mel feature maps, and
  ``--wav`` adds ``<class>/NNNNN.wav`` rebuilt by Griffin-Lim (:mod:`tfgan_compress.sonify`);
* ``OUT.npz``: ``x`` (uint8, N x H x W x C), ``y`` (int32) and ``class_names``.

Everything is written into a scratch folder beside ``OUT`` and moved into place at the end,
so an interrupted or failed command leaves nothing half-written. Class names come from
``--labels FILE``, else ``labels.txt`` beside the file (or in ``tflite/`` beside a run
folder's ``generator.keras``), else the class numbers.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import InputError, UsageError
from .run_folder import RunFolder

BATCH = 256
PNG, WAV = ".png", ".wav"  # the dataset's files: <class>/<index:05d><suffix> (not a run folder's)


class GeneratorFile:
    """A generator, Keras or TFLite: ``num_classes``, ``noise_dim`` and ``generate(noise, labels)``."""

    def __init__(self, path: Path, safe_mode: bool = True):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: " + ("file not found" if not self.path.exists() else "not a file"))
        suffix = self.path.suffix.lower()
        if suffix == ".tflite":
            self._open_tflite()
        elif suffix in (".keras", ".h5"):
            self._open_keras(safe_mode)
        else:
            raise InputError(f"{self.path}: not a generator file (.keras or .tflite)")

    def _open_keras(self, safe_mode: bool):
        import keras

        from .generator_mixture import generator_classes

        try:
            model = keras.models.load_model(self.path, compile=False, safe_mode=safe_mode)
        except Exception as err:  # noqa: BLE001 - zip, h5, deserialisation errors alike
            raise InputError(f"{self.path}: not a loadable Keras model ({type(err).__name__}: "
                             f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})") from None
        inputs = getattr(model, "inputs", None) or []
        if len(inputs) != 2 or len(model.outputs[0].shape) != 4:
            raise InputError(f"{self.path}: not a generator (takes {len(inputs)} input(s); a generator takes noise "
                             f"and a class and returns images)")
        try:
            self.num_classes = generator_classes(model)
        except ValueError:
            raise InputError(f"{self.path}: not a tfgan-compress generator (no label_embedding layer)") from None
        self.noise_dim = int(inputs[0].shape[-1])
        self._model = model
        self._run = lambda noise, labels: np.asarray(model.predict_on_batch([noise, labels]))

    def _open_tflite(self):
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_path=str(self.path), num_threads=1)
        except (ValueError, RuntimeError) as err:
            raise InputError(f"{self.path}: not a loadable .tflite file ({str(err).strip().splitlines()[0]})") from None
        inputs = interpreter.get_input_details()
        noise = [d for d in inputs if np.issubdtype(d["dtype"], np.floating) and len(d["shape"]) == 2]
        labels = [d for d in inputs if np.issubdtype(d["dtype"], np.integer) and len(d["shape"]) == 1]
        outputs = interpreter.get_output_details()
        if len(inputs) != 2 or not noise or not labels or len(outputs) != 1 or len(outputs[0]["shape"]) != 4:
            raise InputError(f"{self.path}: not a generator (a generator file takes noise [N, d] and a class [N]; "
                             f"this one takes {[[int(v) for v in d['shape']] for d in inputs]})")
        self.noise_dim = int(noise[0]["shape"][-1])
        self.num_classes = None  # from the labels

        def run(noise_batch, label_batch):
            for detail, value in ((noise[0], noise_batch), (labels[0], label_batch)):
                interpreter.resize_tensor_input(detail["index"], list(value.shape))
            interpreter.allocate_tensors()
            interpreter.set_tensor(noise[0]["index"], noise_batch.astype(noise[0]["dtype"]))
            interpreter.set_tensor(labels[0]["index"], label_batch.astype(labels[0]["dtype"]))
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

        self._run = run

    def generate(self, labels: np.ndarray, seed: int) -> np.ndarray:
        """Samples in [0, 1] for ``labels``, noise from ``seed``, in batches."""
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((len(labels), self.noise_dim)).astype(np.float32)
        for start in range(0, len(labels), BATCH):
            yield np.clip(self._run(noise[start:start + BATCH], labels[start:start + BATCH].astype(np.int32)), 0, 1)


def class_names_for(path: Path, labels_file: str | None, num_classes: int | None) -> list[str]:
    """``--labels FILE``, or ``labels.txt`` beside the generator or in the run's ``tflite/``."""
    run = RunFolder(path.parent)  # a run folder's generator.keras: its tflite/labels.txt
    candidates = [Path(labels_file)] if labels_file else [path.with_name(run.labels.name), run.labels]
    for candidate in candidates:
        if candidate.is_file():
            names = [line.strip() for line in candidate.read_text().splitlines() if line.strip()]
            if num_classes is not None and len(names) != num_classes:
                raise InputError(f"{candidate}: {len(names)} class names but the generator makes {num_classes} classes")
            if len(set(names)) != len(names) or any(n in (".", "..") or "/" in n or "\\" in n for n in names):
                raise InputError(f"{candidate}: class names must be distinct and usable as folder names")
            return names
        if labels_file:
            raise InputError(f"{candidate}: file not found")
    if num_classes is None:
        raise UsageError(f"{path}: give --labels FILE (one class name per line): a .tflite generator does not know "
                         f"its class names, and no labels.txt is beside it")
    return [str(c) for c in range(num_classes)]


def frontend_beside(path: Path) -> dict | None:
    """The audio front end's settings from the model card beside the generator, if any."""
    run = RunFolder(path.parent)
    for card in (path.with_name(run.model_card.name), run.model_card):
        if card.is_file():
            try:
                return (json.loads(card.read_text()).get("frontend") or {}).get("settings")
            except (ValueError, AttributeError):
                return None
    return None


def class_counts(num_classes: int, per_class: int | None, total: int | None) -> np.ndarray:
    if (per_class is None) == (total is None):
        raise UsageError("give one of --per-class N and --total N")
    if per_class is not None:
        if per_class < 1:
            raise UsageError(f"--per-class must be at least 1, got {per_class}")
        return np.full(num_classes, per_class)
    if total < 1:
        raise UsageError(f"--total must be at least 1, got {total}")
    return np.array([total // num_classes + (c < total % num_classes) for c in range(num_classes)])


def write_samples(generator_path, out, per_class: int | None = None, total: int | None = None, seed: int = 0,
                  labels_file: str | None = None, wav: bool = False, progress=print) -> dict:
    """Write the samples (module docstring); return what was written."""
    generator_path, out = Path(generator_path), Path(out)
    if seed < 0:
        raise UsageError(f"--seed must be at least 0, got {seed}")
    as_npz = out.suffix.lower() == ".npz"
    if out.exists() and (out.is_file() or any(out.iterdir())):
        raise UsageError(f"{out}: already exists{' and is not empty' if out.is_dir() else ''}; choose a new --out")
    generator = GeneratorFile(generator_path)
    names = class_names_for(generator_path, labels_file, generator.num_classes)
    counts = class_counts(len(names), per_class, total)
    frontend = frontend_beside(generator_path) if wav else None
    if wav and (as_npz or frontend is None):
        raise UsageError("--wav writes recordings beside PNG folders, for a generator of an audio run (its "
                         "model_card.json with the front end's settings beside it or in tflite/)")
    labels = np.repeat(np.arange(len(names)), counts).astype(np.int32)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        index = np.zeros(len(names), int)
        images, done = [], 0
        for batch in generator.generate(labels, seed):
            pixels = np.round(batch * 255).astype(np.uint8)
            batch_labels = labels[done:done + len(batch)]
            if as_npz:
                images.append(pixels)
            else:
                _write_pngs(scratch, pixels, batch_labels, names, index, frontend, batch, seed + done)
            done += len(batch)
            progress(f"  {done:,} of {len(labels):,} samples")
        if as_npz:
            target = scratch / out.name
            np.savez_compressed(target, x=np.concatenate(images), y=labels, class_names=np.array(names))
            target.replace(out)
        else:
            (scratch / RunFolder(scratch).labels.name).write_text("".join(f"{n}\n" for n in names))
            scratch.replace(out)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return {"out": str(out), "samples": int(len(labels)), "classes": len(names), "seed": seed}


def _write_pngs(folder: Path, pixels, labels, names, index, frontend, samples, seed):
    from PIL import Image

    for i, (image, label) in enumerate(zip(pixels, labels)):
        target = folder / names[label]
        target.mkdir(exist_ok=True)
        stem = f"{index[label]:05d}"
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(target / (stem + PNG))
        if frontend is not None:
            from .audio_frontend import FrontEnd, write_wav
            from .sonify import features_to_pcm

            front = FrontEnd(frontend)
            write_wav(target / (stem + WAV), features_to_pcm(samples[i], front, seed=seed + i), front.sample_rate)
        index[label] += 1
