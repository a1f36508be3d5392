"""The data-free benchmark on the tiny preset and a fixture (not on the shared data)."""

import json
import re

import numpy as np
import pytest


@pytest.mark.slow
def test_two_seeds_give_rows_and_spread(tmp_path, tiny_arrays, lean_export_config):
    from benchmarks import datafree as benchmark

    x_train, y_train, x_test, y_test = tiny_arrays
    np.savez(tmp_path / "tiny.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    out = tmp_path / "df"
    assert benchmark.main(["--data", f"npz:{tmp_path / 'tiny.npz'}", "--preset", "tiny", "--seeds", "0", "1",
                           "--config", lean_export_config(), "--out", str(out)]) == 0
    result = json.loads((out / "datafree.json").read_text())
    assert [row["seed"] for row in result["rows"]] == [0, 1]
    assert result["teacher_path"] == str(out / "teacher" / "teacher.keras")
    for row in result["rows"]:
        assert 0 <= row["student_float32"] <= 1 and 0 <= row["student_int8"] <= 1 and row["run_seconds"] > 0
        card = json.loads((out / f"seed{row['seed']}" / "tflite" / "model_card.json").read_text())
        int8 = [entry for entry in card["files"] if entry["file"].endswith("student_int8.tflite")]
        assert (row["int8_agreement"], row["int8_passed"]) == (int8[0]["agreement_with_keras"], int8[0]["passed"])
    floats = [row["student_float32"] for row in result["rows"]]
    assert result["summary"]["student_float32"]["mean"] == pytest.approx(np.mean(floats))
    assert result["summary"]["student_float32"]["std"] == pytest.approx(np.std(floats, ddof=1))
    assert "+-" in (out / "datafree.md").read_text()


def test_variants_track_the_test_accuracy_of_each_setting(tmp_path, tiny_arrays, capsys):
    import keras

    from tfgan_compress import config as configs, networks
    from benchmarks import datafree_variants as variants
    x_train, y_train, x_test, y_test = tiny_arrays
    np.savez(tmp_path / "tiny.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    teacher = networks.build_classifier((8, 8, 1), 3, configs.preset("tiny").teacher.network, "teacher")
    teacher.compile(optimizer=keras.optimizers.Adam(0.01),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x_train[..., None] / 255.0, y_train, epochs=40, batch_size=10, verbose=0)  # the script refuses a guessing teacher
    teacher.save(tmp_path / "teacher.keras")
    argv = ["--data", f"npz:{tmp_path / 'tiny.npz'}", "--teacher", str(tmp_path / "teacher.keras"), "--preset", "tiny",
            "--rounds", "2", "--every", "1"]
    samples = tmp_path / "grids"
    assert variants.main(argv + ["--teacher-input", "0-1", "--samples", str(samples), "{}",
                                 '{"steps_per_epoch": 3}']) == 0
    lines = capsys.readouterr().out.splitlines()
    summaries = [line for line in lines if "\taccuracy " in line]
    assert [line.split("\t")[0] for line in summaries] == ["{}", '{"steps_per_epoch": 3}']
    assert sum("round 1: test accuracy" in line for line in lines) == 2
    assert sum("round 2: test accuracy" in line for line in lines) == 2
    checks = [float(re.search(r"test accuracy ([0-9.]+)", line).group(1)) for line in lines if "test accuracy" in line]
    for number, summary in enumerate(summaries):  # the best check is the highest of that variant's checks, and its round
        best, best_round = re.search(r"best check ([0-9.]+) at round (\d+)", summary).groups()
        variant_checks = checks[2 * number:2 * number + 2]
        assert float(best) == max(variant_checks) and int(best_round) == 1 + variant_checks.index(max(variant_checks))
    assert sorted(p.relative_to(samples).as_posix() for p in samples.rglob("*.png")) == [
        f"variant_{n}/epoch_{e:03d}.png" for n in (1, 2) for e in (1, 2)]
    for bad, message in (('{"student_steps": 0}', "student_steps"), ('{"epochs": 3}', "--rounds"),
                         ("{steps: 3}", "not JSON"), ('{"gan": {"epochs": 3}}', "no effect")):
        assert variants.main(argv + ["{}", bad]) != 0  # refused before any variant trains
        captured = capsys.readouterr()
        assert message in captured.err and "accuracy" not in captured.out
