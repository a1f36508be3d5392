"""benchmarks/color.py on a tiny colour fixture: each variant's row, with the teacher reused."""

import dataclasses
import json

import keras
import numpy as np
import pytest

TINY = {"gan": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "generator_width": 4, "discriminator_width": 4,
                "noise_dim": 8, "samples_per_class": 2, "teacher_ramp_steps": 0, "bn_view_shift": "auto"},
        "distill": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "sample_bank": 16,
                    "network": {"conv_filters": [4, 8], "architecture": "mobilenet"}},
        "export": {"calibration_samples": 8}, "evaluate": {"latency_runs": 1, "latency_warmup": 0}}


@pytest.mark.slow
def test_variants_share_the_committed_teacher_and_give_one_row_each(tmp_path, monkeypatch, capsys):
    from benchmarks import color, distill_screen as screen
    from tfgan_compress import config as configs, distill
    from tfgan_compress import networks
    from tfgan_compress.config import ClassifierConfig

    rng = np.random.default_rng(0)
    y_train, y_test = np.arange(24) % 3, np.arange(12) % 3
    x_train, x_test = (rng.random((n, 16, 16, 3)) * 40 for n in (24, 12))  # class c: channel c bright
    x_train[np.arange(24), ..., y_train] += 200
    x_test[np.arange(12), ..., y_test] += 200
    x_train, x_test = x_train.astype(np.uint8), x_test.astype(np.uint8)
    np.savez(tmp_path / "rgb.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    teacher = networks.build_classifier((16, 16, 3), 3, ClassifierConfig((4, 4, 8, 8), (), architecture="resnet"),
                                        "teacher")
    teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x_train / 255.0, y_train, epochs=30, batch_size=8, verbose=0)
    teacher.save(tmp_path / "teacher.keras")
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    out = tmp_path / "out"
    assert color.main(["--data", f"npz:{tmp_path / 'rgb.npz'}", "--teacher", str(tmp_path / "teacher.keras"),
                       "--config", str(tmp_path / "tiny.json"), "--variants", "all", "--out", str(out),
                       "--reference"]) == 0
    # gan.bn_view_shift auto: measured on the real training images, within 16x16 images' bounds
    measured = [line for line in capsys.readouterr().out.splitlines() if "gan.bn_view_shift auto: " in line]
    assert len(measured) == 1 and int(measured[0].split("auto: ")[1].split()[0]) in range(8)
    result = json.loads((out / "color.json").read_text())
    names = [row["variant"] for row in result["rows"]]
    assert names == ["all", "real labels (reference)", "distilled on real images (reference)"]
    for row in result["rows"][:1]:
        assert 0 <= row["student"] <= 1 and row["frechet_by_epoch"] and row["samples_teacher_accuracy"] is not None
    # the distillation screen reuses the run's generator; "run" repeats the run's own distillation;
    # "real_images" distils on the run's real training images (the reference)
    on_images, real_distill = [], distill.distill_on_images
    monkeypatch.setattr(distill, "distill_on_images",
                        lambda teacher, student, images, *a, **k: on_images.append(images.shape)
                        or real_distill(teacher, student, images, *a, **k))
    assert screen.main(["--run", str(out / "all"), "--variants", "run,twice_as_long",
                        "--out", str(out / "s")]) == 0
    screened = json.loads((out / "s" / "distill_screen.json").read_text())
    assert [row["variant"] for row in screened["rows"]] == ["run", "twice_as_long"]
    assert [row["steps"] for row in screened["rows"]] == [2, 4]
    assert on_images == []
    assert screened["rows"][0]["student"] == pytest.approx(screened["run_student"])
    # each variant's student is kept (a run folder's student.keras): the run's own student, weight for weight
    kept, own = (keras.models.load_model(path, compile=False) for path in (out / "s" / "run.keras",
                                                                           out / "all" / "student.keras"))
    assert all(np.array_equal(a, b) for a, b in zip(kept.get_weights(), own.get_weights()))
    assert screen.main(["--run", str(out / "all"), "--variants", "bogus", "--out", str(out / "s2")]) == 2
    assert screen.main(["--run", str(out / "all"), "--variants", "real_images", "--mix-runs", str(out / "all"),
                        "--out", str(out / "s8")]) == 2  # no variant distils on a generator to mix
    assert screen.main(["--run", str(tmp_path), "--out", str(out / "s3")]) == 2
    (tmp_path / "gan.json").write_text(json.dumps({"gan": {"epochs": 2}}))  # the GAN is the run's: refused
    assert screen.main(["--run", str(out / "all"), "--config", str(tmp_path / "gan.json"), "--out", str(out / "s4")]) == 2
    assert color.main(["--teacher", str(tmp_path / "teacher.keras"), "--variants", "bogus",
                       "--data", f"npz:{tmp_path / 'rgb.npz'}", "--out", str(tmp_path / "x")]) == 2
    # what the batch-norm prior asks for: real images and the samples, each as they are and augmented
    from benchmarks import bn_statistics

    assert bn_statistics.main(["--run", str(out / "all"), "--images", "12", "--out", str(out / "bn")]) == 0
    bn_rows = json.loads((out / "bn" / "bn_statistics.json").read_text())["rows"]
    assert [row["images"].split(",")[0] for row in bn_rows] == ["real training images", "the same",
                                                                 "generator samples", "the same"]
    assert all(row["prior"] > 0 and len(row["per_layer"].split()) >= 2 for row in bn_rows)
    assert bn_statistics.main(["--run", str(tmp_path), "--out", str(out / "bn2")]) == 2
    # each class's samples against its real images in the teacher's features, beside the student per class
    from benchmarks import class_coverage

    assert class_coverage.main(["--run", str(out / "all"), "--per-class", "4", "--out", str(out / "cc")]) == 0
    coverage = json.loads((out / "cc" / "class_coverage.json").read_text())["rows"]
    assert len(coverage) == 3 and all(row["spread"] > 0 and row["frechet"] >= 0 for row in coverage)
    assert sum(row["student_share"] for row in coverage) == pytest.approx(1.0)
    assert class_coverage.main(["--run", str(tmp_path), "--out", str(out / "cc2")]) == 2
    # the real-images reference needs the teacher stage only: the run's generator, student and report may be missing
    (out / "all" / "generator.keras").rename(tmp_path / "generator.keras")
    (out / "all" / "student.keras").rename(tmp_path / "student.keras")
    (out / "all" / "report.json").rename(tmp_path / "report.json")
    assert screen.main(["--run", str(out / "all"), "--variants", "real_images,real_labels",
                        "--out", str(out / "s5")]) == 0
    references = json.loads((out / "s5" / "distill_screen.json").read_text())["rows"]
    teacher_recipe = configs.RunConfig.from_dict(json.loads((out / "all" / "config.json").read_text())).teacher
    assert [row["steps"] for row in references] == [2, teacher_recipe.epochs * -(-24 // teacher_recipe.batch_size)]
    assert on_images == [(24, 16, 16, 3)]
    # real_labels is color.py's reference: the same network, recipe and seed give the same student
    assert references[1]["student"] == pytest.approx(result["rows"][1]["student"])
    # a run whose student is not the configured network (a budget's width, a user's file): real_labels is refused
    budget_run = json.loads((out / "all" / "config.json").read_text())
    (out / "all" / "config.json").write_text(json.dumps({**budget_run, "student_budget_kb": 64}))
    assert screen.main(["--run", str(out / "all"), "--variants", "real_labels", "--out", str(out / "s7")]) == 2
    assert not (out / "s7").exists()
    (out / "all" / "config.json").write_text(json.dumps(budget_run))
    assert screen.main(["--run", str(out / "all"), "--variants", "run", "--out", str(out / "s6")]) == 2


def test_baseline_turns_every_mechanism_off_and_the_preset_is_the_bn_prior_margin_pair_on_views_with_diversity():
    from benchmarks import color
    from tfgan_compress import config as configs

    def settings(name):
        return color.variant_config(name, None, "digits", "teacher.keras", 0)

    baseline, pair, preset = settings("baseline"), settings("bn_prior_margin"), configs.preset("color")
    assert baseline.gan.bn_weight == baseline.gan.teacher_weight == baseline.gan.diversity_weight == 0.0
    assert baseline.gan.discriminator_taps == 0 and baseline.gan.bn_view_shift == 0 and not baseline.distill.cutmix
    assert settings("projected").gan.bn_weight == 0.0 and settings("projected").gan.discriminator_taps > 0
    views, diversity = settings("bn_prior_margin_views"), settings("bn_prior_margin_views_diversity")
    assert (diversity.gan, diversity.distill) == (preset.gan, preset.distill) and preset.gan.bn_view_shift == "auto"
    assert views.gan == dataclasses.replace(preset.gan, diversity_weight=0.0) and views.distill == preset.distill
    assert pair.gan.bn_view_shift == 0 and dataclasses.replace(pair.gan, bn_view_shift="auto") == views.gan


def _constant_generator(value: float, name: str, noise_size: int = 4) -> keras.Model:
    noise, label = keras.Input((noise_size,), name="noise"), keras.Input((), dtype="int32", name="label")
    flat = keras.layers.Dense(4, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value))(noise)
    return keras.Model([noise, label], keras.layers.Reshape((2, 2, 1))(flat), name=name)


def test_a_generator_mixture_takes_each_sample_whole_from_one_generator_by_its_noise(tmp_path):
    from benchmarks import distill_screen as screen
    from tfgan_compress.errors import UsageError
    from tfgan_compress.run_folder import RunFolder

    generators = [_constant_generator(value, "generator") for value in (1.0, 2.0, 3.0)]
    mixture = screen.generator_mixture(generators)
    noise = np.random.default_rng(0).normal(size=(600, 4)).astype("float32")
    labels = np.arange(600) % 3  # a bank's cycling labels: the choice must not follow them
    images = keras.ops.convert_to_numpy(mixture([noise, labels]))
    assert images.shape == (600, 2, 2, 1)
    source = images[:, 0, 0, 0]
    assert np.all(images == source[:, None, None, None])  # whole samples, never blends
    for label in range(3):
        counts = np.bincount(source[labels == label].astype(int), minlength=4)[1:]
        assert counts.min() > 40  # every generator serves every class
    again = keras.ops.convert_to_numpy(mixture([noise, labels]))
    assert np.array_equal(images, again)  # the noise decides
    assert screen.generator_mixture(generators[:1]) is generators[0]
    # refused: a run on another teacher, a generator of other shapes, a run twice, a folder that is no run
    teacher = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    wider = _constant_generator(1.0, "generator", noise_size=5)  # another noise size
    for name, weights_scale, generator in (("own", 1.0, generators[0]), ("same", 1.0, generators[1]),
                                           ("other", 2.0, generators[0]), ("wider", 1.0, wider)):
        (tmp_path / name).mkdir()
        copy = keras.models.clone_model(teacher)
        copy.set_weights([w * weights_scale for w in teacher.get_weights()])
        copy.save(tmp_path / name / "teacher.keras")
        generator.save(tmp_path / name / "generator.keras")
        (tmp_path / name / "config.json").write_text("{}")
        (tmp_path / name / "teacher_input.json").write_text(json.dumps({"convention": "0-1"}))
    folder = RunFolder(tmp_path / "own")

    def mix(*runs):
        return screen.mixed_generators(folder, teacher, [str(tmp_path / run) for run in runs], progress=lambda _: None)

    assert len(mix("same")) == 2
    for runs, refusal in ((("other",), "teacher is not"), (("wider",), "shapes"), (("same", "same"), "already"),
                          (("own",), "already"), (("",), "not a GAN-mode run folder")):
        with pytest.raises(UsageError, match=refusal):
            mix(*runs)


def test_a_screen_config_that_a_variant_overrides_is_refused_not_silently_lost():
    from benchmarks import distill_screen as screen
    from tfgan_compress.config import DistillConfig
    from tfgan_compress.errors import UsageError

    base = DistillConfig(sample_bank=50000)
    with pytest.raises(UsageError, match="explore_steps, which variant explore sets itself"):
        screen.variant_distill_config(base, "explore", {"distill": {"explore_steps": 20}})
    cfg = screen.variant_distill_config(base, "explore", {"distill": {"explore_learning_rate": 5e-4}})
    assert (cfg.explore_steps, cfg.explore_learning_rate) == (10, 5e-4)
    assert screen.variant_distill_config(base, "run", {"distill": {"explore_steps": 20}}).explore_steps == 20
