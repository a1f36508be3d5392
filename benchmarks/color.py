#!/usr/bin/env python3
"""Colour photos: the GAN-mode pipeline with a committed teacher, one variant per mechanism.

    python benchmarks/color.py --data folder:../shared/data/cifar10/cifar10-jpeg.zip \\
        --teacher benchmarks/teachers/cifar10_resnet9_half.keras \\
        --config benchmarks/configs/color_screen.json --train-subset 10000 \\
        --variants baseline,projected,bn_prior,class_diversity,recipe,all --out benchmarks/results/color-screen

Each variant is the ``color`` preset, then ``--config`` (the protocol: ``color_screen.json``
shortens every stage for ablations, none for the full protocol), then the variant's own
settings (:data:`VARIANTS`: ``baseline`` turns every teacher-eyed mechanism off, each other
variant turns one on, ``all`` turns them all on, ``bn_prior_margin`` is the pair of the
batch-norm prior and the class margin on the raw samples, ``bn_prior_margin_views`` the same
pair on the teacher's pad-and-crop views of the samples, ``bn_prior_margin_views_diversity``
that with mode seeking: the preset); every variant reuses the ``--teacher`` file, so that no run
retrains it, and runs the stages gan, distill, export (int8 only) and evaluate in
``<out>/<variant>``. ``--train-subset N`` cuts the training split the GAN learns from (and
the reference rows train on) to N images, class shares kept; the test split stays whole.

Rows: the student's test accuracy (Keras float32 and the int8 file calibrated on generator
samples), the share of class-balanced generator samples the teacher takes for their class,
the Fréchet distance between real test images and samples in the teacher's penultimate
features (first epoch and last, from the GAN's TensorBoard scalars, and the report's), and
the stage times. ``--reference`` adds the same student trained on the real labels and
distilled on the real images with the same recipe (the targets). Writes ``color.json`` and
``color.md`` into ``--out``.
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

from tfgan_compress import artifacts, config as configs, data, distill, evaluate, pipeline, quality  # noqa: E402
from tfgan_compress.errors import UsageError  # noqa: E402
from tfgan_compress.report import markdown_table  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402

#: the mechanisms of the teacher-eyed colour design, each on
PROJECTED = {"gan": {"discriminator_taps": 2}}
BN_PRIOR = {"gan": {"bn_weight": 0.02}}
CLASS_MARGIN = {"gan": {"teacher_weight": 0.1, "teacher_margin": 2.0, "teacher_ramp_steps": 1000}}
CLASS_DIVERSITY = {"gan": {**CLASS_MARGIN["gan"], "diversity_weight": 1.0}}
RECIPE = {"distill": {"cutmix": True}}


def combined(*parts: dict) -> dict:
    merged: dict = {}
    for part in parts:
        for section, values in part.items():
            merged.setdefault(section, {}).update(values)
    return merged


#: every mechanism off (the preset has the batch-norm prior and the class margin on)
BASELINE = {"gan": {"discriminator_taps": 0, "bn_weight": 0.0, "teacher_weight": 0.0, "teacher_margin": None,
                    "diversity_weight": 0.0, "bn_view_shift": 0},
            "distill": {"cutmix": False}}

#: the ablation: every mechanism off, each alone, all together, and the preset's pair
VARIANTS = {
    "baseline": BASELINE,
    "projected": combined(BASELINE, PROJECTED),
    "bn_prior": combined(BASELINE, BN_PRIOR),
    "class_diversity": combined(BASELINE, CLASS_DIVERSITY),
    "recipe": combined(BASELINE, RECIPE),
    "all": combined(PROJECTED, BN_PRIOR, CLASS_DIVERSITY, RECIPE),
    # the pair that made the speech GAN's samples class-faithful and close to the recordings, on the raw samples
    "bn_prior_margin": combined(BASELINE, BN_PRIOR, CLASS_MARGIN),
    # ... with the prior and the class term on pad-and-crop views of the samples, shifted as the teacher was
    # trained, measured from its batch-norm statistics (gan.bn_view_shift auto): the preset before mode seeking
    "bn_prior_margin_views": combined(BASELINE, BN_PRIOR, CLASS_MARGIN, {"gan": {"bn_view_shift": "auto"}}),
    # ... with mode seeking on pairs of one class (gan.diversity_weight 1): the preset
    "bn_prior_margin_views_diversity": combined(BASELINE, BN_PRIOR, CLASS_MARGIN,
                                                {"gan": {"bn_view_shift": "auto", "diversity_weight": 1.0}}),
}

COLUMNS = [("variant", "variant", "{}"), ("student", "student float32", "{:.2%}"),
           ("student_int8", "student int8", "{:.2%}"), ("samples_teacher_accuracy", "samples taken for their class",
                                                        "{:.1%}"),
           ("frechet_first_epoch", "Fréchet, epoch 1", "{:.1f}"), ("frechet_last_epoch", "Fréchet, last epoch",
                                                                    "{:.1f}"),
           ("frechet_report", "Fréchet (report)", "{:.1f}"), ("gan_seconds", "GAN s", "{:.0f}"),
           ("distill_seconds", "distill s", "{:.0f}"), ("pipeline_seconds", "pipeline s", "{:.0f}")]


def variant_config(name: str, protocol: dict | None, source: str, teacher: str, seed: int) -> configs.RunConfig:
    if name not in VARIANTS:
        raise UsageError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    config = configs.merge(configs.preset("color"), protocol or {})
    config = configs.merge(config, VARIANTS[name])
    config.data, config.seed, config.teacher_path, config.teacher_input = source, seed, teacher, "0-1"
    config.export = dataclasses.replace(config.export, variants=("int8",), generator_variants=())
    config.validate()
    configs.check_overrides_are_read(protocol or {}, config)
    return config


def frechet_by_epoch(folder: RunFolder) -> list[float]:
    """The GAN's per-epoch Fréchet distance, as its TensorBoard run logged it."""
    return quality.logged_by_epoch(folder.logs("gan") / "train", ["frechet_distance"]).get("frechet_distance", [])


def run_variant(name: str, config: configs.RunConfig, dataset: data.Dataset, out: Path, progress=print) -> dict:
    progress(f"== {name} ==")
    start = time.time()
    ctx = pipeline.run_stages(config, out / name, ["teacher", "gan", "distill", "export", "evaluate"], progress,
                              dataset=dataset)
    seconds = time.time() - start
    report = ctx.folder.load("report")
    models = {row["name"]: row for row in report["models"]}
    quality = report.get("generator_quality") or {}
    frechet = frechet_by_epoch(ctx.folder)
    stage = report["stage_seconds"]
    return {"variant": name, "student": models["student"]["accuracy"],
            "student_int8": models["student_int8"]["accuracy"],
            "int8_bytes": models["student_int8"]["bytes"],
            "samples_teacher_accuracy": quality.get("teacher_accuracy_on_samples"),
            "frechet_first_epoch": frechet[0] if frechet else None,
            "frechet_last_epoch": frechet[-1] if frechet else None,
            "frechet_by_epoch": frechet,
            "frechet_report": quality.get("frechet_distance_teacher_features"),
            "gan_seconds": stage.get("gan"), "distill_seconds": stage.get("distill"), "pipeline_seconds": seconds,
            "settings": VARIANTS[name]}


def reference_rows(config: configs.RunConfig, dataset: data.Dataset, teacher, progress=print) -> list[dict]:
    """The same student on the real training split: from the labels, and distilled with the recipe."""
    from tfgan_compress.networks import build_classifier
    from tfgan_compress.teacher import train_teacher

    rows = []
    progress("== reference: student trained on the real labels ==")
    start = time.time()
    scratch = train_teacher(dataset, dataclasses.replace(config.teacher, network=config.distill.network),
                            seed=config.seed, verbose=pipeline.fit_verbosity())
    rows.append({"variant": "real labels (reference)", "student": accuracy(scratch, dataset),
                 "distill_seconds": time.time() - start})
    progress("== reference: student distilled on the real images ==")
    student = build_classifier(dataset.spec.image_shape, dataset.num_classes, config.distill.network, "student")
    start = time.time()
    distill.distill_on_images(teacher, student, dataset.x_train, config.distill, seed=config.seed,
                              verbose=pipeline.fit_verbosity())
    rows.append({"variant": "distilled on real images (reference)", "student": accuracy(student, dataset),
                 "distill_seconds": time.time() - start})
    return rows


def accuracy(model, dataset: data.Dataset) -> float:
    return float(np.mean(np.argmax(evaluate.keras_probabilities(model, dataset.x_test), -1) == dataset.y_test))


def run_benchmark(source: str, teacher: str, out: Path, variants, protocol: dict | None, seed: int = 0,
                  train_subset: int | None = None, reference: bool = False, progress=print) -> dict:
    if not Path(teacher).is_file():
        raise UsageError(f"{teacher}: file not found (--teacher: the committed teacher, see benchmarks/README.md)")
    configs_by_name = {name: variant_config(name, protocol, source, teacher, seed) for name in variants}
    dataset = data.load(source)
    if train_subset:
        dataset = data.train_subset(dataset, train_subset, seed)
    artifacts.check_writable_dir(out)
    rows = [run_variant(name, config, dataset, out, progress) for name, config in configs_by_name.items()]
    if reference:
        first = next(iter(configs_by_name.values()))
        teacher_model = RunFolder(out / next(iter(configs_by_name))).load("teacher")
        rows += reference_rows(first, dataset, teacher_model, progress)
    result = {"data": source, "teacher": teacher, "seed": seed, "train_images": len(dataset.x_train),
              "test_images": len(dataset.x_test), "protocol": protocol or {}, "rows": rows}
    text = "\n".join([f"# Colour variants on `{source}` ({len(dataset.x_train)} training images, seed {seed})", "",
                      markdown_table(rows, COLUMNS)])
    common.write_results(out, "color", result, text, progress)
    return result


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/color", data_options=False)
    parser.add_argument("--data", default="folder:../shared/data/cifar10/cifar10-jpeg.zip", help="data source")
    parser.add_argument("--teacher", required=True, help="the committed teacher (.keras, taking [0, 1] images)")
    parser.add_argument("--variants", default="baseline,all", help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--train-subset", type=int, help="cut the training split to N images (class shares kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", action="store_true",
                        help="also the student on the real labels and distilled on the real images")
    args = parser.parse_args(argv)
    return common.run_main("color.py", lambda: run_benchmark(
        args.data, args.teacher, Path(args.out), [v for v in args.variants.split(",") if v], common.overrides(args),
        args.seed, args.train_subset, args.reference))


if __name__ == "__main__":
    sys.exit(main())
