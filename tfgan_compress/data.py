"""Data sources -> validated numpy arrays -> ``tf.data`` pipelines.

A source is a string:

* ``digits``: scikit-learn's 8x8 handwritten digits (embedded, offline); fixed 75/25
  stratified split with seed 0.
* ``tfds:NAME``: any TensorFlow Datasets image classification set with ``train`` and
  ``test`` splits (downloads on first use when a network is available).
* ``idx:DIR``: the four MNIST-format IDX files (``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``,
  ``t10k-labels-idx1-ubyte[.gz]``).
* ``npz:FILE``: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` (optionally
  ``class_names``), loaded with ``allow_pickle=False``.
* ``folder:DIR``: one sub-folder per class holding image files (PNG 8- or 16-bit, JPEG,
  BMP, GIF), all of one size, split 80/20 per class with seed 0; or ``DIR/train/<class>/``
  and ``DIR/test/<class>/`` (the layout ``keras.utils.image_dataset_from_directory`` reads
  per split), whose split is kept. ``DIR`` may also be a ``.zip`` of either layout.
* ``audio:DIR``: WAV recordings (16-bit PCM, mono or stereo, 8 to 48 kHz) in the layouts of
  ``folder:`` (``<class>/*.wav``, or ``train/<class>/*.wav`` and ``test/<class>/*.wav``;
  a ``.zip`` too), each turned into its log-mel feature map by the front end of
  :mod:`audio_frontend` (settings: the ``audio`` config section). ``tfds:spoken_digit``
  reads TensorFlow Datasets' copy of the Free Spoken Digit Dataset the same way.

Pixels are scaled to [0, 1], one decision for both splits: integer arrays and arrays with
values above 1 are divided by 255, float arrays already in [0, 1] are kept, and splits that
disagree (one in [0, 1], the other 0..255) are refused. Images come out as float32 with shape
(N, H, W, C), C in {1, 3}, 8 <= H, W <= 64; labels as int32 in [0, num_classes) (one-hot
rows, as ``keras.utils.to_categorical`` makes them, are read as their class).
Recordings come out as feature maps (N, frames, mel_bins, 1) in [0, 1], and the Dataset
carries the front end's settings (``frontend``). Anything else raises :class:`DataError`
with a one-line message that names the file and the problem.
"""

from __future__ import annotations

import dataclasses

import gzip
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .audio_frontend import MAX_WAV_BYTES
from .errors import DataError, first_line

MIN_SIZE, MAX_SIZE = 8, 64
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
AUDIO_SUFFIXES = (".wav",)
AUDIO_TFDS = ("tfds:spoken_digit",)  # TFDS sets of recordings (the rest are image sets)
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class ImageSpec:
    """What a model needs to know about the data: image shape and class names."""

    image_shape: tuple
    class_names: tuple

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class Dataset:
    """A validated train/test split. Images float32 in [0, 1], NHWC; labels int32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    source: str
    frontend: Optional[dict] = None  # audio sources: the front end's settings (audio_frontend.FrontEnd)

    @property
    def spec(self) -> ImageSpec:
        return ImageSpec(tuple(int(d) for d in self.x_train.shape[1:]), tuple(self.class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


SOURCE_KINDS = "digits, tfds:NAME, idx:DIR, npz:FILE, folder:DIR or audio:DIR"


def is_audio(source: str) -> bool:
    """Whether a source string names recordings (``audio:``, or ``tfds:spoken_digit``)."""
    return source.startswith("audio:") or source in AUDIO_TFDS


def load(source: str, audio: Optional[dict] = None) -> Dataset:
    """Load and validate a data source string (see the module docstring); ``audio``: the
    front end's settings for recordings (the ``audio`` config section as a dict)."""
    kind, _, arg = source.partition(":")
    if kind == "digits" and not arg:
        return _load_digits()
    if not arg:
        raise DataError(f"unknown data source {source!r}; use {SOURCE_KINDS}")
    if source in AUDIO_TFDS:
        return _load_tfds_audio(arg, source, audio)
    if kind == "audio":
        return _load_audio(arg, source, audio)
    loaders = {"tfds": _load_tfds, "idx": _load_idx_dir, "npz": _load_npz, "folder": _load_folder}
    if kind not in loaders:
        raise DataError(f"unknown data source kind {kind!r} in {source!r}; use {SOURCE_KINDS}")
    return loaders[kind](arg, source)


# ----------------------------------------------------------------------------- validation


def make_dataset(x_train, y_train, x_test, y_test, source: str, where: str,
                 class_names: Optional[Sequence[str]] = None) -> Dataset:
    """Validate raw arrays and normalise them into a :class:`Dataset`.

    ``where`` names the file(s) the arrays came from, for error messages.
    """
    x_train, train_range = _as_images(x_train, f"{where}: x_train")
    x_test, test_range = _as_images(x_test, f"{where}: x_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{where}: train images are {x_train.shape[1:]} but test images are {x_test.shape[1:]}"
        )
    blank = {name for name, x in (("x_train", x_train), ("x_test", x_test)) if not x.any()}  # fit either range
    if train_range != test_range and not blank:  # one scaling for the data set: a split scaled alone is wrong
        raise DataError(f"{where}: x_train looks like {train_range} pixels but x_test like {test_range} "
                        f"({_range_reason(x_train, train_range)}; {_range_reason(x_test, test_range)}); store both "
                        f"splits in one range")
    if "0..255" in (train_range, test_range):
        x_train, x_test = x_train / np.float32(255), x_test / np.float32(255)
    y_train = _as_labels(y_train, len(x_train), f"{where}: y_train")
    y_test = _as_labels(y_test, len(x_test), f"{where}: y_test")
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if class_names is not None:
        class_names = _class_name_strings(class_names, where)
        _check_class_names(class_names, where)
        if len(class_names) < num_classes:
            raise DataError(
                f"{where}: labels go up to {num_classes - 1} but only {len(class_names)} class names are given"
            )
        num_classes = len(class_names)
    else:
        class_names = tuple(str(i) for i in range(num_classes))
    if num_classes < 2:
        raise DataError(f"{where}: need at least 2 classes, found {num_classes}")
    counts = np.bincount(y_train, minlength=num_classes)
    empty = [class_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(f"{where}: class(es) {', '.join(empty)} have no training images")
    return Dataset(x_train, y_train, x_test, y_test, class_names, source)


def _class_name_strings(class_names, where: str) -> tuple:
    """Class names as text: a 1-D sequence of strings, or of bytes (as numpy saves them),
    decoded as UTF-8, never written as ``b'...'``."""
    names = np.asarray(class_names, dtype=object) if not isinstance(class_names, np.ndarray) else class_names
    if names.ndim != 1:
        raise DataError(f"{where}: class_names must be a 1-D list of names, got shape {names.shape}")
    decoded = []
    for name in names.tolist():
        if isinstance(name, (bytes, bytearray)):
            try:
                name = bytes(name).decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{where}: class name {bytes(name)!r} is not UTF-8 text") from None
        elif not isinstance(name, (str, int, np.integer)):
            raise DataError(f"{where}: class names must be text, got {type(name).__name__} ({name!r})")
        decoded.append(str(name))
    return tuple(decoded)


def _check_class_names(class_names, where: str):
    """Class names end up one per line in ``labels.txt`` and in the report: refuse names
    that would break those (a newline shifts every later label on the device)."""
    import unicodedata

    for name in class_names:
        bad = [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]
        if bad:
            raise DataError(f"{where}: class name {name!r} contains a control character ({bad[0]!r}); rename it")
        if not name.strip():
            raise DataError(f"{where}: a class name is empty or blank ({name!r})")
    seen = set()
    for name in class_names:
        if name in seen:
            raise DataError(f"{where}: class name {name!r} appears twice")
        seen.add(name)


def _as_images(x, where: str) -> tuple:
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{where}: images must be a numeric array, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{where}: images must have shape (N, H, W) or (N, H, W, C), got {x.shape}")
    n, h, w, c = x.shape
    if n == 0:
        raise DataError(f"{where}: no images")
    if c not in (1, 3):
        raise DataError(f"{where}: images must have 1 (grey) or 3 (RGB) channels, got {c}")
    if not (MIN_SIZE <= h <= MAX_SIZE and MIN_SIZE <= w <= MAX_SIZE):
        raise DataError(f"{where}: image size {h}x{w} is outside the supported {MIN_SIZE}..{MAX_SIZE} pixels")
    raw_dtype = x.dtype
    if np.issubdtype(raw_dtype, np.complexfloating):
        raise DataError(f"{where}: images must be real numbers, got dtype {raw_dtype}")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{where}: images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0:
        raise DataError(f"{where}: pixel values must not be negative (min {lo})")
    if hi > 255.0:
        raise DataError(f"{where}: pixel values above 255 (max {hi}); expected [0, 1] or 0..255")
    return x, ("0..255" if hi > 1.0 or np.issubdtype(raw_dtype, np.integer) else "0..1")


def _range_reason(x: np.ndarray, pixel_range: str) -> str:
    """Why an array was taken for ``pixel_range``, for the refusal of two disagreeing splits."""
    return f"max {float(x.max()):g}" if pixel_range == "0..1" or x.max() > 1 else "integer pixels"


def _one_hot(y: np.ndarray) -> bool:
    """Whether every row of ``y`` is 0 but for a single 1 (``to_categorical`` labels)."""
    return bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))


def _as_labels(y, count: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[1] > 1 and np.issubdtype(y.dtype, np.number) and _one_hot(y):
        y = np.argmax(y, axis=1)  # keras.utils.to_categorical labels
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be a 1-D array, got shape {y.shape}")
    if len(y) != count:
        raise DataError(f"{where}: {len(y)} labels for {count} images")
    if y.dtype == object or not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{where}: labels must be integers, found non-integer values")
    if y.min() < 0:
        raise DataError(f"{where}: labels must be >= 0, found {y.min()}")
    if y.max() > 10_000:
        raise DataError(f"{where}: label {y.max()} is out of range (more than 10000 classes)")
    return y.astype(np.int32)


# ----------------------------------------------------------------------------- sources


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32) / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    return make_dataset(x_train, y_train, x_test, y_test, "digits", "digits")


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array.

    Format (LeCun et al.): 2 zero bytes, a dtype byte, a rank byte, ``rank`` big-endian
    uint32 dimensions, then the data. The declared size is checked against the file
    before anything is allocated.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise DataError(f"{path}: corrupt gzip data ({err})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype_code, rank = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES or rank == 0:
        raise DataError(f"{path}: not an IDX file (bad magic number 0x{raw[:4].hex()})")
    if rank > 4:
        raise DataError(f"{path}: IDX rank {rank}; images have rank 3 or 4 and labels rank 1")
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    dims = struct.unpack(f">{rank}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[dtype_code])
    count = math.prod(dims)  # Python int: no overflow for absurd headers
    expected = count * dtype.itemsize
    actual = len(raw) - header
    if actual < expected:
        raise DataError(
            f"{path}: truncated: header declares {'x'.join(map(str, dims))} values ({expected} bytes) but {actual} bytes follow"
        )
    if actual > expected:
        raise DataError(f"{path}: {actual - expected} unexpected bytes after the data")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)


def _find_idx(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    # torchvision / some mirrors use t10k-images.idx3-ubyte
    alt = stem.replace("-idx", ".idx")
    for name in (alt, alt + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory / stem}[.gz]: file not found (idx:DIR needs the four MNIST-format files)")


def _load_idx_dir(arg: str, source: str) -> Dataset:
    directory = Path(arg)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a folder (idx:DIR needs a folder with the four IDX files)")
    paths = {key: _find_idx(directory, stem) for key, stem in IDX_FILES.items()}
    arrays = {}
    for key, path in paths.items():
        arr = read_idx(path)
        if key.startswith("x") and arr.ndim not in (3, 4):
            raise DataError(f"{path}: images must have rank 3 or 4, got rank {arr.ndim}")
        if key.startswith("y") and arr.ndim != 1:
            raise DataError(f"{path}: labels must have rank 1, got rank {arr.ndim}")
        arrays[key] = arr
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y):
            raise DataError(
                f"{paths[f'y_{split}']}: {len(y)} labels but {paths[f'x_{split}'].name} has {len(x)} images"
            )
    return make_dataset(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                        source, str(directory))


def _load_npz(arg: str, source: str) -> Dataset:
    path = Path(arg)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; npz:FILE takes a .npz file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a valid .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in npz.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)} (found: {', '.join(npz.files) or 'none'})")
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
            class_names = npz["class_names"].tolist() if "class_names" in npz.files else None
    except DataError:
        raise
    except ValueError as err:
        if "allow_pickle" in str(err) or "Object arrays" in str(err):
            raise DataError(f"{path}: holds object arrays, which are refused (save plain numeric arrays)") from None
        raise DataError(f"{path}: not a valid .npz file ({err})") from None
    except Exception as err:  # zipfile.BadZipFile, EOFError, OSError ...
        raise DataError(f"{path}: not a valid .npz file ({type(err).__name__}: {err})") from None
    return make_dataset(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                        source, str(path), class_names)


def _walk(root: Path) -> list:
    """Every file and folder under ``root``, following symbolic links to folders (a class
    folder may be a link) but never into a folder already visited (a link loop)."""
    import os

    found, seen = [], set()
    for here, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        found += [Path(here, name) for name in dirs + files]
    return found


class _ImageTree:
    """The image files (or, with ``suffixes``, other files) of a folder or of a ``.zip``
    archive, by relative POSIX path.

    Hidden entries (a name starting with ``.``) and ``__MACOSX`` folders are skipped; files
    whose suffix is not one of ``suffixes`` are ignored. A single folder wrapping everything
    (as ``zip -r cifar10.zip cifar10`` makes) is looked through.
    """

    MAX_FILE_BYTES = 16 * 2**20  # no image of <= 64x64 pixels needs more

    def __init__(self, root: Path, suffixes=IMAGE_SUFFIXES, max_file_bytes: int = MAX_FILE_BYTES, what="image"):
        self.root = root
        self.suffixes, self.max_file_bytes, self.what = suffixes, max_file_bytes, what
        self._kind = "audio" if what == "recording" else "folder"  # the source prefix, for messages
        self._zip = None
        if root.is_dir():
            entries = _walk(root)
            paths = [p.relative_to(root).as_posix() for p in entries if p.is_file()]
            dirs = [p.relative_to(root).as_posix() for p in entries if p.is_dir()]
        elif root.is_file() and zipfile.is_zipfile(root):
            try:
                self._zip = zipfile.ZipFile(root)
            except (zipfile.BadZipFile, OSError) as err:
                raise DataError(f"{root}: not a readable zip archive ({err})") from None
            paths = [i.filename for i in self._zip.infolist() if not i.is_dir()]
            dirs = [i.filename.rstrip("/") for i in self._zip.infolist() if i.is_dir()]
        elif root.is_file():
            raise DataError(f"{root}: not a folder or a .zip archive ({self._kind}:DIR needs one sub-folder per "
                            f"class)")
        elif root.exists():
            raise DataError(f"{root}: not a folder ({self._kind}:DIR needs one sub-folder per class)")
        else:
            raise DataError(f"{root}: no such folder or .zip archive ({self._kind}:DIR or {self._kind}:FILE.zip, "
                            f"relative to {Path.cwd()})")
        self.files = sorted(p for p in paths if self._visible(p) and Path(p).suffix.lower() in suffixes)
        self.prefix = ""
        first = {p.split("/", 1)[0] for p in self.files}
        if len(first) == 1 and all("/" in p for p in self.files) and not self._looks_like_layout(self.files):
            self.prefix = first.pop() + "/"
            self.files = [p[len(self.prefix):] for p in self.files]
        self.dirs = {d[len(self.prefix):] for d in dirs if self._visible(d) and d.startswith(self.prefix)} - {""}
        self.dirs |= {p.rsplit("/", 1)[0] for p in self.files if "/" in p}

    def empty_folders(self, parent: str) -> list:
        """Sub-folders of ``parent`` ("" for the top) that hold no file of ``suffixes``."""
        depth = parent.count("/") + 1 if parent else 0
        children = {d for d in self.dirs if d.count("/") == depth and (d.startswith(parent + "/") if parent else True)}
        full = {p.rsplit("/", 1)[0] for p in self.files}
        return sorted(d for d in children if d not in full)

    @staticmethod
    def _visible(path: str) -> bool:
        return not any(part.startswith(".") or part == "__MACOSX" for part in path.split("/"))

    @staticmethod
    def _looks_like_layout(files) -> bool:
        depths = {p.count("/") for p in files}
        if depths == {1}:
            return len({p.split("/", 1)[0] for p in files}) >= 2
        return depths == {2} and {p.split("/", 1)[0] for p in files} <= {"train", "test"}

    @property
    def is_zip(self) -> bool:
        return self._zip is not None

    def where(self, path: str) -> str:
        return f"{self.root}:{self.prefix}{path}" if self._zip else str(self.root / self.prefix / path)

    def read(self, path: str) -> bytes:
        if self._zip is None:
            file = self.root / self.prefix / path
            if file.stat().st_size > self.max_file_bytes:
                raise DataError(f"{self.where(path)}: {file.stat().st_size} bytes is too large {self._too_large}")
            return file.read_bytes()
        info = self._zip.getinfo(self.prefix + path)
        if info.file_size > self.max_file_bytes:
            raise DataError(f"{self.where(path)}: {info.file_size} bytes is too large {self._too_large}")
        try:
            return self._zip.read(info)
        except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, ValueError) as err:
            raise DataError(f"{self.where(path)}: cannot read from the archive ({first_line(err)})") from None
        except Exception as err:  # zlib.error and the like from a corrupt member
            raise DataError(f"{self.where(path)}: cannot read from the archive ({type(err).__name__}: {first_line(err)})") from None

    @property
    def _too_large(self) -> str:
        return (f"for an image of at most {MAX_SIZE}x{MAX_SIZE} pixels" if self.what == "image"
                else f"for a {self.what} (at most {self.max_file_bytes // 2**20} MiB)")

    def close(self):
        if self._zip is not None:
            self._zip.close()


def decode_image(raw: bytes, where: str) -> np.ndarray:
    """One image file's bytes -> float32 pixels in [0, 1], (H, W) for grey or (H, W, 3).

    8-bit images are divided by 255 and 16-bit ones (PNG ``I;16``) by 65535, so that both
    give the same array for the same picture. Transparency is dropped. The size is checked
    from the header, before any pixel is decoded: an image larger than 64 pixels a
    side (a decompression bomb included) is refused.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:
            w, h = img.size
            if w > MAX_SIZE or h > MAX_SIZE:
                raise DataError(f"{where}: image is {w}x{h}, larger than the supported {MAX_SIZE}x{MAX_SIZE} pixels")
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                if arr.min() < 0 or arr.max() > 65535:
                    raise DataError(f"{where}: {mode} pixel values outside 0..65535")
                return (arr / 65535.0).astype(np.float32)
            if mode == "F":
                raise DataError(f"{where}: floating-point images (mode F) are not supported; save 8- or 16-bit PNG")
            grey = mode in ("1", "L", "LA") or (mode == "P" and _palette_is_grey(img))
            arr = np.asarray(img.convert("L" if grey else "RGB"), dtype=np.float32)
    except DataError:
        raise
    except Image.DecompressionBombError:
        raise DataError(f"{where}: image is larger than the supported {MAX_SIZE}x{MAX_SIZE} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{where}: not a readable image ({first_line(err)})") from None
    return arr * np.float32(1 / 255)


def _palette_is_grey(img) -> bool:
    rgb = np.asarray(img.convert("RGB"))
    return bool(np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]))


def _load_folder(arg: str, source: str, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """``folder:DIR`` or ``folder:FILE.zip``, in one of two layouts:

    * ``<class>/<image>``: split 80/20 per class (seeded, fixed);
    * ``train/<class>/<image>`` and ``test/<class>/<image>``: the given split is kept.
    """
    return _load_class_tree(_ImageTree(Path(arg)), source, _read_class_files, test_fraction, seed)


def _load_audio(arg: str, source: str, settings: Optional[dict] = None, test_fraction: float = 0.2,
                seed: int = 0) -> Dataset:
    """``audio:DIR`` or ``audio:FILE.zip``: WAV recordings in the layouts of ``folder:``
    (``<class>/*.wav`` split 80/20 per class, or ``train/<class>/*.wav`` and
    ``test/<class>/*.wav``), each turned into its log-mel feature map by
    :class:`audio_frontend.FrontEnd` with ``settings`` (the ``audio`` config section; the
    defaults when ``None``). The feature maps are the "images" every later stage sees."""
    from .audio_frontend import AudioError

    frontend = _frontend(settings)
    tree = _ImageTree(Path(arg), suffixes=AUDIO_SUFFIXES, max_file_bytes=MAX_WAV_BYTES, what="recording")

    def read(tree, prefix, files, class_names):
        index = {name: i for i, name in enumerate(class_names)}
        features = []
        for path in (prefix + p for p in files):
            try:
                features.append(frontend.wav_features(tree.where(path), tree.read(path)))
            except AudioError as err:
                raise DataError(str(err)) from None
        return np.stack(features), np.asarray([index[p.split("/", 1)[0]] for p in files], dtype=np.int32)

    ds = _load_class_tree(tree, source, read, test_fraction, seed)
    return dataclasses.replace(ds, frontend=dict(frontend.settings))


def _frontend(settings: Optional[dict]):
    """The :class:`audio_frontend.FrontEnd` of ``settings``, its feature map checked to fit the models."""
    from .audio_frontend import AudioError, FrontEnd

    try:
        frontend = FrontEnd(settings)
    except AudioError as err:
        raise DataError(f"audio settings: {err}") from None
    frames, bins, _ = frontend.feature_shape
    if not (MIN_SIZE <= frames <= MAX_SIZE and MIN_SIZE <= bins <= MAX_SIZE):
        raise DataError(f"audio settings: the feature map is {frames} frames x {bins} mel bins; the models take "
                        f"{MIN_SIZE} to {MAX_SIZE} of each (set audio.clip_seconds, audio.hop_ms or audio.mel_bins)")
    return frontend


def _load_tfds_audio(name: str, source: str, settings: Optional[dict] = None) -> Dataset:
    """``tfds:spoken_digit`` (downloads on first use): one ``train`` split of 8 kHz digits,
    cut 80/20 per class with seed 0 (its recordings numbered 0-4 are not marked)."""
    from .audio_frontend import AudioError

    frontend = _frontend(settings)
    try:
        import tensorflow_datasets as tfds

        split = tfds.as_numpy(tfds.load(name, split="train", as_supervised=True))
    except Exception as err:  # noqa: BLE001 - network, missing builder, checksum
        raise DataError(f"{source}: cannot load from TensorFlow Datasets ({first_line(err)})") from None
    features, labels = [], []
    for i, (pcm, label) in enumerate(split):
        try:
            features.append(frontend.features(frontend.clip(np.asarray(pcm, np.float64) / 32768.0, 8000)))
        except AudioError as err:
            raise DataError(f"{source}: recording {i}: {err}") from None
        labels.append(int(label))
    x, y = np.stack(features), np.asarray(labels, np.int32)
    names = tuple(str(c) for c in range(int(y.max()) + 1))
    splits = _split_per_class(x, y, names, 0.2, 0, lambda name, count: (
        f"{source}: class {name} needs at least 2 recordings (one for test), found {count}"))
    ds = make_dataset(*splits, source, source, names)
    return dataclasses.replace(ds, frontend=dict(frontend.settings))


def _load_class_tree(tree: _ImageTree, source: str, read_class_files, test_fraction: float, seed: int) -> Dataset:
    """The two class-folder layouts of ``folder:`` (and ``audio:``) read by ``read_class_files``."""
    what = f"{tree.what}s"
    try:
        files = tree.files
        if not files:
            raise DataError(f"{tree.root}: no {tree.what} files ({', '.join(tree.suffixes)}) found")
        depths = {p.count("/") for p in files}
        tops = {p.split("/", 1)[0] for p in files}
        if depths == {2} and tops == {"train", "test"}:
            by_split = {s: [p.split("/", 1)[1] for p in files if p.startswith(s + "/")] for s in ("train", "test")}
            class_names = sorted({p.split("/", 1)[0] for p in by_split["train"]})
            unknown = sorted({p.split("/", 1)[0] for p in by_split["test"]} - set(class_names))
            if unknown:
                raise DataError(f"{tree.where('test/' + unknown[0])}: test class {unknown[0]!r} has no train/ folder")
            if len(class_names) < 2:
                raise DataError(f"{tree.where('train')}: needs at least 2 class sub-folders, found {len(class_names)}")
            for split in ("train", "test"):
                _refuse_empty_classes(tree, split)
            x_train, y_train = read_class_files(tree, "train/", by_split["train"], class_names)
            x_test, y_test = read_class_files(tree, "test/", by_split["test"], class_names)
        elif depths == {2} and tops < {"train", "test"}:
            missing = ({"train", "test"} - tops).pop()
            raise DataError(f"{tree.where(missing)}: holds no {what}; the train/<class>/ and test/<class>/ layout "
                            f"needs {what} in both")
        elif depths == {1}:
            class_names = sorted(tops)
            _refuse_empty_classes(tree, "")
            if len(class_names) < 2:
                raise DataError(f"{tree.root}: needs at least 2 class sub-folders, found {len(class_names)}")
            x, y = read_class_files(tree, "", files, class_names)
            x_train, y_train, x_test, y_test = _split_per_class(x, y, class_names, test_fraction, seed, lambda name, count: (
                f"{tree.where(name)}: class folder needs at least 2 {tree.what}s (one for test), found {count}"))
        elif depths == {0} or 0 in depths:
            raise DataError(f"{tree.where(min(files, key=lambda p: p.count('/')))}: {what} must be inside class "
                            f"sub-folders (DIR/<class>/*{tree.suffixes[0]}, or DIR/train/<class>/* and "
                            f"DIR/test/<class>/*)")
        else:
            deep = max(files, key=lambda p: p.count("/"))
            raise DataError(f"{tree.where(deep)}: unexpected folder depth; use DIR/<class>/*{tree.suffixes[0]}, or "
                            f"DIR/train/<class>/* and DIR/test/<class>/*")
    finally:
        tree.close()
    return make_dataset(x_train, y_train, x_test, y_test, source, str(tree.root), class_names)


def _refuse_empty_classes(tree: _ImageTree, parent: str):
    empty = tree.empty_folders(parent)
    if empty:
        raise DataError(f"{tree.where(empty[0])}: class folder holds no {tree.what}s ({', '.join(tree.suffixes)})")


def _read_class_files(tree: _ImageTree, prefix: str, files, class_names):
    """Decode ``<class>/<file>`` paths (under ``prefix``) into one (N, H, W, C) float32 array."""
    index = {name: i for i, name in enumerate(class_names)}
    paths = [prefix + p for p in files]

    def decode(path):
        return decode_image(tree.read(path), tree.where(path))

    images = []  # one thread: measured faster than a pool (58,000 CIFAR-10 JPEGs in about 8 s)
    for path in paths:
        arr = decode(path)
        if images and arr.shape[:2] != images[0].shape[:2]:
            h0, w0 = images[0].shape[:2]
            raise DataError(f"{tree.where(path)}: image is {arr.shape[1]}x{arr.shape[0]} but earlier images are {w0}x{h0}")
        images.append(arr)
    colour = any(a.ndim == 3 for a in images)
    x = np.stack([a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1) for a in images] if colour
                 else [a[..., None] for a in images])
    y = np.asarray([index[p.split("/", 1)[0]] for p in files], dtype=np.int32)
    return x, y


def _split_per_class(x, y, class_names, test_fraction, seed, too_few):
    """(x_train, y_train, x_test, y_test): ``test_fraction`` of each class (at least one) drawn
    for the test split with ``seed``; a class of fewer than 2 examples raises ``DataError``
    with ``too_few(class name, count)``."""
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(y), dtype=bool)
    for label in range(len(class_names)):
        idx = np.flatnonzero(y == label)
        if len(idx) < 2:
            raise DataError(too_few(class_names[label], len(idx)))
        n_test = max(1, int(round(len(idx) * test_fraction)))
        test_mask[rng.choice(idx, n_test, replace=False)] = True
    return x[~test_mask], y[~test_mask], x[test_mask], y[test_mask]


def _load_tfds(name: str, source: str) -> Dataset:
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError("tfds: sources need the tensorflow-datasets package (pip install tensorflow-datasets)") from None
    try:
        (train, test), info = tfds.load(name, split=["train", "test"], as_supervised=True,
                                        with_info=True, batch_size=-1)
    except Exception as err:
        raise DataError(f"tfds:{name}: cannot load ({first_line(err)})") from None
    x_train, y_train = (np.asarray(t) for t in tfds.as_numpy(train))
    x_test, y_test = (np.asarray(t) for t in tfds.as_numpy(test))
    label_feature = info.features[info.supervised_keys[1]]
    class_names = getattr(label_feature, "names", None)
    return make_dataset(x_train, y_train, x_test, y_test, source, f"tfds:{name}", class_names)


# ----------------------------------------------------------------------------- pipelines


def classes_of_one_size(labels: np.ndarray) -> bool:
    """Whether every class present in ``labels`` has as many examples as every other."""
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    return bool(np.all(counts == counts[0]))


def training_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
                      drop_remainder: bool = True, augment=None, skip_batches: int = 0,
                      class_balanced: bool = False):
    """Endless ``tf.data`` stream of (image, label) batches: a new shuffle every pass over
    the data, batched, prefetched; ``augment``, a callable on an image batch (a Keras
    preprocessing layer), is applied to every batch. Fit it with ``steps_per_epoch``
    (one pass: ``ceil(len(x) / batch_size)`` without ``drop_remainder``).

    ``class_balanced``: each example is drawn from a class chosen uniformly at random, and
    within the class from its own endless reshuffled stream (``sample_from_datasets``), so a
    class of few examples is seen as often as the largest; the usual class-balanced sampling
    of long-tailed learning (the classes repeat their examples in proportion to their rarity).
    A split whose classes are all of one size is already balanced: it gets the plain stream.

    ``skip_batches``: the number of batches an interrupted run already trained on; they are
    drawn (and augmented) again and discarded, so that a resumed run sees the very batches
    the uninterrupted run would have.
    """
    import tensorflow as tf

    if class_balanced and not classes_of_one_size(y):
        classes = np.unique(y)
        streams = [tf.data.Dataset.from_tensor_slices((x[y == c], y[y == c]))
                   .shuffle(int(np.sum(y == c)), seed=seed + i, reshuffle_each_iteration=True).repeat()
                   for i, c in enumerate(classes)]
        ds = tf.data.Dataset.sample_from_datasets(streams, weights=[1.0 / len(classes)] * len(classes), seed=seed)
        ds = ds.batch(batch_size, drop_remainder=True)
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder).repeat()
    if augment is not None:  # in order: the layer's random state advances once per batch, reproducibly
        ds = ds.map(lambda images, labels: (augment(images, training=True), labels))
    if skip_batches:
        ds = ds.skip(skip_batches)
    return ds.prefetch(tf.data.AUTOTUNE)


def train_subset(dataset: Dataset, count: int, seed: int = 0) -> Dataset:
    """``dataset`` with its training split cut to ``count`` images, drawn at random with the
    class shares of the full split (each class keeps at least one image); the test split is
    unchanged. For measuring how a method fares on small training sets."""
    if not 0 < count <= len(dataset.x_train):
        raise DataError(f"a training subset of {count} images: the split has {len(dataset.x_train)}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(dataset.num_classes):
        members = np.flatnonzero(dataset.y_train == c)
        take = max(1, round(count * len(members) / len(dataset.x_train))) if len(members) else 0
        chosen.append(rng.choice(members, min(take, len(members)), replace=False))
    index = np.sort(np.concatenate(chosen))
    return dataclasses.replace(dataset, x_train=dataset.x_train[index], y_train=dataset.y_train[index],
                               source=f"{dataset.source} (training split cut to {len(index)})")


def fingerprint(ds: Dataset) -> dict:
    """What a run folder records of its data (``data.json``): the source string, the split
    sizes, the class names and a BLAKE2b digest of the validated arrays and class names, so
    that a rerun on changed data under the same path is told apart (about 1 s for CIFAR-10's
    50,000 training images)."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for array in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    digest.update("\n".join(ds.class_names).encode("utf-8"))
    record = {"source": ds.source, "train_images": int(len(ds.x_train)), "test_images": int(len(ds.x_test)),
              "image_shape": list(ds.spec.image_shape), "class_names": list(ds.class_names),
              "fingerprint": digest.hexdigest()}
    if ds.frontend is not None:
        record["frontend"] = dict(ds.frontend)
    return record


def examples_noun(ds: Dataset) -> str:
    """What the data's examples are, for messages: "recordings" or "images"."""
    return "recordings" if ds.frontend is not None else "images"


def describe(ds: Dataset) -> str:
    h, w, c = ds.spec.image_shape
    counts = f"{ds.source}: {len(ds.x_train)} train / {len(ds.x_test)} test {examples_noun(ds)}"
    if ds.frontend is not None:
        return f"{counts}, log-mel feature maps of {h} frames x {w} mel bins, {ds.num_classes} classes"
    return f"{counts}, {h}x{w}x{c}, {ds.num_classes} classes"

