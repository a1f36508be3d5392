"""Feature maps back to sound, so that a person can listen to the generator's samples.

A log-mel map keeps neither the phase nor the fine frequency detail, so this is an
estimate: the mel magnitudes (the front end's last step undone), spread back onto the FFT
bins by the pseudo-inverse of the mel matrix, then Griffin-Lim (Griffin and Lim, 1984,
"Signal estimation from modified short-time Fourier transform"): start from random
phases and alternate ``x = inverse_stft(|S| e^{i phase})`` and ``phase = angle(stft(x))``,
with ``tf.signal.stft`` / ``tf.signal.inverse_stft`` on the front end's own framing.
Intelligible for keywords, not hi-fi.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio_frontend import FrontEnd, write_wav


def griffin_lim(magnitudes: np.ndarray, frontend: FrontEnd, iterations: int = 60, seed: int = 0) -> np.ndarray:
    """``(frames, fft_length // 2 + 1)`` STFT magnitudes -> float PCM at ``frontend.sample_rate``."""
    import tensorflow as tf

    window, hop, fft = frontend.window, frontend.hop, frontend.fft_length
    inverse_window = tf.signal.inverse_stft_window_fn(hop)
    magnitude = tf.constant(magnitudes, tf.complex64)
    rng = np.random.default_rng(seed)
    phase = tf.constant(np.exp(2j * np.pi * rng.random(magnitudes.shape)), tf.complex64)
    for _ in range(iterations):
        pcm = tf.signal.inverse_stft(magnitude * phase, window, hop, fft, window_fn=inverse_window)
        spectrum = tf.signal.stft(pcm, window, hop, fft)
        phase = spectrum / tf.cast(tf.maximum(tf.abs(spectrum), 1e-8), tf.complex64)
    pcm = tf.signal.inverse_stft(magnitude * phase, window, hop, fft, window_fn=inverse_window).numpy()
    return pcm


def features_to_pcm(features: np.ndarray, frontend: FrontEnd, iterations: int = 60, seed: int = 0) -> np.ndarray:
    """One feature map ``(frames, mel_bins[, 1])`` -> PCM with peak 0.9 (silence stays 0)."""
    mel = frontend.mel_from_features(features)
    linear = np.maximum(mel @ np.linalg.pinv(frontend.mel_matrix), 0.0)
    pcm = griffin_lim(linear, frontend, iterations, seed)
    peak = np.abs(pcm).max()
    return pcm * (0.9 / peak) if peak > 0 else pcm


def write_sample_recordings(generator, settings: dict, class_names, folder: Path, per_class: int = 3,
                            seed: int = 0) -> list[Path]:
    """``per_class`` generator samples of each class as ``folder/<class>_<i>.wav``."""
    from .quality import generate

    frontend = FrontEnd(settings)
    labels = np.repeat(np.arange(len(class_names), dtype=np.int32), per_class)
    samples = generate(generator, labels, seed, batch_size=256)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (features, label) in enumerate(zip(samples, labels)):
        path = folder / f"{_safe(class_names[label])}_{i % per_class}.wav"
        write_wav(path, features_to_pcm(features, frontend, seed=seed + i), frontend.sample_rate)
        written.append(path)
    return written


def _safe(name: str) -> str:
    """A class name as a file name (letters, digits, ``-`` and ``_``; the rest ``_``)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name)) or "class"
