#!/usr/bin/env python3
"""Compare data-free settings on one teacher, tracking the student on the real test split.

    python benchmarks/datafree_variants.py --data idx:../shared/data/mnist --teacher runs/mnist/teacher.keras \
        --rounds 8 '{"steps_per_epoch": 100}' '{"steps_per_epoch": 200}'

Each argument is a JSON object of ``datafree`` settings over the preset's (``--rounds``
sets ``epochs``, the number of synthesis rounds), and optionally ``"gan": {...}`` for the
generator's ``noise_dim`` and ``generator_width``. For each, a fresh generator and student
(the papers' LeNet-5-half on the ``mnist`` preset, else the preset's student) are trained
from the teacher alone, exactly as ``tfgan-compress run --mode data-free`` does
(:func:`tfgan_compress.datafree.distill_data_free`, same seed for all); the real test split
is read only to print the student's accuracy every ``--every`` rounds, a development aid the
package itself never has. Prints one line per check and a summary line per variant:
settings, final accuracy, the share of the last round's samples the teacher took for their
class, seconds, and the best of the checks with its round: the student DAFL's and DFAD's
published scripts keep (they test every epoch and save the best), which is chosen on the test
split and so flatters; the package's own student is the last. ``--samples DIR`` keeps the
last generator's samples after every round.
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

from benchmarks import common  # noqa: E402  (first: it chooses the CPU kernels before TensorFlow loads)

import keras  # noqa: E402

from tfgan_compress import callbacks, config as configs, data, datafree, evaluate, networks, slimming  # noqa: E402
from tfgan_compress.config import TeacherInput, choices  # noqa: E402
from tfgan_compress.errors import UsageError  # noqa: E402
from tfgan_compress.teacher import as_logits, as_run_teacher, load_classifier  # noqa: E402


def real_test_accuracy(student, dataset) -> float:
    return evaluate.classification_metrics(evaluate.keras_probabilities(student, dataset.x_test),
                                           dataset.y_test)["accuracy"]


class TestAccuracy(keras.callbacks.Callback):
    """Prints the student's real test accuracy every ``every`` rounds and after the last."""

    def __init__(self, student, dataset, every: int, rounds: int, start: float):
        super().__init__()
        self.student, self.dataset, self.every, self.rounds, self.start = student, dataset, every, rounds, start
        self.best = (0, 0.0)  # (round, accuracy) of the best check: selection on the test split

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every == 0 or done == self.rounds:
            accuracy = real_test_accuracy(self.student, self.dataset)
            if accuracy > self.best[1]:
                self.best = (done, accuracy)
            print(f"  round {done}: test accuracy {accuracy:.4f}, teacher sees "
                  f"the class in {logs.get('teacher_label_accuracy', float('nan')):.3f} of the views, "
                  f"{time.time() - self.start:.0f} s", flush=True)


GENERATOR_SETTINGS = ("noise_dim", "generator_width")  # the gan settings a data-free run reads


def variant_settings(variant: str) -> dict:
    """One command-line variant as ``datafree`` settings; ``epochs`` belongs to ``--rounds``."""
    try:
        settings = json.loads(variant)
    except json.JSONDecodeError as err:
        raise UsageError(f"variant {variant!r} is not JSON ({err})") from None
    if not isinstance(settings, dict):
        raise UsageError(f"variant {variant!r} must be a JSON object of datafree settings")
    if "epochs" in settings:
        raise UsageError(f"variant {variant!r} sets epochs; give the number of rounds with --rounds")
    gan = settings.get("gan", {})
    unused = sorted(set(gan) - set(GENERATOR_SETTINGS)) if isinstance(gan, dict) else []
    if unused:  # the other gan settings would be accepted and do nothing here
        raise UsageError(f"variant {variant!r}: gan.{unused[0]} has no effect on a data-free run; "
                         f"only {', '.join(GENERATOR_SETTINGS)}")
    return settings


def compare(args) -> None:
    dataset = data.load(args.data)
    base = configs.preset(args.preset)
    if args.preset == "mnist":  # the papers' pair, as benchmarks/datafree.py
        base.distill.network = configs.lenet5_half()
    variants = []
    for variant in args.variants:
        settings = variant_settings(variant)
        gan = settings.pop("gan", {})  # the generator's size lives in the gan section
        variants.append(configs.merge(base, {"datafree": {**settings, "epochs": args.rounds}, "gan": gan}))
    for run_config in variants:  # every variant refused before any trains
        run_config.validate()
    # as a run takes a user's teacher: checked against the data, its input convention found
    teacher, record = as_run_teacher(load_classifier(args.teacher, dataset.spec), dataset, args.teacher_input,
                                     args.teacher)
    teacher = as_logits(teacher)
    print(f"teacher {args.teacher}: input {record['convention']}, "
          f"{record['test_accuracy_by_convention'][record['convention']]:.2%} on the test split", flush=True)
    for number, (variant, run_config) in enumerate(zip(args.variants, variants), start=1):
        cfg, gan = run_config.datafree, run_config.gan
        keras.utils.set_random_seed(args.seed)
        generator = networks.build_generator(dataset.spec.image_shape, dataset.num_classes, gan.noise_dim,
                                             gan.generator_width)
        student = networks.build_classifier(dataset.spec.image_shape, dataset.num_classes, run_config.distill.network,
                                            "student")
        try:
            first_weights = slimming.start_student(student, teacher, cfg.student_init)
        except slimming.NotNarrower as err:
            raise UsageError(str(err)) from None
        print(f"{variant}: {args.rounds} rounds x {cfg.steps_per_epoch} iterations; "
              f"{slimming.describe_start(first_weights)}", flush=True)
        start = time.time()
        extra = []
        if args.samples:  # the last generator's samples after every round, one row per class
            extra.append(callbacks.SampleGrid(Path(args.samples) / f"variant_{number}", None, dataset.num_classes,
                                              run_config.gan.samples_per_class))
        checks = TestAccuracy(student, dataset, args.every, args.rounds, start)
        history = datafree.distill_data_free(teacher, generator, student, cfg, seed=args.seed, verbose=0,
                                             callbacks=[checks, *extra])
        print(f"{variant}\taccuracy {real_test_accuracy(student, dataset):.4f}\tteacher sees the class "
              f"{history.history['teacher_label_accuracy'][-1]:.3f}\t{time.time() - start:.0f} s\t"
              f"best check {checks.best[1]:.4f} at round {checks.best[0]} (chosen on the test split, as DAFL's "
              f"and DFAD's scripts keep their student)", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="data source (only its test split is read)")
    parser.add_argument("--teacher", required=True, help="the teacher (.keras)")
    parser.add_argument("--teacher-input", choices=choices(TeacherInput), default="auto",
                        help="pixel range the teacher takes (default auto: measured on the test split)")
    parser.add_argument("--preset", default="mnist")
    parser.add_argument("--rounds", type=common.positive, default=8, help="synthesis rounds (datafree.epochs)")
    parser.add_argument("--every", type=common.positive, default=5, help="print the test accuracy every this many rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", help="folder for sample grids: variant_N/epoch_NNN.png, N counting from 1")
    parser.add_argument("variants", nargs="+", help="JSON objects of datafree settings")
    args = parser.parse_args(argv)
    return common.run_main("datafree_variants", lambda: compare(args), one_op_at_a_time=False)  # as the CLI


if __name__ == "__main__":
    sys.exit(main())
