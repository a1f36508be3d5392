"""Divergence is caught with a message that names the setting to change; sample grids."""

import numpy as np
import pytest

from tfgan_compress import callbacks
from tfgan_compress.callbacks import DivergenceMonitor
from tfgan_compress.errors import TrainingDiverged


def test_nan_loss_stops_with_a_clear_message():
    monitor = DivergenceMonitor("gan", "Lower gan.discriminator_learning_rate.")
    monitor.on_epoch_begin(2)
    monitor.on_train_batch_end(0, {"d_loss": 1.2, "g_loss": 0.3})
    with pytest.raises(TrainingDiverged, match=r"gan: g_loss became nan at epoch 3, step 5.*checkpoints/gan.*"
                                               r"gan.discriminator_learning_rate"):
        monitor.on_train_batch_end(4, {"d_loss": 1.2, "g_loss": float("nan")})
    with pytest.raises(TrainingDiverged, match="inf"):
        monitor.on_train_batch_end(5, {"d_loss": float("inf")})


def test_a_discriminator_that_wins_for_several_epochs_stops_the_gan():
    monitor = DivergenceMonitor("gan", "Lower gan.discriminator_learning_rate.", watch_discriminator=True,
                                win_threshold=0.05, patience=3)
    monitor.on_epoch_end(0, {"d_loss": 0.01})
    monitor.on_epoch_end(1, {"d_loss": 0.5})  # recovers: the count starts again
    monitor.on_epoch_end(2, {"d_loss": 0.01})
    monitor.on_epoch_end(3, {"d_loss": 0.02})
    with pytest.raises(TrainingDiverged, match="discriminator wins outright.*3 epochs"):
        monitor.on_epoch_end(4, {"d_loss": 0.0})


def test_healthy_training_passes():
    monitor = DivergenceMonitor("distill", "Lower distill.learning_rate.", watch_discriminator=False)
    for epoch in range(5):
        monitor.on_epoch_begin(epoch)
        monitor.on_train_batch_end(0, {"distill_loss": 0.1})
        monitor.on_epoch_end(epoch, {"d_loss": 0.0})  # ignored when not watching a discriminator


def test_a_divergence_in_the_first_epoch_promises_no_checkpoint():
    monitor = DivergenceMonitor("teacher", "Lower teacher.learning_rate.")
    monitor.on_epoch_begin(0)
    with pytest.raises(TrainingDiverged, match="no epoch had finished, so nothing was kept") as info:
        monitor.on_train_batch_end(0, {"loss": float("nan")})
    assert "checkpoints/" not in str(info.value)


def test_spectrogram_grids_run_time_to_the_right_and_low_pitch_at_the_bottom():
    maps = np.zeros((2, 6, 4, 1), np.float32)  # (clips, frames, mel bins, 1)
    maps[:, 0, 0] = 1.0  # the first frame's lowest bin
    picture = callbacks.as_spectrogram_picture(maps)
    assert picture.shape == (2, 4, 6, 1) and picture[0, -1, 0, 0] == 1.0 and picture.sum() == 2
    grid = callbacks.image_grid(maps, rows=1, min_cell_px=6, spectrograms=True)
    assert grid.shape == (4, 2 * 6 + 1, 1)  # two cells of 4 mel rows by 6 frames, a 1-px gap between
    assert grid[-1, 0, 0] == 255 and grid[0, 0, 0] == 0
