"""tfgan-compress sample: the generator file back into a dataset."""

import numpy as np
import pytest

from tfgan_compress import cli


def sample(*args):
    return cli.main(["sample", *map(str, args), "--quiet"])


def test_png_folders_read_by_keras_and_deterministic(tiny_run, tmp_path):
    import keras

    assert sample(tiny_run / "generator.keras", "--out", tmp_path / "a", "--per-class", 3, "--seed", 5) == 0
    assert sample(tiny_run / "generator.keras", "--out", tmp_path / "b", "--per-class", 3, "--seed", 5) == 0
    first = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert len(first) == 30 and first[0].as_posix() == "0/00000.png"
    assert all((tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes() for p in first)
    names = (tmp_path / "a" / "labels.txt").read_text().split()
    dataset = keras.utils.image_dataset_from_directory(tmp_path / "a", image_size=(8, 8), color_mode="grayscale",
                                                       batch_size=64, shuffle=False, class_names=names)
    images, labels = next(iter(dataset))
    assert images.shape == (30, 8, 8, 1) and np.bincount(labels.numpy()).tolist() == [3] * 10


def test_tflite_generator_to_npz_matches_keras(tiny_run, tmp_path):
    assert sample(tiny_run / "tflite" / "generator_float16.tflite", "--out", tmp_path / "t.npz", "--total", 23) == 0
    assert sample(tiny_run / "generator.keras", "--out", tmp_path / "k.npz", "--total", 23) == 0
    t, k = np.load(tmp_path / "t.npz"), np.load(tmp_path / "k.npz")
    assert t["x"].shape == (23, 8, 8, 1) and t["x"].dtype == np.uint8
    assert np.bincount(t["y"]).tolist() == [3, 3, 3] + [2] * 7
    assert list(t["class_names"]) == [str(c) for c in range(10)]
    assert np.abs(t["x"].astype(int) - k["x"].astype(int)).mean() < 2  # float16 weights, same noise


@pytest.mark.parametrize("target,args,message", [
    ("tflite/student_int8.tflite", ["--per-class", 2], "not a generator"),
    ("student.keras", ["--per-class", 2], "not a generator"),
    ("report.md", ["--per-class", 2], "not a generator file"),
    ("generator.keras", ["--per-class", 0], "--per-class must be at least 1"),
    ("generator.keras", ["--per-class", 1, "--seed", -1], "--seed must be at least 0"),
    ("generator.keras", ["--per-class", 2, "--wav"], "--wav writes recordings"),
])
def test_bad_arguments_are_one_line_and_write_nothing(tiny_run, tmp_path, capsys, target, args, message):
    assert sample(tiny_run / target, "--out", tmp_path / "s", *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_not_overwritten(tiny_run, tmp_path, capsys):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "mine.txt").write_text("keep")
    assert sample(tiny_run / "generator.keras", "--out", tmp_path / "s", "--per-class", 1) == 2
    assert "already exists" in capsys.readouterr().err and (tmp_path / "s" / "mine.txt").read_text() == "keep"
