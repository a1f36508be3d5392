"""Typed configs: presets, JSON round trip, refusal of unknown keys and wrong types."""

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
    ({"distill": {"epochs": 0}}, "at least 1"),
    ({"export": {"variants": ["float32", "int4"]}}, "int4"),
    ({"distill": {"network": {"conv_filters": 3}}}, "must be a list"),
])
def test_bad_settings_are_refused(overrides, fragment):
    with pytest.raises(UsageError, match=fragment):
        config.merge(config.preset("digits"), overrides)


def test_unknown_preset():
    with pytest.raises(UsageError, match="unknown preset"):
        config.preset("huge")


def test_default_preset_follows_the_image_size():
    from tfgan_compress.data import ImageSpec

    assert config.preset_for(ImageSpec((8, 8, 1), tuple("0123456789"))) == "digits"
    assert config.preset_for(ImageSpec((28, 28, 1), tuple("0123456789"))) == "mnist"
    assert config.preset_for(ImageSpec((32, 32, 3), ("cat", "dog"))) == "mnist"


def test_cli_uses_the_preset_for_the_data_unless_told(tmp_path):
    from tfgan_compress import cli

    parser = cli.build_parser()
    assert cli.resolve_config(parser.parse_args(["run"]), lambda: "mnist").preset == "mnist"
    args = parser.parse_args(["run", "--preset", "tiny", "--seed", "7", "--data", "npz:x.npz"])
    resolved = cli.resolve_config(args, lambda: pytest.fail("the preset was given"))
    assert (resolved.preset, resolved.seed, resolved.data) == ("tiny", 7, "npz:x.npz")
