"""The user-teacher and budget benchmarks, as smoke runs on the tiny preset (not figures)."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_user_teacher_benchmark_finds_the_0_255_convention(tmp_path):
    (tmp_path / "longer.json").write_text(json.dumps({"teacher": {"epochs": 15}}))
    out = tmp_path / "user"
    assert load("user_teacher").main(["--data", "digits", "--preset", "tiny", "--config", str(tmp_path / "longer.json"),
                                      "--out", str(out)]) == 0
    result = json.loads((out / "user_teacher.json").read_text())
    assert [row["run"] for row in result["rows"]] == ["builtin", "user"]
    assert [row["teacher_input"] for row in result["rows"]] == ["0-1", "0-255"]
    assert result["rows"][1]["teacher"] > 0.5 and "points" in (out / "user_teacher.md").read_text()


@pytest.mark.slow
def test_budget_benchmark_shares_one_teacher_and_generator(tmp_path):
    out = tmp_path / "budget"
    assert load("budget").main(["--data", "digits", "--preset", "tiny", "--budgets", "5", "7", "--out", str(out)]) == 0
    result = json.loads((out / "budget.json").read_text())
    assert [row["budget_kb"] for row in result["rows"]] == [5, 7]
    assert all(row["fits"] and row["int8_bytes"] <= row["budget_kb"] * 1024 for row in result["rows"])
    assert result["rows"][0]["params"] <= result["rows"][1]["params"]
    teachers = {(out / f"budget-{kb}kb" / "teacher.keras").read_bytes() for kb in (5, 7)}
    assert len(teachers) == 1
