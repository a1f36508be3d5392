"""The command line: an end-to-end run of the tiny preset, and clear refusals of bad input."""

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile

import h5py
import pytest
import tensorflow as tf

from tfgan_compress import cli
from tfgan_compress.run_folder import RunFolder

REQUIRED_KEYS = {"name", "format", "accuracy", "bits_per_example", "agreement_with_teacher", "params", "bytes",
                 "latency_ms"}
MODEL_NAMES = ["teacher", "student", "student_float32", "student_float16", "student_dynamic", "student_int8"]
EXTRA_NAMES = ["teacher_float32", "student_int8_io"]


def event_steps(folder) -> dict:
    """{tag: sorted steps} of the TensorBoard events in ``folder``."""
    steps = {}
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return {tag: sorted(found) for tag, found in steps.items()}


def event_tags(folder):
    return set(event_steps(folder))


@pytest.mark.slow
def test_run_writes_every_artifact(tiny_run):
    out = tiny_run
    for name in ["config.json", "teacher.keras", "generator.keras", "student.keras", "report.md", "report.json",
                 "frontier.png", "samples.png", "tflite/labels.txt", "tflite/model_card.json"]:
        assert (out / name).is_file(), name
    for variant in ["float32", "float16", "dynamic", "int8", "int8_io"]:
        assert (out / "tflite" / f"student_{variant}.tflite").stat().st_size > 0
    for name in ["teacher_float32", "generator_float16", "generator_dynamic"]:
        assert (out / "tflite" / f"{name}.tflite").stat().st_size > 0
    assert sorted(p.name for p in (out / "samples").glob("epoch_*.png")) == ["epoch_001.png", "epoch_002.png"]
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "tiny" and config["seed"] == 3 and "gan" in config and "distill" in config
    assert {"batch_d_loss", "batch_g_loss", "epoch_d_loss", "epoch_g_loss"} <= event_tags(out / "logs" / "gan" / "train")
    gan_run = event_steps(out / "logs" / "gan" / "train")
    # sample grids beside the epoch scalars, at the same steps (the epoch index, from 0)
    assert gan_run["generator_samples_by_class"] == gan_run["epoch_g_loss"] == [0, 1]
    for tag in ["epoch_frechet_distance", "epoch_teacher_label_accuracy", "epoch_generator_learning_rate",
                "epoch_discriminator_learning_rate", "epoch_g_grad_norm", "epoch_d_grad_norm", "config",
                "sample_class_accuracy/0", "sample_class_accuracy/9"]:
        assert tag in gan_run, tag
    hparams = event_tags(out / "logs" / "hparams")
    assert {"_hparams_/session_start_info", "test_accuracy/student_int8", "samples/teacher_accuracy"} <= hparams
    report = json.loads((out / "report.json").read_text())
    assert len(report["generator_quality"]["per_class"]) == 10
    assert "teacher takes" in (out / "report.md").read_text()
    report = json.loads((out / "report.json").read_text())
    names = [m["name"] for m in report["models"]]
    assert [n for n in names if n in MODEL_NAMES] == MODEL_NAMES and set(EXTRA_NAMES) <= set(names)
    for row in report["models"]:
        assert REQUIRED_KEYS <= set(row)
        assert 0.0 <= row["accuracy"] <= 1.0 and row["bits_per_example"] >= 0 and row["bytes"] > 0
    assert report["models"][0]["agreement_with_teacher"] == 1.0
    assert report["real_training_images_seen_by_student"] == 0
    assert set(report["generator_files"]) == {"generator_float16.tflite", "generator_dynamic.tflite"}
    card = json.loads((out / "tflite" / "model_card.json").read_text())
    for entry in card["files"]:
        assert entry["sha256"] == hashlib.sha256((out / "tflite" / entry["file"]).read_bytes()).hexdigest()
        assert 0.0 <= entry["test"]["accuracy"] <= 1.0 and entry["test"]["latency_ms"] > 0
    assert "| student_int8 | tflite |" in (out / "report.md").read_text()
    assert not list(out.rglob("*.tmp*")), "temporary files left behind"
    with zipfile.ZipFile(out / "teacher.keras") as archive, archive.open("model.weights.h5") as weights:
        assert "optimizer" not in h5py.File(weights, "r"), "teacher.keras carries optimizer state"


@pytest.mark.slow
def test_rerun_skips_finished_stages(tiny_run, capsys):
    before = (tiny_run / "student.keras").stat().st_mtime_ns
    assert cli.main(["evaluate", "--out", str(tiny_run)]) == 0
    assert cli.main(["distill", "--out", str(tiny_run)]) == 0
    assert "using" in capsys.readouterr().out
    assert (tiny_run / "student.keras").stat().st_mtime_ns == before


@pytest.mark.slow
def test_export_command_writes_what_run_writes(tiny_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    shutil.rmtree(copy / "tflite")
    assert cli.main(["export", "--out", str(copy)]) == 0
    assert sorted(p.name for p in (copy / "tflite").iterdir()) == sorted(p.name for p in (tiny_run / "tflite").iterdir())


@pytest.mark.slow
def test_a_run_resumed_between_stages_makes_the_same_student(tiny_run, tmp_path):
    import keras
    import numpy as np

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    (copy / "student.keras").unlink()
    assert cli.main(["distill", "--out", str(copy)]) == 0  # teacher and generator now come from disk
    resumed = keras.models.load_model(copy / "student.keras", compile=False).get_weights()
    uninterrupted = keras.models.load_model(tiny_run / "student.keras", compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(resumed, uninterrupted))


@pytest.mark.parametrize("changed, fragment", [
    (["--seed", "7"], "seed 3 -> 7"),
    (["--preset", "digits"], "preset 'tiny' -> 'digits'"),
    (["--data", "npz:ELSEWHERE"], "data 'digits' -> 'npz:"),
])
def test_a_rerun_with_other_settings_is_refused_and_changes_nothing(tiny_run, tmp_path, capsys, changed, fragment):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    if "npz:ELSEWHERE" in changed:  # data of the same shape, from another source
        import numpy as np
        from tfgan_compress import data

        digits = data.load("digits")
        np.savez(tmp_path / "d.npz", x_train=digits.x_train, y_train=digits.y_train, x_test=digits.x_test,
                 y_test=digits.y_test)
        changed = ["--data", f"npz:{tmp_path / 'd.npz'}"]
    base = ["run", "--out", str(copy)] + ([] if "--preset" in changed else ["--preset", "tiny"])
    base += [] if "--seed" in changed else ["--seed", "3"]
    status, err = run_cli(base + changed, tmp_path, capsys)
    assert status == 2 and fragment in err and "start afresh" in err and "\n" not in err
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


def test_without_out_the_newest_unfinished_run_of_the_same_settings_resumes(tiny_run, tmp_path, monkeypatch, capsys):
    from tfgan_compress import config

    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    unfinished = runs / "tiny-20260101-000000"
    shutil.copytree(tiny_run, unfinished)
    (unfinished / "report.json").unlink()
    other = runs / "tiny-20260102-000000"  # newer, but made with another seed
    shutil.copytree(tiny_run, other)
    (other / "report.json").unlink()
    seven = config.preset("tiny")
    seven.seed = 7
    (other / "config.json").write_text(__import__("json").dumps(seven.to_dict()))
    tiny = config.preset("tiny")
    tiny.seed = 3
    folder, resumed = RunFolder.default(tiny, runs)
    assert resumed and folder.root == unfinished
    tiny.seed = 5
    folder, resumed = RunFolder.default(tiny, runs)
    assert not resumed and folder.root.parent == runs and not folder.root.exists()


def run_cli(args, tmp_path, capsys):
    status = cli.main(args)
    captured = capsys.readouterr()
    return status, captured.err.strip()


@pytest.mark.parametrize("make_args, fragment", [
    (lambda p: ["run", "--data", f"npz:{p / 'missing.npz'}"], "missing.npz: file not found"),
    (lambda p: ["run", "--data", f"idx:{p}"], "train-images-idx3-ubyte"),
    (lambda p: ["run", "--data", "nonsense"], "unknown data source"),
    (lambda p: ["run", "--preset", "huge"], "unknown preset"),
    (lambda p: ["run", "--teacher", str(p / "teacher.keras")], "teacher.keras: file not found"),
    (lambda p: ["distill"], "needs --out"),
    (lambda p: ["run", "--config", str(p)], "is a folder"),
    (lambda p: ["run", "--data", f"npz:{p}"], "is a folder"),
    (lambda p: ["run", "--teacher", str(p)], "is a folder"),
    (lambda p: (p / "latin1.json").write_bytes(b'{"seed": "\xe9"}') and ["run", "--config", str(p / "latin1.json")],
     "not UTF-8"),
    (lambda p: ["distill", "--out", str(p / "new")], "run the teacher stage first"),
    (lambda p: ["evaluate", "--out", str(p / "new")], "first"),
])
def test_bad_input_gives_one_line_and_status_2_and_writes_nothing(tmp_path, capsys, make_args, fragment):
    out = tmp_path / "run"
    status, err = run_cli(make_args(tmp_path) + (["--out", str(out)] if make_args(tmp_path)[0] == "run" else []),
                          tmp_path, capsys)
    assert status == 2
    assert len(err.splitlines()) == 1 and fragment in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "new").exists()


def test_out_naming_an_existing_file_is_refused(tmp_path, capsys):
    (tmp_path / "taken").write_text("mine")
    status, err = run_cli(["run", "--preset", "tiny", "--out", str(tmp_path / "taken")], tmp_path, capsys)
    assert status == 2 and "exists and is not a folder" in err
    assert (tmp_path / "taken").read_text() == "mine"


def test_bad_config_file(tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"gan": {"epochs": "many"}}))
    status, err = run_cli(["run", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "r")],
                          tmp_path, capsys)
    assert status == 2 and "c.json" in err and "gan.epochs must be an integer" in err
    (tmp_path / "broken.json").write_text("{")
    status, err = run_cli(["run", "--config", str(tmp_path / "broken.json")], tmp_path, capsys)
    assert status == 2 and "not valid JSON" in err


def test_teacher_that_does_not_fit_the_data(tmp_path, capsys):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "mnist_teacher.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    status, err = run_cli(["run", "--teacher", str(tmp_path / "mnist_teacher.keras"), "--out", str(tmp_path / "r")],
                          tmp_path, capsys)
    assert status == 2 and "(28, 28, 1)" in err and "(8, 8, 1)" in err
    status, err = run_cli(["run", "--teacher", str(tmp_path / "junk.keras"), "--out", str(tmp_path / "r")],
                          tmp_path, capsys)
    assert status == 2 and "junk.keras" in err and "not a Keras model" in err
    assert not (tmp_path / "r").exists()


def test_usage_errors_exit_2_via_the_installed_command(tmp_path):
    command = shutil.which("tfgan-compress")
    assert command, "the tfgan-compress console script is not installed"
    result = subprocess.run([command, "run", "--seed", "notanumber"], capture_output=True, text=True)
    assert result.returncode == 2 and "invalid int value" in result.stderr
    result = subprocess.run([sys.executable, "-m", "tfgan_compress.cli", "run", "--data", "npz:/nonexistent.npz",
                             "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "tfgan-compress: error: /nonexistent.npz: file not found"
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_lambda_teacher_needs_unsafe_load(tmp_path, capsys, lean_export_config):
    import keras

    from tfgan_compress import data

    inputs = keras.Input((8, 8, 1))
    scaled = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(scaled)))
    digits = data.load("digits")  # trained a little: a teacher near chance would be refused
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.x_train, digits.y_train, epochs=10, verbose=0)
    model.save(tmp_path / "lambda.keras")
    args = ["run", "--preset", "tiny", "--teacher", str(tmp_path / "lambda.keras"), "--out", str(tmp_path / "r")]
    status, err = run_cli(args, tmp_path, capsys)
    assert status == 2 and "Lambda" in err and "--unsafe-load" in err and not (tmp_path / "r").exists()
    assert cli.main(args + ["--unsafe-load", "--config", lean_export_config()]) == 0
    assert (tmp_path / "r" / "report.json").is_file()


def test_version(capsys):
    from tfgan_compress import __version__

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"tfgan-compress {__version__}"


def test_evaluate_measures_and_marks_a_file_kept_below_its_bar(tiny_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    (copy / "tflite" / "below_bar").mkdir()
    (copy / "tflite" / "student_dynamic.tflite").rename(copy / "tflite" / "below_bar" / "student_dynamic.tflite")
    card = json.loads((copy / "tflite" / "model_card.json").read_text())
    entry = next(e for e in card["files"] if e["variant"] == "dynamic")
    entry.update(file="below_bar/student_dynamic.tflite", passed=False, agreement_with_keras=0.5, agreement_bar=0.9)
    (copy / "tflite" / "model_card.json").write_text(json.dumps(card))
    assert cli.main(["evaluate", "--out", str(copy)]) == 3
    assert "below the agreement bar" in capsys.readouterr().err
    report = json.loads((copy / "report.json").read_text())
    row = next(r for r in report["models"] if r["name"] == "student_dynamic")
    assert row["below_agreement_bar"] and "below its agreement bar" in (copy / "report.md").read_text()


def test_a_run_interrupted_inside_every_stage_gives_the_uninterrupted_result(tiny_run, tmp_path, monkeypatch,
                                                                             lean_export_config):
    import keras
    import numpy as np

    from tfgan_compress import pipeline

    interrupted = set()

    class Interrupt(keras.callbacks.Callback):  # Ctrl-C once per stage, after the first epoch's backup
        def __init__(self, stage):
            super().__init__()
            self.stage = stage

        def on_epoch_end(self, epoch, logs=None):
            if self.stage not in interrupted:
                interrupted.add(self.stage)
                raise KeyboardInterrupt

    original = pipeline.StageContext.fit_callbacks

    def with_interrupt(self, *extra, **kwargs):
        return [*original(self, *extra, **kwargs), Interrupt(self.stage.name)]

    monkeypatch.setattr(pipeline.StageContext, "fit_callbacks", with_interrupt)
    out = tmp_path / "resumed"
    # export settings do not touch training: the models must still equal the tiny run's
    args = ["run", "--preset", "tiny", "--out", str(out), "--seed", "3", "--config", lean_export_config()]
    statuses = [cli.main(args) for _ in range(4)]  # teacher, gan, distill each interrupted once, then done
    assert statuses == [130, 130, 130, 0] and interrupted == {"teacher", "gan", "distill"}
    for name in ("teacher", "generator", "student"):
        resumed = keras.models.load_model(out / f"{name}.keras", compile=False).get_weights()
        straight = keras.models.load_model(tiny_run / f"{name}.keras", compile=False).get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(resumed, straight)), name


def test_sigterm_inside_a_command_is_an_interrupt_and_the_handler_is_restored_after():
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with cli.interrupt_on_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
