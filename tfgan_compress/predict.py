#!/usr/bin/env python3
"""Stand-alone LiteRT runner for the exported classifiers: numpy + ai-edge-litert + Pillow only.

No TensorFlow and no other tfgan_compress module is imported (this file is also
``export/predict.py``: copy it alone to a phone, a board or a server that only runs the
file); ``tfgan-compress predict`` runs the same code::

    pip install numpy pillow ai-edge-litert
    python predict.py runs/NAME/tflite/student_int8.tflite digit.png other.png
    python predict.py runs/NAME/tflite/student_int8.tflite --npz data.npz --limit 10
    python predict.py runs/NAME/tflite/student_int8.tflite --idx t10k-images-idx3-ubyte.gz --limit 10

An audio model (its model card has a ``frontend``) takes WAV files (16-bit PCM, 8 to 48
kHz), turned into its log-mel feature maps by ``audio_frontend.py`` with the card's
settings (copy that file beside this one)::

    python predict.py runs/NAME/tflite/student_int8.tflite clip.wav
    python predict.py runs/NAME/tflite/student_int8.tflite test/*/*.wav --labels-from-folders

Accuracy mode, when the true classes are given: ``--labels-from-folders`` (each image's
folder is named after its class, as in ``DIR/<class>/*.png``), ``--npz`` with a ``y_test``
array, or ``--idx`` with ``--idx-labels t10k-labels-idx1-ubyte.gz``: then it prints the
accuracy over all the images (``--limit`` applies to ``--npz``/``--idx``; default all)
and per class, instead of one line per image.

Pixels are scaled as the model takes them: ``x = pixel / 255 * scale + offset`` with the
input ``scale`` and ``offset`` of ``model_card.json`` beside the file (its input convention:
0-1, 0-255 or -1-1, the teacher's); a file copied without its card is read by its own LiteRT
metadata (normalisation, labels, audio front end; ``tflite_metadata.py`` beside this one),
and a file with neither takes pixel / 255, said on stderr. Float or int8 input and output
tensors are handled from the file's own quantisation parameters
(``q = round(x / scale) + zero_point``). Class names come from ``labels.txt`` beside the file.
When the model card lists the file, its sha256 is checked first (a corrupted copy is
refused rather than trusted). Bad input (a file that is not a classifier, unreadable images,
NaN pixels, image files of another size than the model's unless ``--resize`` is given, a
malformed model card) gives one line and exit status 2. A colour image given to a grey
model is converted to grey, and a grey image given to a colour model is read as three equal
channels, each with a note on stderr.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np


class BadInput(Exception):
    """Input this script cannot use; printed as one line, exit status 2."""


def load_images(paths, shape, resize: bool = False):
    """Image files as (N, H, W, C) pixels in [0, 1]. An image of another size than the
    model's is refused unless ``resize``; a colour image for a grey model is converted to
    grey, a grey image for a colour model is read as three equal channels, each said so on
    stderr (once)."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = shape
    images, converted, greyed = [], [], []
    grey_modes = ("1", "L", "LA", "I;16", "I;16B", "I;16L", "I")
    for path in paths:
        if not Path(path).is_file():  # a folder, a FIFO or a device would hang or fail inside Pillow
            raise BadInput(f"{path}: " + ("file not found" if not Path(path).exists() else "not a regular file"))
        try:
            with Image.open(path) as img:
                if (img.width, img.height) != (width, height) and not resize:
                    raise BadInput(f"{path}: image is {img.width}x{img.height} but the model takes {width}x{height}; "
                                   f"give --resize to scale it")
                if channels == 3 and img.mode in grey_modes:
                    greyed.append(str(path))
                if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: scale by 65535, not saturate
                    grey = np.asarray(img, np.float32) / 65535.0
                    img = Image.fromarray(np.clip(grey * 255.0 + 0.5, 0, 255).astype(np.uint8))
                if channels == 1 and img.mode not in grey_modes + ("P",):
                    converted.append(str(path))
                img = img.convert("L" if channels == 1 else "RGB")
                if (img.width, img.height) != (width, height):
                    img = img.resize((width, height))
                images.append(np.asarray(img, np.float32).reshape(height, width, channels) / 255.0)
        except BadInput:
            raise
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
            raise BadInput(f"{path}: not a readable image ({err})") from None
    if converted:
        print(f"note: {len(converted)} colour image(s) converted to grey for the grey model (first: {converted[0]})",
              file=sys.stderr)
    if greyed:
        print(f"note: {len(greyed)} grey image(s) read as colour (three equal channels) for the colour model "
              f"(first: {greyed[0]})", file=sys.stderr)
    return np.stack(images)


def load_idx_images(path):
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        rank = raw[3]
        if raw[:3] != b"\x00\x00\x08" or rank not in (3, 4):
            raise BadInput(f"{path}: not an IDX file of 8-bit images")
        dims = struct.unpack(f">{rank}I", raw[4:4 + 4 * rank])
        x = np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(dims)
    except BadInput:
        raise
    except Exception as err:  # noqa: BLE001 - truncated, corrupt, unreadable
        raise BadInput(f"{path}: not a readable IDX file ({type(err).__name__}: {err})") from None
    return x.astype(np.float32)[..., None] / 255.0 if x.ndim == 3 else x.astype(np.float32) / 255.0


def load_npz_images(path, key="x_test"):
    try:
        with np.load(path, allow_pickle=False) as npz:
            if key not in npz.files:
                raise BadInput(f"{path}: no {key} array (found: {', '.join(npz.files) or 'none'})")
            x = npz[key].astype(np.float32)
    except BadInput:
        raise
    except Exception as err:  # noqa: BLE001 - zip, pickle and value errors alike
        raise BadInput(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    x = x[..., None] if x.ndim == 3 else x
    if x.size == 0:
        raise BadInput(f"{path}: no images in {key}")
    if not np.all(np.isfinite(x)):
        raise BadInput(f"{path}: {key} contains NaN or infinite values")
    return x / 255.0 if x.max() > 1.0 else x


def beside(model_path, name: str) -> Path:
    """``name`` beside the model, or one folder up for a file kept apart in ``below_bar/``."""
    here = Path(model_path).with_name(name)
    if not here.is_file() and Path(model_path).parent.name == "below_bar":
        return Path(model_path).parent.parent / name
    return here


def read_card(model_path) -> dict:
    """``model_card.json`` beside the model (``{}`` when there is none), checked: an object,
    its ``input`` an object of finite numbers ``scale`` and ``offset``, its ``files`` a list
    of objects; anything else is refused in one line rather than half-used."""
    card = beside(model_path, "model_card.json")
    if not card.is_file():
        return {}
    try:
        value = json.loads(card.read_text())
    except (ValueError, OSError) as err:
        raise BadInput(f"{card}: not a readable model card ({err})") from None
    if not isinstance(value, dict):
        raise BadInput(f"{card}: not a model card (a JSON object), got a {type(value).__name__}")
    spec = value.get("input", {})
    if not isinstance(spec, dict):
        raise BadInput(f"{card}: 'input' must be an object with 'scale' and 'offset', got {spec!r}")
    for key in ("scale", "offset"):
        number = spec.get(key, 0.0)
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not np.isfinite(number):
            raise BadInput(f"{card}: input '{key}' must be a finite number, got {number!r}")
    if spec.get("scale", 1.0) == 0:
        raise BadInput(f"{card}: input 'scale' is 0")
    files = value.get("files", [])
    if not isinstance(files, list) or not all(isinstance(entry, dict) for entry in files):
        raise BadInput(f"{card}: 'files' must be a list of objects, got {type(files).__name__}")
    frontend = value.get("frontend")
    if frontend is not None and not (isinstance(frontend, dict) and isinstance(frontend.get("settings"), dict)):
        raise BadInput(f"{card}: 'frontend' must be an object with the front end's 'settings', got {frontend!r}")
    return value


def sibling(name: str, needed_for: str):
    """The module ``name`` of the package, or the file beside this script (export/)."""
    import importlib

    try:
        return importlib.import_module(f".{name}", __package__) if __package__ else importlib.import_module(name)
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        try:
            return importlib.import_module(name)
        except ImportError:
            raise BadInput(f"{needed_for} needs {name}.py beside predict.py (copy both from export/)") from None


def audio_frontend():
    """The :mod:`audio_frontend` module: the package's, or the file beside this script."""
    return sibling("audio_frontend", "an audio model")


def card_from_metadata(model_path) -> dict:
    """What the file's own LiteRT metadata says, in the model card's terms (``{}`` when the
    file has none): the input scale and offset, the labels, the audio front end."""
    if not Path(model_path).is_file():
        return {}
    module = sibling("tflite_metadata", "reading the file's metadata")
    try:
        metadata = module.read(Path(model_path).read_bytes())
    except module.MetadataError as err:
        raise BadInput(f"{model_path}: {err}") from None
    if metadata is None:
        return {}
    card = {"labels": metadata.get("labels")}
    scaling = module.input_scaling(metadata)
    if scaling is None:  # metadata of another tool, without one normalisation for the input
        card["assumed"] = True
    else:
        card["input"] = {"scale": scaling[0], "offset": scaling[1]}
    if "frontend" in metadata:
        card["frontend"] = {"settings": metadata["frontend"]}
    return card


def load_recordings(paths, card: dict, shape):
    """WAV files -> the model's feature maps (N, frames, mel_bins, 1), computed by the front
    end whose settings the model card records (``frontend.settings``)."""
    module = audio_frontend()
    try:
        frontend = module.FrontEnd(card["frontend"]["settings"])
    except module.AudioError as err:
        raise BadInput(f"model card 'frontend': {err}") from None
    if tuple(frontend.feature_shape) != tuple(shape):
        raise BadInput(f"the model card's front end makes {frontend.feature_shape} feature maps but the model takes "
                       f"{tuple(shape)}")
    try:
        return np.stack([frontend.wav_features(path) for path in paths])
    except module.AudioError as err:
        raise BadInput(str(err)) from None


def is_recording(path) -> bool:
    return str(path).lower().endswith(".wav")


def check_against_card(model_path, card: dict) -> None:
    """Refuse a file whose bytes differ from those the model card lists for it (corrupted
    in transfer, or replaced), and say so for a file that missed its agreement bar."""
    import hashlib

    model_path = Path(model_path)
    relative = model_path.name if model_path.parent.name != "below_bar" else f"below_bar/{model_path.name}"
    for entry in card.get("files", []):
        if entry.get("file") == relative:
            digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
            listed = str(entry.get("sha256") or "")
            if listed and digest != listed:
                raise BadInput(f"{model_path}: its bytes differ from the file the model card lists (sha256 {digest[:12]}... "
                               f"instead of {listed[:12]}...): corrupted or replaced; export it again")
            if entry.get("passed") is False:
                print(f"note: {model_path.name} missed its agreement bar at export "
                      f"({_share(entry.get('agreement_with_keras'))} < {_share(entry.get('agreement_bar'))})",
                      file=sys.stderr)


def _share(value) -> str:
    """A card's fraction as a percentage, or as it is written when it is not a number."""
    return f"{value:.2%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)


def input_scaling(model_path, card: dict | None = None) -> tuple:
    """(scale, offset) of the model's input convention, from ``model_card.json`` beside it."""
    spec = (read_card(model_path) if card is None else card).get("input", {})
    return float(spec.get("scale", 1.0)), float(spec.get("offset", 0.0))


def to_input(x, detail):
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero_point = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(detail["dtype"])
    return x.astype(detail["dtype"])


def from_output(q, detail):
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero_point = detail["quantization"]
        return (q.astype(np.float32) - zero_point) * scale
    return q.astype(np.float32)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def open_classifier(model_path):
    """A LiteRT interpreter for a one-input, one-output image classifier file, or BadInput."""
    from ai_edge_litert.interpreter import Interpreter

    path = Path(model_path)
    if not path.is_file():
        raise BadInput(f"{path}: file not found" if not path.exists() else f"{path}: is not a file")
    if path.stat().st_size == 0:
        raise BadInput(f"{path}: empty file")
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise BadInput(f"{path}: not a loadable .tflite file ({str(err).strip().splitlines()[0]})") from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]["shape"]) != 4:
        raise BadInput(f"{path}: takes {len(inputs)} input(s) of shape {[[int(d) for d in i['shape']] for i in inputs]}; not an "
                       f"image classifier (the generator file?)")
    return interpreter, inputs[0], outputs[0]


def load_npz_labels(path, key="y_test"):
    try:
        with np.load(path, allow_pickle=False) as npz:
            if key not in npz.files:
                return None
            raw = np.asarray(npz[key])
    except Exception as err:  # noqa: BLE001
        raise BadInput(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    if (raw.ndim == 2 and raw.shape[1] > 1 and np.issubdtype(raw.dtype, np.number)
            and np.all((raw == 0) | (raw == 1)) and np.all(raw.sum(axis=1) == 1)):
        raw = np.argmax(raw, axis=1)  # one-hot rows (keras.utils.to_categorical)
    raw = raw.reshape(-1)
    if not (np.issubdtype(raw.dtype, np.integer) or (np.issubdtype(raw.dtype, np.floating)
                                                       and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw)))):
        raise BadInput(f"{path}: {key} holds {raw.dtype} values that are not whole class numbers")
    return raw.astype(np.int64)


def load_idx_labels(path):
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        if raw[:4] != b"\x00\x00\x08\x01":
            raise BadInput(f"{path}: not an IDX label file (8-bit, rank 1)")
        (count,) = struct.unpack(">I", raw[4:8])
        return np.frombuffer(raw, np.uint8, count=count, offset=8).astype(np.int64)
    except BadInput:
        raise
    except Exception as err:  # noqa: BLE001
        raise BadInput(f"{path}: not a readable IDX label file ({type(err).__name__}: {err})") from None


def folder_labels(paths, class_names):
    """The class index of each image from the name of its folder (``DIR/<class>/image``)."""
    if not class_names:
        raise BadInput("--labels-from-folders needs labels.txt beside the model (the class names)")
    index = {name: i for i, name in enumerate(class_names)}
    labels = []
    for path in paths:
        folder = Path(path).resolve().parent.name
        if folder not in index:
            raise BadInput(f"{path}: its folder {folder!r} is not a class of the model "
                           f"({', '.join(class_names[:10])}{'...' if len(class_names) > 10 else ''})")
        labels.append(index[folder])
    return np.array(labels, np.int64)


def accuracy_lines(predicted, labels, class_names, num_classes: int) -> list[str]:
    """Overall and per-class accuracy as printed lines (``num_classes``: the model's outputs)."""
    names = class_names or [str(c) for c in range(num_classes)]
    if labels.min() < 0 or labels.max() >= len(names):
        raise BadInput(f"labels run from {labels.min()} to {labels.max()}, but the model has {len(names)} classes")
    lines = [f"accuracy\t{np.mean(predicted == labels):.4f}\t({int(np.sum(predicted == labels))} of {len(labels)} "
             f"images)"]
    for c, name in enumerate(names):
        members = labels == c
        if members.any():
            lines.append(f"{name}\t{np.mean(predicted[members] == c):.4f}\t({int(members.sum())} images)")
    return lines


def classify(interpreter, inp, out, images) -> np.ndarray:
    """Class probabilities of each image, one invocation per image (as on a device)."""
    probs = []
    for image in images:
        interpreter.set_tensor(inp["index"], to_input(image[None], inp))
        interpreter.invoke()
        probs.append(from_output(interpreter.get_tensor(out["index"]), out)[0])
    return np.stack(probs)


def run(args) -> int:
    card = read_card(args.model)
    if Path(args.model).is_file():
        check_against_card(args.model, card)  # before LiteRT parses a possibly corrupted file
    interpreter, inp, out = open_classifier(args.model)
    if not card:  # a file copied on its own: its metadata says how it takes its input
        card = card_from_metadata(args.model) or {"assumed": True}  # "assumed": pixels / 255, said below
    shape = tuple(int(d) for d in inp["shape"][1:])
    limit = args.limit
    labels = None
    if args.npz:
        images, names = load_npz_images(args.npz), None
        labels = load_npz_labels(args.npz)
    elif args.idx:
        images, names = load_idx_images(args.idx), None
        labels = load_idx_labels(args.idx_labels) if args.idx_labels else None
    elif "frontend" in card or any(is_recording(path) for path in args.images):
        if "frontend" not in card:
            raise BadInput(f"{args.images[0]}: a recording, but {args.model} has no audio front end in a "
                           f"model_card.json beside it or in its metadata (an image model?)")
        pictures = [path for path in args.images if not is_recording(path)]
        if pictures:
            raise BadInput(f"{pictures[0]}: {args.model} takes WAV recordings (it is an audio model)")
        images, names = load_recordings(args.images, card, shape), args.images
    else:
        images, names = load_images(args.images, shape, getattr(args, "resize", False)), args.images
    if labels is not None and len(labels) != len(images):
        raise BadInput(f"{len(labels)} labels for {len(images)} images")
    if limit is None:  # image files: all of them; arrays: 10, or all when they come with labels
        limit = len(images) if labels is not None or names else 10
    images = images[:limit]
    labels = labels[:limit] if labels is not None else None
    source = args.npz or args.idx or "the images"
    if len(images) == 0:
        raise BadInput(f"{source}: no images")
    if tuple(images.shape[1:]) != shape:
        raise BadInput(f"{source}: images of shape {tuple(images.shape[1:])}, but {args.model} takes {shape}")
    if not np.all(np.isfinite(images)):
        raise BadInput(f"{source}: images contain NaN or infinite values")
    if images.min() < 0 or images.max() > 1:
        raise BadInput(f"{source}: pixel values outside 0..255")
    if "frontend" in card and (args.npz or args.idx):  # arrays for an audio model: its feature maps, as trained
        print("note: the arrays are taken as the model's log-mel feature maps in [0, 1]", file=sys.stderr)
    scale, offset = input_scaling(args.model, card)
    labels_file = beside(args.model, "labels.txt")
    class_names = labels_file.read_text().splitlines() if labels_file.is_file() else card.get("labels")
    if getattr(args, "labels_from_folders", False):
        if not names:
            raise BadInput("--labels-from-folders is for image files")
        labels = folder_labels(names, class_names)
    if card.get("assumed"):  # said once the input is known to be usable, so that an error stays one line
        print(f"note: no model_card.json beside {args.model} and no input normalisation in its metadata: taking "
              f"pixels / 255 as its input", file=sys.stderr)
    probs = classify(interpreter, inp, out, images * scale + offset)  # [0, 1] -> the model's input convention
    predicted = np.argmax(probs, axis=-1)
    if labels is not None:
        print("\n".join(accuracy_lines(predicted, labels, class_names, probs.shape[-1])))
        return 0
    for i, best in enumerate(predicted):
        label = class_names[best] if class_names and best < len(class_names) else str(best)
        print(f"{names[i] if names else i}\t{label}\t{probs[i, best]:.3f}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The runner's arguments (also those of ``tfgan-compress predict``)."""
    parser.add_argument("model", help=".tflite file")
    parser.add_argument("images", nargs="*", help="image files (PNG, JPEG, ...), or WAV files for an audio model")
    parser.add_argument("--npz", help="npz file with an x_test array (and y_test: accuracy mode)")
    parser.add_argument("--idx", help="IDX image file (MNIST format, optionally .gz)")
    parser.add_argument("--idx-labels", metavar="FILE", help="IDX label file for --idx (accuracy mode)")
    parser.add_argument("--labels-from-folders", action="store_true",
                        help="each image's folder names its class (DIR/<class>/*.png): accuracy mode")
    parser.add_argument("--resize", action="store_true",
                        help="scale image files of another size to the model's (default: refuse them)")
    parser.add_argument("--limit", type=positive, default=None,
                        help="images to run (at least 1; default: all, but 10 from --npz/--idx outside accuracy mode)")


def run_checked(parser: argparse.ArgumentParser, args, prog: str) -> int:
    """``run(args)``; bad input as one line on stderr and exit status 2."""
    if not (args.npz or args.idx or args.images):
        parser.error("give image files, --npz or --idx")
    if args.idx_labels and not args.idx:
        parser.error("--idx-labels goes with --idx")
    if sum(bool(x) for x in (args.npz, args.idx, args.images)) > 1:
        parser.error("give one of: image files, --npz or --idx")
    try:
        return run(args)
    except BadInput as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_checked(parser, parser.parse_intermixed_args(argv), "predict.py")  # flags before or after the images


if __name__ == "__main__":
    sys.exit(main())
