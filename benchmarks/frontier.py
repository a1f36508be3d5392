#!/usr/bin/env python3
"""The compression frontier: our GAN-distilled student against what a user would do instead.

    python benchmarks/frontier.py --data idx:../shared/data/mnist --out benchmarks/results/mnist

Runs in one process, with one seed, and writes ``frontier.json``, ``frontier.md`` and
``frontier.png`` (test accuracy against int8 file size) into ``--out``:

1. ``teacher_float32``: the teacher (Keras accuracy; latency of its float32 TFLite file);
2. ``teacher_int8_ptq``: the teacher with int8 post-training quantisation calibrated on
   real training images (the usual alternative: no distillation at all);
3. ``student_scratch``: the student network trained with labels on the real training set;
4. ``student_kd_real``: the student distilled from the teacher on the real training set
   (the upper reference);
5. ``student_gan_float32`` / ``student_gan_int8``: ours, the full ``tfgan-compress run``
   pipeline: the student sees generator samples only; int8 calibrated on generator samples;
6. ``student_datafree_float32`` / ``student_datafree_int8``: ``tfgan-compress run --mode
   data-free`` with the same teacher: no real image at all (skip with ``--no-data-free``;
   ``benchmarks/datafree.py`` measures that mode over three seeds).

Each row: ``accuracy``, ``bits_per_example`` (test cross-entropy), ``params``,
``int8_bytes`` (size of that model's full-integer int8 ``.tflite``), ``tflite_bytes`` and
``latency_ms`` (median single-image LiteRT latency, 1 thread, of the file the row is
measured on: float32 TFLite for float rows, int8 for int8 rows) and ``train_seconds``
(wall-clock of the training that row needs beyond the teacher; the teacher's own row
holds the teacher's). ``--quick`` shrinks every stage to a few steps (smoke test only).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from tfgan_compress import artifacts, config as configs, data, distill, evaluate, export, pipeline  # noqa: E402
from benchmarks import common  # noqa: E402
from tfgan_compress.errors import ExportError  # noqa: E402
from tfgan_compress.networks import build_classifier  # noqa: E402
from tfgan_compress.report import markdown_table, plot_accuracy_against_bytes  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402
from tfgan_compress.teacher import train_teacher  # noqa: E402

ROW_NAMES = ["teacher_float32", "teacher_int8_ptq", "student_scratch", "student_kd_real",
             "student_gan_float32", "student_gan_int8"]
DATA_FREE_ROWS = ["student_datafree_float32", "student_datafree_int8"]
COLUMNS = [
    ("name", "row", "{}"),
    ("accuracy", "accuracy", "{:.2%}"),
    ("bits_per_example", "bits/example", "{:.4f}"),
    ("params", "params", "{:,}"),
    ("int8_bytes", "int8 bytes", "{:,}"),
    ("latency_ms", "latency ms", "{:.4f}"),
    ("train_seconds", "train s", "{:.0f}"),
]


def quick(config: configs.RunConfig) -> configs.RunConfig:
    """A few steps of everything: for the smoke test, not for figures."""
    return configs.merge(config, {
        "teacher": {"epochs": 8, "batch_size": 8},  # enough to beat chance on a tiny fixture
        "gan": {"epochs": 1, "steps_per_epoch": 2, "log_every_steps": 1, "samples_per_class": 2},
        "distill": {"epochs": 1, "steps_per_epoch": 2},
        "datafree": {"epochs": 1, "steps_per_epoch": 2, "student_steps": 1},
        "export": {"calibration_samples": 16, "min_agreement_float": 0.0, "min_agreement_quantized": 0.0},
        "evaluate": {"latency_runs": 5, "latency_warmup": 1},
    })


class Frontier:
    """Measures each row the same way: test split, int8 file, LiteRT latency."""

    def __init__(self, dataset: data.Dataset, out: Path, config: configs.RunConfig, teacher_predictions):
        self.dataset = dataset
        self.out = out
        self.config = config
        self.teacher_predictions = teacher_predictions
        self.rng = np.random.default_rng(config.seed)

    def real_calibration(self) -> np.ndarray:
        n = min(self.config.export.calibration_samples, len(self.dataset.x_train))
        return self.dataset.x_train[self.rng.choice(len(self.dataset.x_train), n, replace=False)]

    def tflite(self, name: str, model, variant: str, calibration=None) -> Path:
        content = export.convert(export.probability_model(model), variant, calibration)
        return artifacts.write_bytes(self.out / "tflite" / f"{name}_{variant}.tflite", content)

    def measure_tflite(self, path: Path) -> dict:
        """The report's own TFLite measurement (evaluate.evaluate_tflite), in this table's keys."""
        row = evaluate.evaluate_tflite(path.stem, path, 0, self.dataset.x_test, self.dataset.y_test,
                                       self.teacher_predictions, self.config.evaluate.latency_runs,
                                       self.config.evaluate.latency_warmup)
        keys = ("accuracy", "bits_per_example", "agreement_with_teacher", "latency_ms")
        return {**{key: row[key] for key in keys}, "tflite_bytes": row["bytes"]}

    def keras_row(self, name: str, model, seconds: float, calibration) -> dict:
        """Keras accuracy; float32 TFLite latency; int8 file (``calibration``) for size."""
        metrics = evaluate.classification_metrics(evaluate.keras_probabilities(model, self.dataset.x_test),
                                                  self.dataset.y_test, self.teacher_predictions)
        float32 = self.measure_tflite(self.tflite(name, model, "float32"))
        int8 = self.tflite(name, model, "int8", calibration)
        return {"name": name, **metrics, "params": int(model.count_params()), "int8_bytes": int8.stat().st_size,
                "tflite_bytes": float32["tflite_bytes"], "latency_ms": float32["latency_ms"],
                "train_seconds": round(seconds, 1)}

    def int8_row(self, name: str, path: Path, params: int, seconds: float) -> dict:
        measured = self.measure_tflite(path)
        return {"name": name, **measured, "params": int(params), "int8_bytes": path.stat().st_size,
                "train_seconds": round(seconds, 1)}


def run_benchmark(source: str, preset: str, out: Path, seed: int, is_quick: bool, progress=print,
                  data_free: bool = True, overrides: dict | None = None) -> dict:
    config = configs.merge(configs.preset(preset), overrides or {})
    config.data, config.seed = source, seed
    if is_quick:
        config = quick(config)
    config.validate()
    dataset = data.load(source)
    artifacts.check_writable_dir(out)
    wall_start = time.time()

    # Ours, the whole product pipeline (teacher, GAN, distillation, export, evaluation).
    progress("== ours: tfgan-compress run ==")
    report = pipeline.run(config, out / "run", progress=progress)
    pipeline_seconds = time.time() - wall_start
    stage = report["stage_seconds"]
    run = RunFolder(out / "run")
    teacher, student_gan = run.load("teacher"), run.load("student")
    teacher_predictions = np.argmax(evaluate.keras_probabilities(teacher, dataset.x_test), -1)
    frontier = Frontier(dataset, out, config, teacher_predictions)
    calibration = frontier.real_calibration()

    rows = [frontier.keras_row("teacher_float32", teacher, stage["teacher"], calibration)]
    progress("== teacher int8 post-training quantisation (real calibration) ==")
    start = time.time()
    rows.append(frontier.int8_row("teacher_int8_ptq", frontier.tflite("teacher", teacher, "int8", calibration),
                                  teacher.count_params(), time.time() - start))

    progress("== student from scratch on the real training set ==")
    scratch_config = dataclasses.replace(config.teacher, network=config.distill.network)
    start = time.time()
    scratch = train_teacher(dataset, scratch_config, seed=seed, verbose=pipeline.fit_verbosity())
    rows.append(frontier.keras_row("student_scratch", scratch, time.time() - start, calibration))

    progress("== student distilled on the real training set ==")
    kd_real = build_classifier(dataset.spec.image_shape, dataset.num_classes, config.distill.network, "student")
    start = time.time()
    distill.distill_on_images(teacher, kd_real, dataset.x_train, config.distill, seed=seed,
                              verbose=pipeline.fit_verbosity())
    rows.append(frontier.keras_row("student_kd_real", kd_real, time.time() - start, calibration))

    gan_seconds = stage["gan"] + stage["distill"]
    gan_int8 = run.tflite("student", "int8")
    row = frontier.keras_row("student_gan_float32", student_gan, gan_seconds, calibration)
    row["int8_bytes"] = gan_int8.stat().st_size  # ours is calibrated on generator samples
    rows.append(row)
    rows.append(frontier.int8_row("student_gan_int8", gan_int8, student_gan.count_params(), gan_seconds))

    extra = {}
    if data_free:
        progress("== data-free: tfgan-compress run --mode data-free ==")
        df_config = dataclasses.replace(config, mode="data-free", teacher_path=str(run.path("teacher")))
        start = time.time()
        try:
            df_report = pipeline.run(df_config, out / "datafree", progress=progress, dataset=dataset)
        except ExportError as err:  # keep the other rows; say why these two are missing
            progress(f"data-free rows left out: {err}")
            extra["datafree_error"] = str(err)
            data_free = False
    if data_free:
        extra["datafree_pipeline_seconds"] = round(time.time() - start, 1)
        df_run = RunFolder(out / "datafree")
        df_student = df_run.load("student")
        df_seconds = df_report["stage_seconds"]["data-free"]
        row = frontier.keras_row("student_datafree_float32", df_student, df_seconds, calibration)
        row["int8_bytes"] = df_run.tflite("student", "int8").stat().st_size
        rows.append(row)
        rows.append(frontier.int8_row("student_datafree_int8", df_run.tflite("student", "int8"),
                                      df_student.count_params(), df_seconds))

    gan_cfg = config.gan
    steps = gan_cfg.steps_per_epoch or len(dataset.x_train) // gan_cfg.batch_size
    result = {
        "data": source, "preset": config.preset, "seed": seed, "quick": is_quick, "rows": rows,
        "pipeline_seconds": round(pipeline_seconds, 1),
        "stage_seconds": stage,
        "gan_images_per_second": round(gan_cfg.epochs * steps * gan_cfg.batch_size / stage["gan"], 1),
        "benchmark_seconds": round(time.time() - wall_start, 1),
        "test_images": len(dataset.x_test),
        **extra,
    }
    write_outputs(out, result)
    progress(markdown_table(rows, COLUMNS))
    return result


def write_outputs(out: Path, result: dict) -> None:
    rows = result["rows"]
    data_free_line = (f" Data-free pipeline: {result['datafree_pipeline_seconds']:.0f} s."
                      if "datafree_pipeline_seconds" in result else "")
    if "datafree_error" in result:
        data_free_line += " Data-free rows left out: " + result["datafree_error"]
    lines = [
        f"# Compression frontier on `{result['data']}`",
        "",
        f"Preset `{result['preset']}`, seed {result['seed']}, {result['test_images']} real test images"
        + (" (--quick: smoke run, not figures)" if result["quick"] else "") + ".",
        "",
        markdown_table(rows, COLUMNS),
        "",
        f"Whole pipeline (teacher + GAN + distillation + export + evaluation): {result['pipeline_seconds']:.0f} s; "
        f"GAN training {result['gan_images_per_second']:,.0f} images/s; benchmark total "
        f"{result['benchmark_seconds']:.0f} s.{data_free_line}",
        "",
        "![accuracy against int8 size](frontier.png)",
    ]
    common.write_results(out, "frontier", result, "\n".join(lines), progress=lambda _: None)
    plot_accuracy_against_bytes([(row["name"], row["int8_bytes"], row["accuracy"], "o") for row in rows],
                                out / "frontier.png", f"Compression frontier: {result['data']}",
                                xlabel="bytes of the int8 .tflite (log scale)")


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/frontier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a few steps of everything (smoke test)")
    parser.add_argument("--no-data-free", dest="data_free", action="store_false", help="skip the data-free rows")
    args = parser.parse_args(argv)
    return common.run_main("frontier", lambda: run_benchmark(
        args.data, args.preset, Path(args.out), args.seed, args.quick, data_free=args.data_free,
        overrides=common.overrides(args)))


if __name__ == "__main__":
    sys.exit(main())
