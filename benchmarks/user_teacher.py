#!/usr/bin/env python3
"""A teacher built the way a user builds one, against the built-in teacher of the same network.

    python benchmarks/user_teacher.py --data idx:../shared/data/mnist --preset mnist --out benchmarks/results/user-mnist

1. ``builtin``: ``tfgan-compress run`` with the preset's teacher (trained here on images in
   [0, 1], logits out);
2. ``user``: the same network written as users write it,
   ``keras.Sequential([Input, Rescaling(1/255), <the network>, Softmax()])``, trained with
   plain ``compile``/``fit`` on 0-255 pixels (the preset's epochs, batch and learning rate;
   no augmentation) and saved as ``.keras``; then ``tfgan-compress run --teacher`` on it,
   which has to find its 0-255 input convention by itself.

Writes ``user_teacher.json`` and ``user_teacher.md``: teacher, student and int8 accuracy of
both runs, the convention found, and the student's difference.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import keras  # noqa: E402

from benchmarks import common  # noqa: E402
from tfgan_compress import artifacts, config as configs, data, networks, pipeline  # noqa: E402
from tfgan_compress.report import markdown_table  # noqa: E402

COLUMNS = [("run", "run", "{}"), ("teacher_input", "teacher input (found)", "{}"), ("teacher", "teacher", "{:.2%}"),
           ("student", "student (Keras)", "{:.2%}"), ("student_int8", "student int8 TFLite", "{:.2%}")]


def user_style_teacher(dataset: data.Dataset, config: configs.TeacherConfig, seed: int) -> keras.Model:
    """The preset's teacher network behind Rescaling(1/255) with a softmax, fit on 0-255 pixels."""
    keras.utils.set_random_seed(seed)
    network = networks.build_classifier(dataset.spec.image_shape, dataset.num_classes, config.network, "network")
    model = keras.Sequential([keras.Input(dataset.spec.image_shape), keras.layers.Rescaling(1 / 255), network,
                              keras.layers.Softmax()], name="user_teacher")
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit((dataset.x_train * 255).round(), dataset.y_train, epochs=config.epochs, batch_size=config.batch_size,
              verbose=pipeline.fit_verbosity())
    return model


def accuracies(report: dict) -> dict:
    rows = {row["name"]: row["accuracy"] for row in report["models"]}
    return {"teacher": rows["teacher"], "student": rows["student"], "student_int8": rows["student_int8"],
            "teacher_input": report["teacher_input"]["convention"]}


def compare(source: str, preset: str, out: Path, seed: int = 0, overrides: dict | None = None,
            progress=print) -> dict:
    config = configs.merge(configs.preset(preset), overrides or {})
    config.data, config.seed = source, seed
    dataset = data.load(source)
    artifacts.check_writable_dir(out)
    progress("== built-in teacher ==")
    rows = [{"run": "builtin", **accuracies(pipeline.run(config, out / "builtin", progress, dataset=dataset))}]
    progress("== a user's teacher: Rescaling(1/255), softmax, trained with fit on 0-255 pixels ==")
    teacher_file = out / "user_teacher.keras"
    artifacts.save_keras(user_style_teacher(dataset, config.teacher, seed), teacher_file)
    user_config = dataclasses.replace(config, teacher_path=str(teacher_file))
    rows.append({"run": "user", **accuracies(pipeline.run(user_config, out / "user", progress, dataset=dataset))})
    result = {"data": source, "preset": preset, "seed": seed, "rows": rows,
              "student_difference": rows[1]["student"] - rows[0]["student"],
              "student_int8_difference": rows[1]["student_int8"] - rows[0]["student_int8"]}
    text = "\n".join([f"# A user's teacher against the built-in one on `{source}`", "",
                      f"Preset `{preset}`, seed {seed}, {len(dataset.x_test)} real test images.", "",
                      markdown_table(rows, COLUMNS), "",
                      f"Student (user - built-in): {result['student_difference'] * 100:+.2f} points; "
                      f"int8: {result['student_int8_difference'] * 100:+.2f} points."])
    common.write_results(out, "user_teacher", result, text, progress)
    return result


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/user-teacher", default_preset="digits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return common.run_main("user_teacher", lambda: compare(args.data, args.preset, Path(args.out), args.seed,
                                                           common.overrides(args)))


if __name__ == "__main__":
    sys.exit(main())
