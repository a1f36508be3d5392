#!/usr/bin/env python3
"""Speech: the ``speech`` preset on spoken digits (FSDD), the official split and speaker folds.

    python benchmarks/speech.py --data audio:../shared/data/fsdd/fsdd-wav.zip \\
        --splits official,speaker:theo --modes gan,data-free --out benchmarks/results/speech

For each split: the GAN-mode pipeline (teacher, GAN, student distilled on generator samples
only, int8 export calibrated on generator samples, evaluation on the real test split), then,
with ``data-free`` in ``--modes``, the data-free mode on that run's teacher; then the
references: the same student network distilled on the real training recordings with the same
recipe (the target of the GAN mode: within 2 points), and trained on the real labels.

Splits: ``official`` keeps the data's ``train/`` and ``test/`` (FSDD: recordings 0-4 of every
speaker and digit are the test set); ``speaker:NAME`` trains on every other speaker and tests
on NAME (recordings named ``<digit>_<speaker>_<index>.wav``, as FSDD's), so no voice of the
test set is heard in training. ``--teachers-from OUT`` takes each split's teacher from an
earlier run of this benchmark (``OUT/<split>/gan/teacher.keras``: the same preset teacher,
same seed) instead of training it again. Writes ``speech.json`` and ``speech.md`` into ``--out``.
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

from tfgan_compress import artifacts, config as configs, data, distill, evaluate, pipeline  # noqa: E402
from tfgan_compress.errors import UsageError  # noqa: E402
from tfgan_compress.report import markdown_table  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402

COLUMNS = [("split", "split", "{}"), ("row", "row", "{}"), ("accuracy", "float32", "{:.2%}"),
           ("int8_accuracy", "int8", "{:.2%}"), ("int8_bytes", "int8 bytes", "{:,}"),
           ("samples_teacher_accuracy", "samples taken for their class", "{:.1%}"),
           ("seconds", "seconds", "{:.0f}")]


def speaker_split(source: str, dataset: data.Dataset, speaker: str) -> data.Dataset:
    """``dataset`` (both splits) re-split: ``speaker``'s recordings are the test set."""
    names = recording_names(source)
    if len(names) != len(dataset.x_train) + len(dataset.x_test):
        raise UsageError(f"{source}: {len(names)} recordings listed but {len(dataset.x_train) + len(dataset.x_test)} "
                         f"loaded")
    speakers = np.array([Path(name).stem.split("_")[1] if Path(name).stem.count("_") >= 2 else "" for name in names])
    if speaker not in set(speakers):
        raise UsageError(f"speaker {speaker!r} not found; recordings name {', '.join(sorted(set(speakers)))}")
    x = np.concatenate([dataset.x_train, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    test = speakers == speaker
    fold = data.make_dataset(x[~test], y[~test], x[test], y[test], f"{source} (test speaker {speaker})", source,
                             dataset.class_names)
    return dataclasses.replace(fold, frontend=dataset.frontend)


def recording_names(source: str) -> list[str]:
    """The recordings of an ``audio:`` source in the order :func:`data.load` reads them
    (``train/`` sorted, then ``test/`` sorted)."""
    tree = data._ImageTree(Path(source.partition(":")[2]), suffixes=data.AUDIO_SUFFIXES)
    try:
        files = tree.files
    finally:
        tree.close()
    return [p for p in files if p.startswith("train/")] + [p for p in files if p.startswith("test/")]


def split_config(source: str, seed: int, protocol: dict | None) -> configs.RunConfig:
    config = configs.merge(configs.preset("speech"), protocol or {})
    config.data, config.seed = source, seed  # otherwise the config of `tfgan-compress run --data SOURCE`
    return config.validate()


def pipeline_rows(split: str, mode: str, config: configs.RunConfig, dataset: data.Dataset, out: Path,
                  progress=print) -> tuple[list[dict], RunFolder]:
    progress(f"== {split}: {mode} ==")
    start = time.time()
    names = [stage.name for stage in pipeline.stages_of(mode)]
    ctx = pipeline.run_stages(config, out, names, progress, dataset=dataset)
    seconds = time.time() - start
    report = ctx.folder.load("report")
    models = {row["name"]: row for row in report["models"]}
    quality = report.get("generator_quality") or {}
    rows = []
    if mode == "gan":
        rows.append({"split": split, "row": "teacher", "accuracy": models["teacher"]["accuracy"],
                     "seconds": report["stage_seconds"].get("teacher")})
        rows.append({"split": split, "row": "samples/*.wav, heard again by the teacher",
                     "accuracy": reheard(ctx.folder, dataset)})
    rows.append({"split": split, "row": f"ours ({mode} mode)", "accuracy": models["student"]["accuracy"],
                 "int8_accuracy": models["student_int8"]["accuracy"], "int8_bytes": models["student_int8"]["bytes"],
                 "samples_teacher_accuracy": quality.get("teacher_accuracy_on_samples"), "seconds": seconds,
                 "stage_seconds": report["stage_seconds"]})
    return rows, ctx.folder


def reheard(folder: RunFolder, dataset: data.Dataset) -> float | None:
    """The share of the GAN's sound samples (Griffin-Lim, ``samples/<class>_<i>.wav``) that the
    teacher takes for their class once they go through the front end again."""
    from tfgan_compress.audio_frontend import FrontEnd
    from tfgan_compress.sonify import _safe

    frontend = FrontEnd(dataset.frontend)
    files = sorted(folder.samples_dir.glob("*.wav"))
    if not files:
        return None
    index = {_safe(name): i for i, name in enumerate(dataset.class_names)}  # as the file names spell them
    labels = np.array([index[f.stem.rsplit("_", 1)[0]] for f in files])
    features = np.stack([frontend.wav_features(f) for f in files])
    return float(np.mean(np.argmax(evaluate.keras_probabilities(folder.load("teacher"), features), -1) == labels))


def reference_rows(split: str, config: configs.RunConfig, dataset: data.Dataset, teacher, progress=print) -> list:
    """The same student network on the real training recordings: distilled with the recipe, and from the labels."""
    from tfgan_compress.networks import build_classifier
    from tfgan_compress.teacher import train_teacher

    progress(f"== {split}: student distilled on the real recordings ==")
    student = build_classifier(dataset.spec.image_shape, dataset.num_classes, config.distill.network, "student")
    start = time.time()
    distill.distill_on_images(teacher, student, dataset.x_train, config.distill, seed=config.seed,
                              verbose=pipeline.fit_verbosity())
    rows = [{"split": split, "row": "distilled on real recordings (target)", "accuracy": accuracy(student, dataset),
             "seconds": time.time() - start}]
    progress(f"== {split}: student trained on the real labels ==")
    start = time.time()
    scratch = train_teacher(dataset, dataclasses.replace(config.teacher, network=config.distill.network),
                            seed=config.seed, verbose=pipeline.fit_verbosity())
    rows.append({"split": split, "row": "trained on real labels", "accuracy": accuracy(scratch, dataset),
                 "seconds": time.time() - start})
    return rows


def accuracy(model, dataset: data.Dataset) -> float:
    return float(np.mean(np.argmax(evaluate.keras_probabilities(model, dataset.x_test), -1) == dataset.y_test))


def earlier_teacher(config: configs.RunConfig, teachers_from: Path | None, folder_name: str) -> configs.RunConfig:
    """``config`` with the split's teacher of an earlier run of this benchmark, when asked for."""
    if teachers_from is None:
        return config
    teacher = Path(teachers_from) / folder_name / "gan" / "teacher.keras"
    if not teacher.is_file():
        raise UsageError(f"--teachers-from: {teacher} not found")
    return dataclasses.replace(config, teacher_path=str(teacher), teacher_input="0-1").validate()


def run_benchmark(source: str, out: Path, splits, modes, protocol: dict | None, seed: int = 0,
                  progress=print, teachers_from: Path | None = None) -> dict:
    unknown = [m for m in modes if m not in ("gan", "data-free")]
    if unknown or "gan" not in modes:
        raise UsageError("--modes: gan, optionally with data-free (it reuses the GAN run's teacher)")
    config = split_config(source, seed, protocol)
    official = data.load(source, audio=config.audio_settings())
    artifacts.check_writable_dir(out)
    rows = []
    for split in splits:
        if split == "official":
            dataset = official
        elif split.startswith("speaker:"):
            dataset = speaker_split(source, official, split.partition(":")[2])
        else:
            raise UsageError(f"--splits: official or speaker:NAME, got {split!r}")
        folder_name = split.replace(":", "-")
        gan_rows, folder = pipeline_rows(split, "gan", earlier_teacher(config, teachers_from, folder_name), dataset,
                                         out / folder_name / "gan", progress)
        rows += gan_rows
        if "data-free" in modes:
            free = dataclasses.replace(config, mode="data-free", teacher_path=str(folder.path("teacher")),
                                       teacher_input="0-1")
            rows += pipeline_rows(split, "data-free", free.validate(), dataset, out / folder_name / "data-free",
                                  progress)[0]
        rows += reference_rows(split, config, dataset, folder.load("teacher"), progress)
    result = {"data": source, "seed": seed, "protocol": protocol or {}, "rows": rows}
    text = "\n".join([f"# Speech on `{source}` (seed {seed})", "", markdown_table(rows, COLUMNS)])
    common.write_results(out, "speech", result, text, progress)
    return result


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/speech", data_options=False)
    parser.add_argument("--data", default="audio:../shared/data/fsdd/fsdd-wav.zip", help="an audio: source")
    parser.add_argument("--splits", default="official", help="comma-separated: official, speaker:NAME")
    parser.add_argument("--modes", default="gan", help="comma-separated: gan, data-free")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teachers-from", type=Path, help="an earlier --out of this benchmark: reuse its teachers")
    args = parser.parse_args(argv)
    return common.run_main("speech.py", lambda: run_benchmark(
        args.data, Path(args.out), [s for s in args.splits.split(",") if s], [m for m in args.modes.split(",") if m],
        common.overrides(args), args.seed, teachers_from=args.teachers_from))


if __name__ == "__main__":
    sys.exit(main())
