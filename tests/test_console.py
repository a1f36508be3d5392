"""The console: known TensorFlow/LiteRT noise filtered from stderr, --quiet, checks before TensorFlow."""

import subprocess
import sys

import pytest

from tfgan_compress import cli

SCRIPT = r"""
import os, sys
from tfgan_compress import console
with console.filtered_stderr():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see...\n")
    os.write(2, b"E0000 00:00:1.0 1 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: ...\n")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"E0000 00:00:1.0 1 some_kernel.cc:1] a real error\n")
    print("from python", file=sys.stderr)
print("stdout untouched")
"""


def test_known_noise_is_dropped_and_everything_else_passes():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr.splitlines() == ["E0000 00:00:1.0 1 some_kernel.cc:1] a real error", "from python"]
    assert result.stdout == "stdout untouched\n"


def test_bad_arguments_and_config_fail_before_tensorflow_is_imported(tmp_path):
    (tmp_path / "bad.json").write_text('{"gan": {"epochs": 0}}')
    script = ("import sys; from tfgan_compress import cli; "
              f"code = cli.main(['run', '--config', {str(tmp_path / 'bad.json')!r}, '--out', {str(tmp_path / 'r')!r}]); "
              "print(code, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["2", "False"]
    assert "gan.epochs must be >= 1, got 0" in result.stderr


@pytest.mark.slow
def test_quiet_prints_nothing_on_success(tmp_path, capsys, lean_export_config):
    assert cli.main(["run", "--preset", "tiny", "--quiet", "--config", lean_export_config(),
                     "--out", str(tmp_path / "q")]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (tmp_path / "q" / "report.md").is_file()
