"""A quiet console: TensorFlow's and LiteRT's known start-up lines kept off stderr.

TensorFlow 2.21 logs through absl before ``absl::InitializeLog()``, so
``TF_CPP_MIN_LOG_LEVEL`` no longer silences its start-up lines (the oneDNN note, "Could
not find cuda drivers", ``cuInit`` on a machine without a GPU), nor grappler's
``remapper failed`` line (an optimisation pass that gives up on one graph, harmless, but
printed as an error), nor LiteRT's "Created TensorFlow Lite XNNPACK delegate". These come
from C++ straight to file descriptor 2, so :func:`filtered_stderr` puts a pipe there and
copies every line to the real stderr except those matching :data:`KNOWN_NOISE`. Anything
else, our own messages and any other TensorFlow line included, passes unchanged.
``tfgan-compress --debug`` turns the filter off. In a notebook or a script of your own,
:func:`filter_stderr` installs the same filter for the rest of the process.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

#: lines dropped from stderr: each is printed by TensorFlow or LiteRT on every run and says
#: nothing about this run
KNOWN_NOISE = re.compile("|".join([
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers",
    r"cuda_platform\.cc:\d+\] failed call to cuInit",
    r"cuda_executor\.cc:\d+\].*(no NUMA|kernel driver)",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions:.*rebuild TensorFlow",
    r"meta_optimizer\.cc:\d+\] remapper failed",
    r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
]))


@contextlib.contextmanager
def filtered_stderr(enabled: bool = True):
    """Within the block, lines written to file descriptor 2 (by Python or C++) that match
    :data:`KNOWN_NOISE` are dropped; the rest reach the real stderr in order."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:  # no usable descriptor 2 (embedded interpreters): nothing to filter
        yield
        return
    os.dup2(write_end, 2)
    os.close(write_end)

    def copy_lines():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not KNOWN_NOISE.search(line.decode("utf-8", "replace")):
                    os.write(real, line)

    copier = threading.Thread(target=copy_lines, name="stderr-filter", daemon=True)
    copier.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # the pipe's last writer closes: the copier reads to the end and stops
        copier.join(timeout=5)
        os.close(real)


def filter_stderr() -> None:
    """Install :func:`filtered_stderr` for the rest of the process (a notebook's first cell,
    before TensorFlow is imported)."""
    global _installed
    if _installed is None:
        _installed = filtered_stderr()
        _installed.__enter__()


_installed = None
