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
* ``folder:DIR``: one sub-folder per class holding image files (PNG, JPEG, BMP, GIF), all
  of one size; split 80/20 per class with seed 0.

Pixels are scaled to [0, 1]: integer arrays and arrays with values above 1 are divided
by 255; float arrays already in [0, 1] are kept. Images come out as float32 with shape
(N, H, W, C), C in {1, 3}, 8 <= H, W <= 64; labels as int32 in [0, num_classes).
Anything else raises :class:`DataError` with a one-line message that names the file and
the problem.
"""

from __future__ import annotations

import gzip
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .errors import DataError, first_line

MIN_SIZE, MAX_SIZE = 8, 64
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
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

    @property
    def spec(self) -> ImageSpec:
        return ImageSpec(tuple(int(d) for d in self.x_train.shape[1:]), tuple(self.class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load(source: str) -> Dataset:
    """Load and validate a data source string (see the module docstring)."""
    kind, _, arg = source.partition(":")
    if kind == "digits" and not arg:
        return _load_digits()
    if not arg:
        raise DataError(
            f"unknown data source {source!r}; use digits, tfds:NAME, idx:DIR, npz:FILE or folder:DIR"
        )
    loaders = {"tfds": _load_tfds, "idx": _load_idx_dir, "npz": _load_npz, "folder": _load_folder}
    if kind not in loaders:
        raise DataError(
            f"unknown data source kind {kind!r} in {source!r}; use digits, tfds:NAME, idx:DIR, npz:FILE or folder:DIR"
        )
    return loaders[kind](arg, source)


# ----------------------------------------------------------------------------- validation


def make_dataset(x_train, y_train, x_test, y_test, source: str, where: str,
                 class_names: Optional[Sequence[str]] = None) -> Dataset:
    """Validate raw arrays and normalise them into a :class:`Dataset`.

    ``where`` names the file(s) the arrays came from, for error messages.
    """
    x_train = _as_images(x_train, f"{where}: x_train")
    x_test = _as_images(x_test, f"{where}: x_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{where}: train images are {x_train.shape[1:]} but test images are {x_test.shape[1:]}"
        )
    y_train = _as_labels(y_train, len(x_train), f"{where}: y_train")
    y_test = _as_labels(y_test, len(x_test), f"{where}: y_test")
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if class_names is not None:
        class_names = tuple(str(c) for c in class_names)
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


def _as_images(x, where: str) -> np.ndarray:
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
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{where}: images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0:
        raise DataError(f"{where}: pixel values must not be negative (min {lo})")
    if hi > 255.0:
        raise DataError(f"{where}: pixel values above 255 (max {hi}); expected [0, 1] or 0..255")
    if hi > 1.0 or np.issubdtype(raw_dtype, np.integer):
        x = x / 255.0  # 8-bit pixels
    return x


def _as_labels(y, count: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
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
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise DataError(f"{path}: corrupt gzip data ({err})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype_code, rank = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES or rank == 0:
        raise DataError(f"{path}: not an IDX file (bad magic number 0x{raw[:4].hex()})")
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


def _load_folder(arg: str, source: str, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    root = Path(arg)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (folder:DIR needs one sub-folder per class)")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DataError(f"{root}: needs at least 2 class sub-folders, found {len(class_dirs)}")
    images, labels, shape, mode = [], [], None, None
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < 2:
            raise DataError(f"{class_dir}: class folder needs at least 2 images (one for test), found {len(files)}")
        for file in files:
            try:
                with Image.open(file) as img:
                    if mode is None:
                        mode = "RGB" if img.mode not in ("L", "1", "I", "I;16", "F") else "L"
                    arr = np.asarray(img.convert(mode))
            except (UnidentifiedImageError, OSError) as err:
                raise DataError(f"{file}: not a readable image ({err})") from None
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise DataError(f"{file}: image is {arr.shape[1]}x{arr.shape[0]} but earlier images are {shape[1]}x{shape[0]}")
            images.append(arr)
            labels.append(label)
    x = np.stack(images)
    y = np.asarray(labels, dtype=np.int32)
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(y), dtype=bool)
    for label in range(len(class_dirs)):
        idx = np.flatnonzero(y == label)
        n_test = max(1, int(round(len(idx) * test_fraction)))
        test_mask[rng.choice(idx, n_test, replace=False)] = True
    return make_dataset(x[~test_mask], y[~test_mask], x[test_mask], y[test_mask], source, str(root),
                        [d.name for d in class_dirs])


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


def training_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
                      drop_remainder: bool = True, augment=None):
    """Shuffled (every epoch), batched, prefetched ``tf.data`` pipeline of (image, label)
    pairs; ``augment``, a callable on an image batch (a Keras preprocessing layer), is
    applied to every batch."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment is not None:  # in order: the layer's random state advances once per batch, reproducibly
        ds = ds.map(lambda images, labels: (augment(images, training=True), labels))
    return ds.prefetch(tf.data.AUTOTUNE)


def describe(ds: Dataset) -> str:
    h, w, c = ds.spec.image_shape
    return (f"{ds.source}: {len(ds.x_train)} train / {len(ds.x_test)} test images, "
            f"{h}x{w}x{c}, {ds.num_classes} classes")

