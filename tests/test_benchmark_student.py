"""The user-teacher and budget benchmarks, as smoke runs on the tiny preset (not figures)."""

import json

import pytest


@pytest.mark.slow
def test_user_teacher_benchmark_finds_the_0_255_convention(tmp_path, lean_export_config):
    from benchmarks import user_teacher

    out = tmp_path / "user"
    assert user_teacher.main(["--data", "digits", "--preset", "tiny",
                             "--config", lean_export_config(teacher={"epochs": 15}), "--out", str(out)]) == 0
    result = json.loads((out / "user_teacher.json").read_text())
    assert [row["run"] for row in result["rows"]] == ["builtin", "user_wrapped", "user_trained"]
    assert [row["teacher_input"] for row in result["rows"]] == ["0-1", "0-255", "0-255"]
    builtin, wrapped = result["rows"][:2]
    assert wrapped["teacher"] == pytest.approx(builtin["teacher"])  # the same function, in other conventions
    assert "student - builtin" in (out / "user_teacher.md").read_text()


@pytest.mark.slow
def test_budget_benchmark_shares_one_teacher_and_generator(tmp_path, lean_export_config):
    from benchmarks import budget

    out = tmp_path / "budget"
    assert budget.main(["--data", "digits", "--preset", "tiny", "--budgets", "6", "8",
                        "--config", lean_export_config(), "--out", str(out)]) == 0
    result = json.loads((out / "budget.json").read_text())
    assert [row["budget_kb"] for row in result["rows"]] == [6, 8]
    assert all(row["fits"] and row["int8_bytes"] <= row["budget_kb"] * 1024 for row in result["rows"])
    assert result["rows"][0]["params"] <= result["rows"][1]["params"]
    teachers = {(out / f"budget-{kb}kb" / "teacher.keras").read_bytes() for kb in (6, 8)}
    assert len(teachers) == 1


@pytest.mark.slow
def test_keras_applications_benchmark_reads_the_zip_and_refuses_an_untrained_teacher(tmp_path):
    import zipfile

    import numpy as np
    from PIL import Image

    from benchmarks import keras_applications as benchmark
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(tmp_path / "cifar.zip", "w") as archive:
        for split in ("train", "test"):
            for name in benchmark.CLASSES:
                for i in range(2):
                    path = tmp_path / "image.jpg"
                    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
                    archive.write(path, f"{split}/{name}/{i:04d}.jpg")
    out = tmp_path / "mobilenet"
    # random pictures teach nothing: the run must stop at the teacher check, in one line
    assert benchmark.main(["--cifar", str(tmp_path / "cifar.zip"), "--train-per-class", "2", "--test-per-class", "2",
                           "--epochs", "1", "--out", str(out)]) == 2
    with np.load(out / "cifar10_subset.npz") as arrays:
        assert arrays["x_train"].shape == (20, 32, 32, 3) and list(arrays["y_test"][::2]) == list(range(10))
    assert (out / "mobilenet_v2.keras").is_file() and not (out / "run").exists()
