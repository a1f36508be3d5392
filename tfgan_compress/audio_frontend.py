"""The audio front end: WAV file -> PCM -> log-mel feature map, in numpy and the standard
library only.

This one implementation computes the features everywhere: when the tool reads the
recordings (``audio:`` sources), in ``tfgan-compress predict`` and in the stand-alone
runner ``export/predict.py`` (copy ``audio_frontend.py`` beside it), so that a deployed
model sees exactly the features it was trained on. ``tests/test_audio_frontend.py`` checks
it against TensorFlow's ``tf.signal.stft`` and ``tf.signal.linear_to_mel_weight_matrix``.

The steps, with the settings of the ``audio`` config section (recorded in each model card
as ``frontend``)::

    pcm      = int16 samples / 32768, channels averaged (stereo mixed down)
    pcm      = first clip_seconds of it, resampled to sample_rate (band-limited, by FFT)
    pcm      = pcm / max|pcm|                      (peak 1; a silent clip stays 0)
    pcm      = zero-padded at the end to clip_seconds * sample_rate samples
    frames   = windows of window_ms every hop_ms, periodic Hann window, no padding
    spectrum = |rfft(frame * window, fft_length)|  (fft_length: the next power of 2)
    mel      = spectrum @ W   (W: HTK-mel triangles from lower_hz to upper_hz, mel_bins of
                               them, as tf.signal.linear_to_mel_weight_matrix builds them)
    feature  = (log max(mel, floor) - log floor) / (log ceiling - log floor), in [0, 1]

``ceiling = sum(window) * max_j sum_k W[k, j]`` bounds every mel value of a clip of peak 1,
and ``floor = ceiling * 10^(-dynamic_range_db / 20)``, so that the features span
``dynamic_range_db`` decibels below the loudest value possible, whatever the data. The
feature map is ``(frames, mel_bins)``, time down the rows, and the models take it as a
one-channel image ``(frames, mel_bins, 1)``; on a microcontroller, compute it the same way
(the model card gives every setting) and quantise it with the int8 file's input
parameters. The micro_speech example of TFLite-Micro uses the same framing (30 ms windows
every 20 ms, 40 mel channels, one second at 16 kHz: 49 x 40).
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

#: the front end's settings and their defaults (the ``audio`` config section has the same)
DEFAULTS = {
    "sample_rate": 16000,
    "clip_seconds": 1.0,
    "window_ms": 30.0,
    "hop_ms": 20.0,
    "mel_bins": 40,
    "lower_hz": 20.0,
    "upper_hz": 7600.0,
    "dynamic_range_db": 80.0,
}
#: sample rates a WAV file may have (each is resampled to ``sample_rate``)
SUPPORTED_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
MAX_WAV_BYTES = 64 * 2**20


class AudioError(ValueError):
    """A recording or a front-end setting this front end cannot use (one line, naming the file)."""


class FrontEnd:
    """The settings of one front end (:data:`DEFAULTS`, overridden by ``settings``) and the
    derived sizes: samples per clip, window, hop and FFT, frames per clip, the mel matrix."""

    def __init__(self, settings: dict | None = None):
        values = dict(DEFAULTS)
        unknown = sorted(set(settings or {}) - set(DEFAULTS))
        if unknown:
            raise AudioError(f"unknown front-end setting(s): {', '.join(unknown)}")
        values.update(settings or {})
        for key, value in values.items():  # a model card is a file anyone can edit
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise AudioError(f"front-end setting {key} must be a finite number, got {value!r}")
        self.settings = values
        rate = values["sample_rate"]
        if rate not in SUPPORTED_RATES:
            raise AudioError(f"sample_rate {rate} is not one of {', '.join(map(str, SUPPORTED_RATES))}")
        self.sample_rate = int(rate)
        self.clip_samples = int(round(values["clip_seconds"] * rate))
        self.window = int(round(values["window_ms"] * rate / 1000))
        self.hop = int(round(values["hop_ms"] * rate / 1000))
        if self.window < 16 or self.hop < 1:
            raise AudioError(f"window_ms {values['window_ms']} and hop_ms {values['hop_ms']} give a window of "
                             f"{self.window} and a hop of {self.hop} samples; need at least 16 and 1")
        if self.clip_samples < self.window:
            raise AudioError(f"clip_seconds {values['clip_seconds']} is shorter than one window ({values['window_ms']} ms)")
        if not 0 <= values["lower_hz"] < values["upper_hz"] <= rate / 2:
            raise AudioError(f"need 0 <= lower_hz < upper_hz <= sample_rate / 2 ({rate / 2:g}), got "
                             f"{values['lower_hz']:g} and {values['upper_hz']:g}")
        if values["mel_bins"] < 2 or values["dynamic_range_db"] <= 0:
            raise AudioError("need mel_bins >= 2 and dynamic_range_db > 0")
        self.fft_length = 1 << (self.window - 1).bit_length()
        self.frames = 1 + (self.clip_samples - self.window) // self.hop
        self.mel_matrix = mel_weight_matrix(int(values["mel_bins"]), self.fft_length // 2 + 1, rate,
                                            values["lower_hz"], values["upper_hz"])
        self.hann = hann_window(self.window)
        self.ceiling = float(self.hann.sum() * self.mel_matrix.sum(axis=0).max())
        self.floor = self.ceiling * 10 ** (-values["dynamic_range_db"] / 20)

    @property
    def feature_shape(self) -> tuple:
        """The models' input: ``(frames, mel_bins, 1)``."""
        return self.frames, int(self.settings["mel_bins"]), 1

    def clip(self, pcm: np.ndarray, rate: int) -> np.ndarray:
        """Mono float PCM at ``rate`` -> one clip: cut, resampled, peak 1, padded (float32)."""
        pcm = np.asarray(pcm, np.float64)[: int(math.ceil(self.settings["clip_seconds"] * rate))]
        if rate != self.sample_rate:
            pcm = resample(pcm, rate, self.sample_rate)
        pcm = pcm[: self.clip_samples]
        peak = np.abs(pcm).max() if pcm.size else 0.0
        if peak > 0:
            pcm = pcm / peak
        return np.pad(pcm, (0, self.clip_samples - len(pcm))).astype(np.float32)

    def magnitudes(self, clip: np.ndarray) -> np.ndarray:
        """|STFT| of a clip: ``(frames, fft_length // 2 + 1)``."""
        starts = np.arange(self.frames) * self.hop
        frames = clip[starts[:, None] + np.arange(self.window)] * self.hann
        return np.abs(np.fft.rfft(frames, self.fft_length, axis=-1))

    def features(self, clip: np.ndarray) -> np.ndarray:
        """One clip (``clip_samples`` floats) -> the feature map ``(frames, mel_bins, 1)`` in [0, 1]."""
        mel = self.magnitudes(np.asarray(clip, np.float64)) @ self.mel_matrix
        scaled = (np.log(np.maximum(mel, self.floor)) - math.log(self.floor)) / math.log(self.ceiling / self.floor)
        return np.clip(scaled, 0.0, 1.0).astype(np.float32)[..., None]

    def mel_from_features(self, features: np.ndarray) -> np.ndarray:
        """The inverse of the last step: feature maps (..., frames, mel_bins[, 1]) -> mel magnitudes."""
        f = np.asarray(features, np.float64)
        f = f[..., 0] if f.shape[-1] == 1 and f.ndim >= 3 else f
        return self.floor * np.exp(np.clip(f, 0, 1) * math.log(self.ceiling / self.floor))

    def wav_features(self, path, raw: bytes | None = None) -> np.ndarray:
        """A WAV file (or its bytes) -> its feature map; :class:`AudioError` naming the file."""
        pcm, rate = read_wav(path, raw)
        return self.features(self.clip(pcm, rate))


def hann_window(length: int) -> np.ndarray:
    """The periodic Hann window (``tf.signal.hann_window(length, periodic=True)``)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)


def hz_to_mel(hz):
    """HTK mel scale: ``1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def mel_weight_matrix(mel_bins: int, spectrum_bins: int, sample_rate: float, lower_hz: float,
                      upper_hz: float) -> np.ndarray:
    """``(spectrum_bins, mel_bins)`` triangles evenly spaced on the HTK mel scale, the DC bin
    zero: the matrix of ``tf.signal.linear_to_mel_weight_matrix`` with the same arguments."""
    linear = hz_to_mel(np.linspace(0.0, sample_rate / 2, spectrum_bins)[1:])[:, None]
    edges = np.linspace(hz_to_mel(lower_hz), hz_to_mel(upper_hz), mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (linear - lower) / (center - lower)
    falling = (upper - linear) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(weights, ((1, 0), (0, 0)))


def resample(pcm: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited resampling by the FFT: the spectrum cut (or zero-extended) at the lower
    Nyquist frequency, ``round(len * target / rate)`` samples out."""
    count = int(round(len(pcm) * target / rate))
    if len(pcm) == 0 or count == 0:
        return np.zeros(count)
    spectrum = np.fft.rfft(pcm)
    keep = min(len(spectrum), count // 2 + 1)
    out = np.zeros(count // 2 + 1, complex)
    out[:keep] = spectrum[:keep]
    return np.fft.irfft(out, count) * (count / len(pcm))


def read_wav(path, raw: bytes | None = None) -> tuple:
    """``(mono float64 PCM in [-1, 1), sample rate)`` of a 16-bit PCM WAV file.

    Refused with one line naming the file: not a WAV file, a corrupt or truncated one, a
    sample format other than 16-bit integer PCM (8-, 24-, 32-bit or float), a rate outside
    :data:`SUPPORTED_RATES`, no samples at all.
    """
    import io

    where = str(path)
    try:
        if raw is None:
            file = Path(path)
            if not file.is_file():
                raise AudioError(f"{where}: " + ("file not found" if not file.exists() else "not a regular file"))
            if file.stat().st_size > MAX_WAV_BYTES:
                raise AudioError(f"{where}: {file.stat().st_size} bytes is too large for a keyword recording")
            raw = file.read_bytes()
        if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
            raise AudioError(f"{where}: not a WAV file (no RIFF/WAVE header)")
        with wave.open(io.BytesIO(raw)) as wav:
            channels, width, rate, count = wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()
            if width != 2:
                raise AudioError(f"{where}: {8 * width}-bit samples; only 16-bit PCM is supported")
            if rate not in SUPPORTED_RATES:
                raise AudioError(f"{where}: sample rate {rate} Hz is not supported "
                                 f"({', '.join(map(str, SUPPORTED_RATES))})")
            data = wav.readframes(count)
    except AudioError:
        raise
    except wave.Error as err:
        reason = str(err)
        if "unknown format: 3" in reason:
            reason = "floating-point samples; only 16-bit PCM is supported"
        elif "unknown format" in reason:
            reason = f"{reason}; only 16-bit PCM is supported"
        raise AudioError(f"{where}: not a readable WAV file ({reason})") from None
    except Exception as err:  # noqa: BLE001 - the wave module raises EOFError, RuntimeError, struct.error...
        raise AudioError(f"{where}: not a readable WAV file ({type(err).__name__}: {err})".replace(": )", ")")) from None
    usable = len(data) // (2 * channels) * 2 * channels
    if usable == 0:
        raise AudioError(f"{where}: holds no samples")
    if usable < count * 2 * channels:
        raise AudioError(f"{where}: truncated ({len(data)} of {count * 2 * channels} bytes of samples)")
    pcm = np.frombuffer(data[:usable], "<i2").reshape(-1, channels).astype(np.float64).mean(axis=1) / 32768.0
    return pcm, rate


def write_wav(path, pcm: np.ndarray, rate: int) -> None:
    """Float PCM in [-1, 1] -> a mono 16-bit PCM WAV file."""
    samples = np.clip(np.round(np.asarray(pcm, np.float64) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(rate))
        wav.writeframes(samples.tobytes())
