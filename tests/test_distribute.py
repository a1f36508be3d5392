"""tf.distribute: two logical CPU devices under MirroredStrategy, and two local workers
under MultiWorkerMirroredStrategy. Each runs in its own process (devices and clusters must
be configured before TensorFlow starts)."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tfgan_compress import distribute
from tfgan_compress.errors import UsageError

HELPERS = Path(__file__).resolve().parent / "helpers"


def run_helper(name, *args, env=None, timeout=300):
    result = subprocess.run([sys.executable, str(HELPERS / name), *args], capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_replicas_give_the_same_step_as_one_device():
    losses = ["hinge", "non_saturating", "wasserstein_gp"]
    result = run_helper("mirrored_check.py", *losses)  # one process: TensorFlow starts once
    assert result["replicas"] == 2 and sorted(result["losses"]) == sorted(losses)
    for loss, measured in result["losses"].items():
        assert measured["weights_moved_by"] > 1e-3, loss  # the step did change the weights...
        if loss != "wasserstein_gp":  # (the gradient penalty draws its own interpolation points)
            for part, difference in measured["max_weight_difference"].items():
                assert difference < 1e-4, (loss, part, difference)  # ...identically on 1 and on 2 replicas
    for name, value in {**result["gan_epoch"], **result["distill_epoch"]}.items():
        assert math.isfinite(value), name


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_local_workers_train_a_gan_epoch():
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config)}
        processes.append(subprocess.Popen([sys.executable, str(HELPERS / "multi_worker_gan.py")],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            process.kill()
    for result in results:
        assert result["replicas"] == 2
        assert result["ema_updates"] == 4  # 32 images / global batch 8, the same count on each worker
        assert all(math.isfinite(v) for v in result["metrics"].values())
    assert results[0]["metrics"] == results[1]["metrics"]  # metrics are aggregated across workers


def test_chief_selection(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief() and distribute.task_name() == "local"
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert not distribute.is_chief() and distribute.task_name() == "worker-1"
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UsageError, match="TF_CONFIG"):
        distribute.is_chief()


def test_multi_worker_without_tf_config_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UsageError, match="TF_CONFIG"):
        distribute.make_strategy("multi-worker")
    with pytest.raises(UsageError, match="unknown strategy"):
        distribute.make_strategy("horovod")


def test_multi_worker_without_tf_config_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    from tfgan_compress import cli

    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "tiny", "--strategy", "multi-worker", "--out", str(out)]) == 2
    assert "needs the TF_CONFIG environment variable" in capsys.readouterr().err and not out.exists()
