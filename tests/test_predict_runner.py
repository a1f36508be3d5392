"""export/predict.py: the stand-alone runner (no TensorFlow) on every exported variant."""

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tfgan_compress import export, networks
from tfgan_compress.config import ClassifierConfig
from tfgan_compress.litert import TFLiteClassifier

RUNNER = Path(__file__).resolve().parent.parent / "export" / "predict.py"
SHAPE, CLASSES = (8, 8, 1), 3
# Runs predict.py with TensorFlow made unimportable, as on a device that only has LiteRT.
NO_TF = ("import runpy, sys; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
         "runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("tflite")
    student = networks.build_classifier(SHAPE, CLASSES, ClassifierConfig((2, 4), (8, 8)), "student")
    images = np.random.default_rng(0).random((32, *SHAPE)).astype(np.float32)
    files = export.export_classifier(student, lambda v: out / f"student_{v}.tflite", images, images,
                                     export.VARIANTS, {v: 0.0 for v in export.VARIANTS}, progress=lambda _: None)
    export.write_labels(out / "labels.txt", ["bar", "column", "dot"])
    return out, files


def run_runner(*args):
    result = subprocess.run([sys.executable, "-c", NO_TF, str(RUNNER), *map(str, args)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.strip().splitlines()]


@pytest.mark.parametrize("variant", export.VARIANTS)
def test_runner_matches_the_library_on_every_variant(tmp_path, exported, variant):
    out, _ = exported
    pixels = np.random.default_rng(1).integers(0, 256, size=(4, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "x.npz", x_test=pixels)
    paths = []
    for i, image in enumerate(pixels):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    model = out / f"student_{variant}.tflite"
    expected = TFLiteClassifier(model_path=model).predict(pixels[..., None].astype(np.float32) / 255.0).argmax(-1)
    names = ["bar", "column", "dot"]
    from_npz = run_runner(model, "--npz", tmp_path / "x.npz", "--limit", 4)
    from_png = run_runner(model, *paths)
    assert [row[1] for row in from_npz] == [names[i] for i in expected]
    assert [row[1] for row in from_png] == [names[i] for i in expected]
    assert all(0.0 <= float(row[2]) <= 1.0 for row in from_npz)


def run_runner_failing(*args):
    result = subprocess.run([sys.executable, "-c", NO_TF, str(RUNNER), *map(str, args)],
                            capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("INFO: ")]  # LiteRT's own
    return result.returncode, "\n".join(lines)


def test_runner_refuses_bad_input_in_one_line(tmp_path, exported):
    out, files = exported
    model = out / "student_int8.tflite"
    np.savez(tmp_path / "empty.npz", x_test=np.zeros((0, 8, 8), np.uint8))
    np.savez(tmp_path / "wrong.npz", x_test=np.zeros((2, 5, 5), np.uint8))
    np.savez(tmp_path / "nan.npz", x_test=np.full((2, 8, 8), np.nan, np.float32))
    (tmp_path / "text.tflite").write_text("hello")
    (tmp_path / "empty.tflite").write_bytes(b"")
    (tmp_path / "note.png").write_text("not an image")
    cases = [
        ((tmp_path / "text.tflite", "--npz", tmp_path / "empty.npz"), "not a loadable .tflite"),
        ((tmp_path / "empty.tflite", "--npz", tmp_path / "empty.npz"), "empty file"),
        ((model, "--npz", tmp_path / "empty.npz"), "no images"),
        ((model, "--npz", tmp_path / "wrong.npz"), "shape"),
        ((model, "--npz", tmp_path / "nan.npz"), "NaN"),
        ((model, tmp_path / "note.png"), "not a readable image"),
    ]
    for args, fragment in cases:
        status, err = run_runner_failing(*args)
        assert status == 2 and fragment in err and len(err.splitlines()) == 1, (args, err)
    status, err = run_runner_failing(model, "--npz", tmp_path / "empty.npz", "--limit", "-395")
    assert status == 2 and "at least 1" in err


def test_runner_refuses_a_file_whose_bytes_differ_from_the_model_card(tmp_path, exported):
    import shutil

    out, files = exported
    copy = tmp_path / "tflite"
    shutil.copytree(out, copy)
    export.ModelCard(copy / "model_card.json").write(["bar", "column", "dot"], SHAPE, files,
                                                     {"convention": "0-1", "scale": 1.0, "offset": 0.0})
    np.savez(tmp_path / "x.npz", x_test=np.zeros((1, 8, 8), np.uint8))
    assert run_runner(copy / "student_float32.tflite", "--npz", tmp_path / "x.npz")  # intact: runs
    content = bytearray((copy / "student_float32.tflite").read_bytes())
    content[len(content) // 2] ^= 0xFF  # one flipped byte, deep in the weights
    (copy / "student_float32.tflite").write_bytes(bytes(content))
    status, err = run_runner_failing(copy / "student_float32.tflite", "--npz", tmp_path / "x.npz")
    assert status == 2 and "differ from the file the model card lists" in err


def test_accuracy_mode_from_folders_npz_labels_and_idx_labels(tmp_path, exported):
    """With the true classes, the runner (and ``tfgan-compress predict``) prints accuracies
    that match the library's predictions."""
    import gzip

    from tfgan_compress import cli

    out, _ = exported
    model = out / "student_int8.tflite"
    names = ["bar", "column", "dot"]
    pixels = np.random.default_rng(2).integers(0, 256, size=(9, 8, 8), dtype=np.uint8)
    truth = np.arange(9) % 3
    predicted = TFLiteClassifier(model_path=model).predict(pixels[..., None].astype(np.float32) / 255.0).argmax(-1)
    expected = f"{np.mean(predicted == truth):.4f}"
    paths = []
    for i, (image, label) in enumerate(zip(pixels, truth)):
        (tmp_path / names[label]).mkdir(exist_ok=True)
        paths.append(tmp_path / names[label] / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    np.savez(tmp_path / "xy.npz", x_test=pixels, y_test=truth)
    np.savez(tmp_path / "xy_one_hot.npz", x_test=pixels, y_test=np.eye(3, dtype=np.float32)[truth])  # to_categorical
    header = b"\x00\x00\x08\x01" + len(truth).to_bytes(4, "big")
    (tmp_path / "labels.gz").write_bytes(gzip.compress(header + truth.astype(np.uint8).tobytes()))
    images_header = b"\x00\x00\x08\x03" + b"".join(d.to_bytes(4, "big") for d in pixels.shape)
    (tmp_path / "images.gz").write_bytes(gzip.compress(images_header + pixels.tobytes()))
    for args in [(model, *paths, "--labels-from-folders"), (model, "--npz", tmp_path / "xy.npz"),
                 (model, "--npz", tmp_path / "xy_one_hot.npz"),
                 (model, "--idx", tmp_path / "images.gz", "--idx-labels", tmp_path / "labels.gz")]:
        rows = run_runner(*args)
        assert rows[0][:2] == ["accuracy", expected], args
        per_class = {row[0]: row[1] for row in rows[1:]}
        assert set(per_class) == set(names)
        assert per_class["dot"] == f"{np.mean(predicted[truth == 2] == 2):.4f}"
    # the package's sub-command runs the same code
    assert cli.main(["predict", str(model), "--npz", str(tmp_path / "xy.npz")]) == 0
    (tmp_path / "stray").mkdir()
    Image.fromarray(pixels[0]).save(tmp_path / "stray" / "x.png")
    code, message = run_runner_failing(model, tmp_path / "stray" / "x.png", "--labels-from-folders")
    assert code == 2 and "folder 'stray' is not a class" in message
    # labels that are not class numbers of this model are refused, not rounded or counted
    np.savez(tmp_path / "half.npz", x_test=pixels, y_test=truth + 0.5)
    np.savez(tmp_path / "big.npz", x_test=pixels, y_test=truth + 3)
    code, message = run_runner_failing(model, "--npz", tmp_path / "half.npz")
    assert code == 2 and "not whole class numbers" in message
    (out / "labels.txt").rename(out / "labels.txt.away")  # without class names: the model's 3 outputs bound them
    try:
        code, message = run_runner_failing(model, "--npz", tmp_path / "big.npz")
    finally:
        (out / "labels.txt.away").rename(out / "labels.txt")
    assert code == 2 and "labels run from 3 to 5, but the model has 3 classes" in message


@pytest.mark.parametrize("card, fragment", [
    ({"input": {"scale": "abc", "offset": 0.0}}, "input 'scale' must be a finite number"),
    ({"input": None}, "'input' must be an object"),
    ([1, 2], "not a model card (a JSON object), got a list"),
    ({"files": {"student_int8.tflite": "x"}}, "'files' must be a list"),
    ({"input": {"scale": 0, "offset": 0}}, "'scale' is 0"),
])
def test_a_malformed_model_card_is_refused_in_one_line(tmp_path, exported, card, fragment):
    import json
    import shutil

    out, _ = exported
    shutil.copy(out / "student_int8.tflite", tmp_path)
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    np.savez(tmp_path / "x.npz", x_test=np.zeros((1, 8, 8), np.uint8))
    status, err = run_runner_failing(tmp_path / "student_int8.tflite", "--npz", tmp_path / "x.npz")
    assert status == 2 and fragment in err and len(err.splitlines()) == 1, err


def test_an_image_of_another_size_needs_resize_and_a_colour_image_is_said_to_be_made_grey(tmp_path, exported):
    out, _ = exported
    model = out / "student_int8.tflite"
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "small.png")
    status, err = run_runner_failing(model, tmp_path / "small.png")
    assert status == 2 and "image is 3x3 but the model takes 8x8; give --resize" in err
    assert run_runner(model, tmp_path / "small.png", "--resize")[0][0].endswith("small.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "colour.png")
    result = subprocess.run([sys.executable, "-c", NO_TF, str(RUNNER), str(model), str(tmp_path / "colour.png")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "converted to grey" in result.stderr


def test_a_fifo_or_two_image_sources_are_refused_not_waited_on(tmp_path, exported):
    import os

    out, _ = exported
    model = out / "student_int8.tflite"
    os.mkfifo(tmp_path / "pipe.png")
    status, err = run_runner_failing(model, tmp_path / "pipe.png")
    assert status == 2 and "not a regular file" in err
    np.savez(tmp_path / "x.npz", x_test=np.zeros((1, 8, 8), np.uint8))
    status, err = run_runner_failing(model, "--npz", tmp_path / "x.npz", "--idx", tmp_path / "x.npz")
    assert status == 2 and "give one of" in err


def test_a_grey_image_for_a_colour_model_is_read_as_three_equal_channels_and_said_so(tmp_path, capsys):
    from tfgan_compress import predict

    Image.fromarray(np.full((4, 4), 51, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "colour.png")
    images = predict.load_images([tmp_path / "grey.png", tmp_path / "colour.png"], (4, 4, 3))
    assert images.shape == (2, 4, 4, 3) and np.allclose(images[0], 0.2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "note: 1 grey image(s) read as colour (three equal channels)" in err
    assert "grey.png" in err


def test_a_file_that_is_not_an_image_classifier_is_named_with_its_input_shapes(tmp_path):
    """The generator file (noise and label in) given to predict: one line with plain shapes."""
    import tensorflow as tf

    noise, label = keras.Input((4,), batch_size=1), keras.Input((), batch_size=1, dtype="int32")
    image = keras.layers.Reshape((2, 2, 1))(noise + keras.ops.cast(label[:, None], "float32"))
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model([noise, label], image))
    (tmp_path / "generator.tflite").write_bytes(converter.convert())
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "x.png")
    status, err = run_runner_failing(tmp_path / "generator.tflite", tmp_path / "x.png")
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "takes 2 input(s) of shape [[" in err and "[1, 4]" in err and "np." not in err
    assert "not an image classifier" in err
