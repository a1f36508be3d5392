"""Recordings end to end: ``audio:`` sources, the speech preset, a tiny run on tone WAV files,
its model card, sound samples and ``predict`` on WAV files (also without TensorFlow)."""

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from tfgan_compress import cli, config, data, export, networks
from tfgan_compress.audio_frontend import write_wav
from tfgan_compress.errors import DataError

RUNNER = Path(__file__).resolve().parent.parent / "export" / "predict.py"
NO_TF = ("import runpy, sys; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
         "runpy.run_path(sys.argv[0], run_name='__main__')")
#: a small front end for tests: a quarter second at 8 kHz -> 12 frames x 16 mel bins
SMALL = ["--set", "audio.sample_rate=8000", "--set", "audio.clip_seconds=0.25", "--set", "audio.upper_hz=3800",
         "--set", "audio.mel_bins=16"]
SMALL_SETTINGS = {"sample_rate": 8000, "clip_seconds": 0.25, "upper_hz": 3800.0, "mel_bins": 16}
PITCHES = {"low": 300, "mid": 900, "high": 2200}


def write_tones(root: Path, per_class=(10, 3), rate=8000, layout="split"):
    """Chirps of one pitch per class (``low``, ``mid``, ``high``), 0.15-0.3 s, a little noise."""
    rng = np.random.default_rng(0)
    splits = (("train", per_class[0]), ("test", per_class[1])) if layout == "split" else (("", sum(per_class)),)
    for split, count in splits:
        for name, pitch in PITCHES.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                t = np.arange(int(rate * rng.uniform(0.15, 0.3))) / rate
                pcm = 0.5 * np.sin(2 * np.pi * pitch * (1 + 0.3 * t) * t) + 0.01 * rng.normal(size=t.size)
                write_wav(folder / f"{i}.wav", pcm, rate)
    return root


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return write_tones(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory, tones):
    out = tmp_path_factory.mktemp("runs") / "tones"
    assert cli.main(["run", "--data", f"audio:{tones}", "--preset", "tiny", "--out", str(out), *SMALL]) == 0
    return out


def test_audio_folder_becomes_feature_maps(tones):
    ds = data.load(f"audio:{tones}", audio=SMALL_SETTINGS)
    assert ds.x_train.shape == (30, 12, 16, 1) and ds.x_test.shape == (9, 12, 16, 1)
    assert ds.class_names == ("high", "low", "mid")
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.frontend["sample_rate"] == 8000 and data.fingerprint(ds)["frontend"] == ds.frontend


def test_class_folders_without_a_split_are_split_per_class(tmp_path):
    ds = data.load(f"audio:{write_tones(tmp_path, layout='flat')}", audio=SMALL_SETTINGS)
    assert len(ds.x_train) + len(ds.x_test) == 39 and np.bincount(ds.y_test).tolist() == [3, 3, 3]


def test_zip_of_recordings_reads_like_the_folder(tmp_path, tones):
    import shutil

    archive = shutil.make_archive(str(tmp_path / "tones"), "zip", tones.parent, tones.name)
    from_zip = data.load(f"audio:{archive}", audio=SMALL_SETTINGS)
    from_folder = data.load(f"audio:{tones}", audio=SMALL_SETTINGS)
    assert data.fingerprint(from_zip)["fingerprint"] == data.fingerprint(from_folder)["fingerprint"]


def test_bad_recordings_are_refused_naming_the_file(tmp_path):
    root = write_tones(tmp_path / "d", per_class=(2, 1))
    (root / "train" / "low" / "1.wav").write_bytes(b"RIFF....WAVEnot really")
    with pytest.raises(DataError, match=r"train/low/1\.wav: not a readable WAV file"):
        data.load(f"audio:{root}", audio=SMALL_SETTINGS)
    (root / "train" / "low" / "1.wav").unlink()
    (root / "train" / "silent").mkdir()
    with pytest.raises(DataError, match="silent: class folder holds no recordings"):
        data.load(f"audio:{root}", audio=SMALL_SETTINGS)


def test_cli_refuses_a_bad_recording_and_writes_nothing(tmp_path, capsys):
    root = write_tones(tmp_path / "d", per_class=(2, 1))
    with wave.open(str(root / "train" / "mid" / "0.wav"), "wb") as wav:  # 8-bit
        wav.setnchannels(1), wav.setsampwidth(1), wav.setframerate(8000), wav.writeframes(b"\x80" * 800)
    out = tmp_path / "run"
    assert cli.main(["run", "--data", f"audio:{root}", "--preset", "tiny", "--out", str(out), *SMALL]) == 2
    assert "mid/0.wav: 8-bit samples; only 16-bit PCM" in capsys.readouterr().err
    assert not out.exists()


def test_feature_map_too_large_for_the_models_is_refused(tones):
    with pytest.raises(DataError, match="99 frames x 40 mel bins"):
        data.load(f"audio:{tones}", audio={"clip_seconds": 2.0})


def test_audio_settings_for_images_are_refused(tmp_path, capsys):
    assert cli.main(["run", "--preset", "tiny", "--out", str(tmp_path / "r"), "--set", "audio.mel_bins=20"]) == 2
    assert "audio.mel_bins: not read by this run" in capsys.readouterr().err


def test_recordings_choose_the_speech_preset():
    assert config.preset_for(None, audio=True) == "speech"
    with pytest.raises(Exception, match="audio.sample_rate must be one of"):
        config.merge(config.preset("speech"), {"audio": {"sample_rate": 12000}})


def test_speech_students_int8_file_fits_in_20_kb():
    speech = config.preset("speech")
    shape = (49, 40, 1)  # the default front end's feature map
    student = networks.build_classifier(shape, 10, speech.distill.network, "student")
    calibration = np.random.default_rng(0).random((32, *shape)).astype(np.float32)
    content = export.convert(export.probability_model(student), "int8", calibration)
    content = export.with_metadata("int8", content, [str(c) for c in range(10)], {"scale": 1.0, "offset": 0.0},
                                   "audio:x", frontend={"sample_rate": 16000})
    assert len(content) <= 20 * 1024  # as written, metadata included


def test_run_records_the_front_end_in_the_model_card(audio_run):
    card = json.loads((audio_run / "tflite" / "model_card.json").read_text())
    assert card["frontend"]["settings"]["mel_bins"] == 16
    assert card["frontend"]["feature_shape"] == [12, 16, 1] == card["input"]["shape"][1:]
    assert "log-mel" in card["input"]["normalisation"]


def test_report_speaks_of_recordings(audio_run):
    text = (audio_run / "report.md").read_text()
    assert "real test recordings" in text and "trained here on log-mel feature maps" in text
    assert "bytes of log-mel feature maps of the training recordings" in text
    assert "images" not in text.replace("images/s", "")  # the throughput column's name is shared


def test_generator_samples_are_written_as_sound(audio_run):
    recordings = sorted((audio_run / "samples").glob("*.wav"))
    assert [p.name for p in recordings if p.name.endswith("_0.wav")] == ["high_0.wav", "low_0.wav", "mid_0.wav"]
    with wave.open(str(recordings[0])) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        assert wav.getnframes() > 1000


def test_predict_takes_wav_files(audio_run, tones, capsys):
    model = audio_run / "tflite" / "student_int8.tflite"
    clip = tones / "test" / "low" / "0.wav"
    assert cli.main(["predict", str(model), str(clip)]) == 0
    line = capsys.readouterr().out.strip().split("\t")
    assert line[0] == str(clip) and line[1] in PITCHES
    files = sorted(str(p) for p in (tones / "test").glob("*/*.wav"))
    assert cli.main(["predict", str(model), *files, "--labels-from-folders"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("accuracy\t") and lines[0].endswith("of 9 images)")
    assert sorted(line.split("\t")[0] for line in lines[1:]) == sorted(PITCHES)


def test_runner_without_tensorflow_agrees_with_the_package(audio_run, tones, capsys):
    model = audio_run / "tflite" / "student_int8_io.tflite"
    files = sorted(str(p) for p in (tones / "test").glob("*/*.wav"))
    assert cli.main(["predict", str(model), *files]) == 0
    ours = capsys.readouterr().out
    result = subprocess.run([sys.executable, "-c", NO_TF, str(RUNNER), str(model), *files], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ours
    accuracy = subprocess.run([sys.executable, "-c", NO_TF, str(RUNNER), str(model), *files, "--labels-from-folders"],
                              capture_output=True, text=True, timeout=120)
    assert accuracy.stdout.startswith("accuracy\t") and "of 9 images" in accuracy.stdout


def test_images_and_recordings_are_not_mixed_up(audio_run, tiny_run, tones, tmp_path, capsys):
    from PIL import Image

    picture = tmp_path / "p.png"
    Image.fromarray(np.zeros((16, 12), np.uint8)).save(picture)
    assert cli.main(["predict", str(audio_run / "tflite" / "student_int8.tflite"), str(picture)]) == 2
    assert "takes WAV recordings (it is an audio model)" in capsys.readouterr().err
    assert cli.main(["predict", str(tiny_run / "tflite" / "student_int8.tflite"),
                     str(tones / "test" / "low" / "0.wav")]) == 2
    assert "a recording, but" in capsys.readouterr().err


def test_sample_writes_feature_maps_and_recordings(audio_run, tmp_path):
    out = tmp_path / "set"
    assert cli.main(["sample", str(audio_run / "generator.keras"), "--out", str(out), "--per-class", "1", "--wav",
                     "--quiet"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == [
        "high/00000.png", "high/00000.wav", "labels.txt", "low/00000.png", "low/00000.wav", "mid/00000.png",
        "mid/00000.wav"]
    with wave.open(str(out / "low" / "00000.wav")) as wav:
        assert wav.getframerate() == 8000


def test_audio_model_copied_alone_reads_its_front_end_from_metadata(audio_run, tones, tmp_path, capsys):
    import shutil

    shutil.copy(audio_run / "tflite" / "student_int8.tflite", tmp_path / "kws.tflite")
    clip = str(tones / "test" / "mid" / "1.wav")
    assert cli.main(["predict", str(audio_run / "tflite" / "student_int8.tflite"), clip]) == 0
    with_card = capsys.readouterr().out
    assert cli.main(["predict", str(tmp_path / "kws.tflite"), clip]) == 0
    assert capsys.readouterr().out == with_card


def test_a_stage_command_reads_the_audio_settings(tones, tmp_path):
    import keras

    out = tmp_path / "stage"
    assert cli.main(["teacher", "--data", f"audio:{tones}", "--preset", "tiny", "--out", str(out), "--quiet",
                     *SMALL]) == 0
    assert tuple(keras.models.load_model(out / "teacher.keras").inputs[0].shape[1:]) == (12, 16, 1)


def test_tfds_spoken_digit_goes_through_the_same_front_end(monkeypatch):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    rate = 8000
    t = np.arange(rate // 4) / rate
    clips = [np.round(8000 * np.sin(2 * np.pi * (300 + 400 * (i % 3)) * t)).astype(np.int64) for i in range(30)]
    labels = [i % 3 for i in range(30)]

    def fake_load(name, split, as_supervised):
        assert (name, split, as_supervised) == ("spoken_digit", "train", True)
        return tf.data.Dataset.from_generator(lambda: zip(clips, labels), output_signature=(
            tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.int64)))

    monkeypatch.setattr(tfds, "load", fake_load)
    ds = data.load("tfds:spoken_digit", audio=SMALL_SETTINGS)
    assert ds.x_train.shape[1:] == (12, 16, 1) and len(ds.x_train) + len(ds.x_test) == 30
    assert np.bincount(ds.y_test).tolist() == [2, 2, 2] and ds.frontend["sample_rate"] == 8000


def test_compress_takes_a_runconfig_of_another_preset_for_recordings(tones, tmp_path):
    import tfgan_compress

    run = config.merge(config.preset("tiny"), {"audio": SMALL_SETTINGS})
    result = tfgan_compress.compress(None, f"audio:{tones}", tmp_path / "api", config=run, verbose=0,
                                     progress=lambda line: None)
    assert result.student.inputs[0].shape[1:] == (12, 16, 1)
    assert json.loads((tmp_path / "api" / "config.json").read_text())["preset"] == "tiny"
