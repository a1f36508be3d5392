#!/usr/bin/env python3
"""Stand-alone LiteRT runner for the exported classifiers: numpy + ai-edge-litert + Pillow only.

No TensorFlow and no tfgan_compress import, as on a phone, a board or a server that only
runs the file::

    pip install numpy pillow ai-edge-litert
    python predict.py runs/NAME/tflite/student_int8.tflite digit.png other.png
    python predict.py runs/NAME/tflite/student_int8.tflite --npz data.npz --limit 10
    python predict.py runs/NAME/tflite/student_int8.tflite --idx t10k-images-idx3-ubyte.gz --limit 10

Pixels are scaled as the model takes them: ``x = pixel / 255 * scale + offset`` with the
input ``scale`` and ``offset`` of ``model_card.json`` beside the file (its input convention:
0-1, 0-255 or -1-1, the teacher's; [0, 1] without a card); float or int8 input and output
tensors are handled from the file's own quantisation parameters
(``q = round(x / scale) + zero_point``). Class names come from ``labels.txt`` beside the file.
"""

from __future__ import annotations

import argparse
import gzip
import json
import struct
import sys
from pathlib import Path

import numpy as np


def load_images(paths, shape):
    from PIL import Image

    height, width, channels = shape
    images = []
    for path in paths:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB").resize((width, height))
            images.append(np.asarray(img, np.float32).reshape(height, width, channels) / 255.0)
    return np.stack(images)


def load_idx_images(path):
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    rank = raw[3]
    dims = struct.unpack(f">{rank}I", raw[4:4 + 4 * rank])
    x = np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(dims)
    return x.astype(np.float32)[..., None] / 255.0 if x.ndim == 3 else x.astype(np.float32) / 255.0


def load_npz_images(path, key="x_test"):
    with np.load(path, allow_pickle=False) as npz:
        x = npz[key].astype(np.float32)
    x = x[..., None] if x.ndim == 3 else x
    return x / 255.0 if x.max() > 1.0 else x


def input_scaling(model_path) -> tuple:
    """(scale, offset) of the model's input convention, from ``model_card.json`` beside it."""
    card = Path(model_path).with_name("model_card.json")
    if not card.is_file():
        return 1.0, 0.0
    spec = json.loads(card.read_text()).get("input", {})
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help=".tflite file")
    parser.add_argument("images", nargs="*", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--npz", help="npz file with an x_test array")
    parser.add_argument("--idx", help="IDX image file (MNIST format, optionally .gz)")
    parser.add_argument("--limit", type=int, default=10, help="images to run from --npz/--idx")
    args = parser.parse_args(argv)

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=args.model, num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    shape = tuple(int(d) for d in inp["shape"][1:])
    if args.npz:
        images, names = load_npz_images(args.npz)[:args.limit], None
    elif args.idx:
        images, names = load_idx_images(args.idx)[:args.limit], None
    elif args.images:
        images, names = load_images(args.images, shape), args.images
    else:
        parser.error("give image files, --npz or --idx")
    scale, offset = input_scaling(args.model)
    images = images * scale + offset  # [0, 1] -> the model's input convention
    labels_file = Path(args.model).with_name("labels.txt")
    labels = labels_file.read_text().splitlines() if labels_file.is_file() else None
    for i, image in enumerate(images):
        interpreter.set_tensor(inp["index"], to_input(image[None], inp))
        interpreter.invoke()
        probs = from_output(interpreter.get_tensor(out["index"]), out)[0]
        best = int(np.argmax(probs))
        label = labels[best] if labels else str(best)
        print(f"{names[i] if names else i}\t{label}\t{probs[best]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
