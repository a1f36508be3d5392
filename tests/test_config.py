"""Typed configs: presets, JSON round trip, refusal of unknown keys and wrong types."""

import json

import pytest

from tfgan_compress import config
from tfgan_compress.errors import UsageError


@pytest.mark.parametrize("name", sorted(config.PRESETS))
def test_presets_round_trip_through_json_dict(name):
    cfg = config.preset(name)
    assert cfg.preset == name
    assert config.RunConfig.from_dict(cfg.to_dict()) == cfg


def test_merge_overrides_nested_values():
    cfg = config.merge(config.preset("tiny"), {"gan": {"loss": "wasserstein_gp", "epochs": 3}, "seed": 5})
    assert cfg.gan.loss == "wasserstein_gp" and cfg.gan.epochs == 3 and cfg.seed == 5
    assert cfg.teacher == config.preset("tiny").teacher


@pytest.mark.parametrize("overrides, fragment", [
    ({"gan": {"lr": 1}}, "unknown key"),
    ({"nonsense": 1}, "unknown key"),
    ({"gan": {"epochs": "ten"}}, "gan.epochs must be an integer"),
    ({"gan": {"spectral_norm": 1}}, "true or false"),
    ({"gan": {"loss": "lsgan"}}, "gan.loss must be one of"),
    ({"distill": {"epochs": 0}}, "distill.epochs must be >= 1, got 0"),
    ({"gan": {"steps_per_epoch": -5}}, "gan.steps_per_epoch must be >= 0, got -5"),
    ({"gan": {"generator_learning_rate": 0}}, "gan.generator_learning_rate must be > 0"),
    ({"teacher": {"network": {"dropout": 1.0}}}, r"teacher.network.dropout must be in \[0, 1\)"),
    ({"distill": {"network": {"conv_filters": [4, 0]}}}, "distill.network.conv_filters must be >= 1, got 0"),
    ({"export": {"min_agreement_quantized": 1.5}}, r"export.min_agreement_quantized must be in \[0, 1\]"),
    ({"distill": {"temperature": float("nan")}}, "distill.temperature must be > 0, got nan"),
    ({"gan": {"teacher_margin": float("inf")}}, "gan.teacher_margin must be >= 0 and finite, got inf"),
    ({"distill": {"learning_rate": float("inf")}}, "distill.learning_rate must be > 0 and finite, got inf"),
    ({"gan": {"teacher_margin": 1.0, "teacher_weight": 0}}, "gan.teacher_weight = 0 turns off"),
    ({"seed": -1}, "seed must be in"),
    ({"mode": "data-free"}, "--mode data-free needs --teacher"),
    ({"strategy": "horovod"}, "strategy must be one of default, mirrored"),
    ({"export": {"generator_variants": ["int8"]}}, "export.generator_variants must be one of float32, float16, dynamic"),
    ({"export": {"variants": ["float32", "int4"]}}, "int4"),
    ({"distill": {"network": {"conv_filters": 3}}}, "must be a list"),
    ({"gan": {"bn_view_shift": "automatic"}}, "gan.bn_view_shift must be an integer or one of auto, got 'automatic'"),
    ({"gan": {"bn_view_shift": 2.5}}, "gan.bn_view_shift must be an integer or one of auto"),
    ({"gan": {"bn_view_shift": -1}}, "gan.bn_view_shift must be >= 0, got -1"),
])
def test_bad_settings_are_refused(overrides, fragment):
    with pytest.raises(UsageError, match=fragment):
        config.merge(config.preset("digits"), overrides)


def test_a_list_setting_takes_comma_separated_items_from_the_command_line():
    """``--set export.variants=float32,int8`` as the user types it, not only JSON lists."""
    from tfgan_compress.cli import settings_from_pairs

    pairs = ["export.variants=float32,int8", "distill.network.conv_filters=8, 16", "export.generator_variants="]
    cfg = config.merge(config.preset("digits"), settings_from_pairs(pairs))
    assert cfg.export.variants == ("float32", "int8")
    assert cfg.distill.network.conv_filters == (8, 16)
    assert cfg.export.generator_variants == ()
    with pytest.raises(UsageError, match="conv_filters must be an integer"):
        config.merge(config.preset("digits"), settings_from_pairs(["distill.network.conv_filters=8,x"]))


def test_a_setting_of_a_number_or_auto_takes_either_from_the_command_line_and_json():
    from tfgan_compress.cli import settings_from_pairs

    for pair, expected in (("gan.bn_view_shift=auto", "auto"), ("gan.bn_view_shift=3", 3)):
        cfg = config.merge(config.preset("color"), settings_from_pairs([pair]))
        assert cfg.gan.bn_view_shift == expected
        assert config.RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).gan.bn_view_shift == expected


def test_programmatic_values_are_checked_too():
    cfg = config.preset("tiny")
    cfg.datafree.batch_size = 1
    with pytest.raises(UsageError, match="datafree.batch_size must be >= 2"):
        cfg.validate()


def test_every_number_has_a_range():
    import dataclasses

    def numeric_fields_without_range(section, prefix=""):
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if dataclasses.is_dataclass(value):
                yield from numeric_fields_without_range(value, f"{prefix}{f.name}.")
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and "range" not in f.metadata:
                yield prefix + f.name

    assert list(numeric_fields_without_range(config.RunConfig())) == []


def test_unknown_preset():
    with pytest.raises(UsageError, match="unknown preset"):
        config.preset("huge")


def test_default_preset_follows_the_image_size():
    from tfgan_compress.data import ImageSpec

    assert config.preset_for(ImageSpec((8, 8, 1), tuple("0123456789"))) == "digits"
    assert config.preset_for(ImageSpec((28, 28, 1), tuple("0123456789"))) == "mnist"
    assert config.preset_for(ImageSpec((32, 32, 3), ("cat", "dog"))) == "color"


def test_cli_uses_the_preset_for_the_data_unless_told(tmp_path):
    from tfgan_compress import cli

    parser = cli.build_parser()
    assert cli.resolve_config(parser.parse_args(["run"]), lambda: "mnist").preset == "mnist"
    args = parser.parse_args(["run", "--preset", "tiny", "--seed", "7", "--data", "npz:x.npz"])
    resolved = cli.resolve_config(args, lambda: pytest.fail("the preset was given"))
    assert (resolved.preset, resolved.seed, resolved.data) == ("tiny", 7, "npz:x.npz")


def test_colour_images_of_32_pixels_and_up_get_the_color_preset():
    from tfgan_compress.data import ImageSpec

    names = tuple("abc")
    assert config.preset_for(ImageSpec((32, 32, 3), names)) == "color"
    assert config.preset_for(ImageSpec((64, 64, 3), names)) == "color"
    assert config.preset_for(ImageSpec((32, 32, 1), names)) == "mnist"
    assert config.preset_for(ImageSpec((28, 28, 3), names)) == "mnist"
    assert config.preset_for(ImageSpec((8, 8, 3), names)) == "digits"
    color = config.preset("color").validate()
    assert color.teacher.network.architecture == "resnet" and color.gan.architecture == "resnet"
    assert color.distill.network.architecture == "mobilenet" and color.gan.diff_augment
    assert color.datafree.intensity_weight == 0.0  # the dark-background prior is for MNIST-like data
    assert color.gan.bn_weight > 0 and color.gan.teacher_margin > 0  # the pair measured best: benchmarks/README.md
    assert color.gan.bn_view_shift == "auto"  # ... on the teacher's views, their shift measured
    assert color.gan.discriminator_taps == 0  # opt-in
    assert color.gan.diversity_weight == 1.0 and color.gan.diversity_space == "pixels"  # mode seeking: measured


def test_gpu_configuration_file_is_a_valid_override_of_the_color_preset():
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "configs" / "color_gpu.json"
    merged = config.merge(config.preset("color"), json.loads(path.read_text()))
    assert merged.teacher.epochs >= config.preset("color").teacher.epochs


@pytest.mark.parametrize("overrides, fragment", [
    ({"distill": {"network": {"conv_filters": [4]}}}, "distill.network.conv_filters: the lenet network takes exactly 2"),
    ({"teacher": {"network": {"conv_filters": [4, 8, 16]}}}, "lenet network takes exactly 2 entries, got [4, 8, 16]"),
    ({"teacher": {"network": {"architecture": "resnet", "conv_filters": [4]}}}, "resnet network takes exactly 4"),
    ({"distill": {"network": {"architecture": "mobilenet", "conv_filters": []}}}, "takes at least 1 entries, got []"),
    ({"preset": "bogus"}, "preset 'bogus' is not one of"),
    ({"export": {"variants": []}}, "export.variants is empty"),
    ({"export": {"variants": ["int8", "int8"]}}, "names int8 more than once"),
    ({"distill": {"netwrk": {}}}, "unknown key: netwrk (did you mean network?)"),
])
def test_settings_that_would_fail_inside_a_stage_are_refused_with_the_config(overrides, fragment):
    with pytest.raises(UsageError) as info:
        config.merge(config.preset("tiny"), overrides)
    assert fragment in str(info.value)


def test_a_network_that_does_not_fit_is_refused_before_anything_is_written(tmp_path, capsys):
    import json

    from tfgan_compress import cli

    settings = tmp_path / "c.json"
    settings.write_text(json.dumps({"distill": {"network": {"conv_filters": [4]}}}))
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "tiny", "--config", str(settings), "--out", str(out)]) == 2
    assert "conv_filters" in capsys.readouterr().err and not out.exists()


def test_set_overrides_one_setting_beside_config(tmp_path, capsys):
    from tfgan_compress import cli

    assert cli.settings_from_pairs(["gan.epochs=5", "distill.network.conv_filters=[8, 16]", "gan.loss=hinge"]) == {
        "gan": {"epochs": 5, "loss": "hinge"}, "distill": {"network": {"conv_filters": [8, 16]}}}
    args = cli.build_parser().parse_args(["run", "--preset", "tiny", "--set", "gan.epochs=5", "--set",
                                          "distill.mixup=false"])
    resolved = cli.resolve_config(args, lambda: "tiny")
    assert resolved.gan.epochs == 5 and resolved.distill.mixup is False
    for bad, fragment in (("gan.epochs", "expected SECTION.KEY=VALUE"), ("gan.epochz=3", "did you mean epochs"),
                          ("gan.epochs=-1", "gan.epochs must be >= 1")):
        assert cli.main(["run", "--preset", "tiny", "--set", bad, "--out", str(tmp_path / "r")]) == 2
        assert fragment in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["--mode", "data-free", "--teacher", "t.keras", "--set", "gan.epochs=3"],
     "gan.epochs: not read by this run (--mode data-free reads only noise_dim, generator_width, samples_per_class"),
    (["--set", "datafree.epochs=3"], "datafree.epochs: not read by this run (--mode gan does not run"),
    (["--teacher", "t.keras", "--set", "teacher.epochs=3"], "teacher.epochs: not read by this run (a teacher is given"),
])
def test_settings_the_run_never_reads_are_refused_with_the_reason(argv, fragment):
    from tfgan_compress import cli

    args = cli.build_parser().parse_args(["run", "--preset", "tiny", *argv])
    with pytest.raises(UsageError) as info:
        cli.resolve_config(args, lambda: "tiny")
    assert fragment in str(info.value)
    allowed = cli.build_parser().parse_args(["run", "--preset", "tiny", "--mode", "data-free", "--teacher", "t.keras",
                                             "--set", "gan.noise_dim=16", "--set", "datafree.epochs=1"])
    assert cli.resolve_config(allowed, lambda: "tiny").gan.noise_dim == 16
