#!/usr/bin/env python3
"""A ``keras.applications`` teacher (MobileNetV2 at 32x32, ``weights=None``) trained the usual
way on CIFAR-10, then compressed with ``tfgan-compress run --teacher``.

    python benchmarks/keras_applications.py --cifar ../shared/data/cifar10/cifar10-jpeg.zip \\
        --out benchmarks/results/mobilenet

1. CIFAR-10 from the JPEG zip (``train/<class>/*.jpg``, ``test/<class>/*.jpg``): the first
   ``--train-per-class`` training and ``--test-per-class`` test images of each class, as
   8-bit arrays in one npz file (``tfgan-compress`` reads it with ``--data npz:FILE``);
2. ``keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, classes=10)``
   trained briefly with ``fit`` on ``mobilenet_v2.preprocess_input`` pixels, that is in
   [-1, 1], as its documentation asks, its batch-norm statistics then measured once on
   2,000 random training images (see :func:`with_precise_batchnorm`); saved as ``.keras``;
3. ``tfgan-compress run --teacher`` on it (the preset for 32x32 images): the tool has to
   find the [-1, 1] input convention itself, and the batch-norm teacher flows through
   every stage.

Writes ``mobilenet.json`` and ``mobilenet.md``: the convention found with the accuracy
under each, and the teacher's, the student's and the int8 file's test accuracy. A smoke
test of the pipeline with a large standard network, not a CIFAR-10 figure to quote.
"""

from __future__ import annotations

import io
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402  (first: it chooses the CPU kernels before TensorFlow loads)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfgan_compress import artifacts, config as configs, data, pipeline  # noqa: E402
from tfgan_compress.errors import DataError  # noqa: E402

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_split(archive: zipfile.ZipFile, split: str, per_class: int):
    """The first ``per_class`` images of each class of ``split`` as uint8 (N, 32, 32, 3), labels."""
    from PIL import Image

    images, labels = [], []
    names = sorted(archive.namelist())
    for label, name in enumerate(CLASSES):
        files = [n for n in names if n.startswith(f"{split}/{name}/") and n.endswith(".jpg")][:per_class]
        if not files:
            raise DataError(f"{archive.filename}: no {split}/{name}/*.jpg")
        for file in files:
            with Image.open(io.BytesIO(archive.read(file))) as image:
                images.append(np.asarray(image.convert("RGB"), np.uint8))
            labels.append(label)
    return np.stack(images), np.asarray(labels, np.uint8)


def train_mobilenet(x_train, y_train, epochs: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, classes=len(CLASSES))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    inputs = keras.applications.mobilenet_v2.preprocess_input(x_train.astype(np.float32))  # [-1, 1]
    model.fit(inputs, y_train, epochs=epochs, batch_size=32, verbose=pipeline.fit_verbosity())
    sample = np.random.default_rng(seed).permutation(len(inputs))[:2000]  # the arrays are sorted by class
    return with_precise_batchnorm(model, inputs[sample])


def with_precise_batchnorm(model: keras.Model, images) -> keras.Model:
    """Batch-norm statistics measured on ``images`` with the final weights ("precise BN",
    Wu & Johnson, 2021). MobileNetV2 averages them with momentum 0.999, which lags a model
    trained briefly: after 10 epochs it predicted one class for every test image in
    inference mode (34% in training mode), and ``tfgan-compress`` refused it as near chance."""
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0  # the next training-mode pass sets the statistics to the batch's
    model(images, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    return model


def run(cifar: Path, out: Path, train_per_class: int, test_per_class: int, epochs: int, seed: int,
        overrides: dict | None, progress=print) -> dict:
    artifacts.check_writable_dir(out)
    start = time.time()
    with zipfile.ZipFile(cifar) as archive:
        x_train, y_train = read_split(archive, "train", train_per_class)
        x_test, y_test = read_split(archive, "test", test_per_class)
    npz = out / "cifar10_subset.npz"
    with artifacts.atomic_path(npz, suffix=".npz") as tmp:
        np.savez(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=np.array(CLASSES))
    progress(f"== MobileNetV2 teacher: {len(x_train)} training images, {epochs} epochs "
             f"(read in {time.time() - start:.0f} s) ==")
    start = time.time()
    teacher_file = out / "mobilenet_v2.keras"
    artifacts.save_keras(train_mobilenet(x_train, y_train, epochs, seed), teacher_file)
    teacher_seconds = time.time() - start
    dataset = data.load(f"npz:{npz}")
    config = configs.merge(configs.preset(configs.preset_for(dataset.spec)), overrides or {})
    config.data, config.seed, config.teacher_path = f"npz:{npz}", seed, str(teacher_file)
    progress("== tfgan-compress run --teacher mobilenet_v2.keras ==")
    report = pipeline.run(config, out / "run", progress, dataset=dataset)
    rows = {row["name"]: row for row in report["models"]}
    result = {"train_images": len(x_train), "test_images": len(x_test), "teacher_epochs": epochs,
              "teacher_seconds": round(teacher_seconds, 1), "preset": config.preset,
              "teacher_input": report["teacher_input"], "teacher_params": rows["teacher"]["params"],
              "student_params": rows["student"]["params"],
              **{name: rows[name]["accuracy"] for name in ("teacher", "student", "student_int8")},
              "student_int8_bytes": rows["student_int8"]["bytes"], "stage_seconds": report["stage_seconds"]}
    measured = ", ".join(f"{k} {v:.2%}" for k, v in result["teacher_input"]["test_accuracy_by_convention"].items())
    text = "\n".join([
        "# MobileNetV2 (keras.applications, weights=None) as the teacher, CIFAR-10 subset", "",
        f"{len(x_train)} training / {len(x_test)} test images (JPEG copy); teacher trained {epochs} epochs in "
        f"{teacher_seconds:.0f} s; preset `{config.preset}`, seed {seed}.", "",
        f"- input convention found: {result['teacher_input']['convention']} ({measured})",
        f"- teacher {result['teacher']:.2%} ({result['teacher_params']:,} parameters); student "
        f"{result['student']:.2%} ({result['student_params']:,}); int8 TFLite {result['student_int8']:.2%} "
        f"({result['student_int8_bytes']:,} bytes)",
        f"- stage seconds: {result['stage_seconds']}"])
    common.write_results(out, "mobilenet", result, text, progress)
    return result


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/mobilenet", data_options=False)
    parser.add_argument("--cifar", required=True, help="cifar10-jpeg.zip")
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=10, help="teacher training epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return common.run_main("keras_applications", lambda: run(
        Path(args.cifar), Path(args.out), args.train_per_class, args.test_per_class, args.epochs, args.seed,
        common.overrides(args)))


if __name__ == "__main__":
    sys.exit(main())
