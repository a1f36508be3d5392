"""benchmarks/speech.py: reusing an earlier run's teachers, and the speaker folds."""

import numpy as np
import pytest

from benchmarks import speech
from tfgan_compress import config, data
from tfgan_compress.errors import UsageError


def test_teachers_from_an_earlier_run_are_taken_per_split_or_refused(tmp_path):
    preset = speech.split_config("audio:x.zip", 0, None)
    assert speech.earlier_teacher(preset, None, "official") is preset
    with pytest.raises(UsageError, match="official/gan/teacher.keras not found"):
        speech.earlier_teacher(preset, tmp_path, "official")
    (tmp_path / "speaker-theo" / "gan").mkdir(parents=True)
    (tmp_path / "speaker-theo" / "gan" / "teacher.keras").write_bytes(b"")
    reused = speech.earlier_teacher(preset, tmp_path, "speaker-theo")
    assert reused.teacher_path == str(tmp_path / "speaker-theo" / "gan" / "teacher.keras")
    assert reused.teacher_input == "0-1" and reused.gan == preset.gan and isinstance(reused, config.RunConfig)


def test_a_speaker_fold_tests_on_that_speaker_alone(monkeypatch):
    names = [f"{d}_{who}_{i}.wav" for who in ("ann", "bob", "cy") for d in range(2) for i in range(2)]
    x = np.random.default_rng(0).random((len(names), 8, 8, 1)).astype(np.float32)
    y = np.array([int(n[0]) for n in names])
    official = data.make_dataset(x[:6], y[:6], x[6:], y[6:], "audio:x", "audio:x")
    monkeypatch.setattr(speech, "recording_names", lambda source: names)
    fold = speech.speaker_split("audio:x", official, "bob")
    assert len(fold.x_test) == 4 and len(fold.x_train) == 8
    with pytest.raises(UsageError, match="speaker 'zed' not found"):
        speech.speaker_split("audio:x", official, "zed")
