"""The frontier benchmark's --quick smoke run on a tiny fixture (not on the shared data)."""

import json

import numpy as np
import pytest

KEYS = {"name", "accuracy", "bits_per_example", "params", "int8_bytes", "latency_ms", "train_seconds"}


@pytest.mark.slow
def test_quick_frontier_writes_all_rows(tmp_path, tiny_arrays):
    from benchmarks import frontier

    x_train, y_train, x_test, y_test = tiny_arrays
    np.savez(tmp_path / "tiny.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    out = tmp_path / "frontier"
    assert frontier.main(["--data", f"npz:{tmp_path / 'tiny.npz'}", "--quick", "--out", str(out), "--seed", "1"]) == 0
    result = json.loads((out / "frontier.json").read_text())
    assert [row["name"] for row in result["rows"]] == frontier.ROW_NAMES + frontier.DATA_FREE_ROWS
    for row in result["rows"]:
        assert KEYS <= set(row), row
        assert 0 <= row["accuracy"] <= 1 and row["int8_bytes"] > 0 and row["latency_ms"] > 0
    by_name = {row["name"]: row for row in result["rows"]}
    assert by_name["student_gan_int8"]["params"] == by_name["student_kd_real"]["params"]
    assert by_name["student_gan_int8"]["params"] < by_name["teacher_float32"]["params"]
    assert (out / "frontier.md").read_text().count("| student_") == 6
    assert (out / "frontier.png").stat().st_size > 0
