#!/usr/bin/env python3
"""What the GAN's batch-norm prior asks for: the prior's distance (DeepInversion's term,
:func:`tfgan_compress.losses.batchnorm_statistics_loss`) from the teacher's running
statistics, for real training images and for the run's generator samples, each as they are
and under the teacher's own training augmentation (the views ``gan.bn_view_shift`` gives the
prior).

    python benchmarks/bn_statistics.py --run runs/cifar10 --out benchmarks/results/bn-statistics

A finished GAN-mode run folder gives the teacher, the generator and the teacher's
augmentation settings (``teacher.augment_shift``, ``teacher.augment_flip`` of its config:
those the committed and the preset's teachers were trained with). A teacher's running
statistics are gathered on its augmented training views; where real images are much farther
from them than their augmented views are, the prior pulls the generator toward what the
augmentation adds (for pad-and-crop: the edges of zero borders), not toward the images.
Writes ``bn_statistics.json`` / ``.md``; each row also gives the distance per batch-norm
layer (mean term / variance term).
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
from tfgan_compress.teacher import as_logits, image_augmenter  # noqa: E402
from tfgan_compress.gan_views import prior_distances  # noqa: E402
from tfgan_compress.teacher_taps import batchnorm_taps  # noqa: E402


def run_benchmark(run: Path, out: Path, count: int, progress=print) -> dict:
    folder, config = common.finished_gan_run(run)
    bn_model, layers = batchnorm_taps(as_logits(folder.load("teacher")), with_output=True)
    if bn_model is None:
        raise UsageError(f"{run}: its teacher has no batch-norm layers to read")
    dataset = data.load(config.data, audio=config.audio_settings())
    real = dataset.x_train[np.random.default_rng(config.seed).permutation(len(dataset.x_train))[:count]]
    real = real.astype(np.float32)
    augment = image_augmenter(dataset.spec.image_shape, config.teacher.augment_shift, config.teacher.augment_flip,
                              config.seed)
    labels = (np.arange(len(real)) % dataset.num_classes).astype(np.int32)
    samples = quality.generate(folder.load("generator"), labels, config.seed)
    augmentation = f"shift {config.teacher.augment_shift}, flip {str(config.teacher.augment_flip).lower()}"
    rows = []
    for name, images in (("real training images", real),
                         (f"the same, teacher's augmentation ({augmentation})", np.asarray(augment(real, training=True))),
                         ("generator samples", samples),
                         ("the same, teacher's augmentation", np.asarray(augment(samples, training=True)))):
        per_layer = prior_distances(bn_model, layers, images)
        rows.append({"images": name, "prior": sum(m + v for m, v in per_layer),
                     "per_layer": " ".join(f"{m:.2f}/{v:.2f}" for m, v in per_layer)})
        progress(f"{name}: {rows[-1]['prior']:.2f}")
    result = {"run": str(run), "images": len(real), "rows": rows}
    table = markdown_table(rows, [("images", "images", "{}"), ("prior", "prior's distance", "{:.2f}"),
                                  ("per_layer", "per batch-norm layer (mean / variance term)", "{}")])
    common.write_results(out, "bn_statistics", result, table, progress)
    return result


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/bn-statistics", data_options=False)
    parser.add_argument("--run", required=True, type=Path, help="a finished GAN-mode run folder")
    parser.add_argument("--images", type=common.positive, default=1024, help="real images and generator samples (default 1024)")
    args = parser.parse_args(argv)
    return common.run_main("bn_statistics.py", lambda: run_benchmark(args.run, Path(args.out), args.images))


if __name__ == "__main__":
    sys.exit(main())
