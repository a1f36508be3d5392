#!/usr/bin/env python3
"""The dataset in a file: a student trained by plain Keras ``fit`` on a set written by
``tfgan-compress sample``, against the pipeline's own student and the same network trained
on the real set.

    python benchmarks/dataset_in_a_file.py --run runs/digits --per-class 6000 \\
        --out benchmarks/results/dataset-in-a-file

For the run folder: ``tfgan-compress sample RUN/generator.keras --out OUT/set --per-class N``
(the command line, as a user runs it); then, with Keras alone (no tfgan_compress code), the
run's student architecture (``keras.models.clone_model`` of ``student.keras``: new weights)
trained on ``keras.utils.image_dataset_from_directory(OUT/set)`` with hard labels (the folder
names) for ``--epochs`` passes, and the same architecture trained the same way, for as many
updates, on the run's real training split;
both measured on the real test split beside the pipeline's student (distilled on generator
samples with the teacher's soft labels). Bytes: the generator files, the written PNG set,
and the real training split as 8-bit pixels. Writes ``dataset_in_a_file.json`` / ``.md``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402

from tfgan_compress import config as configs, data, pipeline  # noqa: E402,F401  (pipeline first: import order)
from tfgan_compress.errors import UsageError  # noqa: E402
from tfgan_compress.report import markdown_table  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402

COLUMNS = [("row", "student", "{}"), ("accuracy", "test accuracy", "{:.2%}"), ("examples", "training examples", "{:,}"),
           ("bytes", "bytes of what it learned from", "{:,}"), ("seconds", "seconds", "{:.0f}")]


BATCH = 128


def plain_keras_fit(architecture, x, y, x_test, y_test, steps: int, seed: int) -> float:
    """Keras alone: a fresh copy of ``architecture``, Adam, cross-entropy on its logits,
    ``steps`` updates of ``BATCH`` examples (whole epochs, rounded up)."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.models.clone_model(architecture)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    epochs = -(-steps // -(-len(x) // BATCH))
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=2, shuffle=True)
    return float(model.evaluate(x_test, y_test, verbose=0)[1])


def read_png_set(folder: Path, shape) -> tuple:
    """The written set through Keras' own reader, as arrays in [0, 1]."""
    import keras

    names = (folder / "labels.txt").read_text().split("\n")[:-1]
    dataset = keras.utils.image_dataset_from_directory(
        folder, labels="inferred", class_names=names, image_size=shape[:2], batch_size=1024, shuffle=False,
        color_mode="grayscale" if shape[-1] == 1 else "rgb", interpolation="nearest")
    xs, ys = zip(*[(x.numpy() / 255.0, y.numpy()) for x, y in dataset])
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def run_benchmark(run: Path, out: Path, per_class: int, epochs: int, seed: int, progress=print) -> dict:
    import keras

    folder = RunFolder(run)
    if not folder.config_json.is_file() or not folder.report_json.is_file():
        raise UsageError(f"{run}: not a finished run folder (config.json and report.json)")
    config = configs.RunConfig.from_dict(json.loads(folder.config_json.read_text()))
    dataset = data.load(config.data, audio=config.audio_settings())
    report = json.loads(folder.report_json.read_text())
    if report["teacher_input"]["convention"] != "0-1":
        raise UsageError(f"{run}: its student takes {report['teacher_input']['convention']} input; this benchmark "
                         f"trains on [0, 1] pixels")
    written = out / "set"
    start = time.time()
    sampled = subprocess.run(["tfgan-compress", "sample", str(folder.path("generator")), "--out", str(written),
                              "--per-class", str(per_class), "--seed", str(seed), "--quiet"])
    if sampled.returncode:
        raise UsageError(f"tfgan-compress sample stopped with exit status {sampled.returncode} (its message is above)")
    sample_seconds = time.time() - start
    x_set, y_set = read_png_set(written, dataset.spec.image_shape)
    architecture = keras.models.load_model(folder.path("student"), compile=False)
    rows = []
    models = {row["name"]: row for row in report["models"]}
    # the smallest generator file the run exported; generator.keras where it exported none
    keras_file = folder.path("generator")
    smallest = min(report.get("generator_files", {}).items(), key=lambda item: item[1],
                   default=(keras_file.name, keras_file.stat().st_size))
    rows.append({"row": f"pipeline's student (distilled on generator samples; generator file {smallest[0]})",
                 "accuracy": models["student"]["accuracy"], "bytes": smallest[1],
                 "seconds": report["stage_seconds"].get("distill")})
    steps = epochs * -(-len(x_set) // BATCH)  # both plain fits make as many updates
    progress(f"== plain Keras fit on the {len(x_set):,} written samples, {steps:,} steps ==")
    start = time.time()
    accuracy = plain_keras_fit(architecture, x_set, y_set, dataset.x_test, dataset.y_test, steps, seed)
    set_bytes = sum(p.stat().st_size for p in written.rglob("*.png"))
    rows.append({"row": "plain Keras fit on `tfgan-compress sample`'s set", "accuracy": accuracy,
                 "examples": len(x_set), "bytes": set_bytes, "seconds": time.time() - start + sample_seconds})
    progress(f"== plain Keras fit on the {len(dataset.x_train):,} real training images, {steps:,} steps ==")
    start = time.time()
    accuracy = plain_keras_fit(architecture, dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test,
                               steps, seed)
    rows.append({"row": "plain Keras fit on the real training split", "accuracy": accuracy,
                 "examples": len(dataset.x_train), "bytes": report.get("training_set_bytes"),
                 "seconds": time.time() - start})
    result = {"run": str(run), "data": config.data, "per_class": per_class, "epochs": epochs, "steps": steps,
              "seed": seed,
              "generator_files": report.get("generator_files"), "rows": rows}
    text = "\n".join([f"# The dataset in a file: `{config.data}` ({per_class:,} samples per class; each plain fit "
                       f"{steps:,} steps of {BATCH}, {epochs} epochs of the written set)",
                      "", markdown_table(rows, COLUMNS)])
    common.write_results(out, "dataset_in_a_file", result, text, progress)
    return result


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/dataset-in-a-file", data_options=False)
    parser.add_argument("--run", required=True, help="a finished run folder (GAN mode)")
    parser.add_argument("--per-class", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return common.run_main("dataset_in_a_file.py", lambda: run_benchmark(
        Path(args.run), Path(args.out), args.per_class, args.epochs, args.seed))


if __name__ == "__main__":
    sys.exit(main())
