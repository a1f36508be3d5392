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

Also written: ``per_class`` (test accuracy per class of ours, float32 and int8),
``generator_quality`` (the teacher's accuracy on class-balanced generator samples, per
class, and the Fréchet distance between real and generated images in the teacher's
penultimate features: :mod:`tfgan_compress.quality`), ``throughput`` (images/s and
achieved GFLOP/s of each training stage, next to this machine's measured matmul rate) and
``samples.png`` (the generator's samples, one row per class).

``--train-subset N`` cuts the training split to N images (class shares kept) for every row,
the teacher included: the small-training-set case.

``--teacher FILE`` reuses a saved teacher (e.g. ``runs/T/teacher.keras`` from
``tfgan-compress teacher --out runs/T``), so that a benchmark run is not dominated by
retraining it; its training time is read from that run folder when it is there.
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

from benchmarks import common  # noqa: E402  (first: it chooses the CPU kernels before TensorFlow loads)

from tfgan_compress import artifacts, config as configs, data, distill, evaluate, export, pipeline  # noqa: E402
from tfgan_compress import quality, timing  # noqa: E402
from tfgan_compress.stages import gan_steps_per_epoch  # noqa: E402
from tfgan_compress.litert import TFLiteClassifier  # noqa: E402
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
        # the rows read the run's int8 file only; the other conversions would only cost time
        "export": {"variants": ["int8"], "generator_variants": [], "calibration_samples": 16,
                   "min_agreement_float": 0.0, "min_agreement_quantized": 0.0},
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


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> list[float]:
    return [float(np.mean(predicted[labels == c] == c)) for c in range(num_classes)]


def throughput(config: configs.RunConfig, dataset: data.Dataset, stage: dict, networks: dict, peak: float,
               teacher_seconds: float | None) -> list[dict]:
    """Images/s and achieved GFLOP/s of each training stage (training = 3x the forward
    FLOPs of the trained network, plus the forward passes of the frozen ones)."""
    flops = {name: timing.forward_flops(model) for name, model in networks.items()}
    g, d, t, s = flops["generator"], flops["discriminator"], flops["teacher"], flops["student"]
    gan, dist = config.gan, config.distill
    gan_steps = gan_steps_per_epoch(gan, len(dataset.x_train))
    hard = dist.hard_latent_steps * 2 * (g + t + s)
    stages = [
        # discriminator step: G forward, D forward and backward on real and fake (6D);
        # generator step: G forward and backward (3G), D forward and input gradient (3D)
        ("gan", gan.epochs * gan_steps * gan.batch_size, 4 * g + 9 * d, stage.get("gan")),
        ("distill", dist.epochs * dist.steps_per_epoch * dist.batch_size, g + t + 3 * s + hard, stage.get("distill")),
    ]
    if teacher_seconds:
        stages.insert(0, ("teacher", config.teacher.epochs * len(dataset.x_train), 3 * t, teacher_seconds))
    rows = []
    for name, images, per_image, seconds in stages:
        if seconds:
            rows.append({"stage": name, "images": images, "seconds": round(seconds, 1),
                         "images_per_second": round(images / seconds, 1),
                         "gflop_per_image": round(per_image / 1e9, 4),
                         "achieved_gflops": round(images * per_image / seconds / 1e9, 1),
                         "matmul_peak_gflops": round(peak, 1)})
    return rows


def run_benchmark(source: str, preset: str | None, out: Path, seed: int, is_quick: bool, progress=print,
                  data_free: bool = True, overrides: dict | None = None, teacher_path: str | None = None,
                  train_subset: int | None = None) -> dict:
    dataset = data.load(source)
    if train_subset:  # everything trains on the cut (the teacher too); the test split is whole
        dataset = data.train_subset(dataset, train_subset, seed)
    preset = preset or configs.preset_for(dataset.spec)  # as tfgan-compress run picks it
    config = configs.merge(configs.preset(preset), overrides or {})
    config.data, config.seed, config.teacher_path = source, seed, teacher_path
    if is_quick:
        config = quick(config)
    config.validate()
    artifacts.check_writable_dir(out)
    wall_start = time.time()

    # Ours, the whole product pipeline (teacher, GAN, distillation, export, evaluation).
    progress("== ours: tfgan-compress run ==")
    report = pipeline.run(config, out / "run", progress=progress, dataset=dataset)
    pipeline_seconds = time.time() - wall_start
    stage = report["stage_seconds"]
    run = RunFolder(out / "run")
    teacher, student_gan = run.load("teacher"), run.load("student")
    teacher_predictions = np.argmax(evaluate.keras_probabilities(teacher, dataset.x_test), -1)
    frontier = Frontier(dataset, out, config, teacher_predictions)
    calibration = frontier.real_calibration()

    teacher_seconds = stage["teacher"]
    if teacher_path:  # reused: its training time, when its run folder recorded it
        teacher_seconds = RunFolder(Path(teacher_path).parent).stage_seconds().get("teacher")
    rows = [frontier.keras_row("teacher_float32", teacher, teacher_seconds or 0.0, calibration)]
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

    num_classes = dataset.num_classes
    ours_float = np.argmax(evaluate.keras_probabilities(student_gan, dataset.x_test), -1)
    ours_int8 = np.argmax(TFLiteClassifier(model_path=gan_int8).predict(dataset.x_test), -1)
    per_class = {"class_names": list(dataset.class_names),
                 "student_gan_float32": per_class_accuracy(ours_float, dataset.y_test, num_classes),
                 "student_gan_int8": per_class_accuracy(ours_int8, dataset.y_test, num_classes),
                 "student_kd_real": per_class_accuracy(
                     np.argmax(evaluate.keras_probabilities(kd_real, dataset.x_test), -1), dataset.y_test, num_classes)}
    progress("== generator quality (teacher features) ==")
    generator = run.load("generator")
    gan_quality = quality.generator_quality(teacher, generator, dataset.x_train, num_classes,
                                            samples=200 if is_quick else 5000, seed=seed,
                                            real_labels=dataset.y_train)
    if run.samples_png.is_file():
        artifacts.write_bytes(out / "samples.png", run.samples_png.read_bytes())
    discriminator = pipeline_discriminator(config, dataset)
    speed = throughput(config, dataset, stage, {"generator": generator, "discriminator": discriminator,
                                                "teacher": teacher, "student": student_gan},
                       timing.matmul_peak_gflops(), teacher_seconds)

    extra = {"per_class": per_class, "generator_quality": gan_quality, "throughput": speed,
             "teacher_reused": teacher_path}
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
    steps = gan_steps_per_epoch(gan_cfg, len(dataset.x_train))
    result = {
        "data": dataset.source, "train_images": len(dataset.x_train), "preset": config.preset, "seed": seed,
        "quick": is_quick, "rows": rows,
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


def pipeline_discriminator(config: configs.RunConfig, dataset: data.Dataset):
    """A discriminator as the GAN stage builds it (the run folder keeps only the generator),
    for counting its FLOPs."""
    from tfgan_compress import networks

    gan = config.gan
    return networks.build_discriminator(dataset.spec.image_shape, dataset.num_classes, gan.discriminator_width,
                                        gan.spectral_norm, gan.architecture)


THROUGHPUT_COLUMNS = [("stage", "stage", "{}"), ("images_per_second", "images/s", "{:,.0f}"),
                      ("gflop_per_image", "GFLOP/image", "{:.3f}"), ("achieved_gflops", "GFLOP/s", "{:.0f}"),
                      ("matmul_peak_gflops", "matmul peak GFLOP/s", "{:.0f}"), ("seconds", "seconds", "{:.0f}")]


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
        f"{result['benchmark_seconds']:.0f} s.{data_free_line}"
        + (f" Teacher reused from `{result['teacher_reused']}`." if result.get("teacher_reused") else ""),
        "",
        "![accuracy against int8 size](frontier.png)",
    ]
    if "per_class" in result:
        per_class = result["per_class"]
        quality_ = result["generator_quality"]
        keys = ("student_gan_float32", "student_gan_int8", "student_kd_real")
        class_rows = [{"class": name, **{key: per_class[key][i] for key in keys},
                       "teacher_on_samples": quality_["per_class"][i]}
                      for i, name in enumerate(per_class["class_names"])]
        lines += [
            "", "## Per class: test accuracy of ours and of real-data KD, and the teacher's accuracy on generator "
            "samples of the class", "",
            markdown_table(class_rows, [("class", "class", "{}"), ("student_gan_float32", "ours float32", "{:.2%}"),
                                        ("student_gan_int8", "ours int8", "{:.2%}"),
                                        ("student_kd_real", "KD on real data", "{:.2%}"),
                                        ("teacher_on_samples", "teacher on samples", "{:.2%}")]),
            "", f"Generator quality ({quality_['samples']:,} samples): the teacher classifies "
            f"{quality_['teacher_accuracy_on_samples']:.2%} as the class asked for; Fréchet distance to real "
            f"training images in the teacher's penultimate features {quality_['frechet_distance_teacher_features']:.2f} "
            f"(real against real: {quality_['frechet_distance_real_vs_real']:.2f}).",
            "", "## Throughput of the training stages", "",
            markdown_table(result["throughput"], THROUGHPUT_COLUMNS),
            "", "![generator samples, one row per class](samples.png)",
        ]
    common.write_results(out, "frontier", result, "\n".join(lines), progress=lambda _: None)
    plot_accuracy_against_bytes([(row["name"], row["int8_bytes"], row["accuracy"], "o") for row in rows],
                                out / "frontier.png", f"Compression frontier: {result['data']}",
                                xlabel="bytes of the int8 .tflite (log scale)")


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/frontier", default_preset=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a few steps of everything (smoke test)")
    parser.add_argument("--no-data-free", dest="data_free", action="store_false", help="skip the data-free rows")
    parser.add_argument("--teacher", metavar="FILE", help="reuse this saved teacher (.keras) instead of training one")
    parser.add_argument("--train-subset", metavar="N", type=int,
                        help="cut the training split to N images (class shares kept; teacher and all rows train on it)")
    args = parser.parse_args(argv)
    return common.run_main("frontier", lambda: run_benchmark(
        args.data, args.preset, Path(args.out), args.seed, args.quick, data_free=args.data_free,
        overrides=common.overrides(args), teacher_path=args.teacher, train_subset=args.train_subset))


if __name__ == "__main__":
    sys.exit(main())
