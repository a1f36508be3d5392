#!/usr/bin/env python3
"""Class faithfulness of the GAN: which mechanism makes the generator draw its class.

    python benchmarks/faithfulness.py --data idx:../shared/data/mnist --out benchmarks/results/faithful_mnist

One teacher (trained once, or ``--teacher FILE``), then the GAN stage once per variant
(:data:`VARIANTS`, each a set of ``gan`` settings over the preset; ``--variants`` picks
some), each measured with :func:`tfgan_compress.quality.generator_quality`: the teacher's
accuracy on class-balanced samples (mean and per class), the Fréchet distance between real
training images and samples in the teacher's penultimate features (next to the
real-against-real floor for the same sample size), and the GAN stage's seconds. Run again
with the same ``--out``, finished variants are measured again without retraining.
``--train-subset N`` cuts the training split (teacher and GAN train on the cut).
Writes ``faithfulness.json`` / ``faithfulness.md`` into ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402  (first: it chooses the CPU kernels before TensorFlow loads)

from tfgan_compress import config as configs, data, pipeline, quality  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402
from tfgan_compress.teacher import as_logits  # noqa: E402

#: name -> gan settings over the preset
VARIANTS = {
    "adversarial only": {"teacher_weight": 0.0},
    "teacher term x0.3": {"teacher_weight": 0.3},
    "teacher term x1": {"teacher_weight": 1.0},
    "teacher term x1 + DiffAugment": {"teacher_weight": 1.0, "diff_augment": ["translation", "cutout"]},
}


def run_variants(source: str, preset: str | None, out: Path, seed: int, names, teacher_path: str | None,
                 train_subset: int | None, overrides: dict | None, progress=print) -> dict:
    dataset = data.load(source)
    if train_subset:
        dataset = data.train_subset(dataset, train_subset, seed)
    preset = preset or configs.preset_for(dataset.spec)
    rows = []
    for name in names:
        config = configs.merge(configs.preset(preset), overrides or {})
        config = configs.merge(config, {"gan": VARIANTS[name]})
        config.data, config.seed, config.teacher_path = source, seed, teacher_path
        folder = out / name.replace(" ", "_").replace("+", "and")
        progress(f"== {name} ==")
        ctx = pipeline.run_stages(config, folder, ["teacher", "gan"], progress=progress, dataset=dataset)
        seconds = RunFolder(folder).stage_seconds()["gan"]  # as recorded, also when an earlier call trained it
        if teacher_path is None:  # the first variant's teacher serves the others
            teacher_path = str(RunFolder(folder).path("teacher"))
        measured = quality.generator_quality(as_logits(ctx.load("teacher")), ctx.load("generator"), dataset.x_train,
                                             dataset.num_classes, samples=5000, seed=seed,
                                             real_labels=dataset.y_train)
        rows.append({"variant": name, "gan": VARIANTS[name], "seconds": round(seconds, 1), **measured})
        progress(f"   teacher accuracy on samples {measured['teacher_accuracy_on_samples']:.2%} (lowest class "
                 f"{min(measured['per_class']):.2%}), Frechet distance {measured['frechet_distance_teacher_features']:.2f}"
                 f" (real vs real {measured['frechet_distance_real_vs_real']:.2f})")
    result = {"data": dataset.source, "preset": preset, "seed": seed, "train_images": len(dataset.x_train),
              "class_names": list(dataset.class_names), "rows": rows}
    lines = [f"{dataset.source}, preset {preset}, seed {seed}, {len(dataset.x_train)} training images", "",
             "| variant | teacher accuracy on samples | lowest class | Frechet distance (real vs real) | GAN s |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['variant']} | {row['teacher_accuracy_on_samples']:.2%} | {min(row['per_class']):.2%} | "
                     f"{row['frechet_distance_teacher_features']:.2f} ({row['frechet_distance_real_vs_real']:.2f}) | "
                     f"{row['seconds']:.0f} |")
    common.write_results(out, "faithfulness", result, "\n".join(lines), progress)
    return result


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/faithfulness", default_preset=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teacher", metavar="FILE", help="reuse this saved teacher (.keras)")
    parser.add_argument("--train-subset", metavar="N", type=int, help="cut the training split to N images")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="NAME",
                        help=f"which variants to run (default all: {'; '.join(VARIANTS)})")
    args = parser.parse_args(argv)
    return common.run_main("faithfulness", lambda: run_variants(
        args.data, args.preset, Path(args.out), args.seed, args.variants, args.teacher, args.train_subset,
        common.overrides(args)))


if __name__ == "__main__":
    sys.exit(main())
