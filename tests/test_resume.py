"""A run killed with SIGKILL in the middle of GAN training resumes where it stopped."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

# only the int8 student is exported: the other conversions would cost time and test nothing here
CONFIG = {"gan": {"epochs": 12, "steps_per_epoch": 15}, "export": {"variants": ["int8"], "generator_variants": []}}


def command(out, config_path):
    return [sys.executable, "-m", "tfgan_compress.cli", "run", "--preset", "tiny", "--out", str(out),
            "--config", str(config_path)]


@pytest.mark.slow
def test_killed_run_resumes_from_the_last_finished_gan_epoch(tmp_path):
    config_path = tmp_path / "longer_gan.json"
    config_path.write_text(json.dumps(CONFIG))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(command(out, config_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=env)
    deadline = time.time() + 240
    while not (out / "samples" / "epoch_004.png").exists():
        assert first.poll() is None, "the run ended before it could be interrupted"
        assert time.time() < deadline, "GAN training did not reach epoch 4 in time"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (out / "generator.keras").exists()
    metadata = json.loads((out / "checkpoints" / "gan" / "training_metadata.json").read_text())
    done = metadata["epoch"]
    assert done >= 3

    second = subprocess.run(command(out, config_path), capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    output = second.stdout
    assert "[1/5] teacher: using" in output  # finished stage skipped
    gan_part = output[output.index("[2/5] gan"):output.index("[3/5] distill")]
    assert f"resuming gan after epoch {done}" in gan_part
    assert "Epoch 1/12" not in gan_part and f"Epoch {done + 1}/12" in gan_part
    for name in ["generator.keras", "student.keras", "report.json", "tflite/model_card.json"]:
        assert (out / name).is_file(), name
    assert not (out / "checkpoints" / "gan").exists()  # backup removed once the stage finished
    assert not list(out.rglob("*.tmp*"))
