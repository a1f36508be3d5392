"""Shared fixtures: tiny image data written by the tests themselves (no downloads)."""

import contextlib
import io
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_arrays():
    """8x8 grey images of 3 classes: horizontal bar, vertical bar, blank with a dot."""
    rng = np.random.default_rng(0)

    def make(n):
        y = np.arange(n) % 3
        x = rng.integers(0, 40, size=(n, 8, 8)).astype(np.uint8)
        for i, label in enumerate(y):
            if label == 0:
                x[i, 3:5, :] = 255
            elif label == 1:
                x[i, :, 3:5] = 255
            else:
                x[i, 1, 1] = 255
        return x, y.astype(np.uint8)

    x_train, y_train = make(30)
    x_test, y_test = make(12)
    return x_train, y_train, x_test, y_test


@pytest.fixture
def lean_export_config(tmp_path):
    """Write a --config file that exports only the int8 student (no other variant, no generator
    file; ``export={"variants": [...]}`` picks others), with any further settings given;
    returns its path. For runs whose test reads no other file: each TFLite conversion costs
    about a second."""

    def write(**sections):
        settings = {**sections, "export": {"variants": ["int8"], "generator_variants": [],
                                           **sections.get("export", {})}}
        path = tmp_path / "lean_export.json"
        path.write_text(json.dumps(settings))
        return str(path)

    return write


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished ``tfgan-compress run --preset tiny --seed 3``, shared by every test that
    only reads a run's artifacts (tests that change a run copy it first)."""
    from tfgan_compress import cli

    out = tmp_path_factory.mktemp("runs") / "tiny"
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        code = cli.main(["run", "--preset", "tiny", "--out", str(out), "--seed", "3"])
    (out.parent / "tiny_console.txt").write_text(console.getvalue())  # beside the run, not in it
    assert code == 0, console.getvalue()[-2000:]
    return out
