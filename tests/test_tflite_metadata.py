"""LiteRT metadata inside every student .tflite, read back, and used by predict without a card."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfgan_compress import cli, tflite_metadata

RUNNER = Path(__file__).resolve().parent.parent / "export" / "predict.py"
NO_TF = ("import runpy, sys; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
         "runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.mark.parametrize("variant", ["float32", "float16", "dynamic", "int8", "int8_io"])
def test_every_student_file_carries_its_metadata(tiny_run, variant):
    content = (tiny_run / "tflite" / f"student_{variant}.tflite").read_bytes()
    metadata = tflite_metadata.read(content)
    assert metadata["name"] == f"student_{variant}" and metadata["min_parser_version"] == "1.0.0"
    assert metadata["labels"] == (tiny_run / "tflite" / "labels.txt").read_text().splitlines()
    assert metadata["input"]["color_space"] == "GRAYSCALE"
    assert metadata["input"]["normalization"] == {"mean": [0.0], "std": [255.0]}  # the built-in teacher's [0, 1]
    assert metadata["input"]["range"] == [0.0, 1.0]
    assert metadata["output"]["associated_files"][0]["name"] == "labels.txt"
    assert metadata["output"]["associated_files"][0]["type"] == tflite_metadata.TENSOR_AXIS_LABELS


@pytest.mark.parametrize("scale,offset,mean,std", [(1.0, 0.0, 0.0, 255.0), (255.0, 0.0, 0.0, 1.0),
                                                   (2.0, -1.0, 127.5, 127.5)])
def test_normalisation_round_trips_for_each_convention(tiny_run, scale, offset, mean, std):
    content = (tiny_run / "tflite" / "student_float32.tflite").read_bytes()
    built = tflite_metadata.build("m", "d", ["a", "b"], [1, 8, 8, 3], scale, offset)
    metadata = tflite_metadata.read(tflite_metadata.attach(content, built, "a\nb\n"))
    assert metadata["input"]["normalization"] == {"mean": [mean], "std": [std]}
    assert metadata["input"]["color_space"] == "RGB" and metadata["labels"] == ["a", "b"]
    assert tflite_metadata.input_scaling(metadata) == pytest.approx((scale, offset))


def test_a_file_copied_alone_predicts_as_with_its_card(tiny_run, tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tiny_run / "tflite" / "student_int8.tflite", alone / "model.tflite")
    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    images = []
    for i, image in enumerate(pixels):
        images.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(images[-1])

    def runner(model):
        result = subprocess.run([sys.executable, "-c", NO_TF, str(RUNNER), str(model), *map(str, images)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result

    with_card, without = runner(tiny_run / "tflite" / "student_int8.tflite"), runner(alone / "model.tflite")
    assert with_card.stdout == without.stdout and "note: no model_card.json" not in without.stderr


def test_audio_metadata_carries_the_front_end():
    import keras

    from tfgan_compress import export
    from tfgan_compress.audio_frontend import DEFAULTS

    model = keras.Sequential([keras.Input((49, 40, 1)), keras.layers.Flatten(), keras.layers.Dense(2),
                              keras.layers.Softmax()])
    built = tflite_metadata.build("m", "d", ["yes", "no"], [1, 49, 40, 1], 1.0, 0.0, frontend=dict(DEFAULTS))
    metadata = tflite_metadata.read(tflite_metadata.attach(export.convert(model, "float32"), built, "yes\nno\n"))
    assert metadata["frontend"] == DEFAULTS and metadata["input"]["name"] == "features"
    assert tflite_metadata.input_scaling(metadata) == pytest.approx((1.0, 0.0))


def test_metadata_without_one_normalisation_gives_no_scaling():
    # files of other tools: no normalisation, or one per channel; predict then says it assumes pixels / 255
    assert tflite_metadata.input_scaling({"input": {}}) is None
    assert tflite_metadata.input_scaling({"input": {"normalization": {"mean": [1.0, 2.0, 3.0],
                                                                      "std": [1.0, 1.0, 1.0]}}}) is None
    assert tflite_metadata.input_scaling({"input": {"normalization": {"mean": [0.0], "std": [0.0]}}}) is None
