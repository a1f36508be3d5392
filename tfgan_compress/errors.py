"""The tool's own exceptions, one hierarchy; the exit status is a property of the class.

* :class:`InputError` (exit 2): bad usage, data or model file, which the user can fix;
  nothing was written.
* :class:`TrainingDiverged`, :class:`ExportError` (exit 1): a run that stopped; the
  message names the setting to change.
* :class:`BelowAgreementBar` (exit 3): the run finished and wrote its report, but an
  exported file missed its agreement bar; it is kept apart under ``tflite/below_bar/``.

The CLI and the benchmark scripts print each as one line (:func:`one_line`).
"""

from __future__ import annotations

__all__ = ["TfganCompressError", "InputError", "UsageError", "DataError", "ModelError", "TrainingDiverged",
           "ExportError", "DiskFull", "BelowAgreementBar", "first_line", "one_line"]


class TfganCompressError(Exception):
    """Base class of every error the tool reports in one line, without a traceback."""

    exit_status = 1
    label = "failed"


class InputError(TfganCompressError):
    """Input the user can fix; reported before anything is written."""

    exit_status = 2
    label = "error"


class UsageError(InputError):
    """Bad command-line usage or configuration."""


class DataError(InputError):
    """A data source that is missing or malformed; the message names the file and the problem."""


class ModelError(InputError):
    """A model file that cannot be used (not a Keras model, wrong input shape or class count)."""


class TrainingDiverged(TfganCompressError):
    """Training went wrong (NaN/Inf losses, a discriminator that wins outright)."""

    label = "training stopped"


class ExportError(TfganCompressError):
    """A TFLite export that failed its checks; no file was kept."""

    label = "export failed"


class DiskFull(TfganCompressError):
    """Too little free disk space to write a stage's backup or an artifact; the run stopped
    before writing, and the same command continues it once there is room."""

    label = "stopped"


class BelowAgreementBar(TfganCompressError):
    """A finished run with an exported file below its agreement bar (kept apart, reported)."""

    exit_status = 3
    label = "finished, but a check failed"


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (its class name if it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def one_line(prog: str, err: TfganCompressError) -> str:
    """``prog: <label>: <message>``, the line the CLI prints for a known failure."""
    return f"{prog}: {err.label}: {err}"
