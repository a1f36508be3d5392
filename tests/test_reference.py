"""docs/reference.md is generated from the parser and the config's fields, and kept current."""

from pathlib import Path

from tfgan_compress import reference

CHECKED_IN = Path(__file__).resolve().parent.parent / "docs" / "reference.md"


def test_the_checked_in_reference_is_what_the_code_renders():
    assert CHECKED_IN.read_text(encoding="utf-8") == reference.render(), (
        "docs/reference.md is stale: python -m tfgan_compress.reference > docs/reference.md")


def test_every_setting_and_option_is_described():
    rows = [line for line in reference.render().splitlines() if line.startswith("| `")]
    undescribed = [row.split("|")[1].strip() for row in rows if row.rstrip().endswith("|  |")]
    assert not undescribed, undescribed
    assert any(row.startswith("| `gan.discriminator_taps`") for row in rows)
    assert any(row.startswith("| `--set`") for row in rows)
