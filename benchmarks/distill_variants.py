#!/usr/bin/env python3
"""Compare distillation settings on one finished run's teacher and generator.

    python benchmarks/distill_variants.py --data idx:../shared/data/mnist --run runs/mnist \
        '{}' '{"temperature": 2.0}' '{"augment_shift": 2, "hard_latent_steps": 1}'

Each argument is a JSON object of ``distill`` settings over the run's preset; for each,
a fresh student is distilled on generator samples only (same seed for all) and measured on
the real test split. Prints one line per variant: settings, test accuracy, bits/example,
seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402,F401  (first: it chooses the CPU kernels before TensorFlow loads)

import keras  # noqa: E402

from tfgan_compress import config as configs, data, distill, evaluate, networks  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="data source (its test split is used)")
    parser.add_argument("--run", required=True, help="run directory with teacher.keras and generator.keras")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("variants", nargs="+", help="JSON objects of distill settings")
    args = parser.parse_args(argv)
    run = RunFolder(args.run)
    dataset = data.load(args.data)
    base = configs.RunConfig.from_dict(json.loads(run.config_json.read_text()))
    teacher, generator = run.load("teacher"), run.load("generator")
    for variant in args.variants:
        cfg = configs.merge(base, {"distill": json.loads(variant)}).distill
        keras.utils.set_random_seed(args.seed)
        student = networks.build_classifier(dataset.spec.image_shape, dataset.num_classes, cfg.network, "student")
        start = time.time()
        distill.distill_on_generator(teacher, generator, student, cfg, seed=args.seed, verbose=0)
        metrics = evaluate.classification_metrics(evaluate.keras_probabilities(student, dataset.x_test),
                                                  dataset.y_test)
        print(f"{variant}\taccuracy {metrics['accuracy']:.4f}\tbits/example {metrics['bits_per_example']:.4f}"
              f"\t{time.time() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
