#!/usr/bin/env python3
"""Distillation recipes screened on one trained generator: the GAN is trained once, each
recipe only distils.

    python benchmarks/distill_screen.py --run benchmarks/results/color-screen/bn_prior_margin \\
        --variants run,cutmix,hard_latent --out benchmarks/results/distill-screen

A finished GAN-mode run folder gives the teacher, the generator, the student network (a fresh
copy of ``student.keras``'s architecture) and the ``distill`` settings; each variant (:data:`VARIANTS`) changes some of those settings, and
``--config`` (a JSON ``{"distill": {...}}``) changes them for every variant (a shorter or
longer schedule). A fresh student is distilled on generator samples exactly as the
pipeline's distill stage does (:func:`tfgan_compress.distill.distill_on_generator`, same seed),
then measured in float32 on the real test split. ``run`` repeats the run's own settings, so
its row checks the protocol against the run's report. ``real_images`` is the reference, not a
recipe: the same student and settings distilled on the run's real training images
(:func:`tfgan_compress.distill.distill_on_images`), the other end of the gap a preset is judged
by; it needs only the run's teacher stage (a run still training its GAN will do). ``real_labels``
is the second reference: the student network trained on the real labels with the run's
teacher recipe (what ``benchmarks/color.py --reference`` trains; its steps: that recipe's).
``--mix-runs R1,R2`` adds the generators of other runs on the same teacher (its weights are
checked): each sample comes from one of the generators, chosen by its noise
(:func:`tfgan_compress.generator_mixture.generator_mixture`; ``gan.generators`` trains such a
mixture in one GAN), a test of whether samples from more modes teach more than one
generator's. ``--distill-seed S`` draws the student's first weights, the bank and its order from
another seed: how far the distillation alone moves on one generator. Writes
``distill_screen.json`` / ``.md``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402  (first: it chooses the CPU kernels before TensorFlow loads)

import keras  # noqa: E402

from tfgan_compress import artifacts, config as configs, data, distill, evaluate, pipeline  # noqa: E402
from tfgan_compress.errors import UsageError  # noqa: E402
from tfgan_compress.generator_mixture import generator_mixture  # noqa: E402
from tfgan_compress.report import markdown_table  # noqa: E402
from tfgan_compress.run_folder import RunFolder  # noqa: E402
from tfgan_compress.teacher import as_logits, train_teacher  # noqa: E402
from tfgan_compress.teacher import steps_per_epoch as teacher_steps_per_epoch  # noqa: E402

#: distill settings each variant changes, over the run's own
VARIANTS = {
    "run": {},
    "cutmix": {"cutmix": True},
    "no_mixup": {"mixup": False},
    "hard_latent": {"hard_latent_steps": 1},
    "temperature_1": {"temperature": 1.0},
    "student_ema": {"student_ema": 0.999},
    "twice_as_long": {"epochs_factor": 2},
    "zoom_color": {"augment_zoom": 0.2, "augment_color": 0.4},
    "wide_noise": {"noise_scale": 1.5},
    "class_blend": {"class_blend": 0.5},  # half the samples between two classes
    # the penultimate features as well as the logits (SRRL: a linear map to the teacher's features, its head on them)
    "feature_distillation": {"feature_weight": 1.0},
    "sample_bank": {"sample_bank": 50000},  # the colour preset's bank
    "fresh_samples": {"sample_bank": 0},  # no bank: every step draws fresh samples
    # before each epoch but the first, a copy of the generator explores toward the student's mistakes and writes
    # 1,000 samples into the bank (tfgan_compress/bank_explorer.py)
    "explore": {"sample_bank": 50000, "explore_steps": 10},
    # the same, raising the distillation's own T^2 KL instead of the L1 distance of the logits
    "explore_kl": {"sample_bank": 50000, "explore_steps": 10, "explore_divergence": "kl"},
    # the teacher labels the bank once ("fixed teacher"): a step is the student's update only
    "bank_teacher_logits": {"sample_bank": 50000, "bank_teacher_logits": True},
    # the reference, not a recipe: the run's settings on the real training images (the gap's other end)
    "real_images": {"on_real_images": True},
    # the same with feature_distillation's terms: the reference for that recipe
    "real_images_features": {"on_real_images": True, "feature_weight": 1.0},
    # the other reference: the same student network trained on the real labels with the run's teacher recipe
    "real_labels": {"on_real_labels": True},
}

#: the keys that make a variant a reference on the real training split, not a recipe on the generator
REFERENCES = ("on_real_images", "on_real_labels")

COLUMNS = [("variant", "variant", "{}"), ("student", "student float32", "{:.2%}"),
           ("agreement", "agrees with the teacher", "{:.2%}"), ("steps", "steps", "{:,}"),
           ("seconds", "distill s", "{:.0f}")]


def variant_distill_config(base: configs.DistillConfig, name: str, protocol: dict | None) -> configs.DistillConfig:
    if name not in VARIANTS:
        raise UsageError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    run_settings = configs.merge(configs.RunConfig(distill=base), protocol or {})  # a non-object, unknown keys: refused
    others = sorted(section for section in protocol or {} if section != "distill")
    if others:  # the GAN is the run's: a setting of another section would be silently ignored
        raise UsageError(f"--config: this benchmark changes the distill section only, not {', '.join(others)}")
    changes = dict(VARIANTS[name])
    clashing = sorted(key for key, value in (protocol or {}).get("distill", {}).items()
                      if key in changes and changes[key] != value)
    if clashing:  # the variant's own value would win without a word
        raise UsageError(f"--config sets distill.{', distill.'.join(clashing)}, which variant {name} sets itself; "
                         f"use the run variant with that --config, or leave the setting out")
    factor = changes.pop("epochs_factor", 1)
    for key in REFERENCES:
        changes.pop(key, None)
    merged = configs.merge(run_settings, {"distill": changes})
    merged.validate()
    return dataclasses.replace(merged.distill, epochs=merged.distill.epochs * factor)


def student_architecture(folder: RunFolder, config: configs.RunConfig, dataset) -> "keras.Model":
    """The run's own student network (the preset's, a budget's or the user's), from its
    ``student.keras``; before the run's distill stage, the configured network (refused where
    a budget or the user's file would choose it)."""
    if folder.path("student").is_file():
        return folder.load("student")
    if config.student_path or config.student_budget_kb:
        raise UsageError(f"{folder.root}: no student.keras yet, and the run's student is chosen by "
                         f"{'--student' if config.student_path else '--student-budget-kb'}: wait for its distill stage")
    from tfgan_compress.networks import build_classifier

    return build_classifier(dataset.spec.image_shape, dataset.num_classes, config.distill.network, "student")


def mixed_generators(folder: RunFolder, teacher, mix_runs, progress=print) -> list:
    """The run's generator and those of ``mix_runs`` (finished GAN-mode run folders,
    :func:`common.finished_gan_run`), each refused unless its teacher has exactly
    ``teacher``'s weights (a generator shaped by another teacher's terms would not be the same
    experiment) and its inputs and samples have the shapes of the run's generator."""
    generators, seen = [folder.load("generator")], {folder.root.resolve()}
    own = teacher.get_weights()
    for run in mix_runs:
        other, _ = common.finished_gan_run(Path(run))
        if other.root.resolve() in seen:
            raise UsageError(f"--mix-runs: {run} is already in the mixture")
        seen.add(other.root.resolve())
        if not other.path("teacher").is_file():
            raise UsageError(f"--mix-runs: {run} has no teacher.keras to check against {folder.root}'s")
        weights = as_logits(other.load("teacher")).get_weights()
        if len(weights) != len(own) or any(a.shape != b.shape or not np.array_equal(a, b)
                                           for a, b in zip(weights, own)):
            raise UsageError(f"--mix-runs: {run}'s teacher is not {folder.root}'s (its weights differ)")
        generator = other.load("generator")
        shapes = [[tuple(t.shape) for t in model.inputs + model.outputs] for model in (generators[0], generator)]
        if shapes[0] != shapes[1]:
            raise UsageError(f"--mix-runs: {run}'s generator takes and gives shapes {shapes[1]}, "
                             f"{folder.root}'s {shapes[0]}")
        generators.append(generator)
        progress(f"  mixing in the generator of {run}")
    return generators


def run_benchmark(run: Path, out: Path, variants, protocol: dict | None, progress=print, mix_runs=(),
                  distill_seed: int | None = None) -> dict:
    folder = RunFolder(run)
    on_generator = [name for name in variants if not any(VARIANTS.get(name, {}).get(key) for key in REFERENCES)]
    teacher_input = folder.teacher_input_json
    if not folder.config_json.is_file() or not teacher_input.is_file():
        raise UsageError(f"{run}: not a run folder past its teacher stage (config.json and teacher_input.json)")
    config = configs.RunConfig.from_dict(json.loads(folder.config_json.read_text()))
    if config.mode != "gan" or (on_generator and not folder.path("generator").is_file()):
        raise UsageError(f"{run}: not a GAN-mode run with its generator.keras (real_images and real_labels alone "
                         f"need its teacher stage)")
    convention = json.loads(teacher_input.read_text())["convention"]
    if convention != "0-1":
        raise UsageError(f"{run}: its teacher takes {convention} input; this benchmark "
                         f"distils on the generator's [0, 1] output as it is")
    if mix_runs and not on_generator:
        raise UsageError("--mix-runs mixes generators, and none of these variants distils on one")
    distill_configs = {name: variant_distill_config(config.distill, name, protocol) for name in variants}
    if "real_labels" in variants and (config.student_path or config.student_budget_kb):
        raise UsageError(f"{run}: real_labels trains the configured student network (distill.network), and this "
                         f"run's student is chosen by {'--student' if config.student_path else '--student-budget-kb'}; "
                         f"use real_images for its reference")
    dataset = data.load(config.data, audio=config.audio_settings())
    teacher = as_logits(folder.load("teacher"))
    generator = generator_mixture(mixed_generators(folder, teacher, mix_runs, progress)) if on_generator else None
    teacher_test = np.argmax(evaluate.keras_probabilities(teacher, dataset.x_test), -1)
    # the pipeline's own (the run variant repeats its student), or another: the spread of the distillation itself
    seed = pipeline.stage_seed(config, "distill") if distill_seed is None else distill_seed
    architecture = student_architecture(folder, config, dataset)
    rows = []
    for name, cfg in distill_configs.items():
        on_labels = VARIANTS[name].get("on_real_labels")
        progress(f"== {name}: " + (f"the teacher's recipe, {config.teacher.epochs} epochs ==" if on_labels
                                   else f"{cfg.epochs} x {cfg.steps_per_epoch} steps =="))
        keras.utils.set_random_seed(seed)  # as the pipeline seeds the stage: the same first weights
        start = time.time()
        steps = cfg.epochs * cfg.steps_per_epoch
        if on_labels:  # the teacher's recipe and schedule, as benchmarks/color.py's reference
            recipe = dataclasses.replace(config.teacher, network=config.distill.network)
            student = train_teacher(dataset, recipe, seed=config.seed, verbose=pipeline.fit_verbosity())
            steps = recipe.epochs * teacher_steps_per_epoch(recipe, len(dataset.x_train))
        elif VARIANTS[name].get("on_real_images"):
            student = keras.models.clone_model(architecture)
            distill.distill_on_images(teacher, student, dataset.x_train, cfg, seed=seed,
                                      verbose=pipeline.fit_verbosity())
        else:
            student = keras.models.clone_model(architecture)
            distill.distill_on_generator(teacher, generator, student, cfg, seed=seed,
                                         verbose=pipeline.fit_verbosity(), progress=progress)
        # the student itself, so that a run folder can take it as its student.keras (export, evaluate)
        Path(out).mkdir(parents=True, exist_ok=True)
        artifacts.save_keras(student, Path(out) / f"{name}.keras")
        predicted = np.argmax(evaluate.keras_probabilities(student, dataset.x_test), -1)
        rows.append({"variant": name, "student": float(np.mean(predicted == dataset.y_test)),
                     "agreement": float(np.mean(predicted == teacher_test)),
                     "steps": steps, "seconds": time.time() - start,
                     "settings": dataclasses.asdict(cfg)})
        progress(f"  {name}: {rows[-1]['student']:.2%} on the test split, {rows[-1]['seconds']:.0f} s")
    run_student = None  # the run's own student, once the run has its report
    if folder.report_json.is_file():
        models = {row["name"]: row for row in json.loads(folder.report_json.read_text())["models"]}
        run_student = models["student"]["accuracy"]
    result = {"run": str(run), "mix_runs": list(mix_runs), "data": config.data, "run_student": run_student,
              "distill_seed": seed,
              "protocol": protocol or {}, "rows": rows}
    own = f"its own student: {run_student:.2%}" if run_student is not None else "the run not finished"
    mixed = f" mixed with those of {', '.join(f'`{r}`' for r in mix_runs)}" if mix_runs else ""
    text = "\n".join([f"# Distillation recipes on the generator of `{run}`{mixed} ({own})", "",
                      markdown_table(rows, COLUMNS)])
    common.write_results(out, "distill_screen", result, text, progress)
    return result


def main(argv=None) -> int:
    parser = common.argument_parser(__doc__, "benchmarks/results/distill-screen", data_options=False)
    parser.add_argument("--run", required=True, help="a finished GAN-mode run folder")
    parser.add_argument("--variants", default="run", help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--mix-runs", default="", help="comma-separated run folders on the same teacher whose "
                                                       "generators join the run's (one per sample, by its noise)")
    parser.add_argument("--distill-seed", type=int, default=None,
                        help="the student's first weights, the bank and the order of its batches from this seed "
                             "(default: the run's own distill-stage seed, so that the run variant repeats its student)")
    args = parser.parse_args(argv)
    return common.run_main("distill_screen.py", lambda: run_benchmark(
        Path(args.run), Path(args.out), [v for v in args.variants.split(",") if v], common.overrides(args),
        mix_runs=[r for r in args.mix_runs.split(",") if r], distill_seed=args.distill_seed))


if __name__ == "__main__":
    sys.exit(main())
