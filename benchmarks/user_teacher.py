#!/usr/bin/env python3
"""A teacher in a user's conventions, against the built-in teacher of the same network.

    python benchmarks/user_teacher.py --data idx:../shared/data/mnist --preset mnist --out benchmarks/results/user-mnist

Three runs of ``tfgan-compress run``, one row each:

1. ``builtin``: the preset's teacher, trained here (images in [0, 1], logits out);
2. ``user_wrapped``: the same trained network in a user's conventions,
   ``keras.Sequential([Input, Rescaling(1/255), <network>, Softmax()])``: it takes 0-255
   pixels and gives probabilities, and computes the same function; passed with ``--teacher``,
   the tool has to find the 0-255 convention and the logits under the softmax by itself.
   What this row loses against ``builtin`` is what the tool loses on a user's conventions;
3. ``user_trained``: that Sequential model trained by plain ``compile``/``fit`` on 0-255
   pixels (the preset's epochs, batch and learning rate; no augmentation, no schedule), as
   a user would: a different, usually weaker teacher, shown as it is.

Writes ``user_teacher.json`` and ``user_teacher.md``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402  (first: it chooses the CPU kernels before TensorFlow loads)

import keras  # noqa: E402

from tfgan_compress import artifacts, config as configs, data, networks, pipeline  # noqa: E402
from tfgan_compress.report import markdown_table  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402

COLUMNS = [("run", "run", "{}"), ("teacher_input", "teacher input (found)", "{}"), ("teacher", "teacher", "{:.2%}"),
           ("student", "student (Keras)", "{:.2%}"), ("student_int8", "student int8 TFLite", "{:.2%}"),
           ("student_difference", "student - builtin", "{:+.2%}")]


def in_user_conventions(network: keras.Model, image_shape) -> keras.Model:
    """``network`` (on [0, 1] images, logits out) as users write models: 0-255 in, softmax out."""
    return keras.Sequential([keras.Input(image_shape), keras.layers.Rescaling(1 / 255), network,
                             keras.layers.Softmax()], name="user_teacher")


def user_trained_teacher(dataset: data.Dataset, config: configs.TeacherConfig, seed: int) -> keras.Model:
    """The preset's teacher network in user conventions, trained by plain fit on 0-255 pixels."""
    keras.utils.set_random_seed(seed)
    network = networks.build_classifier(dataset.spec.image_shape, dataset.num_classes, config.network, "network")
    model = in_user_conventions(network, dataset.spec.image_shape)
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
    teachers = {
        "user_wrapped": lambda: in_user_conventions(RunFolder(out / "builtin").load("teacher"),
                                                    dataset.spec.image_shape),
        "user_trained": lambda: user_trained_teacher(dataset, config.teacher, seed),
    }
    for name, make in teachers.items():
        progress(f"== {name}: Rescaling(1/255), softmax ==")
        teacher_file = out / f"{name}.keras"
        artifacts.save_keras(make(), teacher_file)
        user_config = dataclasses.replace(config, teacher_path=str(teacher_file))
        rows.append({"run": name, **accuracies(pipeline.run(user_config, out / name, progress, dataset=dataset))})
    for row in rows:
        row["student_difference"] = row["student"] - rows[0]["student"]
    result = {"data": source, "preset": preset, "seed": seed, "rows": rows}
    text = "\n".join([f"# A user's teacher against the built-in one on `{source}`", "",
                      f"Preset `{preset}`, seed {seed}, {len(dataset.x_test)} real test images.", "",
                      markdown_table(rows, COLUMNS)])
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
