#!/usr/bin/env python3
"""How well each class's generator samples cover that class's real images, in the teacher's
penultimate features, beside what the run's student does on that class's test images.

    python benchmarks/class_coverage.py --run runs/cifar10 --out benchmarks/results/class-coverage

A finished GAN-mode run folder gives the teacher, the generator and (when the run got that
far) the student. Per class ``c``, ``--per-class`` real training images of ``c`` and as many
samples generated for ``c``, each through the teacher's penultimate features ``f``:

* ``spread``: ``tr Cov(f | samples of c) / tr Cov(f | real images of c)``, the share of the
  class's real spread that its samples span (1: as wide; below: the samples are narrower,
  a generator that covers part of the class);
* ``centre``: ``sqrt(mean_d ((m_d - mu_d) / s_d)^2)``, the distance between the samples' and
  the real images' mean, in units of the real features' overall standard deviation ``s``;
* ``frechet``: the Fréchet distance between the two (Heusel et al., 2017), per class;
* with a student: its accuracy on the class's test images, the teacher's, and the share of
  all test images the student puts in the class (1 / classes when it is not biased).

Writes ``class_coverage.json`` / ``.md``. The features are of the images as they are (what
the student is distilled on), not of the teacher's training views.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402  (first: it chooses the CPU kernels before TensorFlow loads)

from tfgan_compress import data, quality  # noqa: E402
from tfgan_compress.errors import UsageError  # noqa: E402
from tfgan_compress.report import markdown_table  # noqa: E402
from tfgan_compress.teacher import as_logits  # noqa: E402


def class_rows(real_features, real_labels, sample_features, sample_labels, classes: int) -> list[dict]:
    """Per class: ``spread``, ``centre`` and ``frechet`` as the module says (a class with
    fewer than two real images or samples gets none)."""
    scale = real_features.std(0) + 1e-6
    rows = []
    for c in range(classes):
        real, fake = real_features[real_labels == c], sample_features[sample_labels == c]
        if len(real) < 2 or len(fake) < 2:
            rows.append({"class": c, "spread": None, "centre": None, "frechet": None})
            continue
        rows.append({"class": c, "spread": float(fake.var(0).sum() / max(real.var(0).sum(), 1e-12)),
                     "centre": float(np.sqrt(np.mean(((fake.mean(0) - real.mean(0)) / scale) ** 2))),
                     "frechet": quality.frechet_distance(real, fake)})
    return rows


def run_benchmark(run: Path, out: Path, per_class: int, progress=print) -> dict:
    folder, config = common.finished_gan_run(run)
    teacher = as_logits(folder.load("teacher"))
    try:
        features = quality.penultimate_features(teacher)
    except ValueError as err:
        raise UsageError(f"{run}: {err}") from None
    dataset = data.load(config.data, audio=config.audio_settings())
    classes = dataset.num_classes
    rng = np.random.default_rng(config.seed)
    chosen = quality.class_balanced_indices(dataset.y_train, per_class * classes, rng)
    real_labels = np.asarray(dataset.y_train)[chosen]
    progress(f"teacher features of {len(chosen):,} real training images and as many samples")
    real_features = quality.batched(features, dataset.x_train[chosen].astype(np.float32))
    sample_labels = np.sort(real_labels)
    sample_features = quality.batched(features, quality.generate(folder.load("generator"), sample_labels, config.seed))
    rows = class_rows(real_features, real_labels, sample_features, sample_labels, classes)
    columns = [("name", "class", "{}"), ("spread", "spread (samples / real)", "{:.2f}"),
               ("centre", "centre distance (real s.d.)", "{:.3f}"), ("frechet", "Fréchet", "{:.1f}")]
    names = dataset.class_names or [str(c) for c in range(classes)]
    for row in rows:
        row["name"] = names[row["class"]]
    if folder.path("student").is_file():
        test_labels = np.asarray(dataset.y_test)
        predicted = {name: np.argmax(quality.batched(as_logits(folder.load(name)), dataset.x_test.astype(np.float32)),
                                     -1) for name in ("student", "teacher")}
        shares = np.bincount(predicted["student"], minlength=classes) / len(test_labels)
        for row in rows:
            mask = test_labels == row["class"]
            for name in ("student", "teacher"):
                row[name] = float(np.mean(predicted[name][mask] == row["class"])) if mask.any() else None
            row["student_share"] = float(shares[row["class"]])
        columns += [("student", "student on its test images", "{:.1%}"), ("teacher", "teacher", "{:.1%}"),
                    ("student_share", "student's predictions in it", "{:.1%}")]
    for row in rows:
        progress("  ".join(f"{title} {('-' if row.get(key) is None else fmt.format(row[key]))}"
                           for key, title, fmt in columns))
    result = {"run": str(run), "per_class": per_class, "rows": rows}
    common.write_results(out, "class_coverage", result, markdown_table(rows, columns), progress)
    return result


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/class-coverage", data_options=False)
    parser.add_argument("--run", required=True, type=Path, help="a finished GAN-mode run folder")
    parser.add_argument("--per-class", type=common.positive, default=500,
                        help="real training images and samples of each class (default 500)")
    args = parser.parse_args(argv)
    return common.run_main("class_coverage.py", lambda: run_benchmark(args.run, Path(args.out), args.per_class))


if __name__ == "__main__":
    sys.exit(main())
