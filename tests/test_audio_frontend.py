"""audio_frontend: WAV reading, resampling and the log-mel features, against tf.signal."""

import struct
import wave

import numpy as np
import pytest
import tensorflow as tf

from tfgan_compress.audio_frontend import (AudioError, FrontEnd, mel_weight_matrix, read_wav, resample,
                                           write_wav)


def tone(frequency, rate=8000, seconds=0.3, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def raw_wav(path, samples: bytes, width=2, channels=1, rate=8000, frames=None):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples)
    return path


@pytest.mark.parametrize("rate,bins,fft", [(16000, 40, 512), (8000, 16, 256)])
def test_mel_matrix_is_tf_signals(rate, bins, fft):
    ours = mel_weight_matrix(bins, fft // 2 + 1, rate, 20.0, rate / 2 - 100)
    theirs = tf.signal.linear_to_mel_weight_matrix(bins, fft // 2 + 1, rate, 20.0, rate / 2 - 100,
                                                   dtype=tf.float64).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_spectrum_is_tf_signal_stft():
    frontend = FrontEnd()
    clip = np.random.default_rng(0).normal(size=frontend.clip_samples)
    theirs = tf.abs(tf.signal.stft(tf.constant(clip), frontend.window, frontend.hop, frontend.fft_length)).numpy()
    np.testing.assert_allclose(frontend.magnitudes(clip), theirs, atol=1e-6)
    assert frontend.feature_shape == (49, 40, 1)  # micro_speech's framing of one second


def test_features_are_in_unit_range_and_loudness_free():
    frontend = FrontEnd({"sample_rate": 8000, "upper_hz": 3800})
    quiet, loud = (frontend.features(frontend.clip(tone(500, amplitude=a), 8000)) for a in (0.01, 0.9))
    np.testing.assert_allclose(quiet, loud, atol=1e-5)  # peak normalised
    assert 0.0 <= loud.min() and loud.max() <= 1.0
    silence = frontend.features(frontend.clip(np.zeros(100), 8000))
    assert silence.max() == 0.0


def test_tone_lights_its_mel_band_and_round_trips_from_features():
    frontend = FrontEnd({"sample_rate": 8000, "upper_hz": 3800, "mel_bins": 20})
    low, high = (frontend.features(frontend.clip(tone(f), 8000))[..., 0].mean(axis=0).argmax() for f in (400, 2500))
    assert high > low
    features = frontend.features(frontend.clip(tone(1000), 8000))
    mel = frontend.magnitudes(frontend.clip(tone(1000), 8000)) @ frontend.mel_matrix
    np.testing.assert_allclose(frontend.mel_from_features(features), np.maximum(mel, frontend.floor), rtol=1e-4)


def test_resampling_keeps_the_pitch_and_the_duration():
    up = resample(tone(440, 8000, 0.5), 8000, 16000)
    assert len(up) == 8000
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * 16000 / len(up) - 440) < 3


def test_eight_and_sixteen_khz_recordings_give_the_same_features(tmp_path):
    frontend = FrontEnd({"sample_rate": 16000, "upper_hz": 3800})
    a = write_then_read(tmp_path / "a.wav", tone(700, 8000), 8000, frontend)
    b = write_then_read(tmp_path / "b.wav", tone(700, 16000), 16000, frontend)
    assert np.abs(a - b).mean() < 0.02


def write_then_read(path, pcm, rate, frontend):
    write_wav(path, pcm, rate)
    return frontend.wav_features(path)


def test_stereo_is_mixed_down(tmp_path):
    left, right = tone(300), tone(900)
    interleaved = np.stack([left, right], axis=1)
    samples = np.round(interleaved * 32767).astype("<i2").tobytes()
    pcm, rate = read_wav(raw_wav(tmp_path / "s.wav", samples, channels=2))
    np.testing.assert_allclose(pcm, (np.round(left * 32767) + np.round(right * 32767)) / 2 / 32768, atol=1e-9)
    assert rate == 8000


@pytest.mark.parametrize("width,words", [(1, "8-bit"), (3, "24-bit"), (4, "32-bit")])
def test_sample_widths_other_than_16_bit_are_refused(tmp_path, width, words):
    path = raw_wav(tmp_path / "x.wav", b"\x00" * width * 800, width=width)
    with pytest.raises(AudioError, match=f"x.wav: {words} samples; only 16-bit PCM"):
        read_wav(path)


def test_float_wav_is_refused(tmp_path):
    data = np.zeros(800, "<f4").tobytes()
    header = (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 3, 1, 8000,
                                                                                       32000, 4, 32)
              + b"data" + struct.pack("<I", len(data)))
    (tmp_path / "f.wav").write_bytes(header + data)
    with pytest.raises(AudioError, match="f.wav: .*floating-point samples"):
        read_wav(tmp_path / "f.wav")


@pytest.mark.parametrize("content,message", [
    (b"", "not a WAV file"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a WAV file"),
    (b"RIFF\x24\x00\x00\x00WAVEjunk", "not a readable WAV file"),
])
def test_non_wav_and_corrupt_files_are_refused(tmp_path, content, message):
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(AudioError, match=f"bad.wav: {message}"):
        read_wav(tmp_path / "bad.wav")


def test_empty_truncated_and_odd_rate_recordings_are_refused(tmp_path):
    with pytest.raises(AudioError, match="empty.wav: holds no samples"):
        read_wav(raw_wav(tmp_path / "empty.wav", b""))
    whole = raw_wav(tmp_path / "whole.wav", b"\x01\x00" * 800).read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:-400])
    with pytest.raises(AudioError, match="cut.wav: truncated"):
        read_wav(tmp_path / "cut.wav")
    with pytest.raises(AudioError, match="odd.wav: sample rate 12345 Hz is not supported"):
        read_wav(raw_wav(tmp_path / "odd.wav", b"\x00\x00" * 800, rate=12345))


def test_bad_front_end_settings_are_refused():
    with pytest.raises(AudioError, match="sample_rate 12000"):
        FrontEnd({"sample_rate": 12000})
    with pytest.raises(AudioError, match="upper_hz"):
        FrontEnd({"sample_rate": 8000})  # 7600 Hz is above 8 kHz's Nyquist frequency
    with pytest.raises(AudioError, match="shorter than one window"):
        FrontEnd({"clip_seconds": 0.01})
    with pytest.raises(AudioError, match="unknown front-end setting"):
        FrontEnd({"rate": 8000})
    for value in ("1", None, True, float("nan")):  # as an edited model card may hold
        with pytest.raises(AudioError, match="clip_seconds must be a finite number"):
            FrontEnd({"clip_seconds": value})
