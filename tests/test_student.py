"""The student you need: the preset's family within an int8 budget, or your own architecture."""

import json

import keras
import numpy as np
import pytest

from tfgan_compress import cli, config, export, networks, student
from tfgan_compress.config import ClassifierConfig
from tfgan_compress.errors import UsageError

SHAPE, CLASSES = (8, 8, 1), 10
BASE = ClassifierConfig(conv_filters=(12, 24), dense_units=(64, 32))


def test_scaled_multiplies_every_width_and_keeps_at_least_one():
    assert student.scaled(BASE, 0.5) == ClassifierConfig((6, 12), (32, 16))
    assert student.scaled(BASE, 0.01).conv_filters == (1, 1)
    assert student.WIDTHS[0] == pytest.approx(1 / 8) and student.WIDTHS[-1] == pytest.approx(8)


def test_the_widest_student_within_the_budget_is_picked():
    budget = 12_000
    network, width, size = student.widest_within_budget(SHAPE, CLASSES, BASE, budget, progress=lambda _: None)
    assert size <= budget and network == student.scaled(BASE, width)
    wider = student.WIDTHS[student.WIDTHS.index(width) + 1]
    assert student.int8_bytes(SHAPE, CLASSES, student.scaled(BASE, wider)) > budget
    with pytest.raises(UsageError, match="narrowest student.*over the budget of 1,000 bytes"):
        student.widest_within_budget(SHAPE, CLASSES, BASE, 1_000, progress=lambda _: None)


def test_layer_widths_reads_nested_models():
    inner = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(3, 3), keras.layers.Flatten(),
                              keras.layers.Dense(5)])
    outer_input = keras.Input(SHAPE)
    outer = keras.Model(outer_input, keras.layers.Dense(2)(inner(outer_input)))
    assert student.layer_widths(outer) == {"conv_filters": [3], "dense_units": [5, 2]}


@pytest.mark.slow
def test_budget_run_fits_and_says_where_it_landed(tmp_path, capsys, lean_export_config):
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "tiny", "--student-budget-kb", "6", "--config", lean_export_config(),
                     "--out", str(out)]) == 0
    assert "student budget 6,144 bytes: width x" in capsys.readouterr().out
    assert (out / "tflite" / "student_int8.tflite").stat().st_size <= 6 * 1024
    report = json.loads((out / "report.json").read_text())
    assert report["student_network"]["budget_bytes"] == 6144
    assert "Student budget: 6,144 bytes for the int8 file" in (out / "report.md").read_text()
    assert "within the budget" in (out / "report.md").read_text()


@pytest.mark.slow
def test_your_own_student_architecture_is_trained_from_scratch(tmp_path, capsys, lean_export_config):
    # the usual Keras way: Sequential, softmax output; its weights are not used
    mine = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(name="my_flatten"),
                             keras.layers.Dense(7, activation="relu", name="my_hidden"),
                             keras.layers.Dense(CLASSES, activation="softmax", name="my_output")])
    mine.layers[-1].set_weights([np.zeros((7, CLASSES)), np.full(CLASSES, 5.0)])  # not carried over
    mine.save(tmp_path / "mine.keras")
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "tiny", "--student", str(tmp_path / "mine.keras"),
                     "--config", lean_export_config(export={"variants": ["float32"]}), "--out", str(out)]) == 0
    trained = keras.models.load_model(out / "student.keras", compile=False)
    assert [layer.name for layer in trained.layers] == ["my_flatten", "my_hidden", "my_output"]
    assert not np.allclose(trained.layers[-1].get_weights()[1], 5.0)
    report = json.loads((out / "report.json").read_text())
    assert report["student_network"] == {"conv_filters": [], "dense_units": [7, CLASSES],
                                         "file": str(tmp_path / "mine.keras"), "budget_bytes": None}
    rows = {row["name"]: row for row in report["models"]}
    assert rows["student"]["params"] == mine.count_params()
    # softmax output: the report's probabilities are the model's own, not a softmax of them
    x = np.random.default_rng(0).random((4, *SHAPE)).astype(np.float32)
    np.testing.assert_allclose(trained.predict(x, verbose=0).sum(-1), 1.0, rtol=1e-5)
    assert rows["student_float32"]["agreement_with_teacher"] == rows["student"]["agreement_with_teacher"]


@pytest.mark.parametrize("args, fragment", [
    (["--student", "{tmp}/wrong.keras"], "outputs shape (3,) but the data has 10 classes"),
    (["--student", "{tmp}/mine.keras", "--student-budget-kb", "8"], "exclude each other"),
    (["--student-budget-kb", "0"], "student_budget_kb must be > 0"),
    (["--student-budget-kb", "0.5"], "narrowest student of the preset's family"),
])
def test_a_student_that_cannot_be_used_is_refused_before_anything_is_written(tmp_path, capsys, args, fragment):
    keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(3)]).save(tmp_path / "wrong.keras")
    out = tmp_path / "run"
    argv = ["run", "--preset", "tiny", "--out", str(out)] + [a.format(tmp=tmp_path) for a in args]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert not out.exists()


def test_the_mnist_preset_student_int8_file_is_under_a_tenth_of_the_teacher_float32_file():
    # the frontier's promise (benchmarks/README.md): a wider student would break it
    preset = config.preset("mnist")
    teacher = networks.build_classifier((28, 28, 1), 10, preset.teacher.network, "teacher")
    teacher_bytes = len(export.convert(export.probability_model(teacher), "float32"))
    assert student.int8_bytes((28, 28, 1), 10, preset.distill.network) <= teacher_bytes / 10


def test_a_student_not_smaller_than_the_teacher_is_said_so():
    from types import SimpleNamespace

    from tfgan_compress import report, stages

    lines = []
    ctx = SimpleNamespace(progress=lines.append, config=config.preset("tiny"))
    small = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(CLASSES)])
    large = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(32),
                              keras.layers.Dense(CLASSES)])
    stages.note_student_size(ctx, small, large)
    assert lines == []
    stages.note_student_size(ctx, large, small)
    assert len(lines) == 1 and "not smaller than the teacher" in lines[0] and "--student-budget-kb" in lines[0]
    assert f"{large.count_params():,} against {small.count_params():,} parameters" in lines[0]
    ctx.config.student_path = "mine.keras"  # the user's own student: said, without advice to pick another
    stages.note_student_size(ctx, large, small)
    assert len(lines) == 2 and "not smaller than the teacher" in lines[1] and "--student" not in lines[1]
    assert report.size_ratio_line(0.187) == "Student parameters / teacher parameters: 0.187."
    assert "not smaller than the teacher" in report.size_ratio_line(1.08)
